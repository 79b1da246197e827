"""Predictor health: does the learned predictor use the transformation it is given?
(docs/evaluations.md#predictor-health)

For every object, the pairs (source view 0, target view t) for t = 1 .. views - 1. The error of a
prediction is the squared distance between the L2-normalised prediction and the L2-normalised target
embedding (2 - 2 cos, in [0, 4]; raw vectors with ``normalize=False``), averaged over the pairs, for three
predictions of the target embedding:

- ``true``: P(e_source, z) with the pair's own latent z (what training optimises);
- ``shuffled``: P(e_source, z') with the latents permuted across the pairs of the split (a seeded
  permutation): a predictor that ignores z scores the same as with the true latent;
- ``identity``: e_source itself, no predictor: what predicting "nothing changes" costs.

A predictor *uses the transformation* when its true-latent error is clearly below the shuffled one
(ratio true / shuffled at most :data:`USES_LATENT_RATIO`) and below the identity error (ratio under 1).
"""

from __future__ import annotations

import numpy as np
import torch

from sie.data.latents import pair_latents
from sie.evaluate.probes import batch_slices
from sie.evaluate.retrieval import Predictor, normalise

USES_LATENT_RATIO = 0.9
"""A healthy predictor's error with the true latent is at most this share of its shuffled-latent error."""

PREDICTIONS = ("true", "shuffled", "identity")
SHUFFLE_SEED = 0
"""Seed of the permutation of the shuffled latents (recorded in every health file)."""


def source_target_pairs(objects: int, views: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of (view 0, view t) of every object, t = 1 .. views - 1, object-major."""
    if views < 2:
        raise ValueError("predictor health needs at least 2 views per object")
    targets = np.arange(objects)[:, None] * views + np.arange(1, views)[None, :]
    return np.repeat(np.arange(objects) * views, views - 1), targets.reshape(-1)


def pair_errors(
    embeddings: np.ndarray,
    latents: np.ndarray,
    views: int,
    predict: Predictor,
    *,
    latent: str = "rotation",
    seed: int = SHUFFLE_SEED,
    normalize: bool = True,
    device: str | torch.device = "cpu",
    chunk: int = 16384,
) -> dict[str, float]:
    """Mean error of the ``true``, ``shuffled`` and ``identity`` predictions over every (view 0, view t)
    pair of one split (rows object-major, ``views`` per object)."""
    rows = embeddings.shape[0]
    if rows % views or latents.shape[0] != rows:
        raise ValueError(
            f"{rows} embeddings / {latents.shape[0]} latents are not whole objects of {views} views"
        )
    sources, targets = source_target_pairs(rows // views, views)
    conditions = pair_latents(np.asarray(latents[sources]), np.asarray(latents[targets]), latent)
    shuffled = conditions[np.random.default_rng(seed).permutation(len(conditions))]
    totals = dict.fromkeys(PREDICTIONS, 0.0)
    for part in batch_slices(len(sources), chunk):
        source = torch.from_numpy(np.array(embeddings[sources[part]], dtype=np.float32)).to(device)
        target = normalise(
            torch.from_numpy(np.array(embeddings[targets[part]], dtype=np.float32)).to(device), normalize
        )
        with torch.no_grad():
            predictions = {
                "true": predict(source, torch.from_numpy(conditions[part]).to(device)),
                "shuffled": predict(source, torch.from_numpy(shuffled[part]).to(device)),
                "identity": source,
            }
        for name, prediction in predictions.items():
            difference = normalise(prediction.float(), normalize) - target
            totals[name] += float(difference.double().pow(2).sum())
    return {name: total / len(sources) for name, total in totals.items()}


def health_metrics(errors: dict[str, dict[str, float]]) -> dict[str, float]:
    """Flat metrics of each split's errors: ``error/<prediction>/<split>``, ``ratio/true-shuffled/<split>``,
    ``ratio/true-identity/<split>`` and ``uses_latent/<split>`` (1 when healthy, else 0)."""
    metrics: dict[str, float] = {}
    for split, values in errors.items():
        metrics |= {f"error/{name}/{split}": values[name] for name in PREDICTIONS}
        to_shuffled = _ratio(values["true"], values["shuffled"])
        to_identity = _ratio(values["true"], values["identity"])
        metrics[f"ratio/true-shuffled/{split}"] = to_shuffled
        metrics[f"ratio/true-identity/{split}"] = to_identity
        metrics[f"uses_latent/{split}"] = float(uses_latent(to_shuffled, to_identity))
    return metrics


def uses_latent(to_shuffled: float, to_identity: float) -> bool:
    """The health rule: true error at most 0.9 x the shuffled one and below the identity one."""
    return to_shuffled <= USES_LATENT_RATIO and to_identity < 1.0


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator; NaN (no verdict: the health rule fails) when the denominator is 0, e.g.
    the identity error of a collapsed model whose views all embed alike."""
    return numerator / denominator if denominator else float("nan")

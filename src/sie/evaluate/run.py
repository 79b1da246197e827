"""Run one evaluation of one pretrained model on its feature store and write its metrics file.

Every (variant, method, seed, evaluation, part) gets one JSON file, also when the evaluation does not
apply (an invariant method has no equivariant part and no predictor): such a file says so and why, so
tables show a dash instead of a zero. Probe curves go to TensorBoard next to the JSON files.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sie.devices import resolve_device
from sie.evaluate import health, probes, retrieval
from sie.evaluate.features import load_split, read_manifest
from sie.evaluate.registry import (
    HEALTH_EVALUATION,
    PREDICTOR_EVALUATION,
    PREDICTOR_PART,
    RETRIEVAL_DTYPES,
    RETRIEVAL_MODES,
)
from sie.io import write_json
from sie.paths import EVALUATION_FILE, fill, labels_file, latents_file
from sie.progress import Progress

PROBES = {"classification": probes.classification, "rotation": probes.rotation, "color": probes.color}
"""The code of every evaluation of ``sie.evaluate.registry.PROBE_EVALUATIONS``, in its order (a test
checks that they agree)."""


@dataclasses.dataclass(frozen=True)
class RetrievalSettings:
    """How PRE / MRR / H@k are computed (docs/evaluations.md#pre, docs/evaluations.md#mrr-hk)."""

    modes: tuple[str, ...] = RETRIEVAL_MODES
    normalize: bool = True
    query_chunk: int = 8192
    bank_chunk: int = 65536
    dtype: str = "float32"

    def __post_init__(self) -> None:
        unknown = set(self.modes) - set(RETRIEVAL_MODES)
        if unknown or not self.modes:
            raise ValueError(
                f"retrieval modes {sorted(unknown)} unknown; choose from {', '.join(RETRIEVAL_MODES)}"
            )
        if self.dtype not in RETRIEVAL_DTYPES:
            raise ValueError(f"retrieval dtype must be {' or '.join(RETRIEVAL_DTYPES)}, got {self.dtype!r}")


def identity(manifest: dict[str, Any], evaluation: str, part: str) -> dict[str, Any]:
    """The keys that identify a metrics file."""
    return {
        "variant": manifest["variant"],
        "method": manifest["method"],
        "seed": manifest["seed"],
        "evaluation": evaluation,
        "part": part,
    }


def part_reason(manifest: dict[str, Any], part: str) -> str | None:
    """Why a representation part does not exist for this model, or None when it does."""
    inv_dims, total = manifest["inv_dims"], manifest["representation_dim"]
    if part == "inv" and inv_dims == 0:
        return f"{manifest['method']} has no invariant part of its representation"
    if part == "equi" and inv_dims == total:
        return f"{manifest['method']} has no equivariant part of its representation"
    return None


def feature_split(features_dir: Path, dataset_dir: Path, split: str, views: int) -> probes.FeatureSplit:
    """Stored representations of a split with the dataset's latents and labels (memory-mapped)."""
    return probes.FeatureSplit(
        representations=load_split(features_dir, split),
        latents=np.load(dataset_dir / latents_file(split), mmap_mode="r"),
        views=views,
        labels=np.load(dataset_dir / labels_file(split)),
    )


def evaluate_probe(
    features_dir: Path,
    dataset_dir: Path,
    evaluation: str,
    part: str,
    output: Path,
    settings: probes.ProbeSettings,
    head: str = "linear",
) -> dict[str, Any]:
    """Train one probe on stored features; write and return its metrics file."""
    if evaluation not in PROBES:
        raise ValueError(f"unknown probe evaluation {evaluation!r}; known: {', '.join(PROBES)}")
    manifest = read_manifest(features_dir)
    result = identity(manifest, evaluation, part)
    reason = part_reason(manifest, part)
    if reason:
        record = {**result, "applicable": False, "reason": reason}
        write_json(output, record)
        return record
    started = time.perf_counter()
    views = manifest["views_per_object"]
    train, val = (feature_split(features_dir, dataset_dir, split, views) for split in ("train", "val"))
    settings = dataclasses.replace(settings, device=str(resolve_device(settings.device)))
    keywords = {"head": head} if evaluation == "classification" else {}
    outcome = PROBES[evaluation](train, val, part, manifest["inv_dims"], settings=settings, **keywords)
    log_history(output.parent / "tensorboard" / f"{evaluation}-{part}", outcome.history)
    settings_record = {**dataclasses.asdict(settings), **keywords}
    record = {
        **result,
        "applicable": True,
        "metrics": outcome.metrics,
        "settings": settings_record,
        "seconds": round(time.perf_counter() - started, 2),
        "history": outcome.history,
    }
    write_json(output, record)
    return record


def evaluate_probes(
    features_dir: Path,
    dataset_dir: Path,
    evaluations: list[str],
    parts: list[str],
    output_dir: Path,
    settings: probes.ProbeSettings,
    head: str = "linear",
) -> list[dict[str, Any]]:
    """Every probe of ``evaluations`` x ``parts``, one JSON each. A part that is the same columns as
    another (inv = all for invariant methods, equi = all for methods without an invariant part) is
    trained once and its file records which part it shares the result with."""
    manifest = read_manifest(features_dir)
    records = []
    for evaluation in evaluations:
        trained: dict[tuple[int, int], dict[str, Any]] = {}
        for part in sorted(parts, key=lambda name: name != "all"):  # "all" first: the others may equal it
            output = output_dir / fill(EVALUATION_FILE, evaluation=evaluation, part=part)
            columns = (
                None
                if part_reason(manifest, part)
                else probes.feature_slice(part, manifest["inv_dims"], manifest["representation_dim"])
            )
            key = (columns.start, columns.stop) if columns else None
            if key in trained:
                record = {**trained[key], "part": part, "same_columns_as": trained[key]["part"]}
                write_json(output, record)
            else:
                record = evaluate_probe(features_dir, dataset_dir, evaluation, part, output, settings, head)
                if key is not None:
                    trained[key] = record
            records.append(record)
    return records


def log_history(directory: Path, history: list[dict[str, float]]) -> None:
    """Per-epoch probe curves as TensorBoard scalars."""
    from torch.utils.tensorboard import SummaryWriter

    # A queue that holds every scalar: with the default (10) each add_scalar waits for the writer thread.
    scalars = sum(len(entry) for entry in history)
    writer = SummaryWriter(log_dir=str(directory), purge_step=0, max_queue=scalars + 1, flush_secs=3600)
    for entry in history:
        for name, value in entry.items():
            if name != "epoch":
                writer.add_scalar(name, value, int(entry["epoch"]))
    writer.close()


def evaluate_predictor(
    features_dir: Path,
    dataset_dir: Path,
    model_path: Path,
    output: Path,
    settings: RetrievalSettings,
    device: str = "auto",
) -> dict[str, Any]:
    """PRE for each mode and MRR/H@k (train-train, val-val) of the learned predictor, written to
    ``output``; its health (``sie.evaluate.health``) is written beside it, to ``health_path(output)``."""
    manifest = read_manifest(features_dir)
    result = identity(manifest, PREDICTOR_EVALUATION, PREDICTOR_PART)
    if not manifest["has_predictor"]:
        reason = f"{manifest['method']} has no transformation-conditioned predictor"
        write_json(
            health_path(output),
            {**identity(manifest, HEALTH_EVALUATION, PREDICTOR_PART), "applicable": False, "reason": reason},
        )
        record = {**result, "applicable": False, "reason": reason}
        write_json(output, record)
        return record
    from sie.models.files import load_pretrained

    started = time.perf_counter()
    target = str(resolve_device(device))
    model, payload = load_pretrained(model_path)
    predictor = model.predictor.to(target).eval()
    views = manifest["views_per_object"]
    embeddings = {split: load_split(features_dir, split, "embeddings") for split in ("train", "val")}
    latents = {split: np.load(dataset_dir / latents_file(split), mmap_mode="r") for split in embeddings}
    metrics: dict[str, float] = {}
    for mode in settings.modes:
        query, bank_name = mode.split("-")
        bank_splits = ["train", "val"] if bank_name == "all" else [bank_name]
        bank = retrieval.EmbeddingBank(
            [embeddings[name] for name in bank_splits],
            normalize=settings.normalize,
            device=target,
            dtype=getattr(torch, settings.dtype),
            bank_chunk=settings.bank_chunk,
        )
        progress = Progress(f"PRE {mode}", len(embeddings[query]), unit="queries", interval=30.0)
        errors = retrieval.prediction_errors(
            embeddings[query],
            latents[query],
            views,
            predictor,
            bank,
            [latents[name] for name in bank_splits],
            latent=payload["latent"],
            query_chunk=settings.query_chunk,
            progress=progress.advance,
        )
        metrics[f"PRE/{mode}"] = errors["PRE"]
        if bank_name == query:
            ranks = retrieval.mrr_and_hits(
                embeddings[query],
                latents[query],
                views,
                predictor,
                latent=payload["latent"],
                normalize=settings.normalize,
                device=target,
            )
            metrics.update({f"{name}/{mode}": value for name, value in ranks.items()})
    write_health(
        manifest, health_path(output), embeddings, latents, predictor, payload["latent"], settings, target
    )
    record = {
        **result,
        "applicable": True,
        "metrics": metrics,
        "settings": dataclasses.asdict(settings),
        "seconds": round(time.perf_counter() - started, 2),
    }
    write_json(output, record)
    return record


def health_path(predictor_output: Path) -> Path:
    """The predictor health file written beside the predictor evaluation's file."""
    return predictor_output.parent / fill(EVALUATION_FILE, evaluation=HEALTH_EVALUATION, part=PREDICTOR_PART)


def write_health(
    manifest: dict[str, Any],
    path: Path,
    embeddings: dict[str, np.ndarray],
    latents: dict[str, np.ndarray],
    predictor: retrieval.Predictor,
    latent: str,
    settings: RetrievalSettings,
    device: str,
) -> None:
    """The predictor health file (``sie.evaluate.health``) of every split of ``embeddings``."""
    errors = {
        split: health.pair_errors(
            embeddings[split],
            latents[split],
            manifest["views_per_object"],
            predictor,
            latent=latent,
            normalize=settings.normalize,
            device=device,
        )
        for split in embeddings
    }
    record = {
        **identity(manifest, HEALTH_EVALUATION, PREDICTOR_PART),
        "applicable": True,
        "metrics": health.health_metrics(errors),
        "rule": f"uses the latent: error true <= {health.USES_LATENT_RATIO} x shuffled and < identity",
        "shuffle_seed": health.SHUFFLE_SEED,
        "normalize": settings.normalize,
    }
    write_json(path, record)

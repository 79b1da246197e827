"""The untrained reference model: a run's model at its initial weights, written as a model.pt.

``torch.manual_seed(seed)`` then ``build_model``, as ``sie.training.loop.build_run`` does before the first
step, so the untrained model of seed s has exactly the parameters the trained run of the same spec starts
from. Its BatchNorm statistics are then estimated on training views (one pass without gradients, a
cumulative average): the features are computed in eval mode, where the initial statistics (mean 0,
variance 1) would leave every layer unnormalised, unlike the trained models whose statistics were
estimated while they trained. The file records ``reference: untrained``; its feature store and metrics
files name the row ``untrained`` (docs/evaluations.md#reference-rows) while the model is rebuilt as the
method it was built as.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from sie.data.fingerprint import dataset_fingerprint
from sie.data.layout import label_count
from sie.data.pairs import normalization_constants, prepare_images
from sie.data.readers import open_reader
from sie.evaluate.registry import UNTRAINED
from sie.io import read_json
from sie.models import files
from sie.models.methods import build_model
from sie.paths import CARD_FILE, MODEL_FILE, STATISTICS_FILE
from sie.training import resume
from sie.training.config import RunSpec

BATCH_NORM_VIEWS = 4096
"""Training views the untrained model's BatchNorm statistics are estimated on."""


def write_untrained(spec: RunSpec, dataset_dir: Path, output_dir: Path) -> dict[str, Any]:
    """Write ``output_dir/model.pt`` of the spec's model at its initial weights; returns a summary."""
    from sie.training.loop import model_config

    card = read_json(dataset_dir / CARD_FILE)
    mean, std = normalization_constants(spec.training.normalization, read_json(dataset_dir / STATISTICS_FILE))
    torch.manual_seed(spec.seed)
    model = build_model(spec.method, model_config(spec, label_count(card)))
    views = estimate_batch_norm(model, dataset_dir, mean, std, spec.training.resolution)
    identity = resume.run_identity(spec, "float32", dataset_fingerprint(dataset_dir))
    payload = files.model_payload(
        model,
        variant=spec.variant,
        seed=spec.seed,
        fingerprint=resume.fingerprint(identity, 0),
        identity=identity,
        normalization=spec.training.normalization,
        mean=mean,
        std=std,
        resolution=spec.training.resolution,
    )
    payload["reference"] = UNTRAINED
    output_dir.mkdir(parents=True, exist_ok=True)
    files.save(output_dir / MODEL_FILE, payload)
    return {
        "reference": UNTRAINED,
        "method": spec.method,
        "seed": spec.seed,
        "parameters": sum(parameter.numel() for parameter in model.parameters()),
        "batch_norm_views": views,
    }


@torch.no_grad()
def estimate_batch_norm(
    model: torch.nn.Module,
    dataset_dir: Path,
    mean: list[float],
    std: list[float],
    resolution: int | None,
    views: int = BATCH_NORM_VIEWS,
    batch_size: int = 256,
) -> int:
    """Replace every BatchNorm's running statistics by their average over up to ``views`` training views
    (evenly spaced rows, so deterministic) passed through the backbone and the projectors; the
    parameters are unchanged. Returns the number of views used."""
    layers = [
        module for module in model.modules() if isinstance(module, torch.nn.modules.batchnorm._BatchNorm)
    ]
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative average over the batches
    reader = open_reader(dataset_dir, "train")
    rows = np.unique(np.linspace(0, len(reader) - 1, num=min(views, len(reader))).astype(np.int64))
    model.train()
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        if len(batch) < 2:
            break  # BatchNorm needs two samples
        representations = model.backbone(prepare_images(reader.read_images(batch), mean, std, resolution))
        model.embed(representations)
    for layer, momentum in zip(layers, momenta, strict=True):
        layer.momentum = momentum
    model.eval()
    return len(rows)

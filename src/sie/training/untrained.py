"""The untrained reference model: a run's model at its initial weights, written as a model.pt.

``torch.manual_seed(seed)`` then ``build_model``, as ``sie.training.loop.build_run`` does before the first
step, so the untrained model of seed s is exactly where the trained run of the same spec starts. The file
records ``reference: untrained``; its feature store and metrics files name the row ``untrained``
(docs/evaluations.md#reference-rows) while the model is rebuilt as the method it was built as.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from sie.data.fingerprint import dataset_fingerprint
from sie.data.layout import label_count
from sie.data.pairs import normalization_constants
from sie.evaluate.registry import UNTRAINED
from sie.io import read_json
from sie.models import files
from sie.models.methods import build_model
from sie.paths import CARD_FILE, MODEL_FILE, STATISTICS_FILE
from sie.training import resume
from sie.training.config import RunSpec


def write_untrained(spec: RunSpec, dataset_dir: Path, output_dir: Path) -> dict[str, Any]:
    """Write ``output_dir/model.pt`` of the spec's model at its initial weights; returns a summary."""
    from sie.training.loop import model_config

    card = read_json(dataset_dir / CARD_FILE)
    mean, std = normalization_constants(spec.training.normalization, read_json(dataset_dir / STATISTICS_FILE))
    torch.manual_seed(spec.seed)
    model = build_model(spec.method, model_config(spec, label_count(card)))
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
    return {"reference": UNTRAINED, "method": spec.method, "seed": spec.seed, "parameters": model_size(model)}


def model_size(model: torch.nn.Module) -> int:
    """Number of parameters."""
    return sum(parameter.numel() for parameter in model.parameters())

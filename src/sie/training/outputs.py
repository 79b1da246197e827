"""The declared outputs of a pretraining run: weights, resolved configuration and summary.

``model.pt`` is written in the format of ``sie.models.files`` (the model, how to rebuild it and how
to feed it; the evaluations read it from there); ``backbone.pt`` is the backbone's state dict alone
(the original's ``final_weights.pth``). ``summary.json`` is written last.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sie.io import write_json
from sie.models import files
from sie.paths import BACKBONE_FILE, MODEL_FILE, RUN_CONFIG_FILE, SUMMARY_FILE
from sie.provenance import git_revision, software_versions

if TYPE_CHECKING:
    from sie.training.loop import Run


def model_payload(run: Run) -> dict[str, Any]:
    """model.pt of a run, in the format of ``sie.models.files`` (which the evaluations read)."""
    return files.model_payload(
        run.model,
        variant=run.spec.variant,
        seed=run.spec.seed,
        fingerprint=run.fingerprint,
        identity=run.identity,
        normalization=run.spec.training.normalization,
        mean=run.mean,
        std=run.std,
        resolution=run.spec.training.resolution,
    )


def write_outputs(run: Run, output_dir: Path, wall_seconds: float) -> dict[str, Any]:
    """Write model.pt, backbone.pt, config.json and (last) summary.json; return the summary."""
    output_dir.mkdir(parents=True, exist_ok=True)
    files.save(output_dir / MODEL_FILE, model_payload(run))
    files.save(output_dir / BACKBONE_FILE, run.model.backbone.state_dict())
    write_json(
        output_dir / RUN_CONFIG_FILE,
        {
            "spec": run.spec.as_dict(),
            "command": sys.argv,
            "git": git_revision(),
            "versions": software_versions(),
            "world_size": run.context.world_size,
            "launcher": run.context.launcher,
            "device": str(run.device),
        },
    )
    position = run.position
    summary = {
        "variant": run.spec.variant,
        "method": run.spec.method,
        "seed": run.spec.seed,
        "epochs": run.spec.training.epochs,
        "fingerprint": run.fingerprint,
        "dataset_fingerprint": run.identity["dataset"],
        "precision": run.identity["training"]["precision"],
        "notes": run.notes,
        "steps": position.global_step,
        "steps_per_epoch": run.sampler.steps_per_epoch,
        "wall_seconds_this_session": round(wall_seconds, 2),
        "final": {name: round(value, 6) for name, value in sorted(run.last.items())},
        "parameters": sum(parameter.numel() for parameter in run.model.parameters()),
        "backbone_parameters": sum(parameter.numel() for parameter in run.model.backbone.parameters()),
        "inv_dims": run.model.inv_dims,
        "representation_dim": run.model.representation_dim,
    }
    write_json(output_dir / SUMMARY_FILE, summary)
    return summary

"""The declared outputs of a pretraining run: weights, resolved configuration and summary.

``model.pt`` carries what the evaluations need to rebuild the model strictly (method, model config,
the invariant/equivariant split) next to the full state dict; ``backbone.pt`` is the backbone's state
dict alone (the original's ``final_weights.pth``). ``summary.json`` is written last.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sie.io import write_json
from sie.provenance import git_revision, software_versions
from sie.training import checkpoint

if TYPE_CHECKING:
    from sie.models.methods import SSLModel
    from sie.training.loop import Run

MODEL_FORMAT = 1


def model_payload(run: Run) -> dict[str, Any]:
    """model.pt: the full model and how to rebuild it."""
    model = run.model
    return {
        "format": MODEL_FORMAT,
        "method": run.spec.method,
        "variant": run.spec.variant,
        "seed": run.spec.seed,
        "latent": model.spec.latent,
        "model_config": dataclasses.asdict(model.config),
        "representation_dim": model.representation_dim,
        "inv_dims": model.inv_dims,
        "embedding_dim": model.embedding_dim,
        "inv_embedding_dims": model.inv_embedding_dims,
        "normalization": {"mean": list(run.mean), "std": list(run.std)},
        "state_dict": model.state_dict(),
    }


def load_pretrained(path: Path) -> tuple[SSLModel, dict[str, Any]]:
    """Rebuild a pretrained model from model.pt, strictly: the method, shape and split come from the
    file (never typed by the user), and every weight must fit (no silent partial loads)."""
    payload = checkpoint.load(path)
    missing = [key for key in ("format", "method", "model_config", "state_dict") if key not in payload]
    if missing or payload.get("format") != MODEL_FORMAT:
        raise ValueError(
            f"{path}: not a model.pt of `sie pretrain` (format {payload.get('format')!r}, missing {missing})"
        )
    from sie.models.methods import ModelConfig, build_model

    model = build_model(payload["method"], ModelConfig(**payload["model_config"]))
    checkpoint.load_state_strict(model, payload["state_dict"], path)
    if model.inv_dims != payload["inv_dims"]:
        raise ValueError(
            f"{path}: stored split inv_dims={payload['inv_dims']} but the rebuilt model has {model.inv_dims}"
        )
    return model.eval(), payload


def write_outputs(run: Run, output_dir: Path, wall_seconds: float) -> dict[str, Any]:
    """Write model.pt, backbone.pt, config.json and (last) summary.json; return the summary."""
    output_dir.mkdir(parents=True, exist_ok=True)
    checkpoint.save(output_dir / "model.pt", model_payload(run))
    checkpoint.save(output_dir / "backbone.pt", run.model.backbone.state_dict())
    write_json(
        output_dir / "config.json",
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
        "steps": position.global_step,
        "steps_per_epoch": run.sampler.steps_per_epoch,
        "wall_seconds_this_session": round(wall_seconds, 2),
        "final": {name: round(value, 6) for name, value in sorted(run.last.items())},
        "parameters": sum(parameter.numel() for parameter in run.model.parameters()),
        "backbone_parameters": sum(parameter.numel() for parameter in run.model.backbone.parameters()),
        "inv_dims": run.model.inv_dims,
        "representation_dim": run.model.representation_dim,
    }
    write_json(output_dir / "summary.json", summary)
    return summary

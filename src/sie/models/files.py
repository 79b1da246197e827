"""The files of a pretrained model, and the safe, strict loading every PyTorch file of `sie` goes through.

``model.pt`` carries what the evaluations need to rebuild the model strictly (method, model config,
the invariant/equivariant split) and to feed it as in training (the normalisation's kind, mean and std,
and the training resolution, None for the dataset's size) next to the full state dict; it also records
the run's fingerprint and identity. Training writes it (``sie.training.outputs``); features, evaluations
and figures read it with :func:`load_pretrained`, so none of them depends on the trainer.

Files hold only tensors, numbers, strings and containers, so they load with
``torch.load(weights_only=True)`` (no pickled code runs); loading weights into a model of another shape
is refused with a message.
"""

from __future__ import annotations

import dataclasses
import io
import pickle
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from sie.io import write_bytes

if TYPE_CHECKING:
    from sie.models.methods import SSLModel

MODEL_FORMAT = 1


def save(path: Path, payload: dict[str, Any]) -> None:
    """Serialise in memory, then write a temporary file and rename it: a kill never leaves a
    truncated file, and a full or read-only disk is an OSError naming ``path`` (torch's own file
    writer reports it without the file or the cause)."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_bytes(path, buffer.getbuffer())


def load(path: Path) -> dict[str, Any]:
    """Load a checkpoint or model file without executing pickled code; errors name the file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: file not found")
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path}: not a complete PyTorch file (truncated, or not written by `sie`); delete it and "
            "run the step that writes it again (snakemake reruns it)"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ValueError(
            f"{path}: holds Python objects other than tensors, numbers and strings, so it was not "
            "written by `sie` and is refused (loading it would run code from the file)"
        ) from None
    except (OSError, MemoryError):
        raise  # the storage or the machine, not the file: its own message is the right one
    except Exception as error:  # torch raises several types for corrupt or foreign files
        raise ValueError(
            f"{path}: corrupt PyTorch file ({type(error).__name__}: {str(error).splitlines()[0]}); "
            "delete it and run the step that writes it again"
        ) from None


def load_state_strict(module: nn.Module, state: dict[str, torch.Tensor], source: Path | str) -> None:
    """load_state_dict(strict=True) with one clear error listing missing, unexpected and mis-shaped keys."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = sorted(
        f"{key} {tuple(state[key].shape)} vs {tuple(own[key].shape)}"
        for key in set(own) & set(state)
        if state[key].shape != own[key].shape
    )
    if missing or unexpected or mismatched:
        details = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched)):
            if keys:
                details.append(
                    f"{label}: {', '.join(keys[:5])}" + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")
                )
        raise ValueError(f"{source}: weights do not fit this model ({'; '.join(details)})")
    module.load_state_dict(state, strict=True)


def model_payload(
    model: SSLModel,
    *,
    variant: str,
    seed: int,
    fingerprint: str,
    identity: dict[str, Any],
    normalization: str,
    mean: Sequence[float],
    std: Sequence[float],
    resolution: int | None,
) -> dict[str, Any]:
    """The content of model.pt: the full model and how to rebuild it and feed it."""
    return {
        "format": MODEL_FORMAT,
        "method": model.spec.name,
        "variant": variant,
        "seed": seed,
        "fingerprint": fingerprint,
        "identity": identity,
        "latent": model.spec.latent,
        "model_config": dataclasses.asdict(model.config),
        "representation_dim": model.representation_dim,
        "inv_dims": model.inv_dims,
        "embedding_dim": model.embedding_dim,
        "inv_embedding_dims": model.inv_embedding_dims,
        "normalization": {"kind": normalization, "mean": list(mean), "std": list(std)},
        "resolution": resolution,
        "state_dict": model.state_dict(),
    }


def load_pretrained(path: Path) -> tuple[SSLModel, dict[str, Any]]:
    """Rebuild a pretrained model from model.pt, strictly: the method, shape and split come from the
    file (never typed by the user), and every weight must fit (no silent partial loads)."""
    payload = load(path)
    missing = [key for key in ("format", "method", "model_config", "state_dict") if key not in payload]
    if missing or payload.get("format") != MODEL_FORMAT:
        raise ValueError(
            f"{path}: not a model.pt of `sie pretrain` (format {payload.get('format')!r}, missing {missing})"
        )
    from sie.models.methods import ModelConfig, build_model

    model = build_model(payload["method"], ModelConfig(**payload["model_config"]))
    load_state_strict(model, payload["state_dict"], path)
    if model.inv_dims != payload["inv_dims"]:
        raise ValueError(
            f"{path}: stored split inv_dims={payload['inv_dims']} but the rebuilt model has {model.inv_dims}"
        )
    return model.eval(), payload

"""Resumable checkpoints and final model files, saved atomically and loaded strictly and safely.

Checkpoints hold only tensors, numbers, strings and containers, so they load with
``torch.load(weights_only=True)`` (no pickled code runs). A checkpoint records the run's identity
(variant, method, seed, model shape, batch size); resuming a different run is refused with a message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from sie.io import atomic_path

CHECKPOINT_FORMAT = 1


def save(path: Path, payload: dict[str, Any]) -> None:
    """torch.save to a temporary file, then rename: a kill never leaves a truncated checkpoint."""
    with atomic_path(path, suffix=".pt") as temporary:
        torch.save(payload, temporary)


def load(path: Path) -> dict[str, Any]:
    """Load a checkpoint or model file without executing pickled code."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    except Exception as error:  # torch raises several types for corrupt or foreign files
        raise ValueError(f"{path}: not a readable checkpoint ({type(error).__name__}: {error})") from None


def check_identity(path: Path, stored: dict[str, Any], expected: dict[str, Any]) -> None:
    """Refuse a checkpoint written by another run (method, seed, model shape or batch size differ)."""
    differences = [
        f"{key}: checkpoint {stored.get(key)!r}, this run {value!r}"
        for key, value in expected.items()
        if stored.get(key) != value
    ]
    if differences:
        raise ValueError(
            f"{path}: checkpoint of another run ({'; '.join(differences)}). Delete it to start this run "
            "from scratch, or restore the settings it was written with."
        )


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


def rng_state(device: torch.device) -> dict[str, Any]:
    """Every random state a step may use: torch's CPU generator and, on GPUs, the device's."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng_state(state: dict[str, Any], device: torch.device) -> None:
    """Restore what ``rng_state`` saved."""
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)

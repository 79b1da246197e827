"""Resumable checkpoints: the run's random states, and the refusal of another run's checkpoint.

Checkpoints are saved atomically and loaded strictly and safely by the functions of
``sie.models.files`` (re-exported here as ``save``, ``load`` and ``load_state_strict``): they hold only
tensors, numbers, strings and containers, so they load with ``torch.load(weights_only=True)`` (no
pickled code runs). A checkpoint records the run's identity (``sie.training.resume``).
"""

from __future__ import annotations

from typing import Any

import torch

from sie.models.files import load as load
from sie.models.files import load_state_strict as load_state_strict
from sie.models.files import save as save

CHECKPOINT_FORMAT = 1


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

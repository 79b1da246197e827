"""Which checkpoint a run may resume: its identity, its fingerprint, and the decision.

A run's *identity* is everything that changes its result: variant, method, seed, model settings, the
training settings except the run-time ones (``RUNTIME_FIELDS``: they change how fast, not what, is
computed, up to floating-point rounding), the precision actually used (``amp: auto`` resolved on this
device) and the content of the dataset (``sie.data.fingerprint``). Its *fingerprint* is a hash of the
identity with the number of epochs.

A checkpoint is resumed only under the same identity. The number of epochs may differ when the
learning-rate schedule does not depend on it: with the constant schedule (the original code's) step
``s`` gets the same learning rate and the same batch whatever the total, so a run asked for more
epochs continues exactly where the checkpoint stands, as if it had been asked for them from the start;
with the cosine schedule every step depends on the total, so a changed total starts over. Any other
difference starts over too. The checkpoint that is not resumed is never deleted: it is moved to
``superseded/<fingerprint>-step<N>.pt`` beside it, and a later run whose fingerprint matches takes
the furthest one back (so reverting a setting costs nothing).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sie.training.config import RunSpec

RUNTIME_FIELDS = (
    "workers",
    "reader",
    "checkpoint_minutes",
    "log_every_steps",
    "deterministic",
    "device",
    "channels_last",
)
"""Training settings that do not change what is computed (up to floating-point rounding)."""

SUPERSEDED_FOLDER = "superseded"


def run_identity(spec: RunSpec, precision: str, dataset_fingerprint: str) -> dict[str, Any]:
    """Everything that changes the run's result, except ``training.epochs`` (see the module docstring)."""
    training = {
        key: value
        for key, value in sorted(dataclasses.asdict(spec.training).items())
        if key not in RUNTIME_FIELDS and key not in ("epochs", "amp")
    }
    training["precision"] = precision
    return {
        "variant": spec.variant,
        "method": spec.method,
        "seed": spec.seed,
        "model": dict(sorted(spec.model.items())),
        "training": training,
        "dataset": dataset_fingerprint,
    }


def fingerprint(identity: dict[str, Any], epochs: int) -> str:
    """A short hash of the identity and the number of epochs (names superseded checkpoints)."""
    text = json.dumps({"identity": identity, "epochs": epochs}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Decision:
    """What to do with an existing checkpoint: resume it, or put it aside and start over."""

    resume: bool
    reason: str


def decide(stored: dict[str, Any], wanted: dict[str, Any], epochs: int, steps_per_epoch: int) -> Decision:
    """Compare a checkpoint's recorded identity, epochs and position with this run's.

    ``stored`` is ``{"identity": ..., "epochs": ..., "global_step": ...}`` as the checkpoint records it.
    """
    differences = identity_differences(stored.get("identity") or {}, wanted)
    if differences:
        return Decision(False, "it was trained with other settings (" + "; ".join(differences) + ")")
    stored_epochs = stored.get("epochs")
    if stored_epochs == epochs:
        return Decision(True, "same settings")
    change = f"training.epochs {stored_epochs} -> {epochs}"
    if wanted["training"].get("schedule") != "constant":
        schedule = wanted["training"].get("schedule")
        return Decision(False, f"{change}, and the {schedule} schedule depends on the number of epochs")
    done, total = int(stored.get("global_step", 0)), epochs * steps_per_epoch
    if done > total:
        return Decision(False, f"{change}: the checkpoint is past the new end ({done} of {total} steps)")
    return Decision(
        True,
        f"{change}: the constant schedule does not depend on the number of epochs, so training "
        f"continues from step {done} exactly as a run of {epochs} epochs would",
    )


def identity_differences(stored: dict[str, Any], wanted: dict[str, Any], prefix: str = "") -> list[str]:
    """Human-readable ``key: checkpoint X, now Y`` for every differing leaf (nested dicts flattened)."""
    differences = []
    for key in sorted(set(stored) | set(wanted)):
        old, new = stored.get(key), wanted.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            differences += identity_differences(old, new, f"{prefix}{key}.")
        elif old != new:
            old_text = "not recorded" if key not in stored else repr(old)
            differences.append(f"{prefix}{key}: checkpoint {old_text}, now {new!r}")
    return differences


def superseded_path(checkpoint_path: Path, run_fingerprint: str, step: int) -> Path:
    """Where a checkpoint that is not resumed is kept: by fingerprint and step, so that putting a
    checkpoint aside never overwrites another one."""
    return checkpoint_path.parent / SUPERSEDED_FOLDER / f"{run_fingerprint}-step{step}.pt"


def put_aside(checkpoint_path: Path, run_fingerprint: str, step: int) -> Path:
    """Move the checkpoint to its superseded place."""
    destination = superseded_path(checkpoint_path, run_fingerprint, step)
    destination.parent.mkdir(parents=True, exist_ok=True)
    os.replace(checkpoint_path, destination)
    return destination


def take_back(checkpoint_path: Path, run_fingerprint: str) -> Path | None:
    """When no checkpoint is in place, bring back the furthest superseded one of exactly this run."""
    folder = checkpoint_path.parent / SUPERSEDED_FOLDER
    if checkpoint_path.exists() or not folder.is_dir():
        return None
    kept = sorted(
        folder.glob(f"{run_fingerprint}-step*.pt"),
        key=lambda path: int(path.stem.rsplit("-step", 1)[1]),
    )
    if not kept:
        return None
    os.replace(kept[-1], checkpoint_path)
    return kept[-1]

"""What one pretraining run is: method, seed, model and training hyper-parameters (typed, frozen)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from sie.data.store import READERS
from sie.devices import DEVICES
from sie.errors import ConfigError
from sie.io import read_json_argument

SCHEDULES = ("constant", "cosine")
PRECISIONS = ("auto", "bf16", "fp16", "off")
NORMALIZATIONS = ("dataset", "release")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and run-time settings; defaults are the original code's (Adam, constant lr).

    ``resolution``: both views are resized to ``resolution`` x ``resolution`` pixels before training,
    as the original's ``--resolution`` (bilinear, antialiased when shrinking, ``sie.data.pairs.resize``);
    None (the default) trains at the dataset's own image size. The feature pass of the evaluations
    resizes the same way (model.pt records it).
    ``normalization``: ``dataset`` (the default) normalises with the dataset's own per-channel mean and
    std (``statistics.json``), ``release`` with the original's fixed constants
    (``sie.data.pairs.RELEASE_NORMALIZATION``). Both change the result, so both are part of the run's
    identity (``sie.training.resume``).
    """

    epochs: int = 100
    batch_size: int = 1024
    lr: float = 1e-3
    weight_decay: float = 1e-6
    warmup_epochs: float = 0.0
    schedule: str = "constant"
    amp: str = "auto"
    channels_last: bool = False
    workers: int = 8
    reader: str = "packed"
    checkpoint_minutes: float = 30.0
    log_every_steps: int = 10
    deterministic: bool = False
    device: str = "auto"
    resolution: int | None = None
    normalization: str = "dataset"

    def __post_init__(self) -> None:
        for key, allowed in (
            ("schedule", SCHEDULES),
            ("amp", PRECISIONS),
            ("reader", READERS),
            ("device", DEVICES),
            ("normalization", NORMALIZATIONS),
        ):
            if getattr(self, key) not in allowed:
                raise ConfigError(
                    f"training.{key}: {getattr(self, key)!r} is not one of {', '.join(allowed)}"
                )
        for key in ("epochs", "batch_size", "log_every_steps"):
            if getattr(self, key) < 1:
                raise ConfigError(f"training.{key} must be >= 1, got {getattr(self, key)}")
        if self.workers < 0 or self.checkpoint_minutes < 0 or self.warmup_epochs < 0:
            raise ConfigError("training.workers, checkpoint_minutes and warmup_epochs must be >= 0")
        if self.resolution is not None and self.resolution < 1:
            raise ConfigError(f"training.resolution must be >= 1 or null, got {self.resolution}")


@dataclass(frozen=True)
class RunSpec:
    """One pretraining job: (dataset variant, method, seed) with resolved hyper-parameters."""

    variant: str
    method: str
    seed: int
    model: dict[str, Any]
    training: TrainConfig

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (the --spec of ``sie pretrain``)."""
        return {
            "variant": self.variant,
            "method": self.method,
            "seed": self.seed,
            "model": self.model,
            "training": dataclasses.asdict(self.training),
        }


def run_spec_from_text(text: str) -> RunSpec:
    """Parse a --spec (JSON text or a path to a JSON file) into a RunSpec, checking every key."""
    return run_spec_from_dict(read_json_argument(text))


def run_spec_from_dict(raw: dict[str, Any]) -> RunSpec:
    """Build a RunSpec from a dict, with errors naming unknown or invalid keys."""
    from sie.models.methods import ModelConfig, get_method

    expected = {"variant", "method", "seed", "model", "training"}
    unknown, missing = set(raw) - expected, expected - set(raw)
    if unknown or missing:
        raise ConfigError(f"run spec: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}")
    get_method(raw["method"])
    model_fields = {field.name for field in dataclasses.fields(ModelConfig)}
    training_fields = {field.name for field in dataclasses.fields(TrainConfig)}
    for section, fields in (("model", model_fields), ("training", training_fields)):
        extra = set(raw[section]) - fields
        if extra:
            raise ConfigError(
                f"{section}: unknown key(s) {sorted(extra)} (allowed: {', '.join(sorted(fields))})"
            )
    try:
        ModelConfig(**raw["model"])
    except (TypeError, ValueError) as error:
        raise ConfigError(f"model: {error}") from None
    return RunSpec(
        raw["variant"], raw["method"], int(raw["seed"]), dict(raw["model"]), TrainConfig(**raw["training"])
    )

"""What one pretraining run is: method, seed, model and training hyper-parameters (typed, frozen)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from sie.config import ConfigError
from sie.io import read_json_argument

SCHEDULES = ("constant", "cosine")
PRECISIONS = ("auto", "bf16", "fp16", "off")
READERS = ("packed", "files")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and run-time settings; defaults are the original code's (Adam, constant lr)."""

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

    def __post_init__(self) -> None:
        for key, allowed in (
            ("schedule", SCHEDULES),
            ("amp", PRECISIONS),
            ("reader", READERS),
            ("device", DEVICES),
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


@dataclass(frozen=True)
class RunSpec:
    """One pretraining job: (dataset variant, method, seed) with resolved hyper-parameters."""

    variant: str
    method: str
    seed: int
    model: dict[str, Any]
    training: TrainConfig

    def identity(self) -> dict[str, Any]:
        """What a checkpoint must match to be resumed: changing any of it starts a different run."""
        return {
            "variant": self.variant,
            "method": self.method,
            "seed": self.seed,
            "model": dict(sorted(self.model.items())),
            "batch_size": self.training.batch_size,
        }

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

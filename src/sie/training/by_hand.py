"""The run spec of a pretraining started by hand: ``sie pretrain --method M --dataset D --set key=value``.

The spec is built the way the workflow builds its own: the settings become the ``pretrain`` section of a
configuration, which is validated by the same schema (``sie.config.resolve_config``: unknown keys and
invalid values are errors naming the key), and ``sie.workflow.pretrain_spec`` turns it into the spec.
So a by-hand run and the workflow's run of the same settings get the same spec, hence the same
identity and the same weights.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from sie.config import ConfigError, resolve_config
from sie.io import read_json
from sie.paths import CARD_FILE
from sie.training.config import RunSpec, run_spec_from_dict

SECTIONS = ("model", "training")
"""The parts of the pretrain section that ``--set`` may change (the method and seed have options)."""

_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
_STAND_IN_ROOT = "."
"""Root of the stand-in dataset entry: the schema needs one variant, nothing reads its folder."""


def hand_run_spec(method: str, dataset_dir: Path, seed: int, settings: Sequence[str]) -> RunSpec:
    """The spec the workflow would pass for ``method`` and ``seed`` on the indexed dataset folder
    ``dataset_dir`` (its variant name comes from its ``card.json``) with ``settings`` (``KEY=VALUE``
    strings, e.g. ``training.epochs=10``) as the configuration's ``pretrain`` section."""
    from sie.workflow import pretrain_spec

    variant = variant_name(dataset_dir)
    pretrain = {"datasets": [variant], "methods": [method], "seeds": [seed], **parse_settings(settings)}
    stand_in = {"source": "prerendered", "root": _STAND_IN_ROOT}
    try:
        config = resolve_config({"datasets": {variant: stand_in}, "pretrain": pretrain})
    except ConfigError as error:
        raise ConfigError(f"--method/--seed/--set: {error}") from None
    return run_spec_from_dict(pretrain_spec(config, variant, method, seed))


def variant_name(dataset_dir: Path) -> str:
    """The dataset variant's name, from the ``card.json`` that ``sie index`` writes."""
    card_path = Path(dataset_dir) / CARD_FILE
    if not card_path.is_file():
        raise ConfigError(f"--dataset {dataset_dir}: no card.json (not an indexed dataset: run `sie index`)")
    name = read_json(card_path).get("variant")
    if not name:
        raise ConfigError(f"{card_path}: the card names no variant (re-index the dataset)")
    return str(name)


def parse_settings(settings: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``section.key=value`` strings to ``{section: {key: value}}``; values are YAML scalars (later
    settings of the same key win)."""
    overrides: dict[str, dict[str, Any]] = {}
    for setting in settings:
        key, separator, text = setting.partition("=")
        section, _, name = key.strip().removeprefix("pretrain.").partition(".")
        if not separator or section not in SECTIONS or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ConfigError(
                f"--set {setting!r}: expected model.KEY=VALUE or training.KEY=VALUE "
                "(e.g. --set training.epochs=10)"
            )
        overrides.setdefault(section, {})[name] = parse_scalar(text.strip(), setting)
    return overrides


def parse_scalar(text: str, setting: str) -> Any:
    """A YAML scalar (``10``, ``0.45``, ``true``, ``null``, ``resnet9``), with two YAML 1.1 surprises
    undone: ``1e-3`` is a number (not text), and only true/false are booleans (``off``, a value of
    ``training.amp``, stays text). An empty value is the empty string."""
    if _NUMBER.match(text):
        return int(text) if re.fullmatch(r"[-+]?\d+", text) else float(text)
    if not text:
        return ""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"--set {setting!r}: not a YAML value ({error})") from None
    if isinstance(value, dict | list):
        raise ConfigError(f"--set {setting!r}: expected one value (a number, true/false, null or text)")
    if isinstance(value, bool) and text.lower() not in ("true", "false"):
        return text
    return value

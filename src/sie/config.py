"""The science configuration: validation against the JSON schema, defaults, typed views.

One source of defaults: ``workflow/schemas/config.schema.yaml``. ``resolve_config`` validates a raw
configuration (as Snakemake or ``yaml.safe_load`` gives it), fills every default, turns "pi/2"-style
numbers into floats, and returns a plain JSON-serialisable dict. Errors name the offending key.
Typed, frozen views of a dataset variant are built with :func:`dataset_variant`.
"""

from __future__ import annotations

import copy
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from sie.data.latents import FACTORS, LatentSpace

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPOSITORY_ROOT / "workflow" / "schemas" / "config.schema.yaml"
SOURCES = ("procedural", "shapenet", "prerendered")
SOURCE_KEYS = {
    "procedural": ("classes", "objects_per_class"),
    "shapenet": ("shapenet_root", "object_list"),
    "prerendered": ("root",),
}
REQUIRED_SOURCE_KEYS = {
    "procedural": ("objects_per_class",),
    "shapenet": ("shapenet_root", "object_list"),
    "prerendered": ("root",),
}
_PI_NUMBER = re.compile(r"^(-?)(?:([0-9]*\.?[0-9]+)\*?)?pi(?:/([0-9]*\.?[0-9]+))?$")


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range; the message names the key."""


@dataclass(frozen=True)
class RenderSettings:
    """Cycles settings of a dataset variant (see the schema for meanings)."""

    samples: int
    noise_threshold: float
    denoise: bool
    max_bounces: int
    view_transform: str
    jpeg_quality: int


@dataclass(frozen=True)
class SplitSettings:
    """How objects are split into train and validation sets."""

    val_fraction: float
    seed: int
    train_images: str | None = None
    val_images: str | None = None


@dataclass(frozen=True)
class DatasetVariant:
    """A named dataset variant, fully resolved."""

    name: str
    source: str
    views: int
    image_size: int
    seed: int
    chunk_size: int
    statistics_images: int
    render: RenderSettings
    latents: LatentSpace
    split: SplitSettings
    classes: tuple[str, ...] | None = None
    objects_per_class: int = 0
    shapenet_root: str | None = None
    object_list: tuple[str, ...] = ()
    root: str | None = None

    @property
    def output_dir(self) -> Path:
        """Where the workflow writes this variant (relative to the working directory)."""
        return Path("results") / "datasets" / self.name


def parse_number(value: float | int | str, key: str = "value") -> float:
    """Return a float from a number or a multiple of pi written as text ("pi/2", "-2*pi", "0.5pi")."""
    if isinstance(value, bool):
        raise ConfigError(f"config key '{key}': expected a number, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    match = _PI_NUMBER.match(str(value).replace(" ", ""))
    if match is None:
        raise ConfigError(f"config key '{key}': {value!r} is neither a number nor a multiple of pi")
    sign, factor, divisor = match.groups()
    number = float(factor or 1.0) * math.pi / float(divisor or 1.0)
    return -number if sign else number


def load_schema() -> dict[str, Any]:
    """Read the configuration schema shipped with the workflow."""
    if not SCHEMA_PATH.is_file():
        raise ConfigError(
            f"{SCHEMA_PATH}: configuration schema not found (is this a checkout of the workflow?)"
        )
    return yaml.safe_load(SCHEMA_PATH.read_text())


def load_config_files(paths: Iterable[str | Path]) -> dict[str, Any]:
    """Read and merge YAML configuration files (later files override earlier ones, per nested key)."""
    merged: dict[str, Any] = {}
    for path in paths:
        file_path = Path(path)
        if not file_path.is_file():
            raise ConfigError(f"{file_path}: configuration file not found")
        try:
            content = yaml.safe_load(file_path.read_text()) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"{file_path}: not valid YAML ({error})") from None
        if not isinstance(content, dict):
            raise ConfigError(f"{file_path}: the top level must be a mapping of keys")
        merged = merge_mappings(merged, content)
    return merged


def merge_mappings(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursively merge ``override`` into a copy of ``base`` (mappings merge, other values replace)."""
    result = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merge_mappings(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def resolve_config(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``raw`` against the schema and return it with defaults filled and numbers parsed."""
    schema = load_schema()
    config = copy.deepcopy(dict(raw))
    _validate(config, schema)
    _fill_defaults(config, schema, schema)
    for name, variant in config["datasets"].items():
        _check_source_keys(name, variant)
        variant["latents"] = {
            factor: _parse_factor(variant["latents"][factor], f"datasets.{name}.latents.{factor}")
            for factor in FACTORS
        }
        try:
            LatentSpace.from_ranges(variant["latents"])
        except ValueError as error:
            raise ConfigError(f"config key 'datasets.{name}.latents': {error}") from None
        if isinstance(variant.get("object_list"), str):
            variant["object_list"] = [variant["object_list"]]
        _expand_paths(name, variant)
    if "pretrain" in config:
        _check_pretrain(config)
    return config


def dataset_variant(name: str, variant: Mapping[str, Any]) -> DatasetVariant:
    """Build the typed view of one resolved dataset variant (as returned by :func:`resolve_config`)."""
    latents = LatentSpace.from_ranges(
        {factor: tuple(bounds) for factor, bounds in variant["latents"].items()}
    )
    classes = variant.get("classes")
    return DatasetVariant(
        name=name,
        source=variant["source"],
        views=variant["views"],
        image_size=variant["image_size"],
        seed=variant["seed"],
        chunk_size=variant["chunk_size"],
        statistics_images=variant["statistics_images"],
        render=RenderSettings(**variant["render"]),
        latents=latents,
        split=SplitSettings(**variant["split"]),
        classes=tuple(classes) if classes is not None else None,
        objects_per_class=variant.get("objects_per_class", 0),
        shapenet_root=variant.get("shapenet_root"),
        object_list=tuple(variant.get("object_list") or ()),
        root=variant.get("root"),
    )


def _validate(config: dict[str, Any], schema: dict[str, Any]) -> None:
    """Raise ConfigError for the first schema violations, each naming its key."""
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda error: list(error.absolute_path))
    if errors:
        raise ConfigError("invalid configuration:\n" + "\n".join(_describe(error) for error in errors[:10]))


def _describe(error: jsonschema.ValidationError) -> str:
    """One line naming the key of a schema violation, with the most specific reason."""
    key = ".".join(str(part) for part in error.absolute_path) or "<top level>"
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        names = ", ".join(map(repr, unknown))
        return f"  config key '{key}': unknown key(s) {names} (allowed: {', '.join(allowed)})"
    if error.validator == "anyOf" and error.context:
        reasons = "; ".join(sorted({sub.message for sub in error.context}))
        return f"  config key '{key}': {error.instance!r} is not valid ({reasons})"
    return f"  config key '{key}': {error.message}"


def _fill_defaults(instance: Any, schema: dict[str, Any], root: dict[str, Any]) -> None:
    """Insert the schema's ``default`` values into ``instance`` in place (objects only)."""
    schema = _dereference(schema, root)
    if not isinstance(instance, dict):
        return
    for key, property_schema in schema.get("properties", {}).items():
        property_schema = _dereference(property_schema, root)
        if key not in instance and "default" in property_schema:
            instance[key] = copy.deepcopy(property_schema["default"])
        if key in instance:
            _fill_defaults(instance[key], property_schema, root)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key, value in instance.items():
            if key not in schema.get("properties", {}):
                _fill_defaults(value, extra, root)


def _dereference(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """Resolve a local ``$ref`` ("#/$defs/name"), keeping sibling keys such as ``default``."""
    if "$ref" not in schema:
        return schema
    target: Any = root
    for part in schema["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    merged = {**_dereference(target, root), **{k: v for k, v in schema.items() if k != "$ref"}}
    return merged


def _check_source_keys(name: str, variant: dict[str, Any]) -> None:
    """Reject keys that belong to another object source and require the source's own keys."""
    source = variant["source"]
    for other, keys in SOURCE_KEYS.items():
        for key in keys:
            if other != source and key in variant and key not in SOURCE_KEYS[source]:
                raise ConfigError(
                    f"config key 'datasets.{name}.{key}': only applies to source '{other}', "
                    f"but this variant's source is '{source}'"
                )
    for key in REQUIRED_SOURCE_KEYS[source]:
        if key not in variant:
            raise ConfigError(f"config key 'datasets.{name}.{key}': required for source '{source}'")


def _check_pretrain(config: dict[str, Any]) -> None:
    """Dataset variants and methods of the pretrain section exist; colour methods need varying hues."""
    from sie.models.methods import METHODS

    pretrain = config["pretrain"]
    pretrain.setdefault("datasets", list(config["datasets"]))
    for name in pretrain["datasets"]:
        if name not in config["datasets"]:
            raise ConfigError(
                f"config key 'pretrain.datasets': no dataset variant {name!r} "
                f"(known: {', '.join(config['datasets'])})"
            )
    for key, methods in (
        ("methods", pretrain["methods"]),
        ("methods_settings", list(pretrain["methods_settings"])),
    ):
        unknown = [method for method in methods if method not in METHODS]
        if unknown:
            raise ConfigError(
                f"config key 'pretrain.{key}': unknown method(s) {', '.join(unknown)} "
                f"(known: {', '.join(METHODS)})"
            )
    colour_methods = [method for method in pretrain["methods"] if METHODS[method].latent == "rotcolor"]
    for name in pretrain["datasets"]:
        variant = config["datasets"][name]
        if variant["source"] == "prerendered" or not colour_methods:
            continue
        frozen = [
            factor
            for factor in ("floor_hue", "spot_hue")
            if variant["latents"][factor][0] == variant["latents"][factor][1]
        ]
        if frozen:
            raise ConfigError(
                f"config key 'pretrain.methods': {', '.join(colour_methods)} condition on colour changes, "
                f"but dataset variant '{name}' freezes {', '.join(frozen)}; drop them or use another variant"
            )


def _expand_paths(name: str, variant: dict[str, Any]) -> None:
    """Expand ``~`` and ``$VARIABLES`` in path keys; an unset variable is an error naming the key."""

    def expand(value: str, key: str) -> str:
        expanded = os.path.expanduser(os.path.expandvars(value))
        unset = re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", expanded)
        if unset:
            raise ConfigError(
                f"config key '{key}': environment variable {unset[0]} is not set (in {value!r})"
            )
        return expanded

    for key in ("shapenet_root", "root"):
        if key in variant:
            variant[key] = expand(variant[key], f"datasets.{name}.{key}")
    if "object_list" in variant:
        variant["object_list"] = [
            expand(path, f"datasets.{name}.object_list") for path in variant["object_list"]
        ]
    for key in ("train_images", "val_images"):
        if key in variant["split"]:
            variant["split"][key] = expand(variant["split"][key], f"datasets.{name}.split.{key}")


def _parse_factor(value: Any, key: str) -> list[float]:
    """Return [low, high] for a range or a frozen value (low == high), checking low <= high."""
    if isinstance(value, list):
        low, high = parse_number(value[0], key), parse_number(value[1], key)
        if low > high:
            raise ConfigError(f"config key '{key}': the range [{low}, {high}] has low > high")
        return [low, high]
    frozen = parse_number(value, key)
    return [frozen, frozen]

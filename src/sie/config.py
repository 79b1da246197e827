"""The science configuration: validation against the JSON schema, defaults, typed views.

One source of defaults: the schema ``sie/schemas/config.schema.yaml`` (package data, linked from
``workflow/schemas/``). ``resolve_config`` validates a raw configuration (as Snakemake or
``yaml.safe_load`` gives it), fills every default, turns "pi/2"-style numbers into floats, and returns a
plain JSON-serialisable dict. Errors name the offending key.
Typed, frozen views of a dataset variant are built with :func:`dataset_variant`.
"""

from __future__ import annotations

import copy
import importlib.resources
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from sie.data.latents import COLOUR_LATENTS, FACTORS, HUE_FACTORS, LatentSpace
from sie.errors import ConfigError
from sie.models.registry import METHODS
from sie.paths import DATASET_DIR, fill

SCHEMA_RESOURCE = "schemas/config.schema.yaml"
"""The configuration schema: package data of ``sie`` (``workflow/schemas/config.schema.yaml`` links to it)."""
VARIANT_NAME = "[A-Za-z0-9][A-Za-z0-9_-]*"
"""A dataset variant's name (the schema's ``datasets`` key pattern, the ``{variant}`` wildcard)."""
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
    train_labels: str | None = None
    val_labels: str | None = None
    only_present: bool = False


@dataclass(frozen=True)
class DatasetVariant:
    """A named dataset variant, fully resolved."""

    name: str
    source: str
    views: int
    image_size: int | tuple[int, int]
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
        return Path(fill(DATASET_DIR, variant=self.name))


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
    """Read the configuration schema shipped with the package (also from a non-editable install)."""
    resource = importlib.resources.files("sie").joinpath(SCHEMA_RESOURCE)
    if not resource.is_file():
        raise ConfigError(
            f"{resource}: configuration schema not found (the sie package was installed without its "
            "data files; reinstall it with pip)"
        )
    return yaml.safe_load(resource.read_text(encoding="utf-8"))


def load_config_files(paths: Iterable[str | Path]) -> dict[str, Any]:
    """Read and merge YAML configuration files (later files override earlier ones, per nested key)."""
    merged: dict[str, Any] = {}
    for path in paths:
        merged = merge_mappings(merged, load_config_file(path))
    return merged


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read one YAML configuration file: a mapping of keys, with errors naming the file and the line.

    An empty file (or one holding only comments) is an error, not silently the defaults: Snakemake
    refuses it too, and a file that sets nothing is almost always the wrong file.
    """
    file_path = Path(path)
    if not file_path.is_file():
        raise ConfigError(f"{file_path}: configuration file not found")
    try:
        text = file_path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{file_path}: byte {error.start}: not UTF-8 text ({error.reason}); save the file as UTF-8"
        ) from None
    try:
        content = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(describe_yaml_error(file_path, error)) from None
    if content is None:
        raise ConfigError(
            f"{file_path}: empty configuration file (no keys, only blanks or comments). Write the keys "
            "it should set (the repository's config.yaml shows every section and "
            "workflow/schemas/config.schema.yaml documents each key), or leave this file out."
        )
    if not isinstance(content, dict):
        raise ConfigError(
            f"{file_path}: the top level must be a mapping of keys (datasets:, pretrain:, evaluate:), "
            f"found a {type(content).__name__}"
        )
    return content


def describe_yaml_error(path: Path, error: yaml.YAMLError) -> str:
    """``<file>: line L, column C: <cause>`` (1-based, where PyYAML noticed the problem) and the fix."""
    if not isinstance(error, yaml.MarkedYAMLError) or error.problem_mark is None:
        return f"{path}: not valid YAML ({error}). Fix the YAML syntax of the file."
    mark = error.problem_mark
    cause = error.problem or "not valid YAML"
    if error.context and error.context_mark is not None:
        context = error.context_mark
        cause += f" ({error.context} started at line {context.line + 1}, column {context.column + 1})"
    lines = _buffer_lines(mark.buffer)
    shown = f"\n    {lines[mark.line]}" if mark.line < len(lines) and lines[mark.line].strip() else ""
    return (
        f"{path}: line {mark.line + 1}, column {mark.column + 1}: not valid YAML: {cause}.{shown}\n"
        "Fix the YAML there (or just above): indent with spaces, never tabs; align the keys of one "
        "mapping; close every bracket and quote; quote a value that contains ': ' or ' #'."
    )


def _buffer_lines(buffer: str | None) -> list[str]:
    """Lines of PyYAML's parse buffer (which ends with a NUL character), without line ends."""
    return (buffer or "").rstrip("\0").splitlines()


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
        _check_split_keys(name, variant)
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
        image_size=tuple(size) if isinstance(size := variant["image_size"], list) else size,
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


def pretrain_spec(config: Mapping[str, Any], variant: str, method: str, seed: int) -> dict[str, Any]:
    """The run spec of one pretraining job: global model/training keys, then the method's overrides."""
    pretrain = config["pretrain"]
    overrides = pretrain["methods_settings"].get(method, {})
    return {
        "variant": variant,
        "method": method,
        "seed": int(seed),
        "model": {**pretrain["model"], **overrides.get("model", {})},
        "training": {**pretrain["training"], **overrides.get("training", {})},
    }


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


def _check_split_keys(name: str, variant: dict[str, Any]) -> None:
    """Labels files come with split files; ``only_present`` and a [width, height] image size belong to
    a prerendered folder (a rendered variant is rendered square and has every object it lists)."""
    split, key = variant["split"], f"datasets.{name}"
    for kind in ("train", "val"):
        if f"{kind}_labels" in split and f"{kind}_images" not in split:
            raise ConfigError(
                f"config key '{key}.split.{kind}_labels': labels files come with the split files they "
                f"number; give '{key}.split.{kind}_images' too"
            )
    if split.get("only_present") and not (variant["source"] == "prerendered" and "train_images" in split):
        raise ConfigError(
            f"config key '{key}.split.only_present': only applies to a prerendered variant with split "
            "files (train_images, val_images), whose objects may be partly downloaded"
        )
    if isinstance(variant["image_size"], list) and variant["source"] != "prerendered":
        raise ConfigError(
            f"config key '{key}.image_size': [width, height] only describes a prerendered folder; "
            f"source '{variant['source']}' renders square images of one size"
        )


def _check_pretrain(config: dict[str, Any]) -> None:
    """Dataset variants and methods of the pretrain section exist; colour methods need varying hues."""
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
    _check_batch_sizes(config)
    colour_methods = [method for method in pretrain["methods"] if METHODS[method].latent in COLOUR_LATENTS]
    for name in pretrain["datasets"]:
        variant = config["datasets"][name]
        if variant["source"] == "prerendered" or not colour_methods:
            continue
        frozen = [
            factor for factor in HUE_FACTORS if variant["latents"][factor][0] == variant["latents"][factor][1]
        ]
        if frozen:
            raise ConfigError(
                f"config key 'pretrain.methods': {', '.join(colour_methods)} condition on colour changes, "
                f"but dataset variant '{name}' freezes {', '.join(frozen)}; drop them or use another variant"
            )


def _check_batch_sizes(config: dict[str, Any]) -> None:
    """Every pretraining run's global batch fits its variant's training split (else no epoch has a step).

    The split's size is known before rendering for procedural and ShapeNet variants and for split
    files; a prerendered folder without split files is only counted by ``sie pretrain``, at its start.
    """
    from sie.data.split import check_batch_fits, train_object_count
    from sie.training.config import TrainConfig

    pretrain = config["pretrain"]
    default = TrainConfig().batch_size
    for name in pretrain["datasets"]:
        train_objects = train_object_count(dataset_variant(name, config["datasets"][name]))
        if train_objects is None:
            continue
        fix = (
            f"raise datasets.{name}.objects_per_class"
            if config["datasets"][name]["source"] == "procedural"
            else "give the variant more objects"
        )
        for method in pretrain["methods"]:
            training = pretrain_spec(config, name, method, 0)["training"]
            overridden = "batch_size" in pretrain["methods_settings"].get(method, {}).get("training", {})
            key = (
                f"pretrain.methods_settings.{method}.training.batch_size"
                if overridden
                else "pretrain.training.batch_size"
            )
            batch_size = training.get("batch_size", default)
            check_batch_fits(batch_size, train_objects, key, name, fix, unset="batch_size" not in training)


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
    for key in ("train_images", "val_images", "train_labels", "val_labels"):
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

"""Render shards of a dataset variant: output paths, completion markers, the settings guard.

A variant's outputs live in ``results/datasets/<variant>/``:
``data/`` (the dataset root in the release layout), ``models/`` (procedural OBJ models, in the
ShapeNetCore layout), ``shards/<k>.json`` (one completion marker per render shard, the workflow's
declared outputs) and ``render_settings.json`` (what every stored view was rendered with).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from sie.config import DatasetVariant, RenderSettings
from sie.io import read_json, write_json
from sie.paths import (
    DATA_FOLDER,
    MODELS_FOLDER,
    RENDER_SETTINGS_FILE,
    SHARD_MARKER_FILE,
    SHARDS_FOLDER,
    fill,
    shard_name,
)

SCENE_VERSION = "3diebench-scene-1"
"""Bump when the scene (camera, lights, floor, materials) changes in a way that changes pixels."""


def data_root(output_dir: Path) -> Path:
    """The dataset root (release layout) of a rendered variant."""
    return output_dir / DATA_FOLDER


def models_root(output_dir: Path) -> Path:
    """Where procedural models are written, in the ShapeNetCore v2 layout."""
    return output_dir / MODELS_FOLDER


def shard_marker(output_dir: Path, shard: int) -> Path:
    """Completion marker of one shard (written last, atomically)."""
    return output_dir / SHARDS_FOLDER / fill(SHARD_MARKER_FILE, shard=shard_name(shard))


def shard_markers(output_dir: Path) -> list[Path]:
    """The completion markers present in a variant folder, sorted by shard."""
    return sorted((Path(output_dir) / SHARDS_FOLDER).glob(fill(SHARD_MARKER_FILE, shard="*")))


def render_fingerprint(variant: DatasetVariant) -> dict[str, Any]:
    """Everything that changes a stored view's pixels or latent (not: views, objects, chunking, split)."""
    render = variant.render
    return {
        "scene": SCENE_VERSION,
        "source": variant.source,
        "seed": variant.seed,
        "image_size": variant.image_size,
        "samples": render.samples,
        "noise_threshold": render.noise_threshold,
        "denoise": render.denoise,
        "max_bounces": render.max_bounces,
        "view_transform": render.view_transform,
        "jpeg_quality": render.jpeg_quality,
        "latents": variant.latents.as_dict(),
    }


RENDER_KEYS = frozenset(field.name for field in fields(RenderSettings))
"""Fingerprint entries that come from a variant's ``render`` section."""


def render_settings_path(output_dir: Path) -> Path:
    """The record of the settings a variant's stored views were rendered with."""
    return output_dir / RENDER_SETTINGS_FILE


def fingerprint_config_key(variant_name: str, key: str) -> str:
    """Where a fingerprint entry comes from ("samples" -> "datasets.<variant>.render.samples")."""
    if key == "scene":
        return "the renderer's scene version, not a config key"
    if key in RENDER_KEYS:
        return f"datasets.{variant_name}.render.{key}"
    return f"datasets.{variant_name}.{key}"


def render_settings_differences(
    stored: Mapping[str, Any], wanted: Mapping[str, Any], variant_name: str
) -> list[str]:
    """One line per fingerprint entry that differs ("samples: stored 4, now 8 (<config key>)"), in key
    order.

    Pure: compares two fingerprints as JSON gives them back (tuples become lists on the way).
    """
    wanted = json.loads(json.dumps(dict(wanted)))
    return [
        f"{key}: stored {stored.get(key)!r}, now {wanted[key]!r} "
        f"({fingerprint_config_key(variant_name, key)})"
        for key in sorted(wanted)
        if stored.get(key) != wanted[key]
    ]


def render_settings_refusal(path: Path, variant_name: str, output_dir: Path, differences: list[str]) -> str:
    """The message refusing to mix views rendered with other settings: the file, what differs, the fix."""
    return (
        f"{path}: dataset '{variant_name}' was rendered with other settings ("
        + "; ".join(differences)
        + f"). Restore the stored settings, delete {output_dir} to re-render it with the new ones, "
        "or give the new settings another variant name."
    )


def check_stored_render_settings(output_dir: Path, variant: DatasetVariant) -> None:
    """Raise ValueError when views in ``output_dir`` were rendered with other settings (reads only).

    The workflow calls this when the Snakefile is parsed, so a refused change stops everything before
    Snakemake deletes a single output; ``sie render`` calls it (through :func:`check_render_settings`)
    before it renders.
    """
    path = render_settings_path(output_dir)
    if not path.exists():
        return
    differences = render_settings_differences(read_json(path), render_fingerprint(variant), variant.name)
    if differences:
        raise ValueError(render_settings_refusal(path, variant.name, output_dir, differences))


def check_render_settings(output_dir: Path, variant: DatasetVariant) -> None:
    """Record the variant's render settings, or refuse to mix views rendered with other settings.

    Views are resumed one by one, so a changed setting would silently mix old and new images.
    """
    path = render_settings_path(output_dir)
    if not path.exists():
        write_json(path, render_fingerprint(variant))
        return
    check_stored_render_settings(output_dir, variant)

"""Render shards of a dataset variant: output paths, completion markers, the settings guard.

A variant's outputs live in ``results/datasets/<variant>/``:
``data/`` (the dataset root in the release layout), ``models/`` (procedural OBJ models, in the
ShapeNetCore layout), ``shards/<k>.json`` (one completion marker per render shard, the workflow's
declared outputs) and ``render_settings.json`` (what every stored view was rendered with).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sie.config import DatasetVariant
from sie.io import read_json, write_json

SCENE_VERSION = "3diebench-scene-1"
"""Bump when the scene (camera, lights, floor, materials) changes in a way that changes pixels."""


def data_root(output_dir: Path) -> Path:
    """The dataset root (release layout) of a rendered variant."""
    return output_dir / "data"


def models_root(output_dir: Path) -> Path:
    """Where procedural models are written, in the ShapeNetCore v2 layout."""
    return output_dir / "models"


def shard_marker(output_dir: Path, shard: int) -> Path:
    """Completion marker of one shard (written last, atomically)."""
    return output_dir / "shards" / f"{shard:04d}.json"


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


def check_render_settings(output_dir: Path, variant: DatasetVariant) -> None:
    """Record the variant's render settings, or refuse to mix views rendered with other settings.

    Views are resumed one by one, so a changed setting would silently mix old and new images.
    """
    path = output_dir / "render_settings.json"
    wanted = render_fingerprint(variant)
    if not path.exists():
        write_json(path, wanted)
        return
    stored = read_json(path)
    differences = [
        f"{key}: stored {stored.get(key)!r}, now {wanted[key]!r}"
        for key in sorted(wanted)
        if stored.get(key) != wanted[key]
    ]
    if differences:
        raise ValueError(
            f"{path}: dataset '{variant.name}' was rendered with other settings ("
            + "; ".join(differences)
            + f"). Delete {output_dir} to re-render it, or give the new settings another variant name."
        )

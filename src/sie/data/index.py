"""The index stage: validate a dataset, split it, and write the release-format files and the card.

Outputs (in the variant folder): ``{train,val}_images.npy``, ``{train,val}_labels.npy``,
``all_latents_{train,val}.npy``, ``all_objects.npy``, ``statistics.json`` (per-channel mean/std),
``samples.png`` (a grid of views per class) and ``card.json`` (written last). Everything is validated
before anything is written, so a bad dataset leaves no index behind.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sie.config import DatasetVariant
from sie.data.layout import (
    SPLITS,
    Split,
    check_jpeg,
    class_labels,
    image_path,
    latent_path,
    load_latent,
    read_split_images,
    write_split,
)
from sie.data.objects import ObjectRef, class_names, variant_objects
from sie.data.preview import channel_statistics, sample_grid
from sie.data.shards import data_root, render_fingerprint, shard_marker
from sie.data.split import split_objects
from sie.io import atomic_path, read_json, write_json, write_npy
from sie.progress import Progress
from sie.provenance import software_versions

MAX_REPORTED_PROBLEMS = 10


def dataset_root(variant: DatasetVariant, output_dir: Path) -> Path:
    """Where the variant's views are: the rendered ``data/`` folder, or the prerendered root."""
    if variant.source == "prerendered":
        root = Path(variant.root).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(
                f"{root}: prerendered dataset root not found (datasets.{variant.name}.root)"
            )
        return root
    return data_root(output_dir)


def build_index(variant: DatasetVariant, output_dir: Path) -> dict:
    """Run the whole index stage for one variant; returns the dataset card."""
    root = dataset_root(variant, output_dir)
    objects = variant_objects(variant)
    latents = validate_views(root, objects, variant.views)
    train, val = choose_split(variant, objects)
    labels = class_labels(objects)
    splits = {
        "train": Split(tuple(train), np.array([labels[item.synset] for item in train], dtype=np.int64)),
        "val": Split(tuple(val), np.array([labels[item.synset] for item in val], dtype=np.int64)),
    }
    statistics = channel_statistics(root, train, variant.views, variant.statistics_images, variant.split.seed)
    names = class_names(labels, variant.source)
    for name, split in splits.items():
        write_split(output_dir, name, split)
        write_npy(
            output_dir / f"all_latents_{name}.npy", np.concatenate([latents[item] for item in split.objects])
        )
    write_npy(
        output_dir / "all_objects.npy",
        np.array([[item.synset, item.object_id] for item in objects], dtype=str),
    )
    write_json(output_dir / "statistics.json", statistics)
    write_samples(root, objects, names, variant.views, output_dir / "samples.png")
    card = dataset_card(variant, output_dir, root, splits, labels, names, statistics)
    write_json(output_dir / "card.json", card)
    return card


def validate_views(root: Path, objects: Sequence[ObjectRef], views: int) -> dict[ObjectRef, np.ndarray]:
    """Check every view's image and latent; return each object's (views, 7) latents.

    Raises one ValueError listing the first problems (each naming its file) and how many there are.
    """
    problems: list[str] = []
    latents: dict[ObjectRef, np.ndarray] = {}
    progress = Progress(f"index {root}", len(objects), unit="objects", interval=10.0)
    for item in objects:
        rows = []
        for view in range(views):
            try:
                check_jpeg(image_path(root, item, view))
                rows.append(load_latent(latent_path(root, item, view)))
            except (FileNotFoundError, ValueError) as error:
                problems.append(str(error))
        if len(rows) == views:
            latents[item] = np.stack(rows)
        progress.advance()
    if problems:
        shown = "\n  ".join(problems[:MAX_REPORTED_PROBLEMS])
        more = (
            f"\n  ... and {len(problems) - MAX_REPORTED_PROBLEMS} more"
            if len(problems) > MAX_REPORTED_PROBLEMS
            else ""
        )
        raise ValueError(
            f"dataset {root} is incomplete or corrupt ({len(problems)} problem(s)):\n  {shown}{more}"
        )
    return latents


def choose_split(
    variant: DatasetVariant, objects: Sequence[ObjectRef]
) -> tuple[list[ObjectRef], list[ObjectRef]]:
    """The release's split files when the variant names them, else a seeded per-class split."""
    settings = variant.split
    if bool(settings.train_images) != bool(settings.val_images):
        raise ValueError(f"datasets.{variant.name}.split: give both train_images and val_images, or neither")
    if not settings.train_images:
        return split_objects(objects, settings.val_fraction, settings.seed)
    train = read_split_images(Path(settings.train_images).expanduser())
    val = read_split_images(Path(settings.val_images).expanduser())
    overlap = set(train) & set(val)
    if overlap:
        raise ValueError(
            f"{settings.val_images}: {len(overlap)} object(s) also in {settings.train_images}, "
            f"e.g. {sorted(overlap)[0].key}"
        )
    listed = set(train) | set(val)
    missing = [item.key for item in objects if item not in listed]
    if missing or len(listed) != len(objects):
        raise ValueError(
            f"{settings.train_images}, {settings.val_images}: the split files do not list exactly "
            f"the dataset's objects ({len(missing)} object(s) unlisted, e.g. {missing[:3]})"
        )
    return train, val


def write_samples(
    root: Path, objects: Sequence[ObjectRef], names: dict[str, str], views: int, path: Path
) -> None:
    """Save the grid of sample views, one row per class."""
    by_class: dict[str, list[ObjectRef]] = defaultdict(list)
    for item in objects:
        by_class[item.synset].append(item)
    grid = sample_grid(root, dict(sorted(by_class.items())), names, views)
    with atomic_path(path, suffix=".png") as temporary:
        grid.save(temporary, format="PNG")


def dataset_card(
    variant: DatasetVariant,
    output_dir: Path,
    root: Path,
    splits: dict[str, Split],
    labels: dict[str, int],
    names: dict[str, str],
    statistics: dict,
) -> dict:
    """The dataset card: counts per class, render settings and timing, versions."""
    counts_by_class = {
        synset: {name: int(np.sum(split.labels == label)) for name, split in splits.items()}
        for synset, label in labels.items()
    }
    card = {
        "variant": variant.name,
        "source": variant.source,
        "root": str(root),
        "counts": {
            "classes": len(labels),
            "objects": sum(len(split.objects) for split in splits.values()),
            **{f"{name}_objects": len(split.objects) for name, split in splits.items()},
            "views_per_object": variant.views,
            "images": sum(len(split.objects) for split in splits.values()) * variant.views,
        },
        "classes": [
            {"label": label, "synset": synset, "name": names[synset], **counts_by_class[synset]}
            for synset, label in sorted(labels.items(), key=lambda pair: pair[1])
        ],
        "statistics": statistics,
        "render": render_summary(variant, output_dir),
        "versions": software_versions(),
        "files": sorted(
            [f"{name}_{kind}.npy" for name in SPLITS for kind in ("images", "labels")]
            + [f"all_latents_{name}.npy" for name in SPLITS]
            + ["all_objects.npy", "statistics.json", "samples.png"]
        ),
    }
    return card


def render_summary(variant: DatasetVariant, output_dir: Path) -> dict:
    """Render settings and measured timing, from the shard markers (empty for prerendered data)."""
    if variant.source == "prerendered":
        return {"settings": None, "note": "prerendered: validated, not rendered"}
    markers = sorted(shard_marker(output_dir, 0).parent.glob("*.json"))
    reports = [read_json(path) for path in markers]
    rendered = sum(report["rendered_views"] for report in reports)
    seconds = sum(report["render_seconds"] for report in reports)
    return {
        "settings": render_fingerprint(variant),
        "shards": len(reports),
        "rendered_views": rendered,
        "seconds_per_image": round(seconds / rendered, 4) if rendered else None,
        "devices": sorted({report["device"] for report in reports}),
        "blender": sorted({report["blender"] for report in reports}),
    }

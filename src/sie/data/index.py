"""The index stage: validate a dataset, split it, and write the release-format files and the card.

Outputs (in the variant folder): ``{train,val}_images.npy``, ``{train,val}_labels.npy``,
``all_latents_{train,val}.npy``, ``all_objects.npy``, ``statistics.json`` (per-channel mean/std),
``samples.png`` (a grid of views per class), ``checksums.npy`` (size and SHA-256 of every image and
latent file, format in ``sie.data.integrity``) and ``card.json`` (written last). Every view is checked
strictly first (its latent parsed, its JPEG's structure checked and decoded with libjpeg warnings as
errors, all images of one size: ``sie.data.jpeg``), so a bad dataset leaves no index behind and the
error names every damaged file and how to repair it.

Two checks come first (docs/dataset.md#release-format): objects missing from the folder are summarised
by object (a partial download of the release is indexed with ``split.only_present``), and a prerendered
variant's first image must have the declared ``image_size``. The release's labels are kept when its
labels files are given (docs/dataset.md#labels). File names come from ``sie.paths``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sie.config import DatasetVariant
from sie.data.integrity import new_checksums, record, repair_advice, write_checksums
from sie.data.jpeg import StrictDecoder
from sie.data.layout import (
    Split,
    check_distinct_labels,
    check_jpeg_data,
    class_labels,
    image_path,
    latent_path,
    parse_latent,
    read_split_images,
    read_split_labels,
    read_view_file,
    write_split,
)
from sie.data.objects import ObjectRef, class_names, variant_objects
from sie.data.preview import channel_statistics, sample_grid
from sie.data.shards import data_root, render_fingerprint, shard_markers
from sie.data.split import split_objects
from sie.io import atomic_path, read_json, write_json, write_npy
from sie.paths import CARD_FILE, INDEX_FILES, OBJECTS_FILE, SAMPLES_FILE, STATISTICS_FILE, latents_file
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
    listed = variant_objects(variant)
    advice = repair_advice(output_dir, variant.source, " --decode")
    objects = present_objects(variant, root, listed, advice)
    latents, checksums = validate_views(
        root, objects, variant.views, advice, declared_size(variant), f"datasets.{variant.name}.image_size"
    )
    train, val = choose_split(variant, objects)
    labels = variant_labels(variant, objects)
    splits = {
        "train": Split(tuple(train), np.array([labels[item.synset] for item in train], dtype=np.int64)),
        "val": Split(tuple(val), np.array([labels[item.synset] for item in val], dtype=np.int64)),
    }
    statistics = channel_statistics(root, train, variant.views, variant.statistics_images, variant.split.seed)
    names = class_names(labels, variant.source)
    for name, split in splits.items():
        write_split(output_dir, name, split)
        write_npy(output_dir / latents_file(name), np.concatenate([latents[item] for item in split.objects]))
    write_npy(
        output_dir / OBJECTS_FILE,
        np.array([[item.synset, item.object_id] for item in objects], dtype=str),
    )
    write_json(output_dir / STATISTICS_FILE, statistics)
    write_checksums(output_dir, checksums)
    write_samples(root, objects, names, variant.views, output_dir / SAMPLES_FILE)
    card = dataset_card(variant, output_dir, root, splits, labels, names, statistics)
    card["split"] = split_summary(variant, left_out=len(listed) - len(objects))
    write_json(output_dir / CARD_FILE, card)
    return card


def object_present(root: Path, item: ObjectRef) -> bool:
    """Whether an object's folder is in the dataset root and holds any file (one listing)."""
    folder = root / item.synset / item.object_id
    try:
        return any(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return False


def present_objects(
    variant: DatasetVariant, root: Path, objects: Sequence[ObjectRef], advice: str = ""
) -> list[ObjectRef]:
    """The objects whose folder is in ``root``. Absent objects are refused in one message counting
    them (not a line per view), or left out when ``split.only_present`` allows a partial release."""
    absent = [item for item in objects if not object_present(root, item)]
    if not absent:
        return list(objects)
    if variant.split.only_present:
        missing = set(absent)
        return [item for item in objects if item not in missing]
    raise ValueError(absent_objects_message(variant, root, len(objects), absent, advice))


def absent_objects_message(
    variant: DatasetVariant, root: Path, listed: int, absent: Sequence[ObjectRef], advice: str
) -> str:
    """Objects missing from the dataset folder, summarised: how many of how many, the first five, and
    how to go on (index what is present, for a partial download of the release; else the repair)."""
    examples = ", ".join(item.release_path for item in absent[:5])
    more = f" and {len(absent) - 5:,} more" if len(absent) > 5 else ""
    summary = (
        f"dataset {root}: {len(absent):,} of {listed:,} objects are missing (no <synset>/<object id>/ "
        f"folder with files): {examples}{more}."
    )
    settings = variant.split
    if variant.source != "prerendered" or not settings.train_images:
        return summary + (f"\nTo repair: {advice}" if advice else "")
    present = listed - len(absent)
    if not present:
        return f"{summary}\nNone of the split files' objects is there: check datasets.{variant.name}.root."
    return "\n".join(
        [
            summary,
            f"The split files {settings.train_images} and {settings.val_images} list them. If the "
            f"download is partial on purpose, index the {present:,} objects that are present: add to the "
            "configuration",
            "  datasets:",
            f"    {variant.name}:",
            "      split:",
            "        only_present: true",
            "(the index then writes split files of the present objects, and the card records how many were "
            f"left out). Otherwise complete the download into {root}.",
        ]
    )


def declared_size(variant: DatasetVariant) -> tuple[int, int] | None:
    """(width, height) a prerendered variant declares (``image_size``), which its images must have;
    None for rendered variants (the renderer writes that size, the render settings record it)."""
    if variant.source != "prerendered":
        return None
    size = variant.image_size
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def size_refusal(path: Path, size: tuple[int, int], declared: tuple[int, int], key: str) -> str:
    """The message refusing images of another size than the configuration declares, with the fix."""
    width, height = size
    value = f"{width}" if width == height else f"[{width}, {height}]"
    return (
        f"{path}: image of {width}x{height} px, but config key '{key}' declares "
        f"{declared[0]}x{declared[1]} px. Set '{key}: {value}' (the images' size), or point the "
        "variant's root at the images of the declared size."
    )


def variant_labels(variant: DatasetVariant, objects: Sequence[ObjectRef]) -> dict[str, int]:
    """Synset -> label: the release's labels when the variant names its labels files (a class subset
    keeps the release's numbers), else the synsets' positions in sorted order (docs/dataset.md#labels)."""
    settings = variant.split
    files = [
        (Path(images).expanduser(), Path(labels).expanduser())
        for images, labels in (
            (settings.train_images, settings.train_labels),
            (settings.val_images, settings.val_labels),
        )
        if labels
    ]
    if not files:
        return class_labels(objects)
    given: dict[str, int] = {}
    for images, labels in files:
        for synset, label in read_split_labels(images, labels).items():
            if given.setdefault(synset, label) != label:
                raise ValueError(
                    f"{labels}: synset {synset} has label {label}, the other labels file gives it "
                    f"{given[synset]}"
                )
    synsets = sorted({item.synset for item in objects})
    unlabelled = [synset for synset in synsets if synset not in given]
    origin = ", ".join(str(labels) for _, labels in files)
    if unlabelled:
        raise ValueError(
            f"{origin}: no label for synset(s) {', '.join(unlabelled[:5])} (give both train_labels and "
            "val_labels)"
        )
    labels = {synset: given[synset] for synset in synsets}
    check_distinct_labels(labels, origin)
    return labels


def split_summary(variant: DatasetVariant, left_out: int) -> dict:
    """How the card's split was made: from the release's split files or drawn, which labels, and how
    many listed objects a partial release left out."""
    settings = variant.split
    files = [settings.train_images, settings.val_images] if settings.train_images else None
    return {
        "files": files,
        "labels": "release" if settings.train_labels or settings.val_labels else "sorted synsets",
        "objects_left_out": left_out,
    }


def validate_views(
    root: Path,
    objects: Sequence[ObjectRef],
    views: int,
    advice: str = "",
    declared: tuple[int, int] | None = None,
    size_key: str = "image_size",
) -> tuple[dict[ObjectRef, np.ndarray], np.ndarray]:
    """Check every view's image and latent strictly; return each object's (views, 7) latents and the
    checksum table of every view's files (``sie.data.integrity``).

    Raises one ValueError listing the first problems (each naming its file), how many there are, and
    ``advice`` (how to repair them). With ``declared`` (width, height), the first sound image must have
    that size: otherwise the error is raised at once, naming the file, both sizes and ``size_key``.
    """
    problems: list[str] = []
    latents: dict[ObjectRef, np.ndarray] = {}
    checksums = new_checksums(len(objects), views)
    first_size: tuple[int, int] | None = None
    progress = Progress(f"index {root}", len(objects), unit="objects", interval=10.0)
    with StrictDecoder() as decoder:
        for object_index, item in enumerate(objects):
            rows = []
            for view in range(views):
                checked = check_view(root, item, view, decoder, problems)
                if checked is None:
                    continue
                latent, size, image, latent_data = checked
                if first_size is None and declared is not None and size != declared:
                    raise ValueError(size_refusal(image_path(root, item, view), size, declared, size_key))
                first_size = first_size or size
                if size != first_size:
                    problems.append(
                        f"{image_path(root, item, view)}: image of {size[0]}x{size[1]} px, the dataset's "
                        f"first image is {first_size[0]}x{first_size[1]} px"
                    )
                    continue
                record(checksums, object_index, view, image, latent_data)
                rows.append(latent)
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
            + (f"\nTo repair: {advice}" if advice else "")
        )
    return latents, checksums


def check_view(
    root: Path, item: ObjectRef, view: int, decoder: StrictDecoder, problems: list[str]
) -> tuple[np.ndarray, tuple[int, int], bytes, bytes] | None:
    """(latent, image (width, height), image bytes, latent bytes) of a sound view, else None after
    appending each of its problems to ``problems``."""
    checked = []
    for path, kind in ((image_path(root, item, view), "image"), (latent_path(root, item, view), "latent")):
        try:
            data = read_view_file(path, kind)
            value = check_jpeg_data(data, path, decoder) if kind == "image" else parse_latent(data, path)
        except (FileNotFoundError, ValueError) as error:
            problems.append(str(error))
            continue
        checked.append((value, data))
    if len(checked) < 2:
        return None
    (size, image), (latent, latent_data) = checked
    return latent, size, image, latent_data


def choose_split(
    variant: DatasetVariant, objects: Sequence[ObjectRef]
) -> tuple[list[ObjectRef], list[ObjectRef]]:
    """The release's split files when the variant names them (restricted to ``objects``, the present
    ones, under ``split.only_present``), else a seeded per-class split."""
    settings = variant.split
    if bool(settings.train_images) != bool(settings.val_images):
        raise ValueError(f"datasets.{variant.name}.split: give both train_images and val_images, or neither")
    if not settings.train_images:
        return split_objects(objects, settings.val_fraction, settings.seed)
    train = read_split_images(Path(settings.train_images).expanduser())
    val = read_split_images(Path(settings.val_images).expanduser())
    if settings.only_present:
        present = set(objects)
        train, val = [item for item in train if item in present], [item for item in val if item in present]
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
        "files": list(INDEX_FILES),
    }
    return card


def render_summary(variant: DatasetVariant, output_dir: Path) -> dict:
    """Render settings and measured timing, from the shard markers (empty for prerendered data)."""
    if variant.source == "prerendered":
        return {"settings": None, "note": "prerendered: validated, not rendered"}
    markers = shard_markers(output_dir)
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

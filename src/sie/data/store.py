"""The packed store: every view of a split in one file, so training reads no small files.

Layout, in a dataset folder ``results/datasets/<variant>/``::

    store/{split}.pixels.npy    decoded views, (rows, 3, H, W) uint8 (stores that fit the pixel budget)
    store/{split}.jpegs         or: the JPEG files of the split, concatenated, in all_latents row order
    store/{split}_offsets.npy   with: int64 (rows + 1,): row r is bytes [offsets[r], offsets[r + 1])
    store/manifest.json         written last: its presence marks the store complete

Row ``r = object_index * views + view`` (object-major, views in order), as in ``all_latents_{split}.npy``.
Every packed JPEG must have the size and SHA-256 that ``sie index`` recorded for it in ``checksums.npy``
after checking it strictly (``sie.data.integrity``): a file damaged since is refused, naming it.
The readers are in ``sie.data.readers``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from sie.data.integrity import content_problem, read_checksums, repair_advice
from sie.data.latents import LATENT_SIZE
from sie.data.layout import corrupt_jpeg, image_path, read_split_images, read_view_file
from sie.data.objects import ObjectRef, make_object
from sie.io import atomic_open, atomic_path, read_json, write_json, write_npy
from sie.paths import (
    CARD_FILE,
    MANIFEST_FILE,
    OBJECTS_FILE,
    SPLITS,
    STORE_FOLDER,
    STORE_JPEGS_FILE,
    STORE_OFFSETS_FILE,
    STORE_PIXELS_FILE,
    fill,
    images_file,
    latents_file,
)
from sie.progress import Progress

STORE_FORMAT = 1
IMAGE_FORMATS = ("auto", "pixels", "jpeg")
READERS = ("packed", "files")
"""How training reads a split: from this store (``packed``) or one file per view (``files``, the release
layout); ``sie.data.readers.open_reader`` opens either."""
DEFAULT_MAX_PIXEL_BYTES = 2 * 2**30
"""Largest store kept as decoded pixels by default (2 GiB: 330,000 views of 64 px, or 10,900 of 256 px)."""


def store_dir(dataset_dir: Path) -> Path:
    """The store folder of a dataset folder."""
    return Path(dataset_dir) / STORE_FOLDER


def store_file(name: str, split: str) -> str:
    """A store file's name for a split (``name``: one of the ``STORE_*_FILE`` names of ``sie.paths``)."""
    return fill(name, split=split)


def dataset_layout(dataset_dir: Path) -> tuple[Path, int]:
    """(dataset root holding the views, views per object) from the dataset card."""
    card = read_json(Path(dataset_dir) / CARD_FILE)
    return Path(card["root"]), int(card["counts"]["views_per_object"])


def read_view_bytes(path: Path) -> bytes:
    """The bytes of a view's JPEG; a missing file is an error naming it."""
    return read_view_file(path, "image")


def indexed_view_bytes(path: Path, entry: np.void, advice: str) -> bytes:
    """The bytes of a view's JPEG, refused (naming the file and the repair) unless they are the bytes
    ``sie index`` checked and recorded in ``entry`` (a row of the checksum table)."""
    try:
        data = read_view_bytes(path)
    except FileNotFoundError as error:
        raise FileNotFoundError(f"{error}; {advice}") from None
    problem = content_problem(entry, "image", data)
    if problem:
        raise ValueError(f"{corrupt_jpeg(path, f'changed since `sie index`: {problem}')}; {advice}")
    return data


def split_checksums(dataset_dir: Path, objects: list[ObjectRef], views: int) -> np.ndarray:
    """The checksum rows (objects, views) of a split's objects, from the index's table."""
    listed = np.load(Path(dataset_dir) / OBJECTS_FILE, allow_pickle=False)
    table = read_checksums(dataset_dir, len(listed), views)
    position = {
        make_object(synset, object_id, OBJECTS_FILE): row
        for row, (synset, object_id) in enumerate(listed.tolist())
    }
    missing = [item.key for item in objects if item not in position]
    if missing:
        raise ValueError(
            f"{Path(dataset_dir) / OBJECTS_FILE}: the split files list objects the index does not "
            f"({len(missing)}, e.g. {missing[0]}); re-index the dataset (`sie index`)"
        )
    return table[[position[item] for item in objects]].reshape(len(objects), views)


def write_store(
    dataset_dir: Path, images: str = "auto", max_pixel_bytes: int = DEFAULT_MAX_PIXEL_BYTES
) -> dict:
    """Pack both splits of an indexed dataset folder; returns the manifest (written last).

    ``images``: "pixels" stores decoded uint8 pixels (no decoding while training), "jpeg" the JPEG bytes
    (17 GB instead of 0.5 TB for the paper's dataset), "auto" pixels when they fit ``max_pixel_bytes``.
    A missing JPEG, or one whose bytes differ from those the index checked, raises an error naming the
    file and its repair; the manifest of any earlier store is removed first, so a failed run never
    leaves a store marked complete.
    """
    if images not in IMAGE_FORMATS:
        raise ValueError(f"unknown store image format {images!r}; known: {', '.join(IMAGE_FORMATS)}")
    dataset_dir = Path(dataset_dir)
    root, views = dataset_layout(dataset_dir)
    directory = store_dir(dataset_dir)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MANIFEST_FILE).unlink(missing_ok=True)
    objects = {split: read_split_images(dataset_dir / images_file(split)) for split in SPLITS}
    for split in SPLITS:
        check_latent_rows(dataset_dir / latents_file(split), len(objects[split]) * views)
    checksums = {split: split_checksums(dataset_dir, objects[split], views) for split in SPLITS}
    advice = repair_advice(dataset_dir, read_json(dataset_dir / CARD_FILE).get("source", ""), " --checksums")
    size = image_size(root, objects, views)
    rows = sum(len(members) for members in objects.values()) * views
    if images == "auto":
        images = "pixels" if size and rows * 3 * size[0] * size[1] <= max_pixel_bytes else "jpeg"
    pack = pack_split_pixels if images == "pixels" else pack_split
    splits = {
        split: pack(root, objects[split], views, directory, split, checksums[split], advice)
        for split in SPLITS
    }
    manifest = {
        "format": STORE_FORMAT,
        "images": images,
        "root": str(root),
        "views_per_object": views,
        "image_size": size,
        "splits": splits,
    }
    write_json(directory / MANIFEST_FILE, manifest)
    return manifest


def image_size(root: Path, objects: dict[str, list[ObjectRef]], views: int) -> list[int] | None:
    """[width, height] of the dataset's first view (every view must have it), None for no views."""
    for members in objects.values():
        if members and views:
            path = image_path(root, members[0], 0)
            try:
                with Image.open(path) as image:
                    return list(image.size)
            except FileNotFoundError:
                raise FileNotFoundError(f"{path}: image file missing") from None
    return None


def pack_split_pixels(
    root: Path,
    objects: list[ObjectRef],
    views: int,
    directory: Path,
    split: str,
    checksums: np.ndarray,
    advice: str,
) -> dict:
    """Decode the split's JPEGs into ``{split}.pixels.npy``, a (rows, 3, H, W) uint8 array.

    ``checksums``: the split's (objects, views) rows of the index's checksum table; ``advice``: the
    repair named by errors."""
    from sie.data.decode import decode_image

    rows = len(objects) * views
    width, height = image_size(root, {split: objects}, views) or (0, 0)
    progress = Progress(f"pack {split} (pixels)", rows, unit="views", interval=10.0)
    with atomic_path(directory / store_file(STORE_PIXELS_FILE, split), suffix=".npy") as temporary:
        pixels = np.lib.format.open_memmap(
            temporary, mode="w+", dtype=np.uint8, shape=(rows, 3, height, width)
        )
        for object_index, item in enumerate(objects):
            for view in range(views):
                path = image_path(root, item, view)
                decoded = decode_image(indexed_view_bytes(path, checksums[object_index, view], advice))
                if decoded.shape != (3, height, width):
                    raise ValueError(
                        f"{path}: image of {decoded.shape[2]}x{decoded.shape[1]} px, the dataset's "
                        f"first image is {width}x{height}"
                    )
                pixels[object_index * views + view] = decoded.numpy()
            progress.advance(views)
        pixels.flush()
        del pixels
    return {"objects": len(objects), "rows": rows, "bytes": rows * 3 * height * width}


def check_latent_rows(path: Path, rows: int) -> None:
    """The split's latents must have one row per view of the store."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: latents not found (run `sie index` first)")
    shape = np.load(path, mmap_mode="r").shape
    if shape != (rows, LATENT_SIZE):
        raise ValueError(f"{path}: expected ({rows}, {LATENT_SIZE}) latents (objects x views), found {shape}")


def pack_split(
    root: Path,
    objects: list[ObjectRef],
    views: int,
    directory: Path,
    split: str,
    checksums: np.ndarray,
    advice: str,
) -> dict:
    """Stream the split's JPEGs into ``{split}.jpegs`` and write ``{split}_offsets.npy`` (arguments as
    for ``pack_split_pixels``)."""
    rows = len(objects) * views
    offsets = np.zeros(rows + 1, dtype=np.int64)
    progress = Progress(f"pack {split}", rows, unit="views", interval=10.0)
    position = 0
    with atomic_open(directory / store_file(STORE_JPEGS_FILE, split), "wb") as stream:
        for object_index, item in enumerate(objects):
            for view in range(views):
                data = indexed_view_bytes(image_path(root, item, view), checksums[object_index, view], advice)
                stream.write(data)
                position += len(data)
                offsets[object_index * views + view + 1] = position
            progress.advance(views)
    write_npy(directory / store_file(STORE_OFFSETS_FILE, split), offsets)
    return {"objects": len(objects), "rows": rows, "bytes": int(position)}


def read_manifest(dataset_dir: Path) -> dict:
    """The store's manifest; a clear error telling to run ``sie pack`` when the store is not complete."""
    path = store_dir(dataset_dir) / MANIFEST_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no complete packed store in {dataset_dir} (run `sie pack` on this dataset first, "
            "or use the per-file reader)"
        )
    manifest = read_json(path)
    if manifest.get("format") != STORE_FORMAT:
        raise ValueError(f"{path}: store format {manifest.get('format')!r}, expected {STORE_FORMAT}")
    return manifest

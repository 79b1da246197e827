"""The packed store: every view of a split in one file, so training reads no small files.

Layout, in a dataset folder ``results/datasets/<variant>/``::

    store/{split}.pixels.npy    decoded views, (rows, 3, H, W) uint8 (stores that fit the pixel budget)
    store/{split}.jpegs         or: the JPEG files of the split, concatenated, in all_latents row order
    store/{split}_offsets.npy   with: int64 (rows + 1,): row r is bytes [offsets[r], offsets[r + 1])
    store/manifest.json         written last: its presence marks the store complete

Row ``r = object_index * views + view`` (object-major, views in order), as in ``all_latents_{split}.npy``.
The readers are in ``sie.data.readers``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from sie.data.layout import JPEG_END, JPEG_START, SPLITS, check_jpeg, image_path, read_split_images
from sie.data.objects import ObjectRef
from sie.io import atomic_open, atomic_path, read_json, write_json, write_npy
from sie.progress import Progress

STORE_FORMAT = 1
STORE_FOLDER = "store"
MANIFEST = "manifest.json"
IMAGE_FORMATS = ("auto", "pixels", "jpeg")
DEFAULT_MAX_PIXEL_BYTES = 2 * 2**30
"""Largest store kept as decoded pixels by default (2 GiB: 330,000 views of 64 px, or 10,900 of 256 px)."""


def store_dir(dataset_dir: Path) -> Path:
    """The store folder of a dataset folder."""
    return Path(dataset_dir) / STORE_FOLDER


def dataset_layout(dataset_dir: Path) -> tuple[Path, int]:
    """(dataset root holding the views, views per object) from the dataset card."""
    card = read_json(Path(dataset_dir) / "card.json")
    return Path(card["root"]), int(card["counts"]["views_per_object"])


def read_view_bytes(path: Path) -> bytes:
    """The bytes of a view's JPEG, checked like ``check_jpeg`` (present, start and end markers)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: image file missing") from None
    if len(data) < 4 or not data.startswith(JPEG_START) or not data.endswith(JPEG_END):
        check_jpeg(path)  # raises the error naming the file
        raise ValueError(f"{path}: corrupt JPEG (changed while being read)")
    return data


def write_store(
    dataset_dir: Path, images: str = "auto", max_pixel_bytes: int = DEFAULT_MAX_PIXEL_BYTES
) -> dict:
    """Pack both splits of an indexed dataset folder; returns the manifest (written last).

    ``images``: "pixels" stores decoded uint8 pixels (no decoding while training), "jpeg" the JPEG bytes
    (17 GB instead of 0.5 TB for the paper's dataset), "auto" pixels when they fit ``max_pixel_bytes``.
    A missing or truncated JPEG raises an error naming the file; the manifest of any earlier store is
    removed first, so a failed run never leaves a store marked complete.
    """
    if images not in IMAGE_FORMATS:
        raise ValueError(f"unknown store image format {images!r}; known: {', '.join(IMAGE_FORMATS)}")
    dataset_dir = Path(dataset_dir)
    root, views = dataset_layout(dataset_dir)
    directory = store_dir(dataset_dir)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MANIFEST).unlink(missing_ok=True)
    objects = {split: read_split_images(dataset_dir / f"{split}_images.npy") for split in SPLITS}
    for split in SPLITS:
        check_latent_rows(dataset_dir / f"all_latents_{split}.npy", len(objects[split]) * views)
    size = image_size(root, objects, views)
    rows = sum(len(members) for members in objects.values()) * views
    if images == "auto":
        images = "pixels" if size and rows * 3 * size[0] * size[1] <= max_pixel_bytes else "jpeg"
    pack = pack_split_pixels if images == "pixels" else pack_split
    splits = {split: pack(root, objects[split], views, directory, split) for split in SPLITS}
    manifest = {
        "format": STORE_FORMAT,
        "images": images,
        "root": str(root),
        "views_per_object": views,
        "image_size": size,
        "splits": splits,
    }
    write_json(directory / MANIFEST, manifest)
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


def pack_split_pixels(root: Path, objects: list[ObjectRef], views: int, directory: Path, split: str) -> dict:
    """Decode the split's JPEGs into ``{split}.pixels.npy``, a (rows, 3, H, W) uint8 array."""
    from sie.data.readers import decode_image

    rows = len(objects) * views
    width, height = image_size(root, {split: objects}, views) or (0, 0)
    progress = Progress(f"pack {split} (pixels)", rows, unit="views", interval=10.0)
    with atomic_path(directory / f"{split}.pixels.npy", suffix=".npy") as temporary:
        pixels = np.lib.format.open_memmap(
            temporary, mode="w+", dtype=np.uint8, shape=(rows, 3, height, width)
        )
        for object_index, item in enumerate(objects):
            for view in range(views):
                path = image_path(root, item, view)
                decoded = decode_image(read_view_bytes(path))
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
    if shape != (rows, 7):
        raise ValueError(f"{path}: expected ({rows}, 7) latents (objects x views), found {shape}")


def pack_split(root: Path, objects: list[ObjectRef], views: int, directory: Path, split: str) -> dict:
    """Stream the split's JPEGs into ``{split}.jpegs`` and write ``{split}_offsets.npy``."""
    rows = len(objects) * views
    offsets = np.zeros(rows + 1, dtype=np.int64)
    progress = Progress(f"pack {split}", rows, unit="views", interval=10.0)
    position = 0
    with atomic_open(directory / f"{split}.jpegs", "wb") as stream:
        for object_index, item in enumerate(objects):
            for view in range(views):
                data = read_view_bytes(image_path(root, item, view))
                stream.write(data)
                position += len(data)
                offsets[object_index * views + view + 1] = position
            progress.advance(views)
    write_npy(directory / f"{split}_offsets.npy", offsets)
    return {"objects": len(objects), "rows": rows, "bytes": int(position)}


def read_manifest(dataset_dir: Path) -> dict:
    """The store's manifest; a clear error telling to run ``sie pack`` when the store is not complete."""
    path = store_dir(dataset_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no complete packed store in {dataset_dir} (run `sie pack` on this dataset first, "
            "or use the per-file reader)"
        )
    manifest = read_json(path)
    if manifest.get("format") != STORE_FORMAT:
        raise ValueError(f"{path}: store format {manifest.get('format')!r}, expected {STORE_FORMAT}")
    return manifest

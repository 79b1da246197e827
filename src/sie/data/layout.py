"""The release's on-disk layout (3DIEBench) and its split files.

Dataset root: ``<synset>/<object id>/image_<v>.jpg`` and ``latent_<v>.npy`` (7 float64). Split files:
``{train,val}_images.npy`` (unicode "/synset/object/" strings), ``{train,val}_labels.npy`` (int64 index
of the synset in the sorted synset list), ``all_latents_{train,val}.npy`` (objects x views, 7) float64,
object-major, views in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sie.data.latents import LATENT_SIZE
from sie.data.objects import ObjectRef, parse_release_path
from sie.io import write_npy

SPLITS = ("train", "val")
JPEG_START = b"\xff\xd8"
JPEG_END = b"\xff\xd9"


def image_path(root: Path, item: ObjectRef, view: int) -> Path:
    """Path of a view's JPEG."""
    return root / item.synset / item.object_id / f"image_{view}.jpg"


def latent_path(root: Path, item: ObjectRef, view: int) -> Path:
    """Path of a view's latent."""
    return root / item.synset / item.object_id / f"latent_{view}.npy"


def view_is_complete(root: Path, item: ObjectRef, view: int) -> bool:
    """A view is done when its latent exists: the renderer writes the image first, the latent last."""
    return latent_path(root, item, view).is_file() and image_path(root, item, view).is_file()


def load_latent(path: Path) -> np.ndarray:
    """Load a latent file and check it holds 7 finite float64 values."""
    try:
        latent = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: latent file missing") from None
    except (ValueError, OSError) as error:
        raise ValueError(f"{path}: unreadable latent ({error})") from None
    if latent.shape != (LATENT_SIZE,) or latent.dtype != np.float64:
        raise ValueError(
            f"{path}: latent must be {LATENT_SIZE} float64 values, "
            f"found shape {latent.shape} dtype {latent.dtype}"
        )
    if not np.all(np.isfinite(latent)):
        raise ValueError(f"{path}: latent holds non-finite values {latent.tolist()}")
    return latent


def check_jpeg(path: Path) -> None:
    """Cheap structural check of a JPEG: present, non-empty, starts with SOI and ends with EOI.

    A truncated file (the usual corruption) fails; a full decode is done on the statistics sample.
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: image file missing") from None
    if size < 4:
        raise ValueError(f"{path}: corrupt JPEG ({size} bytes)")
    with open(path, "rb") as stream:
        start = stream.read(2)
        stream.seek(-2, 2)
        end = stream.read(2)
    if start != JPEG_START or end != JPEG_END:
        raise ValueError(f"{path}: corrupt JPEG (missing start or end marker; truncated?)")


def strip_jpeg_metadata(data: bytes) -> bytes:
    """Drop comment (COM) and application segments other than JFIF (APP0) from a JPEG.

    Blender writes the render time and date into its JPEGs; without them the same view always gives
    the same bytes. The image data (everything from the start-of-scan marker on) is kept verbatim.
    """
    if not data.startswith(JPEG_START):
        raise ValueError("not a JPEG (no start-of-image marker)")
    kept = bytearray(JPEG_START)
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            raise ValueError(f"malformed JPEG segment at byte {position}")
        marker = data[position + 1]
        if marker == 0xDA:  # start of scan: the rest is entropy-coded image data
            return bytes(kept + data[position:])
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        segment = data[position : position + 2 + length]
        if not (marker == 0xFE or 0xE1 <= marker <= 0xEF):
            kept += segment
        position += 2 + length
    raise ValueError("malformed JPEG (no start-of-scan marker)")


@dataclass(frozen=True)
class Split:
    """Objects and labels of one split, in file order."""

    objects: tuple[ObjectRef, ...]
    labels: np.ndarray


def class_labels(objects: Sequence[ObjectRef]) -> dict[str, int]:
    """Synset -> label: its position in the sorted list of the dataset's synsets."""
    return {synset: label for label, synset in enumerate(sorted({item.synset for item in objects}))}


def write_split(output_dir: Path, name: str, split: Split) -> None:
    """Write ``<name>_images.npy`` and ``<name>_labels.npy`` in the release's format."""
    paths = np.array([item.release_path for item in split.objects], dtype=str)
    if paths.size == 0:
        paths = np.zeros(0, dtype="<U1")
    write_npy(output_dir / f"{name}_images.npy", paths)
    write_npy(output_dir / f"{name}_labels.npy", np.asarray(split.labels, dtype=np.int64))


def read_split_images(path: Path) -> list[ObjectRef]:
    """Objects listed in a release ``*_images.npy`` file."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: split file not found")
    array = np.load(path, allow_pickle=False)
    if array.ndim != 1 or array.dtype.kind not in "US":
        raise ValueError(
            f"{path}: expected a 1-d array of '/synset/object/' strings, found {array.dtype} {array.shape}"
        )
    return [parse_release_path(entry, f"{path} row {row}") for row, entry in enumerate(array.astype(str))]


def stack_latents(root: Path, objects: Sequence[ObjectRef], views: int) -> np.ndarray:
    """All latents of ``objects`` as an (objects x views, 7) float64 array, object-major."""
    latents = np.empty((len(objects) * views, LATENT_SIZE), dtype=np.float64)
    for index, item in enumerate(objects):
        for view in range(views):
            latents[index * views + view] = load_latent(latent_path(root, item, view))
    return latents

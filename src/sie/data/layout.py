"""The release's on-disk layout (3DIEBench) and its split files.

Dataset root: ``<synset>/<object id>/image_<v>.jpg`` and ``latent_<v>.npy`` (7 float64). Split files:
``{train,val}_images.npy`` (unicode "/synset/object/" strings), ``{train,val}_labels.npy`` (int64 index
of the synset in the sorted synset list, or the release's own labels when its labels files are given:
docs/dataset.md#labels), ``all_latents_{train,val}.npy`` (objects x views, 7) float64, object-major,
views in order. The file names are those of ``sie.paths``.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sie.data.jpeg import JPEG_START, CorruptJpeg, StrictDecoder
from sie.data.latents import LATENT_SIZE
from sie.data.objects import ObjectRef, parse_release_path
from sie.io import write_npy
from sie.paths import images_file, labels_file, view_image_file, view_latent_file


def image_path(root: Path, item: ObjectRef, view: int) -> Path:
    """Path of a view's JPEG."""
    return root / item.synset / item.object_id / view_image_file(view)


def latent_path(root: Path, item: ObjectRef, view: int) -> Path:
    """Path of a view's latent."""
    return root / item.synset / item.object_id / view_latent_file(view)


def view_is_complete(root: Path, item: ObjectRef, view: int) -> bool:
    """A view is done when its latent exists: the renderer writes the image first, the latent last."""
    return latent_path(root, item, view).is_file() and image_path(root, item, view).is_file()


def read_view_file(path: Path, kind: str) -> bytes:
    """The bytes of a view's ``kind`` ("image" or "latent") file; a missing file is an error naming it."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: {kind} file missing") from None


def load_latent(path: Path) -> np.ndarray:
    """Load a latent file and check it holds 7 finite float64 values."""
    return parse_latent(read_view_file(path, "latent"), path)


def parse_latent(data: bytes, path: Path) -> np.ndarray:
    """The latent stored in ``data`` (the bytes of ``path``), checked: 7 finite float64 values."""
    try:
        latent = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise ValueError(f"{path}: unreadable latent ({error})") from None
    if not isinstance(latent, np.ndarray) or latent.shape != (LATENT_SIZE,) or latent.dtype != np.float64:
        raise ValueError(
            f"{path}: latent must be {LATENT_SIZE} float64 values, "
            f"found shape {getattr(latent, 'shape', None)} dtype {getattr(latent, 'dtype', None)}"
        )
    if not np.all(np.isfinite(latent)):
        raise ValueError(f"{path}: latent holds non-finite values {latent.tolist()}")
    return latent


def corrupt_jpeg(path: Path, cause: str) -> str:
    """The message of a damaged JPEG: ``<path>: corrupt JPEG (<cause>)``."""
    return f"{path}: corrupt JPEG ({cause})"


def check_jpeg_data(data: bytes, path: Path, decoder: StrictDecoder) -> tuple[int, int]:
    """Strictly check the bytes of a view's JPEG (``sie.data.jpeg``); returns its (width, height).

    Raises a ValueError ``<path>: corrupt JPEG (<cause>)`` on any structural problem, decoder error or
    libjpeg warning.
    """
    try:
        image = decoder.decode(data)
    except CorruptJpeg as error:
        raise ValueError(corrupt_jpeg(path, str(error))) from None
    return int(image.shape[2]), int(image.shape[1])


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


def label_count(card: dict) -> int:
    """Outputs a classifier of an indexed dataset needs: its largest label + 1 (from ``card.json``).

    Labels are 0 .. classes - 1, except when the release's labels files were given: a class subset of
    the release then keeps the release's labels (e.g. 0, 16, 18, 30, 49) and its classifiers get 50
    outputs, of which the absent classes' are never a target (docs/dataset.md#labels).
    """
    return max(int(entry["label"]) for entry in card["classes"]) + 1


def write_split(output_dir: Path, name: str, split: Split) -> None:
    """Write ``<name>_images.npy`` and ``<name>_labels.npy`` in the release's format."""
    paths = np.array([item.release_path for item in split.objects], dtype=str)
    if paths.size == 0:
        paths = np.zeros(0, dtype="<U1")
    write_npy(output_dir / images_file(name), paths)
    write_npy(output_dir / labels_file(name), np.asarray(split.labels, dtype=np.int64))


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


def read_split_labels(images_path: Path, labels_path: Path) -> dict[str, int]:
    """Synset -> label of a release split file and its labels file (``<split>_labels.npy``, int64, row
    for row with ``images_path``); every object of one synset must have the same label, and two synsets
    never share one."""
    objects = read_split_images(images_path)
    if not labels_path.is_file():
        raise FileNotFoundError(f"{labels_path}: labels file not found")
    labels = np.load(labels_path, allow_pickle=False)
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) != len(objects):
        raise ValueError(
            f"{labels_path}: expected {len(objects)} integer labels (one per row of {images_path}), "
            f"found {labels.dtype} {labels.shape}"
        )
    by_synset: dict[str, int] = {}
    for row, (item, label) in enumerate(zip(objects, labels.tolist(), strict=True)):
        if label < 0:
            raise ValueError(f"{labels_path} row {row}: negative label {label} for {item.release_path}")
        known = by_synset.setdefault(item.synset, int(label))
        if known != label:
            raise ValueError(
                f"{labels_path} row {row}: label {label} for {item.release_path}, but earlier rows give "
                f"synset {item.synset} label {known}"
            )
    check_distinct_labels(by_synset, str(labels_path))
    return by_synset


def check_distinct_labels(labels: dict[str, int], origin: str) -> None:
    """Raise when two synsets share a label."""
    seen: dict[int, str] = {}
    for synset, label in sorted(labels.items()):
        if seen.setdefault(label, synset) != synset:
            raise ValueError(f"{origin}: synsets {seen[label]} and {synset} share label {label}")


def stack_latents(root: Path, objects: Sequence[ObjectRef], views: int) -> np.ndarray:
    """All latents of ``objects`` as an (objects x views, 7) float64 array, object-major."""
    latents = np.empty((len(objects) * views, LATENT_SIZE), dtype=np.float64)
    for index, item in enumerate(objects):
        for view in range(views):
            latents[index * views + view] = load_latent(latent_path(root, item, view))
    return latents

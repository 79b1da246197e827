"""What the index records about every view file, how later stages check it, and how damage is repaired.

``checksums.npy`` (in the variant folder, next to the release files, written by ``sie index``): a NumPy
structured array of shape (objects, views), objects in ``all_objects.npy`` order, views in order, with
the fields

    image_bytes    int64          size of ``image_<v>.jpg``
    image_sha256   uint8 (16,)    first 16 bytes of the SHA-256 of its bytes
    latent_bytes   int64          size of ``latent_<v>.npy``
    latent_sha256  uint8 (16,)    first 16 bytes of the SHA-256 of its bytes

48 bytes a view: 125 MB for the paper's 2.6 million views, about 0.7 % of the 17 GB of images. 128 bits
of SHA-256 make an undetected change of a file a 2^-128 event; SHA-256 because it is the fastest hash
of the standard library on CPUs with SHA instructions (28 µs for a 50 kB view here, BLAKE2b 53 µs).

The index writes the file only after every view passed its strict checks (``sie.data.jpeg``), so the
recorded bytes are known-good: ``sie pack`` packs a view only if its bytes still match, and
``sie verify`` compares the files with the record (sizes, or with ``--checksums`` the hashes too).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from sie.io import write_npy
from sie.paths import CARD_FILE, CHECKSUMS_FILE

DIGEST_BYTES = 16
CHECKSUM_DTYPE = np.dtype(
    [
        ("image_bytes", "<i8"),
        ("image_sha256", "u1", (DIGEST_BYTES,)),
        ("latent_bytes", "<i8"),
        ("latent_sha256", "u1", (DIGEST_BYTES,)),
    ]
)
KINDS = ("image", "latent")


def digest(data: bytes) -> np.ndarray:
    """The recorded checksum of a file's bytes: the first 16 bytes of their SHA-256, as uint8."""
    return np.frombuffer(hashlib.sha256(data).digest()[:DIGEST_BYTES], dtype=np.uint8)


def new_checksums(objects: int, views: int) -> np.ndarray:
    """An empty (objects, views) checksum table."""
    return np.zeros((objects, views), dtype=CHECKSUM_DTYPE)


def record(table: np.ndarray, object_index: int, view: int, image: bytes, latent: bytes) -> None:
    """Record the sizes and checksums of one view's image and latent bytes."""
    entry = table[object_index, view]
    entry["image_bytes"] = len(image)
    entry["image_sha256"] = digest(image)
    entry["latent_bytes"] = len(latent)
    entry["latent_sha256"] = digest(latent)


def checksums_path(dataset_dir: Path) -> Path:
    """Where a variant folder keeps its checksum table."""
    return Path(dataset_dir) / CHECKSUMS_FILE


def write_checksums(dataset_dir: Path, table: np.ndarray) -> None:
    """Write the checksum table atomically."""
    write_npy(checksums_path(dataset_dir), table)


def read_checksums(dataset_dir: Path, objects: int, views: int) -> np.ndarray:
    """The checksum table of an indexed variant folder, checked against its object and view counts."""
    path = checksums_path(dataset_dir)
    reindex = (
        f"re-index the dataset: delete {Path(dataset_dir) / CARD_FILE} and run `snakemake datasets` "
        "(or `sie index`)"
    )
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checksum table missing; {reindex}")
    try:
        table = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise ValueError(f"{path}: unreadable checksum table ({error}); {reindex}") from None
    if table.dtype != CHECKSUM_DTYPE or table.shape != (objects, views):
        raise ValueError(
            f"{path}: expected a ({objects}, {views}) checksum table of the documented fields, found "
            f"{table.shape} {table.dtype}; {reindex}"
        )
    return table


def size_problem(entry: np.void, kind: str, size: int) -> str | None:
    """'N bytes, indexed M' when a file's size differs from the record, else None."""
    recorded = int(entry[f"{kind}_bytes"])
    return None if size == recorded else f"{size} bytes, indexed with {recorded}"


def content_problem(entry: np.void, kind: str, data: bytes) -> str | None:
    """Why a file's bytes differ from the record (size first, then checksum), or None."""
    problem = size_problem(entry, kind, len(data))
    if problem:
        return problem
    if not np.array_equal(digest(data), entry[f"{kind}_sha256"]):
        return "same size, but its SHA-256 differs from the indexed one"
    return None


def repair_advice(dataset_dir: Path, source: str, check_options: str = "") -> str:
    """How to repair damaged views of a variant folder: re-render them, or restore them (prerendered)."""
    if source == "prerendered":
        return (
            "restore the damaged files from the 3DIEBench release (or the copy the dataset came from), "
            f"then check again with `sie verify --dataset {dataset_dir}{check_options}`"
        )
    return (
        f"re-render them: `sie verify --dataset {dataset_dir}{check_options} --repair` deletes the damaged "
        "views, the completion markers of the render shards that hold them and the index's card.json, "
        "then `snakemake datasets` renders exactly those views again (same bytes) and re-indexes"
    )

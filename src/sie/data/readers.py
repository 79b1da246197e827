"""Readers of a split's views, all with ``read_images(rows) -> uint8 tensor (B, 3, H, W)``.

- ``PixelViews``: decoded pixels in one memory-mapped array (stores small enough to hold them): a batch is
  one fancy-indexing copy, no decoding at all;
- ``PackedViews``: the JPEG bytes of the split in one memory-mapped file (any size), decoded per view;
- ``FileViews``: one JPEG file per view, as in the release layout (the baseline).

Memory maps open lazily on first read, so readers pickle cheaply into DataLoader workers.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path

import numpy as np
import torch

from sie.data.decode import decode_image
from sie.data.jpeg import JPEG_END, JPEG_START, decoder_error_cause
from sie.data.layout import image_path, read_split_images
from sie.data.store import READERS, dataset_layout, read_manifest, store_dir, store_file
from sie.paths import SPLITS, STORE_JPEGS_FILE, STORE_OFFSETS_FILE, STORE_PIXELS_FILE, images_file


def check_row(row: int, rows: int) -> int:
    """``row`` as an int, or an IndexError when it is outside [0, rows)."""
    row = int(row)
    if not 0 <= row < rows:
        raise IndexError(f"row {row} out of range for {rows} views")
    return row


class JpegReader:
    """Shared decoding of readers that hold JPEG bytes (``read(row) -> bytes``).

    Training decodes at full speed: no strict checks beyond the start and end markers (the bytes were
    checked strictly by ``sie index`` and against its checksums by ``sie pack``), but an error names
    the split, the row, the object and the view.
    """

    dataset_dir: Path | None = None
    split: str = ""
    views: int = 1

    def read(self, row: int) -> bytes:
        raise NotImplementedError

    def read_images(self, rows: np.ndarray) -> torch.Tensor:
        """Decoded uint8 images (len(rows), 3, H, W); a corrupt JPEG raises a ValueError naming the row."""
        images = [self.decode_row(int(row)) for row in rows]
        return torch.stack(images) if images else torch.zeros((0, 3, 0, 0), dtype=torch.uint8)

    def decode_row(self, row: int) -> torch.Tensor:
        """The decoded image of one row."""
        data = self.read(row)
        try:
            if not (data[:2] == JPEG_START and data[-2:] == JPEG_END):
                raise RuntimeError("no start or end marker; truncated?")
            return decode_image(data)
        except RuntimeError as error:
            raise ValueError(f"{self.describe(row)}: corrupt JPEG ({decoder_error_cause(error)})") from None

    def describe(self, row: int) -> str:
        """'<split> row R (object /synset/id/, view V)' (reads the split's object list: errors only)."""
        object_index, view = divmod(row, self.views)
        described = str(object_index)
        if self.dataset_dir is not None:
            try:
                names = read_split_images(Path(self.dataset_dir) / images_file(self.split))
                described = names[object_index].release_path
            except (OSError, ValueError, IndexError):
                pass
        return f"{self.split} row {row} (object {described}, view {view})".lstrip()


class PackedViews(JpegReader):
    """Reads views from the packed store: one memory-mapped file, opened lazily on first read."""

    def __init__(self, dataset_dir: Path, split: str) -> None:
        manifest = read_manifest(dataset_dir)
        if split not in manifest["splits"]:
            raise ValueError(f"split {split!r} not in the store (has {sorted(manifest['splits'])})")
        self.dataset_dir, self.split = Path(dataset_dir), split
        self.data_path = store_dir(dataset_dir) / store_file(STORE_JPEGS_FILE, split)
        self.offsets_path = store_dir(dataset_dir) / store_file(STORE_OFFSETS_FILE, split)
        self.rows = int(manifest["splits"][split]["rows"])
        self.views = int(manifest["views_per_object"])
        self._offsets: np.ndarray | None = None
        self._data: mmap.mmap | bytes | None = None

    def __len__(self) -> int:
        return self.rows

    def read(self, row: int) -> bytes:
        """The JPEG bytes of ``row``."""
        if self._data is None:
            self._open()
        row = check_row(row, self.rows)
        start, end = self._offsets[row : row + 2].tolist()
        return self._data[start:end]

    def _open(self) -> None:
        offsets = np.load(self.offsets_path)
        if offsets.shape != (self.rows + 1,):
            raise ValueError(f"{self.offsets_path}: {offsets.shape[0]} offsets, expected {self.rows + 1}")
        size = os.path.getsize(self.data_path)
        if int(offsets[-1]) != size:
            raise ValueError(f"{self.data_path}: {size} bytes, the offsets end at {int(offsets[-1])}")
        if size == 0:
            self._data = b""
        else:
            with open(self.data_path, "rb") as stream:
                self._data = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)
        self._offsets = offsets

    def __getstate__(self) -> dict:
        """Pickle without the open map and offsets: each worker opens its own on first read."""
        return {**self.__dict__, "_offsets": None, "_data": None}


class FileViews(JpegReader):
    """Reads views from the release layout, one file open per read (the baseline)."""

    def __init__(self, dataset_dir: Path, split: str) -> None:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; known: {list(SPLITS)}")
        self.dataset_dir, self.split = Path(dataset_dir), split
        self.root, self.views = dataset_layout(dataset_dir)
        self.objects = read_split_images(Path(dataset_dir) / images_file(split))
        self.rows = len(self.objects) * self.views

    def __len__(self) -> int:
        return self.rows

    def read(self, row: int) -> bytes:
        """The JPEG bytes of ``row``."""
        object_index, view = divmod(check_row(row, self.rows), self.views)
        return image_path(self.root, self.objects[object_index], view).read_bytes()

    def describe(self, row: int) -> str:
        """'<path> (<split> row R)'."""
        object_index, view = divmod(row, self.views)
        return f"{image_path(self.root, self.objects[object_index], view)} ({self.split} row {row})"


class PixelViews:
    """Reads decoded views from the store's pixel array (``{split}.pixels.npy``, (rows, 3, H, W) uint8)."""

    def __init__(self, dataset_dir: Path, split: str) -> None:
        manifest = read_manifest(dataset_dir)
        if split not in manifest["splits"]:
            raise ValueError(f"split {split!r} not in the store (has {sorted(manifest['splits'])})")
        self.path = store_dir(dataset_dir) / store_file(STORE_PIXELS_FILE, split)
        self.rows = int(manifest["splits"][split]["rows"])
        self._pixels: np.ndarray | None = None

    def __len__(self) -> int:
        return self.rows

    def read_images(self, rows: np.ndarray) -> torch.Tensor:
        """A copy of the rows' pixels."""
        if self._pixels is None:
            self._pixels = np.load(self.path, mmap_mode="r")
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= self.rows):
            raise IndexError(f"rows outside [0, {self.rows})")
        return torch.from_numpy(np.ascontiguousarray(self._pixels[rows]))

    def __getstate__(self) -> dict:
        """Pickle without the open map: each worker maps the file on first read."""
        return {**self.__dict__, "_pixels": None}


def open_reader(dataset_dir: Path, split: str, kind: str = "packed") -> PixelViews | PackedViews | FileViews:
    """The reader of a split: 'packed' (the store, pixels or JPEG as it was packed) or 'files'."""
    if kind == "files":
        return FileViews(dataset_dir, split)
    if kind != "packed":
        raise ValueError(f"unknown reader {kind!r}; known: {', '.join(READERS)}")
    if read_manifest(dataset_dir).get("images") == "pixels":
        return PixelViews(dataset_dir, split)
    return PackedViews(dataset_dir, split)

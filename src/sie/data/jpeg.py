"""Strict JPEG checks for where views enter the workflow (index, pack, ``sie verify --decode``).

Why a plain decode is not enough (measured with torchvision 0.29 and Pillow 13 on 16-256 px JPEGs):
libjpeg-turbo reports recoverable damage ("Corrupt JPEG data: 34 extraneous bytes before marker 0xd9",
"Corrupt JPEG data: premature end of data segment") only as a warning that it prints itself on the
process's standard error (file descriptor 2, not a Python warning), and then returns an image; Pillow's
decoder accepts the same files without a word. A JPEG with 20 zeroed bytes near its end, or with 200
random bytes written into its middle, decodes "successfully" both ways.

So the strict check is three layers, every failure a ``CorruptJpeg`` whose message is the cause:

1. structure: starts with the start-of-image marker, ends with the end-of-image marker, its header
   segments are well formed up to the start of scan (a frame header included), and, when it is coded
   with the standard Huffman tables, its image data holds no run of 16 zero bytes (see ``ZERO_RUN``);
2. a full decode with torchvision's libjpeg-turbo (the decoder training uses), with file descriptor 2
   pointed at a capture file meanwhile: anything libjpeg prints there is a warning, and a warning is
   corruption;
3. the caller checks the decoded size (every view of a dataset has the same).

What the decoder misses: damage that leaves a valid-looking bit stream. With 20 zeroed bytes at
[-40:-20], 3 of the 36 Blender renders of configs/test.yaml and about 1 in 5 of 300 synthetic JPEGs
(mostly of quality 75) decode without a warning; the zero-run check of layer 1 refuses all of them.
Damage that neither layer can see (other bytes, or optimised Huffman tables) is still caught after
indexing, by the checksums the index records (``sie.data.integrity``).

The capture makes ``StrictDecoder`` single-threaded: use one per thread of work, and write nothing to
standard error from other threads while it decodes (the workflow's stages decode in one thread).
"""

from __future__ import annotations

import ctypes
import functools
import os
import re
import sys
import tempfile
import warnings
from types import TracebackType
from typing import IO, Any

JPEG_START = b"\xff\xd8"
JPEG_END = b"\xff\xd9"
START_OF_SCAN = 0xDA
STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD8)})
FRAME_MARKERS = frozenset(set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC})
TORCH_ERROR_PREFIX = re.compile(r"^decode_jpeg, \S+:\d+, ")


class CorruptJpeg(ValueError):
    """A JPEG failed a strict check; the message is the cause (callers add the file name)."""


def structure_problem(data: bytes) -> str | None:
    """Why ``data`` is not a structurally complete JPEG, or None when its markers look right.

    Also refuses a run of ``ZERO_RUN`` zero bytes in the image data of a sequential JPEG coded with
    the standard Huffman tables (see ``ZERO_RUN``): the mark of zeroed bytes that libjpeg may miss.
    """
    if len(data) < 4:
        return f"{len(data)} bytes"
    if not data.startswith(JPEG_START):
        return "no start-of-image marker"
    if not data.endswith(JPEG_END):
        return "no end-of-image marker at the end; truncated?"
    position = 2
    frame: int | None = None
    tables: list[tuple[int, bytes]] = []
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return f"malformed header segment at byte {position}"
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        if marker in STANDALONE_MARKERS:
            position += 2
            continue
        if marker in (0xD8, 0xD9):
            return f"unexpected marker 0xff{marker:02x} at byte {position} in the header"
        if marker == START_OF_SCAN and frame is None:
            return "start of scan before any frame header"
        frame = marker if frame is None and marker in FRAME_MARKERS else frame
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        if length < 2 or position + 2 + length > len(data):
            return f"header segment 0xff{marker:02x} at byte {position} runs past the end of the file"
        if marker == DEFINE_HUFFMAN_TABLES:
            tables += huffman_tables(data[position + 4 : position + 2 + length])
        if marker == START_OF_SCAN:
            return zero_run_problem(data, position + 2 + length, frame, tables)
        position += 2 + length
    return "no start-of-scan marker"


def huffman_tables(payload: bytes) -> list[tuple[int, bytes]]:
    """(class, 16 code counts + symbols) of each Huffman table of a DHT segment's payload."""
    tables = []
    position = 0
    while position + 17 <= len(payload):
        size = 17 + sum(payload[position + 1 : position + 17])
        tables.append((payload[position] >> 4, bytes(payload[position + 1 : position + size])))
        position += size
    return tables


ZERO_RUN = 16
"""Zero bytes in a row that refuse a sequential JPEG coded with the standard Huffman tables (Annex K of
the JPEG standard; what Blender, libjpeg and Pillow write unless told to optimise them). There the
all-zero bit string decodes as AC coefficients of exactly -1 (3 bits each) in luminance blocks, so 128
zero bits need some 40 consecutive -1 coefficients, which no image has, while zeroed bytes always make
them. (Optimised tables can give a flat area all-zero codes, so they are left to the decoder.)"""
DEFINE_HUFFMAN_TABLES = 0xC4
SEQUENTIAL_FRAMES = (0xC0, 0xC1)
_ZERO_RUN_PATTERN = re.compile(b"\x00{%d,}" % ZERO_RUN)


def zero_run_problem(
    data: bytes, start: int, frame: int | None, tables: list[tuple[int, bytes]]
) -> str | None:
    """A run of ``ZERO_RUN`` zero bytes in the image data (from byte ``start``) of a sequential JPEG
    coded with the standard tables, or None."""
    standard = standard_huffman_tables()
    if frame not in SEQUENTIAL_FRAMES or not tables or not standard or not set(tables) <= standard:
        return None
    found = _ZERO_RUN_PATTERN.search(data, start)
    if found is None:
        return None
    return (
        f"{found.end() - found.start()} zero bytes in a row at byte {found.start()} of the image data: "
        "zeroed, not encoded (no image coded with the standard Huffman tables has them)"
    )


@functools.cache
def standard_huffman_tables() -> frozenset[tuple[int, bytes]]:
    """The four standard Huffman tables, as written by Pillow's libjpeg with its default settings
    (checked against the standard's luminance DC table; empty, which disables the check, if not)."""
    import io

    import numpy as np
    from PIL import Image

    stream = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(stream, format="JPEG", quality=90)
    data = stream.getvalue()
    tables: list[tuple[int, bytes]] = []
    position = 2
    while data[position + 1] != START_OF_SCAN:
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        if data[position + 1] == DEFINE_HUFFMAN_TABLES:
            tables += huffman_tables(data[position + 4 : position + 2 + length])
        position += 2 + length
    luminance_dc = (0, bytes([0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, *range(12)]))
    if len(set(tables)) != 4 or luminance_dc not in tables:
        return frozenset()
    return frozenset(tables)


def _decode_function() -> Any:
    """torchvision's JPEG decoding op (the public wrapper when the op is not registered)."""
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg

    try:
        operator = torch.ops.image.decode_jpeg
    except (AttributeError, RuntimeError):
        operator = None

    def decode(data: bytes) -> Any:
        encoded = torch.frombuffer(bytearray(data), dtype=torch.uint8)
        if operator is not None:
            return operator(encoded, ImageReadMode.RGB.value, False)
        with warnings.catch_warnings():  # the wrapper's deprecation warning is not about this file
            warnings.simplefilter("ignore")
            return decode_jpeg(encoded, mode=ImageReadMode.RGB)

    return decode


def decoder_error_cause(error: BaseException) -> str:
    """The decoder's own words from a torchvision error, without its source location and trace."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return TORCH_ERROR_PREFIX.sub("", text)


@functools.cache
def _libc() -> ctypes.CDLL:
    """The C library of this process (libjpeg prints its warnings with its stdio)."""
    return ctypes.CDLL(None)


def _flush_c_streams() -> None:
    """Flush C stdio output: stderr is unbuffered by default, but a library may have changed that."""
    _libc().fflush(None)


class StrictDecoder:
    """Decodes JPEGs with libjpeg-turbo and turns its warnings into ``CorruptJpeg`` errors.

    Use as a context manager (it holds the capture file)::

        with StrictDecoder() as decoder:
            pixels = decoder.decode(data)  # uint8 (3, H, W) tensor
    """

    def __init__(self) -> None:
        self._decode = _decode_function()
        self._capture: IO[bytes] | None = None

    def __enter__(self) -> StrictDecoder:
        self._capture = tempfile.TemporaryFile()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._capture is not None:
            self._capture.close()
            self._capture = None

    def decode(self, data: bytes) -> Any:
        """The uint8 (3, H, W) RGB tensor of ``data``; ``CorruptJpeg`` on any structural problem,
        decoder error or decoder warning."""
        problem = structure_problem(data)
        if problem:
            raise CorruptJpeg(problem)
        if self._capture is None:
            raise RuntimeError("StrictDecoder.decode outside its `with` block")
        capture = self._capture.fileno()
        sys.stderr.flush()
        _flush_c_streams()  # what others buffered before this decode is not blamed on it
        saved = os.dup(2)
        os.dup2(capture, 2)
        try:
            image = self._decode(data)
        except RuntimeError as error:
            raise CorruptJpeg(decoder_error_cause(error)) from None
        finally:
            try:
                _flush_c_streams()
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            message = self._take_captured(capture)
        if message:
            raise CorruptJpeg(message)
        return image

    @staticmethod
    def _take_captured(capture: int) -> str:
        """What was written to the capture file since the last call (then empty it)."""
        written = os.lseek(capture, 0, os.SEEK_CUR)
        if not written:
            return ""
        os.lseek(capture, 0, os.SEEK_SET)
        text = os.read(capture, written).decode("utf-8", errors="replace")
        os.ftruncate(capture, 0)
        os.lseek(capture, 0, os.SEEK_SET)
        return "; ".join(line.strip() for line in text.splitlines() if line.strip()) or "decoder warning"

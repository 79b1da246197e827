"""The three JPEG corruptions of issue 11 and a small sound JPEG, for the integrity tests."""

import io

import numpy as np
from PIL import Image


def a_jpeg(size: int = 32, seed: int = 0) -> bytes:
    """A sound size x size JPEG of seeded random pixels (quality 95)."""
    pixels = np.random.default_rng(seed).integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    stream = io.BytesIO()
    Image.fromarray(pixels).save(stream, format="JPEG", quality=95)
    return stream.getvalue()


def zero_near_end(data: bytes) -> bytes:
    """(a) 20 zeroed bytes near the end of the file (bytes [-40:-20])."""
    damaged = bytearray(data)
    damaged[-40:-20] = bytes(20)
    return bytes(damaged)


def random_in_middle(data: bytes) -> bytes:
    """(b) 200 random bytes, from a seeded generator, written into the middle of the file."""
    damaged = bytearray(data)
    middle = len(damaged) // 2
    damaged[middle : middle + 200] = np.random.default_rng(11).integers(0, 256, 200, dtype=np.uint8).tobytes()
    return bytes(damaged)


def truncate(data: bytes) -> bytes:
    """(c) the first two thirds of the file."""
    return data[: len(data) * 2 // 3]


CORRUPTIONS = {"zeroed": zero_near_end, "random": random_in_middle, "truncated": truncate}

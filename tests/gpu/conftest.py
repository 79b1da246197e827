"""Fixtures of the GPU tests: small indexed and packed datasets made without Blender (see gpu_support.py
for the device the tests run on and the record of measurements)."""

import os

import pytest

from sie.data.latents import LatentSpace
from support import packed_release_dataset

# cuBLAS picks its GEMM algorithms deterministically only with a fixed workspace, read when its first
# handle is made: set before any test touches the GPU (the resume test compares whole runs).
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def make_dataset(folder, size: int, views: int, images: str):
    """Write, index and pack 3 classes x 4 objects x ``views`` views of ``size`` px noisy JPEGs."""
    return packed_release_dataset(folder, LatentSpace.paper(), size, views, images, name="gpu")


@pytest.fixture(scope="session")
def packed_dataset(tmp_path_factory):
    """32 px, 3 views per object, the store holding decoded pixels (9 training objects)."""
    return make_dataset(tmp_path_factory.mktemp("gpu-pixels"), 32, 3, "pixels")


@pytest.fixture(scope="session")
def jpeg_dataset(tmp_path_factory):
    """64 px, 4 views per object, the store holding the JPEG bytes (decoded by the loader)."""
    return make_dataset(tmp_path_factory.mktemp("gpu-jpeg"), 64, 4, "jpeg")

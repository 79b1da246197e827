"""Fixtures of the GPU tests: small indexed and packed datasets made without Blender (see gpu_support.py
for the device the tests run on and the record of measurements)."""

import os

import pytest

from sie.config import dataset_variant, resolve_config
from sie.data.index import build_index
from sie.data.latents import LatentSpace
from sie.data.store import write_store
from support import write_release_folder

# cuBLAS picks its GEMM algorithms deterministically only with a fixed workspace, read when its first
# handle is made: set before any test touches the GPU (the resume test compares whole runs).
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

SYNSETS = ("02691156", "03001627", "03797390")


def make_dataset(folder, size: int, views: int, images: str):
    """Write, index and pack 3 classes x 4 objects x ``views`` views of ``size`` px noisy JPEGs."""
    root = write_release_folder(folder / "release", SYNSETS, 4, views, size, LatentSpace.paper())
    spec = {
        "source": "prerendered",
        "root": str(root),
        "views": views,
        "image_size": size,
        "split": {"val_fraction": 0.2},
    }
    variant = dataset_variant("gpu", resolve_config({"datasets": {"gpu": spec}})["datasets"]["gpu"])
    output = folder / "dataset"
    build_index(variant, output)
    write_store(output, images=images)
    return output


@pytest.fixture(scope="session")
def packed_dataset(tmp_path_factory):
    """32 px, 3 views per object, the store holding decoded pixels (9 training objects)."""
    return make_dataset(tmp_path_factory.mktemp("gpu-pixels"), 32, 3, "pixels")


@pytest.fixture(scope="session")
def jpeg_dataset(tmp_path_factory):
    """64 px, 4 views per object, the store holding the JPEG bytes (decoded by the loader)."""
    return make_dataset(tmp_path_factory.mktemp("gpu-jpeg"), 64, 4, "jpeg")

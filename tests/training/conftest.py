"""A tiny indexed and packed dataset (no Blender: random JPEGs in the release layout) for training tests."""

import pytest

from sie.config import dataset_variant, resolve_config
from sie.data.index import build_index
from sie.data.latents import LatentSpace
from sie.data.store import write_store
from support import write_release_folder

SYNSETS = ("02691156", "03001627", "03797390")
OBJECTS_PER_CLASS = 4
VIEWS = 3


def make_dataset(folder, latents: LatentSpace, size: int = 32):
    """Write, index and pack a 3-class x 4-object x 3-view dataset of ``size`` x ``size`` JPEGs."""
    root = write_release_folder(folder / "release", SYNSETS, OBJECTS_PER_CLASS, VIEWS, size, latents)
    spec = {
        "source": "prerendered",
        "root": str(root),
        "views": VIEWS,
        "image_size": size,
        "split": {"val_fraction": 0.2},
    }
    variant = dataset_variant("tiny", resolve_config({"datasets": {"tiny": spec}})["datasets"]["tiny"])
    output = folder / "dataset"
    build_index(variant, output)
    write_store(output)
    return output


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """Indexed + packed dataset with every latent factor varying (9 training objects)."""
    return make_dataset(tmp_path_factory.mktemp("tiny"), LatentSpace.paper())


@pytest.fixture(scope="session")
def large_dataset(tmp_path_factory):
    """The tiny dataset's twin with 64 x 64 images (also a variant named 'tiny')."""
    return make_dataset(tmp_path_factory.mktemp("large"), LatentSpace.paper(), size=64)


@pytest.fixture(scope="session")
def rotation_only_dataset(tmp_path_factory):
    """Same, with the floor and spot hues frozen."""
    frozen = LatentSpace.from_ranges({"floor_hue": (0.5, 0.5), "spot_hue": (0.25, 0.25)})
    return make_dataset(tmp_path_factory.mktemp("rotation"), frozen)

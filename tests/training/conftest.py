"""A tiny indexed and packed dataset (no Blender: random JPEGs in the release layout) for training tests."""

import pytest

from sie.data.latents import LatentSpace
from support import TEST_SYNSETS, packed_release_dataset

SYNSETS = TEST_SYNSETS
OBJECTS_PER_CLASS = 4
VIEWS = 3


def make_dataset(folder, latents: LatentSpace, size: int = 32):
    """Write, index and pack a 3-class x 4-object x 3-view dataset of ``size`` x ``size`` JPEGs."""
    return packed_release_dataset(folder, latents, size, VIEWS)


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

"""Fixtures of the workflow tests."""

import numpy as np
import pytest
from workflow_helpers import PAPER_SPLIT


@pytest.fixture
def paper_inputs(tmp_path) -> dict[str, str]:
    """A stand-in for ShapeNetCore v2 (an empty folder) and the release's split files (52,472 objects)."""
    shapenet = tmp_path / "ShapeNetCore.v2"
    shapenet.mkdir()
    splits = tmp_path / "splits"
    splits.mkdir()
    for position, name in enumerate(("train", "val")):
        paths = [
            f"/{synset}/{synset}x{index:05d}/"
            for synset, counts in PAPER_SPLIT.items()
            for index in range(sum(counts[:position]), sum(counts[: position + 1]))
        ]
        np.save(splits / f"{name}_images.npy", np.array(paths))
    return {"SHAPENET_ROOT": str(shapenet), "SIE_SPLITS": str(splits)}

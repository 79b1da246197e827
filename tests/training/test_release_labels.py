"""A class subset of the release that keeps the release's labels trains, features and evaluates: the
classifiers get the largest label + 1 outputs (docs/dataset.md#labels)."""

import numpy as np
import pytest
from runs import tiny_spec

from sie.config import dataset_variant, resolve_config
from sie.data.index import build_index
from sie.data.store import write_store
from sie.evaluate import probes
from sie.evaluate.features import compute_features
from sie.evaluate.run import feature_split
from sie.models.files import load_pretrained
from sie.training.loop import pretrain
from support import write_release_folder

pytestmark = pytest.mark.slow

RELEASE_LABELS = {"02691156": 0, "03001627": 16, "03797390": 30}
"""Three classes of the release with their release labels (positions among its 55 sorted synsets)."""
VIEWS = 3


@pytest.fixture(scope="module")
def release_subset(tmp_path_factory):
    """4 objects of each of 3 classes, the split and labels files as the release gives them."""
    folder = tmp_path_factory.mktemp("subset")
    root = write_release_folder(folder / "release", tuple(RELEASE_LABELS), 4, VIEWS, 32)
    split = {}
    for name, indices in (("train", (0, 1, 2)), ("val", (3,))):
        paths = [f"/{synset}/object{index}/" for synset in RELEASE_LABELS for index in indices]
        np.save(folder / f"{name}_images.npy", np.array(paths))
        np.save(
            folder / f"{name}_labels.npy", np.array([RELEASE_LABELS[path.split("/")[1]] for path in paths])
        )
        split[f"{name}_images"] = str(folder / f"{name}_images.npy")
        split[f"{name}_labels"] = str(folder / f"{name}_labels.npy")
    spec = {"source": "prerendered", "root": str(root), "views": VIEWS, "image_size": 32, "split": split}
    variant = dataset_variant("tiny", resolve_config({"datasets": {"tiny": spec}})["datasets"]["tiny"])
    build_index(variant, folder / "dataset")
    write_store(folder / "dataset")
    return folder / "dataset"


def test_a_release_subset_keeps_its_labels_through_training_and_the_probe(release_subset, tmp_path):
    pretrain(tiny_spec("SIE"), release_subset, tmp_path / "out", tmp_path / "checkpoint.pt", threads=1)
    model, _ = load_pretrained(tmp_path / "out" / "model.pt")
    assert {classifier.out_features for classifier in model.evaluator.classifiers.values()} == {31}
    compute_features(tmp_path / "out" / "model.pt", release_subset, tmp_path / "features", device="cpu")
    train, val = (
        feature_split(tmp_path / "features", release_subset, split, VIEWS) for split in ("train", "val")
    )
    assert set(val.labels.tolist()) == set(RELEASE_LABELS.values())
    settings = probes.ProbeSettings(epochs=2, device="cpu")
    outcome = probes.classification(train, val, "all", model.inv_dims, settings=settings)
    assert 0.0 <= outcome.metrics["top1"] <= 1.0

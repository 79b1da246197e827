"""How training sees its images, and how the by-hand command starts it: `sie pretrain --method ...`
equals the workflow's `--spec` run; `training.resolution` resizes in training and in the feature pass;
`training.normalization` picks the dataset's statistics or the original's constants."""

import json

import numpy as np
import pytest
import torch
from runs import TINY_MODEL, TINY_TRAINING, tiny_spec

from sie.cli import main
from sie.data import pairs
from sie.data.readers import open_reader
from sie.evaluate.features import compute_features, load_split
from sie.models import files
from sie.models.files import load_pretrained
from sie.training import loop, resume
from sie.training.loop import pretrain

pytestmark = pytest.mark.slow


def tiny_settings(**training) -> list[str]:
    """The --set arguments of the tiny runs' model and training settings."""
    values = {**{f"model.{k}": v for k, v in TINY_MODEL.items()}}
    values |= {f"training.{k}": v for k, v in {**TINY_TRAINING, **training}.items()}
    return [argument for key, value in values.items() for argument in ("--set", f"{key}={value}")]


def test_by_hand_run_equals_the_spec_run(tiny_dataset, tmp_path):
    common = ["--dataset", str(tiny_dataset), "--threads", "1"]
    by_hand = ["pretrain", "--method", "SIE", "--seed", "0", *tiny_settings(epochs=1), *common]
    assert main([*by_hand, "--output", str(tmp_path / "by_hand")]) == 0
    spec = json.dumps(tiny_spec("SIE", epochs=1).as_dict())
    checkpoint_path = tmp_path / "checkpoints" / "checkpoint.pt"
    arguments = ["pretrain", "--spec", spec, *common, "--checkpoint", str(checkpoint_path)]
    assert main([*arguments, "--output", str(tmp_path / "spec")]) == 0
    assert (tmp_path / "by_hand" / "checkpoint.pt").is_file() and checkpoint_path.is_file()
    first = files.load(tmp_path / "by_hand" / "model.pt")
    second = files.load(tmp_path / "spec" / "model.pt")
    assert first["fingerprint"] == second["fingerprint"] and first["identity"] == second["identity"]
    weights, expected = first["state_dict"], second["state_dict"]
    assert weights.keys() == expected.keys()
    assert all(torch.equal(weights[key], expected[key]) for key in weights)


def test_resolution_and_normalization_are_part_of_the_identity():
    identities = [
        resume.run_identity(tiny_spec("SIE", **training), "fp32", "dataset")["training"]
        for training in ({}, {"resolution": 16}, {"normalization": "release"})
    ]
    assert identities[0]["resolution"] is None and identities[0]["normalization"] == "dataset"
    assert identities[0] != identities[1] and identities[0] != identities[2]


def features_of(model_path, dataset, split: str, rows: np.ndarray) -> torch.Tensor:
    """The representations of some rows recomputed from model.pt's recorded inputs."""
    model, payload = load_pretrained(model_path)
    normalization = payload["normalization"]
    images = open_reader(dataset, split).read_images(rows)
    with torch.no_grad():
        return model.backbone(
            pairs.prepare_images(images, normalization["mean"], normalization["std"], payload["resolution"])
        )


def test_training_at_32_pixels_from_a_64_pixel_variant(large_dataset, tmp_path, monkeypatch):
    shapes = []

    def recording(*arguments):
        prepared = pairs.prepare_images(*arguments)
        shapes.append(tuple(prepared.shape[-2:]))
        return prepared

    monkeypatch.setattr(loop, "prepare_images", recording)
    output, features = tmp_path / "SIE", tmp_path / "features"
    arguments = ["pretrain", "--method", "SIE", "--dataset", str(large_dataset), "--output", str(output)]
    assert main([*arguments, *tiny_settings(epochs=1, resolution=32), "--threads", "1"]) == 0
    assert shapes and set(shapes) == {(32, 32)}
    model = files.load(output / "model.pt")
    assert model["resolution"] == 32
    arguments = ["features", "--model", str(output / "model.pt"), "--dataset", str(large_dataset)]
    assert main([*arguments, "--output", str(features), "--device", "cpu", "--batch-size", "5"]) == 0
    manifest = json.loads((features / "manifest.json").read_text())
    assert manifest["resolution"] == 32
    assert open_reader(large_dataset, "train").read_images(np.array([0])).shape[-2:] == (64, 64)
    rows = np.array([0, 4, 8])
    expected = features_of(output / "model.pt", large_dataset, "train", rows)
    np.testing.assert_allclose(load_split(features, "train")[rows], expected.numpy(), rtol=1e-5, atol=1e-6)
    model_at_64, _ = load_pretrained(output / "model.pt")
    mean, std = model["normalization"]["mean"], model["normalization"]["std"]
    with torch.no_grad():
        native = model_at_64.backbone(
            pairs.normalize(open_reader(large_dataset, "train").read_images(rows), mean, std)
        )
    assert not np.allclose(load_split(features, "train")[rows], native.numpy(), atol=1e-4)
    probe = json.dumps({"device": "cpu", "probe": {"epochs": 1, "batch_size": 4, "val_pairs_per_object": 2}})
    arguments = ["evaluate", "--features", str(features), "--dataset", str(large_dataset), "--spec", probe]
    assert main([*arguments, "--evaluation", "rotation", "--part", "equi", "--output", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "rotation-equi.json").read_text())["applicable"]


@pytest.mark.parametrize("kind", ["dataset", "release"])
def test_both_normalizations_reach_model_and_features(tiny_dataset, tmp_path, kind):
    output = tmp_path / "SIE"
    spec = tiny_spec("SIE", epochs=1, normalization=kind)
    pretrain(spec, tiny_dataset, output, tmp_path / "checkpoint.pt", threads=1)
    statistics = json.loads((tiny_dataset / "statistics.json").read_text())
    expected = pairs.RELEASE_NORMALIZATION if kind == "release" else statistics
    model = files.load(output / "model.pt")
    assert model["normalization"] == {"kind": kind, "mean": expected["mean"], "std": expected["std"]}
    assert model["resolution"] is None
    compute_features(output / "model.pt", tiny_dataset, tmp_path / "features", "cpu", 5)
    manifest = json.loads((tmp_path / "features" / "manifest.json").read_text())
    assert manifest["normalization"] == {"mean": expected["mean"], "std": expected["std"]}
    rows = np.array([0, 5])
    recomputed = features_of(output / "model.pt", tiny_dataset, "val", rows)
    stored = load_split(tmp_path / "features", "val")[rows]
    np.testing.assert_allclose(stored, recomputed.numpy(), rtol=1e-5, atol=1e-6)

"""Probes on synthetic stored features whose information content is known."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from sie.evaluate.probes import (
    FeatureSplit,
    ProbeSettings,
    build_head,
    classification,
    color,
    color_targets,
    feature_slice,
    rotation,
    rotation_targets,
)

CLASSES = 5
VIEWS = 8
FAST = ProbeSettings(epochs=15, batch_size=64, learning_rate=2e-3, hidden_dims=256, val_pairs_per_object=4)
CLASSIFY = ProbeSettings(epochs=15, batch_size=16, learning_rate=1e-2, hidden_dims=64)


@pytest.fixture(autouse=True)
def single_thread(one_thread):
    """Every test here runs on one thread (see tests/conftest.py)."""


def latents(objects: int, views: int, generator: np.random.Generator) -> np.ndarray:
    """Paper-range latents: Euler angles in [-pi/2, pi/2], hues in [0, 1]."""
    values = np.zeros((objects * views, 7))
    values[:, :3] = generator.uniform(-np.pi / 2, np.pi / 2, size=(objects * views, 3))
    values[:, 3:] = generator.uniform(0.0, 1.0, size=(objects * views, 4))
    return values


def split(objects: int, seed: int, encode: str, noise_dims: int = 4) -> FeatureSplit:
    """Features that encode the rotation ("rotation": flattened matrix), the class ("class": one-hot), the
    hues ("color") or nothing ("random"), each followed by Gaussian noise dims; balanced labels."""
    generator = np.random.default_rng(seed)
    values = latents(objects, VIEWS, generator)
    labels = np.arange(objects) % CLASSES
    rows = objects * VIEWS
    informative = {
        "rotation": lambda: Rotation.from_euler("xyz", values[:, :3]).as_matrix().reshape(rows, 9),
        "class": lambda: 3.0 * np.eye(CLASSES)[np.repeat(labels, VIEWS)],
        "color": lambda: values[:, [3, 6]],
        "random": lambda: generator.normal(size=(rows, 8)),
    }[encode]()
    features = np.concatenate([informative, generator.normal(size=(rows, noise_dims))], axis=1)
    return FeatureSplit(features.astype(np.float32), values, VIEWS, labels)


def per_dimension_mean_r2(val: FeatureSplit, settings: ProbeSettings) -> float:
    """Global R² of predicting each target dimension's mean: the best a head can do from no information.

    Not 0: the global R² has one mean over all dimensions (docs/evaluations.md#r2-global), and
    quaternion targets have q_w far from q_x, q_y, q_z. Computed on an independent large draw of pairs.
    """
    generator = np.random.default_rng(99)
    first = generator.integers(VIEWS, size=20000)
    second = (first + 1 + generator.integers(VIEWS - 1, size=20000)) % VIEWS
    objects = generator.integers(val.objects, size=20000) * VIEWS
    target = rotation_targets(val.latents[objects + first], val.latents[objects + second]).astype(np.float64)
    residual = ((target - target.mean(axis=0)) ** 2).sum()
    return 1.0 - residual / ((target - target.mean()) ** 2).sum()


def test_feature_slice_parts() -> None:
    assert feature_slice("inv", 3, 10) == slice(0, 3)
    assert feature_slice("equi", 3, 10) == slice(3, 10)
    assert feature_slice("all", 3, 10) == slice(0, 10)
    assert feature_slice("all", 0, 10) == slice(0, 10)


@pytest.mark.parametrize(("part", "inv_dims"), [("inv", 0), ("equi", 10)])
def test_feature_slice_empty_part_is_an_error_naming_it(part: str, inv_dims: int) -> None:
    with pytest.raises(ValueError, match=f"'{part}' part is empty"):
        feature_slice(part, inv_dims, 10)


def test_feature_slice_rejects_unknown_part_and_bad_split() -> None:
    with pytest.raises(ValueError, match="unknown feature part"):
        feature_slice("both", 3, 10)
    with pytest.raises(ValueError, match="inv_dims"):
        feature_slice("inv", 11, 10)


def test_feature_split_validates_shapes() -> None:
    with pytest.raises(ValueError, match="whole number"):
        FeatureSplit(np.zeros((7, 2)), np.zeros((7, 7)), 2)
    with pytest.raises(ValueError, match="labels"):
        FeatureSplit(np.zeros((8, 2)), np.zeros((8, 7)), 2, np.zeros(3))


def test_heads_linear_and_mlp() -> None:
    linear = build_head(6, 3, "linear", 16, seed=0)
    mlp = build_head(6, 3, "mlp", 16, seed=0)
    assert [type(layer).__name__ for layer in linear] == ["Linear"]
    assert [layer.out_features for layer in mlp if isinstance(layer, torch.nn.Linear)] == [16, 16, 3]
    assert sum(isinstance(layer, torch.nn.ReLU) for layer in mlp) == 2
    same = build_head(6, 3, "mlp", 16, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(mlp.parameters(), same.parameters(), strict=True))
    with pytest.raises(ValueError, match="unknown head"):
        build_head(6, 3, "deep", 16, seed=0)


def test_targets_follow_scipy_and_hue_differences() -> None:
    values = latents(2, 2, np.random.default_rng(0))
    expected = (
        Rotation.from_euler("xyz", values[0:2, :3]).inv() * Rotation.from_euler("xyz", values[2:4, :3])
    ).as_quat()
    np.testing.assert_allclose(rotation_targets(values[0:2], values[2:4]), expected, atol=1e-6)
    hues = color_targets(values[0:2], values[2:4])
    np.testing.assert_allclose(hues[:, 0], values[2:4, 3] - values[0:2, 3], atol=1e-6)
    np.testing.assert_allclose(hues[:, 1], values[2:4, 6] - values[0:2, 6], atol=1e-6)


@pytest.mark.parametrize("head", ["linear", "mlp"])
def test_classification_of_class_one_hot_features_is_perfect(head: str) -> None:
    result = classification(
        split(100, 1, "class"), split(40, 2, "class"), "all", 0, head=head, settings=CLASSIFY
    )
    assert result.metrics["top1"] == 1.0
    assert result.metrics["top5"] == 1.0
    assert len(result.history) == CLASSIFY.epochs
    assert {"epoch", "train_loss", "train_top1", "val_top1", "val_top5", "val_loss"} <= set(
        result.history[-1]
    )


def test_classification_of_random_features_is_at_chance() -> None:
    # 200 val objects x 8 views: with features independent of the balanced labels, top-1 has mean 1/C
    # whatever the head predicts; its standard deviation is at most sqrt(0.2 * 0.8 / 200) = 0.028 if all
    # views of an object were predicted alike (fewer independent draws), so 0.1 is over 3.5 sigma.
    result = classification(split(200, 1, "random"), split(200, 2, "random"), "all", 0, settings=CLASSIFY)
    assert abs(result.metrics["top1"] - 1 / CLASSES) < 0.1
    assert result.metrics["top5"] == 1.0  # 5 classes: always in the top 5


def test_classification_uses_only_the_selected_part() -> None:
    # Class one-hot in the first 5 dims ("inv"), noise in the 4 others ("equi").
    train, val = split(100, 1, "class"), split(40, 2, "class")
    assert classification(train, val, "inv", CLASSES, settings=CLASSIFY).metrics["top1"] == 1.0
    assert abs(classification(train, val, "equi", CLASSES, settings=CLASSIFY).metrics["top1"] - 0.2) < 0.15


def test_rotation_from_rotation_features_is_near_perfect() -> None:
    result = rotation(split(800, 1, "rotation"), split(100, 2, "rotation"), "all", 0, settings=FAST)
    assert result.metrics["r2"] > 0.9
    assert {"train_r2", "train_mse", "val_r2", "val_mse"} <= set(result.history[-1])


def test_rotation_from_random_features_learns_only_the_mean() -> None:
    val = split(100, 2, "random")
    result = rotation(split(800, 1, "random"), val, "all", 0, settings=FAST)
    baseline = per_dimension_mean_r2(val, FAST)
    assert 0.1 < baseline < 0.4
    assert abs(result.metrics["r2"] - baseline) < 0.1


def test_color_from_hue_features_is_near_perfect_and_not_from_random() -> None:
    good = color(split(300, 1, "color"), split(60, 2, "color"), "all", 0, settings=FAST)
    bad = color(split(300, 1, "random"), split(60, 2, "random"), "all", 0, settings=FAST)
    assert good.metrics["r2"] > 0.95
    assert abs(bad.metrics["r2"]) < 0.1


def test_same_seed_same_metrics_and_memmap_path_matches(tmp_path) -> None:
    train, val = split(100, 1, "random"), split(30, 2, "random")
    first = rotation(train, val, "all", 0, settings=FAST)
    second = rotation(train, val, "all", 0, settings=FAST)
    assert first == second
    other = rotation(train, val, "all", 0, settings=ProbeSettings(**{**FAST.__dict__, "seed": 1}))
    assert other.metrics != first.metrics
    stored = np.lib.format.open_memmap(
        tmp_path / "train.npy", mode="w+", dtype=np.float32, shape=train.representations.shape
    )
    stored[:] = train.representations
    mapped = FeatureSplit(stored, train.latents, VIEWS, train.labels)
    streamed = rotation(
        mapped, val, "all", 0, settings=ProbeSettings(**{**FAST.__dict__, "max_resident_bytes": 0})
    )
    assert streamed.metrics == pytest.approx(first.metrics, rel=1e-5)


def test_validate_every_and_classification_requires_labels() -> None:
    train, val = split(50, 1, "class"), split(20, 2, "class")
    settings = ProbeSettings(**{**CLASSIFY.__dict__, "epochs": 5, "validate_every": 2})
    history = classification(train, val, "all", 0, settings=settings).history
    assert ["val_top1" in record for record in history] == [False, True, False, True, True]
    every_epoch = classification(train, val, "all", 0, settings=replace(settings, validate_every=1))
    assert every_epoch.metrics == classification(train, val, "all", 0, settings=settings).metrics
    unlabelled = FeatureSplit(train.representations, train.latents, VIEWS)
    with pytest.raises(ValueError, match="labels"):
        classification(unlabelled, val, "all", 0, settings=settings)

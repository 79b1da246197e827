"""Reference rows: chance metrics against brute force, the mean predictor on the probes' own pairs, the
oracle features and an oracle rotation probe near 1 (sie.evaluate.references)."""

import itertools

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from sie.evaluate import probes
from sie.evaluate.references import (
    ORACLE_NOISE,
    classification_chance,
    mean_predictor,
    oracle_features,
    random_neighbour_error,
    ranking_chance,
)

VIEWS = 4


def random_latents(objects: int, seed: int) -> np.ndarray:
    generator = np.random.default_rng(seed)
    latents = np.zeros((objects * VIEWS, 7))
    latents[:, :3] = generator.uniform(-np.pi / 2, np.pi / 2, (objects * VIEWS, 3))
    latents[:, 3:] = generator.uniform(0, 1, (objects * VIEWS, 4))
    return latents


def test_ranking_chance_equals_the_average_over_every_ranking():
    ranks = [permutation.index(0) + 1 for permutation in itertools.permutations(range(VIEWS))]
    chance = ranking_chance(VIEWS)
    assert chance["MRR"] == pytest.approx(np.mean([1 / rank for rank in ranks]))
    assert chance["H@1"] == pytest.approx(np.mean([rank <= 1 for rank in ranks]))
    assert chance["H@2"] == pytest.approx(0.5)
    assert chance["H@5"] == chance["H@10"] == 1.0


def test_classification_chance_answers_the_most_frequent_training_classes():
    train = np.array([3, 3, 3, 1, 1, 0, 2, 4, 5, 6])
    val = np.array([3, 1, 0, 9, 9])
    chance = classification_chance(train, val)
    assert chance["top1"] == pytest.approx(1 / 5)
    assert chance["top5"] == pytest.approx(3 / 5)  # classes 3, 1, then 0, 2, 4 (ties: lower label)


def test_mean_predictor_scores_the_training_mean_on_the_probe_validation_pairs():
    train, val = random_latents(30, 0), random_latents(10, 1)
    settings = probes.ProbeSettings(val_pairs_per_object=3, seed=2)
    result = mean_predictor(train, val, VIEWS, probes.color_targets, settings)
    first, second = probes.validation_pairs(10, VIEWS, settings)
    assert np.all(first // VIEWS == second // VIEWS) and np.all(first != second)
    targets = np.asarray(probes.color_targets(val[first], val[second]), dtype=np.float64)
    mean = _train_mean(train, settings)
    # The paper's global R² by hand: one mean over every entry of the targets.
    expected_r2 = 1 - ((targets - mean) ** 2).sum() / ((targets - targets.mean()) ** 2).sum()
    assert result["r2"] == pytest.approx(expected_r2, rel=1e-9)
    assert result["mse"] == pytest.approx(np.mean((targets - mean) ** 2), rel=1e-9)
    assert -0.2 < result["r2"] < 0.2  # hue differences have mean ~0 in every component


def _train_mean(train: np.ndarray, settings: probes.ProbeSettings) -> np.ndarray:
    generator = np.random.default_rng(np.random.SeedSequence(settings.seed).generate_state(4)[3])
    owners = np.repeat(np.arange(len(train) // VIEWS), settings.val_pairs_per_object)
    first, second = probes.distinct_views(generator, len(owners), VIEWS)
    rows = owners * VIEWS
    return np.asarray(probes.color_targets(train[rows + first], train[rows + second]), dtype=np.float64).mean(
        0
    )


def test_mean_predictor_of_rotations_gains_from_the_scalar_component():
    """The global R² subtracts one mean over the 4 components; the scalar part's own mean is far from it."""
    train, val = random_latents(200, 3), random_latents(50, 4)
    result = mean_predictor(train, val, VIEWS, probes.rotation_targets, probes.ProbeSettings())
    assert 0.1 < result["r2"] < 0.4


def test_random_neighbour_error_of_identical_rotations_is_zero_and_of_random_ones_three_quarters():
    """For independent uniform rotations E[<q, q'>^2] = 1/4 (unit quaternions in 4-D), so PRE is 3/4."""
    same = random_latents(5, 5)
    generator = np.random.default_rng(0)
    assert random_neighbour_error(same[:1].repeat(20, 0), same[:1], generator) == pytest.approx(
        0.0, abs=1e-12
    )
    spread = np.zeros((4000, 7))
    spread[:, :3] = Rotation.random(4000, random_state=1).as_euler("xyz")
    assert random_neighbour_error(spread, spread, generator) == pytest.approx(0.75, abs=0.02)


def test_oracle_features_are_the_factors_plus_noise():
    latents = random_latents(50, 6)
    labels = np.repeat(np.arange(50) % 3, VIEWS)
    features = oracle_features(latents, labels, 3, np.random.default_rng(0))
    assert features.shape == (200, 3 + 9 + 2) and features.dtype == np.float32
    clean = np.concatenate(
        [
            np.eye(3)[labels],
            Rotation.from_euler("xyz", latents[:, :3]).as_matrix().reshape(-1, 9),
            latents[:, [3, 6]],
        ],
        axis=1,
    )
    assert np.std(features - clean) == pytest.approx(ORACLE_NOISE, rel=0.05)
    again = oracle_features(latents, labels, 3, np.random.default_rng(0))
    assert np.array_equal(features, again)


def test_the_rotation_probe_on_oracle_features_reaches_almost_one():
    """What the oracle row shows: the probe code itself can learn the relative rotation."""
    splits = {}
    for split, (objects, seed) in {"train": (400, 7), "val": (60, 8)}.items():
        latents = random_latents(objects, seed)
        labels = np.arange(objects) % 3
        features = oracle_features(latents, np.repeat(labels, VIEWS), 3, np.random.default_rng(seed))
        splits[split] = probes.FeatureSplit(features, latents, VIEWS, labels)
    settings = probes.ProbeSettings(epochs=40, batch_size=64, hidden_dims=256, val_pairs_per_object=4)
    result = probes.rotation(splits["train"], splits["val"], "equi", 3, settings=settings)
    assert result.metrics["r2"] > 0.8
    colour = probes.color(splits["train"], splits["val"], "equi", 3, settings=settings)
    assert colour.metrics["r2"] > 0.9


def test_oracle_features_made_in_chunks_equal_one_pass():
    """The store is written chunk by chunk from one generator: the same numbers as one pass."""
    latents = random_latents(30, 9)
    labels = np.repeat(np.arange(30) % 3, VIEWS)
    whole = oracle_features(latents, labels, 3, np.random.default_rng(1))
    generator = np.random.default_rng(1)
    parts = [
        oracle_features(latents[rows], labels[rows], 3, generator) for rows in probes.batch_slices(120, 7)
    ]
    assert np.array_equal(whole, np.concatenate(parts))

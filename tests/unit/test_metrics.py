"""Evaluation metrics against hand computations and independent references (scipy Rotation)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from sie.evaluate.metrics import (
    absolute_quaternions,
    global_r2_numpy,
    hit_rate,
    hit_rates,
    mean_reciprocal_rank,
    prediction_error,
    prediction_error_terms,
    top_k_accuracy_numpy,
    true_class_ranks,
)


def sklearn_style_r2(prediction: np.ndarray, target: np.ndarray) -> float:
    """Per-dimension R² averaged over dimensions (what sklearn's r2_score computes), re-derived here."""
    residual = ((target - prediction) ** 2).sum(axis=0)
    total = ((target - target.mean(axis=0)) ** 2).sum(axis=0)
    return float(np.mean(1.0 - residual / total))


def test_global_r2_perfect_prediction_is_one() -> None:
    target = np.array([[1.0, 2.0], [3.0, 5.0], [0.0, -1.0]])
    assert global_r2_numpy(target, target) == pytest.approx(1.0)


def test_global_r2_predicting_the_global_mean_is_zero() -> None:
    target = np.array([[1.0, 2.0], [3.0, 5.0], [0.0, -1.0]])
    assert global_r2_numpy(np.full_like(target, target.mean()), target) == pytest.approx(0.0, abs=1e-12)


def test_global_r2_worked_example() -> None:
    # Targets 1, 2, 3, 6: one mean 3, total sum of squares 4 + 1 + 0 + 9 = 14.
    target = np.array([[1.0, 2.0], [3.0, 6.0]])
    prediction = np.array([[1.0, 3.0], [2.0, 6.0]])  # residual squares 0 + 1 + 1 + 0 = 2
    assert global_r2_numpy(prediction, target) == pytest.approx(1.0 - 2.0 / 14.0)


def test_global_r2_differs_from_per_dimension_r2() -> None:
    # Two dimensions with very different means: predicting each column's mean is 0 for sklearn-style R²
    # but clearly positive for the global R², whose single mean sits between the columns.
    target = np.array([[0.0, 10.0], [1.0, 11.0], [2.0, 12.0]])
    prediction = np.tile(target.mean(axis=0), (3, 1))
    assert sklearn_style_r2(prediction, target) == pytest.approx(0.0)
    residual = 4.0  # (1 + 0 + 1) per column
    total = float(((target - target.mean()) ** 2).sum())
    assert global_r2_numpy(prediction, target) == pytest.approx(1.0 - residual / total)
    assert global_r2_numpy(prediction, target) > 0.9


def test_top_k_accuracy_numpy() -> None:
    logits = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5]])
    labels = np.array([1, 1, 0])
    assert top_k_accuracy_numpy(logits, labels, 1) == pytest.approx(1 / 3)
    assert top_k_accuracy_numpy(logits, labels, 2) == pytest.approx(2 / 3)
    assert top_k_accuracy_numpy(logits, labels, 10) == pytest.approx(1.0)


def test_mean_reciprocal_rank_and_hits_on_hand_ranks() -> None:
    ranks = [1, 2, 4, 1, 10]
    assert mean_reciprocal_rank(ranks) == pytest.approx((1 + 0.5 + 0.25 + 1 + 0.1) / 5)
    assert hit_rate(ranks, 1) == pytest.approx(2 / 5)
    assert hit_rate(ranks, 2) == pytest.approx(3 / 5)
    assert hit_rate(ranks, 5) == pytest.approx(4 / 5)
    assert hit_rate(ranks, 10) == pytest.approx(1.0)
    assert hit_rates([3, 3], (1, 10), cap=2) == {"H@1": 0.0, "H@10": 0.0}
    assert hit_rates([2, 3], (1, 10), cap=3) == {"H@1": 0.0, "H@10": 1.0}


def test_ranks_must_be_one_based_and_present() -> None:
    with pytest.raises(ValueError, match="1-based"):
        mean_reciprocal_rank([0, 1])
    with pytest.raises(ValueError, match="no ranks"):
        hit_rate([], 1)


def test_prediction_error_is_half_angle_sine_squared() -> None:
    generator = np.random.default_rng(3)
    first = Rotation.random(200, random_state=generator)
    second = Rotation.random(200, random_state=generator)
    angles = (first.inv() * second).magnitude()
    expected = np.sin(angles / 2) ** 2
    terms = prediction_error_terms(first.as_quat(), second.as_quat())
    np.testing.assert_allclose(terms, expected, atol=1e-12)
    assert prediction_error(first.as_quat(), second.as_quat()) == pytest.approx(expected.mean())


def test_prediction_error_is_sign_invariant_and_zero_for_same_rotation() -> None:
    quaternions = Rotation.random(50, random_state=np.random.default_rng(4)).as_quat()
    assert prediction_error(quaternions, -quaternions) == pytest.approx(0.0, abs=1e-12)
    other = Rotation.random(50, random_state=np.random.default_rng(5)).as_quat()
    assert prediction_error(quaternions, other) == pytest.approx(prediction_error(-quaternions, other))
    half_turn = Rotation.from_euler("x", [[np.pi]]).as_quat()
    assert prediction_error(Rotation.identity(1).as_quat(), half_turn) == pytest.approx(1.0)


def test_prediction_error_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="quaternion"):
        prediction_error(np.zeros((2, 3)), np.zeros((2, 3)))


def test_absolute_quaternions_match_scipy() -> None:
    latents = np.random.default_rng(6).uniform(-1.5, 1.5, size=(10, 7))
    expected = Rotation.from_euler("xyz", latents[:, :3]).as_quat()
    np.testing.assert_allclose(absolute_quaternions(latents), expected)


def test_true_class_ranks_match_top_k_accuracy_without_ties_and_are_pessimistic_with_ties() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(300, 7, generator=generator)
    labels = torch.randint(7, (300,), generator=generator)
    ranks = true_class_ranks(logits, labels)
    for k in (1, 2, 5):
        expected = top_k_accuracy_numpy(logits.numpy(), labels.numpy(), k)
        assert float((ranks <= k).double().mean()) == pytest.approx(expected)
    hand = torch.tensor([[0.1, 0.9, 0.5], [1.0, 1.0, 1.0]])
    assert true_class_ranks(hand, torch.tensor([2, 0])).tolist() == [2, 3]

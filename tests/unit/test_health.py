"""Predictor health on synthetic embeddings: a predictor that is the true transformation uses the latent,
one that ignores it does not (sie.evaluate.health)."""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from sie.data.latents import rotation_matrix
from sie.evaluate.health import health_metrics, pair_errors, source_target_pairs, uses_latent

VIEWS = 5


def random_latents(objects: int, seed: int = 0) -> np.ndarray:
    generator = np.random.default_rng(seed)
    latents = np.zeros((objects * VIEWS, 7))
    latents[:, :3] = generator.uniform(-np.pi / 2, np.pi / 2, (objects * VIEWS, 3))
    latents[:, 3:] = generator.uniform(0, 1, (objects * VIEWS, 4))
    return latents


def rotation_embeddings(latents: np.ndarray) -> np.ndarray:
    """Each view's embedding: its rotation matrix, flattened (an exactly equivariant embedding)."""
    return rotation_matrix(latents).reshape(len(latents), 9).astype(np.float32)


def true_transformation(embeddings: torch.Tensor, quaternions: torch.Tensor) -> torch.Tensor:
    """R_t = R_s (R_s^-1 R_t): the source matrix times the relative rotation of the latent."""
    relative = torch.from_numpy(Rotation.from_quat(quaternions.double().numpy()).as_matrix()).float()
    return torch.bmm(embeddings.reshape(-1, 3, 3), relative).reshape(-1, 9)


def ignores_latent(embeddings: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
    return embeddings * 0.5 + 0.1


def reference_errors(embeddings, predicted, targets) -> float:
    """Mean over pairs of |p/|p| - t/|t||^2, one pair at a time."""
    total = 0.0
    for prediction, target in zip(predicted, targets, strict=True):
        difference = prediction / np.linalg.norm(prediction) - target / np.linalg.norm(target)
        total += float(difference @ difference)
    return total / len(targets)


def test_pairs_are_view_zero_to_every_other_view_of_the_same_object():
    sources, targets = source_target_pairs(3, 4)
    assert sources.tolist() == [0, 0, 0, 4, 4, 4, 8, 8, 8]
    assert targets.tolist() == [1, 2, 3, 5, 6, 7, 9, 10, 11]
    with pytest.raises(ValueError, match="at least 2 views"):
        source_target_pairs(3, 1)


def test_the_true_transformation_is_healthy():
    latents = random_latents(40)
    embeddings = rotation_embeddings(latents)
    errors = pair_errors(embeddings, latents, VIEWS, true_transformation, chunk=17)
    assert errors["true"] == pytest.approx(0.0, abs=1e-9)
    assert errors["shuffled"] > 0.5 and errors["identity"] > 0.5
    metrics = health_metrics({"val": errors})
    assert metrics["uses_latent/val"] == 1.0
    assert metrics["ratio/true-shuffled/val"] < 1e-6


def test_a_predictor_that_ignores_the_latent_is_not_healthy():
    latents = random_latents(40, seed=1)
    embeddings = rotation_embeddings(latents)
    errors = pair_errors(embeddings, latents, VIEWS, ignores_latent)
    assert errors["true"] == pytest.approx(errors["shuffled"], abs=1e-6)
    metrics = health_metrics({"train": errors})
    assert metrics["ratio/true-shuffled/train"] == pytest.approx(1.0, abs=1e-6)
    assert metrics["uses_latent/train"] == 0.0


def test_errors_equal_a_pair_by_pair_reference():
    latents = random_latents(6, seed=2)
    embeddings = rotation_embeddings(latents) + np.random.default_rng(3).normal(0, 0.3, (30, 9)).astype(
        np.float32
    )
    errors = pair_errors(embeddings, latents, VIEWS, ignores_latent, chunk=4)
    sources, targets = source_target_pairs(6, VIEWS)
    identity = reference_errors(embeddings, embeddings[sources], embeddings[targets])
    ignoring = reference_errors(embeddings, embeddings[sources] * 0.5 + 0.1, embeddings[targets])
    assert errors["identity"] == pytest.approx(identity, rel=1e-5)
    assert errors["true"] == pytest.approx(ignoring, rel=1e-5)


def test_the_shuffle_is_seeded():
    latents = random_latents(20, seed=4)
    embeddings = rotation_embeddings(latents)
    first = pair_errors(embeddings, latents, VIEWS, true_transformation, seed=5)
    again = pair_errors(embeddings, latents, VIEWS, true_transformation, seed=5)
    other = pair_errors(embeddings, latents, VIEWS, true_transformation, seed=6)
    assert first == again and first["shuffled"] != other["shuffled"]


@pytest.mark.parametrize(
    ("to_shuffled", "to_identity", "healthy"),
    [(0.5, 0.5, True), (0.95, 0.5, False), (0.5, 1.2, False), (float("nan"), 0.5, False)],
)
def test_health_rule(to_shuffled, to_identity, healthy):
    assert uses_latent(to_shuffled, to_identity) is healthy

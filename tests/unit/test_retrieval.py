"""PRE, MRR and H@k of a predictor on hand-built embeddings whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from sie.data.latents import relative_quaternion
from sie.data.pairs import pair_latents
from sie.evaluate.retrieval import (
    EmbeddingBank,
    mrr_and_hits,
    nearest_neighbours,
    predicted_embeddings,
    prediction_errors,
)

VIEWS = 6


@pytest.fixture(autouse=True)
def single_thread(one_thread):
    """Every test here runs on one thread (see tests/conftest.py)."""


def random_latents(objects: int, seed: int) -> np.ndarray:
    generator = np.random.default_rng(seed)
    values = generator.uniform(0.0, 1.0, size=(objects * VIEWS, 7))
    values[:, :3] = generator.uniform(-np.pi / 2, np.pi / 2, size=(objects * VIEWS, 3))
    return values


def matrix_embeddings(latents: np.ndarray) -> np.ndarray:
    """Each view's embedding is its flattened absolute rotation matrix (norm sqrt(3) for every view)."""
    return Rotation.from_euler("xyz", latents[:, :3]).as_matrix().reshape(-1, 9).astype(np.float32)


def quaternion_matrix(quaternion: torch.Tensor) -> torch.Tensor:
    """(B, 4) scipy-order (x, y, z, w) unit quaternions -> (B, 3, 3) rotation matrices (textbook formula)."""
    x, y, z, w = quaternion.unbind(dim=1)
    rows = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ]
    return torch.stack([torch.stack(row, dim=1) for row in rows], dim=1)


def perfect_predictor(source: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
    """R_t = R_s (R_s^-1 R_t): returns exactly the target view's matrix embedding."""
    source_matrix = source.reshape(-1, 3, 3).double()
    return (source_matrix @ quaternion_matrix(latent[:, :4].double())).reshape(-1, 9).float()


def identity_predictor(source: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
    return source


def test_pair_latents_quaternion_and_rotcolor() -> None:
    latents = random_latents(1, 0)
    source, target = latents[[0, 0, 0]], latents[[0, 2, 4]]
    quaternion = pair_latents(source, target, "rotation")
    np.testing.assert_allclose(quaternion, relative_quaternion(source, target), atol=1e-6)
    np.testing.assert_allclose(quaternion[0], [0, 0, 0, 1], atol=1e-6)
    rotcolor = pair_latents(source, target, "rotcolor")
    assert rotcolor.shape == (3, 6) and rotcolor.dtype == np.float32
    np.testing.assert_allclose(rotcolor[:, :4], quaternion)
    np.testing.assert_allclose(rotcolor[:, 4], target[:, 3] - source[:, 3], atol=1e-6)
    np.testing.assert_allclose(rotcolor[:, 5], target[:, 6] - source[:, 6], atol=1e-6)
    with pytest.raises(ValueError, match="unknown latent kind"):
        pair_latents(source, target, "euler")


@pytest.mark.parametrize("latent", ["rotation", "rotcolor"])
def test_predictions_come_from_view_zero_with_the_right_latent(latent: str) -> None:
    latents = random_latents(3, 1)
    embeddings = np.random.default_rng(1).normal(size=(3 * VIEWS, 5)).astype(np.float32)
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def recording(source: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        seen.append((source, condition))
        return 2.0 * source

    raw = predicted_embeddings(
        embeddings, latents, VIEWS, recording, range(1, 3), latent=latent, normalize=False
    )
    sources, condition = seen[0]
    expected_sources = np.repeat(embeddings[[VIEWS, 2 * VIEWS]], VIEWS, axis=0)
    np.testing.assert_allclose(sources.numpy(), expected_sources)
    source_latents = np.repeat(latents[[VIEWS, 2 * VIEWS]], VIEWS, axis=0)
    expected_condition = pair_latents(source_latents, latents[VIEWS:], latent)
    np.testing.assert_allclose(condition.numpy(), expected_condition, atol=1e-6)
    np.testing.assert_allclose(raw.numpy(), 2.0 * expected_sources, atol=1e-6)
    unit = predicted_embeddings(embeddings, latents, VIEWS, recording, range(1, 3), latent=latent)
    np.testing.assert_allclose(unit.norm(dim=1).numpy(), 1.0, atol=1e-6)


def test_ranks_with_identity_predictor_are_view_positions() -> None:
    # Per object, view v lies at angle 0.2 v from view 0 in a random plane: the prediction for every query
    # is view 0's embedding, so scores decrease with v and the true view t has rank t + 1.
    generator = np.random.default_rng(2)
    objects, angles = 4, 0.2 * np.arange(VIEWS)
    embeddings = np.empty((objects * VIEWS, 7), dtype=np.float32)
    for index in range(objects):
        first, second = np.linalg.qr(generator.normal(size=(7, 2)))[0].T
        embeddings[index * VIEWS : (index + 1) * VIEWS] = np.outer(np.cos(angles), first) + np.outer(
            np.sin(angles), second
        )
    latents = random_latents(objects, 2)
    result = mrr_and_hits(embeddings, latents, VIEWS, identity_predictor, query_chunk=2 * VIEWS + 1)
    ranks = np.arange(1, VIEWS + 1)
    assert result["MRR"] == pytest.approx(np.mean(1.0 / ranks))
    assert result["H@1"] == pytest.approx(1 / VIEWS)
    assert result["H@2"] == pytest.approx(2 / VIEWS)
    assert result["H@5"] == pytest.approx(5 / VIEWS)
    assert result["H@10"] == pytest.approx(1.0)  # k capped at the number of candidates


def test_ties_are_ranked_pessimistically() -> None:
    # A collapsed model: every embedding equal, so all candidates tie and every rank is the worst.
    embeddings = np.ones((2 * VIEWS, 3), dtype=np.float32)
    result = mrr_and_hits(embeddings, random_latents(2, 3), VIEWS, identity_predictor)
    assert result["MRR"] == pytest.approx(1 / VIEWS)
    assert result["H@1"] == 0.0 and result["H@5"] == 0.0 and result["H@10"] == 1.0


def test_perfect_predictor_gives_perfect_ranks_and_zero_pre() -> None:
    latents = random_latents(5, 4)
    embeddings = matrix_embeddings(latents)
    counted: list[int] = []
    result = mrr_and_hits(
        embeddings, latents, VIEWS, perfect_predictor, query_chunk=7, progress=counted.append
    )
    assert result["MRR"] == 1.0 and result["H@1"] == 1.0
    assert sum(counted) == len(embeddings)
    bank = EmbeddingBank([embeddings[:11], embeddings[11:]], bank_chunk=4)
    pre = prediction_errors(embeddings, latents, VIEWS, perfect_predictor, bank, [latents[:11], latents[11:]])
    assert pre["PRE"] < 1e-9 and pre["queries"] == len(embeddings)


def test_pre_against_a_mixed_bank_and_a_fixed_neighbour() -> None:
    # The predictor always points at bank row 3 of the second array (global row 10 + 3): PRE is the mean
    # half-angle sine squared between each query's rotation and that row's rotation.
    queries_latents = random_latents(2, 5)
    bank_latents = [random_latents(1, 6)[:4], random_latents(1, 7)]
    bank_arrays = [np.eye(9, dtype=np.float32)[[0, 1, 2, 4]], np.eye(9, dtype=np.float32)[[5, 6, 7, 8, 3, 0]]]
    target = torch.from_numpy(np.eye(9, dtype=np.float32)[3])

    def pointing(source: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        return target.expand(len(source), 9) * 5.0

    embeddings = matrix_embeddings(queries_latents)
    bank = EmbeddingBank(bank_arrays)
    result = prediction_errors(
        embeddings, queries_latents, VIEWS, pointing, bank, bank_latents, query_chunk=5
    )
    chosen = Rotation.from_euler("xyz", np.repeat(bank_latents[1][4:5, :3], len(embeddings), axis=0))
    angles = (Rotation.from_euler("xyz", queries_latents[:, :3]).inv() * chosen).magnitude()
    assert result["PRE"] == pytest.approx(np.mean(np.sin(angles / 2) ** 2), abs=1e-9)
    with pytest.raises(ValueError, match="row for row"):
        prediction_errors(embeddings, queries_latents, VIEWS, pointing, bank, bank_latents[:1])


def test_nearest_neighbours_hand_built_and_normalisation() -> None:
    first = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dtype=np.float32)
    second = np.array([[0.7, 0.7], [10.0, 0.0]], dtype=np.float32)
    queries = np.array([[1.0, 0.1], [0.6, 0.8], [-0.2, -3.0], [1.0, 1.0]], dtype=np.float32)
    normalised = nearest_neighbours(queries, EmbeddingBank([first, second], bank_chunk=2), query_chunk=3)
    # [1, 0.1] ties between rows 0 and 4 (both [1, 0] once normalised): the first row wins, as argmax.
    np.testing.assert_array_equal(normalised, [0, 3, 2, 3])
    raw = nearest_neighbours(queries, EmbeddingBank([first, second], normalize=False), query_chunk=3)
    np.testing.assert_array_equal(raw, [4, 4, 2, 4])


def brute_force(queries: np.ndarray, bank: np.ndarray) -> np.ndarray:
    unit_queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    unit_bank = bank / np.linalg.norm(bank, axis=1, keepdims=True)
    return np.argmax(unit_queries @ unit_bank.T, axis=1)


@pytest.mark.parametrize(("query_chunk", "bank_chunk"), [(1, 37), (41, 1), (7, 13), (32, 64), (1000, 1000)])
@pytest.mark.parametrize("resident", [True, False])
def test_chunked_search_equals_brute_force(query_chunk: int, bank_chunk: int, resident: bool) -> None:
    generator = np.random.default_rng(8)
    queries = generator.normal(size=(97, 16))
    arrays = [generator.normal(size=(203, 16)), generator.normal(size=(50, 16))]
    expected = brute_force(queries, np.concatenate(arrays))
    for dtype in (torch.float64, torch.float32):
        bank = EmbeddingBank(
            arrays, dtype=dtype, bank_chunk=bank_chunk, max_resident_bytes=10**9 if resident else 0
        )
        assert (bank._resident is not None) == resident
        found = nearest_neighbours(queries, bank, query_chunk=query_chunk)
        np.testing.assert_array_equal(found, expected)


def test_bfloat16_search_finds_near_best_neighbours() -> None:
    generator = np.random.default_rng(9)
    queries, bank_array = generator.normal(size=(64, 32)), generator.normal(size=(500, 32))
    found = nearest_neighbours(queries, EmbeddingBank([bank_array], dtype=torch.bfloat16, bank_chunk=128))
    unit_queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    unit_bank = bank_array / np.linalg.norm(bank_array, axis=1, keepdims=True)
    scores = unit_queries @ unit_bank.T
    best = scores.max(axis=1)
    assert np.all(scores[np.arange(64), found] > best - 0.02)
    assert np.mean(found == scores.argmax(axis=1)) > 0.8

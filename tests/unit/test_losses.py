"""Loss terms and metrics against independent computations (numpy, explicit loops, torch.cov)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sie.models import losses


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


def test_mean_squared_error_is_mean_over_all_entries(generator: torch.Generator) -> None:
    first, second = torch.randn(5, 3, generator=generator), torch.randn(5, 3, generator=generator)
    expected = np.mean((first.numpy() - second.numpy()) ** 2)
    assert losses.mean_squared_error(first, second).item() == pytest.approx(expected, rel=1e-6)
    assert losses.invariance_loss is losses.mean_squared_error


def test_variance_hinge_matches_numpy(generator: torch.Generator) -> None:
    # Columns with small and large spread, so that the hinge is active on some and inactive on others.
    embeddings = torch.randn(16, 6, generator=generator) * torch.tensor([0.1, 0.5, 0.9, 1.5, 3.0, 0.0])
    array = embeddings.double().numpy()
    standard_deviation = np.sqrt(array.var(axis=0, ddof=1) + 1e-4)
    expected = np.mean(np.maximum(0.0, 1.0 - standard_deviation))
    assert losses.variance_loss(embeddings).item() == pytest.approx(expected, rel=1e-5)


def covariance_by_loops(matrix: np.ndarray) -> float:
    rows, dims = matrix.shape
    means = [sum(matrix[n, j] for n in range(rows)) / rows for j in range(dims)]
    total = 0.0
    for i in range(dims):
        for j in range(dims):
            if i != j:
                entry = sum((matrix[n, i] - means[i]) * (matrix[n, j] - means[j]) for n in range(rows))
                total += (entry / (rows - 1)) ** 2
    return total / dims


def test_covariance_matches_loops_and_torch_cov(generator: torch.Generator) -> None:
    embeddings = torch.randn(7, 5, generator=generator, dtype=torch.float64)
    embeddings[:, 1] += 0.8 * embeddings[:, 0]
    value = losses.covariance_loss(embeddings).item()
    assert value == pytest.approx(covariance_by_loops(embeddings.numpy()), rel=1e-10)
    covariance = torch.cov(embeddings.T)
    off_diagonal = covariance - torch.diag(torch.diag(covariance))
    assert value == pytest.approx((off_diagonal**2).sum().item() / 5, rel=1e-10)


def test_covariance_uses_actual_row_count_not_configured_batch(generator: torch.Generator) -> None:
    """Deliberate difference from the original: divide by N - 1 with N the real row count
    (docs/differences.md#covariance-denominator).

    The original divides by the configured global batch size; on a partial last batch of 960 rows out
    of 1024 its value is ((960 - 1) / (1024 - 1))^2 times ours.
    """
    embeddings = torch.randn(960, 4, generator=generator, dtype=torch.float64)
    centred = embeddings - embeddings.mean(dim=0)
    product = centred.T @ centred
    off_diagonal = product - torch.diag(torch.diag(product))
    original = ((off_diagonal / (1024 - 1)) ** 2).sum().item() / 4
    ours = losses.covariance_loss(embeddings).item()
    assert ours == pytest.approx(((off_diagonal / (960 - 1)) ** 2).sum().item() / 4, rel=1e-12)
    assert original == pytest.approx(ours * ((960 - 1) / (1024 - 1)) ** 2, rel=1e-12)
    assert ours != pytest.approx(original, rel=1e-3)


def nt_xent_by_loops(first: np.ndarray, second: np.ndarray, temperature: float) -> float:
    rows = len(first)
    stacked = np.concatenate([first, second])
    stacked = stacked / np.linalg.norm(stacked, axis=1, keepdims=True)
    total = 0.0
    for anchor in range(2 * rows):
        positive = anchor + rows if anchor < rows else anchor - rows
        similarities = {
            other: float(stacked[anchor] @ stacked[other]) / temperature for other in range(2 * rows)
        }
        denominator = sum(math.exp(similarities[other]) for other in range(2 * rows) if other != anchor)
        total += -math.log(math.exp(similarities[positive]) / denominator)
    return total / (2 * rows)


@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0])
def test_nt_xent_matches_loops(generator: torch.Generator, temperature: float) -> None:
    first = torch.randn(6, 4, generator=generator, dtype=torch.float64)
    second = first + 0.3 * torch.randn(6, 4, generator=generator, dtype=torch.float64)
    value = losses.nt_xent_loss(first, second, temperature).item()
    assert value == pytest.approx(nt_xent_by_loops(first.numpy(), second.numpy(), temperature), rel=1e-10)
    # Symmetric in its two arguments: both sides act as anchors.
    assert losses.nt_xent_loss(second, first, temperature).item() == pytest.approx(value, rel=1e-12)


def test_nt_xent_perfect_pairs_of_orthogonal_rows() -> None:
    """Orthogonal one-hot rows, positive identical: each anchor has logits 1/t (positive) and 0 (2N-2)."""
    rows, temperature = 3, 0.5
    identity = torch.eye(rows, dtype=torch.float64)
    expected = -math.log(math.exp(1 / temperature) / (math.exp(1 / temperature) + 2 * rows - 2))
    assert losses.nt_xent_loss(identity, identity, temperature).item() == pytest.approx(expected)


def test_gradients_float64(generator: torch.Generator) -> None:
    def sample(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, dtype=torch.float64).requires_grad_()

    scaled = (sample(6, 3) * 0.4).detach().requires_grad_()  # std < 1: the hinge is active
    assert torch.autograd.gradcheck(losses.variance_loss, (scaled,))
    assert torch.autograd.gradcheck(losses.covariance_loss, (sample(6, 4),))
    assert torch.autograd.gradcheck(lambda a, b: losses.nt_xent_loss(a, b, 0.3), (sample(4, 3), sample(4, 3)))
    assert torch.autograd.gradcheck(losses.mean_squared_error, (sample(4, 3), sample(4, 3)))


def test_terms_are_float32_under_autocast(generator: torch.Generator) -> None:
    first = torch.randn(8, 5, generator=generator)
    second = torch.randn(8, 5, generator=generator)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        half_first, half_second = (first @ torch.eye(5)), (second @ torch.eye(5))
        assert half_first.dtype == torch.bfloat16
        values = {
            "mse": losses.mean_squared_error(half_first, half_second),
            "variance": losses.variance_loss(half_first),
            "covariance": losses.covariance_loss(half_first),
            "nt_xent": losses.nt_xent_loss(half_first, half_second, 0.1),
        }
    expected = {
        "mse": losses.mean_squared_error(half_first.float(), half_second.float()),
        "variance": losses.variance_loss(half_first.float()),
        "covariance": losses.covariance_loss(half_first.float()),
        "nt_xent": losses.nt_xent_loss(half_first.float(), half_second.float(), 0.1),
    }
    for name, value in values.items():
        assert value.dtype == torch.float32, name
        torch.testing.assert_close(value, expected[name])


def test_global_r2_uses_one_mean_over_all_entries(generator: torch.Generator) -> None:
    target = torch.randn(20, 4, generator=generator, dtype=torch.float64) + torch.tensor([0, 0, 0, 2.0])
    prediction = target + 0.5 * torch.randn(20, 4, generator=generator, dtype=torch.float64)
    array, predicted = target.numpy(), prediction.numpy()
    expected = 1 - ((array - predicted) ** 2).sum() / ((array - array.mean()) ** 2).sum()
    assert losses.global_r2(prediction, target).item() == pytest.approx(expected, rel=1e-12)
    per_dimension = 1 - ((array - predicted) ** 2).sum() / ((array - array.mean(axis=0)) ** 2).sum()
    assert losses.global_r2(prediction, target).item() > per_dimension
    assert losses.global_r2(target, target).item() == 1.0
    constant = torch.full_like(target, target.mean().item())
    assert losses.global_r2(constant, target).item() == pytest.approx(0.0, abs=1e-12)


def test_top_k_accuracy_matches_loops(generator: torch.Generator) -> None:
    logits = torch.randn(30, 7, generator=generator)
    labels = torch.randint(0, 7, (30,), generator=generator)
    for k in (1, 3, 5, 7, 10):
        hits = 0
        for row, label in zip(logits.tolist(), labels.tolist(), strict=True):
            ranked = sorted(range(7), key=lambda index, row=row: -row[index])
            hits += label in ranked[: min(k, 7)]
        assert losses.top_k_accuracy(logits, labels, k).item() == pytest.approx(hits / 30)
    assert losses.top_k_accuracy(logits, labels, 7).item() == 1.0

"""Pure loss terms and metrics (docs/method.md#loss-terms, docs/evaluations.md#r2-global).

Every loss is a function of tensors only. Half-precision inputs are promoted to float32 and autocast is
disabled inside, so the terms are computed in float32 even in a mixed-precision step (float64 inputs stay
float64, which lets the tests use ``torch.autograd.gradcheck``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import torch
import torch.nn.functional as functional

VARIANCE_EPSILON = 1e-4
_LOW_PRECISION = (torch.float16, torch.bfloat16)

Function = TypeVar("Function", bound=Callable[..., torch.Tensor])


def _promote(value: object) -> object:
    if isinstance(value, torch.Tensor) and value.dtype in _LOW_PRECISION:
        return value.float()
    return value


def full_precision(function: Function) -> Function:
    """Decorator: run ``function`` with autocast disabled and half-precision tensor arguments in float32."""

    @functools.wraps(function)
    def wrapper(*arguments: object, **keywords: object) -> torch.Tensor:
        tensors = [value for value in arguments if isinstance(value, torch.Tensor)]
        device_type = tensors[0].device.type if tensors else "cpu"
        with torch.autocast(device_type=device_type, enabled=False):
            return function(
                *(_promote(value) for value in arguments),
                **{key: _promote(value) for key, value in keywords.items()},
            )

    return wrapper  # type: ignore[return-value]


@full_precision
def mean_squared_error(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over all entries of (prediction - target)^2 (PyTorch ``mean`` reduction)."""
    return functional.mse_loss(prediction, target)


# The invariance term, the equivariance (predictor) term and the AugSelf regression are all this MSE.
invariance_loss = mean_squared_error
predictor_loss = mean_squared_error
augself_loss = mean_squared_error


@full_precision
def variance_loss(embeddings: torch.Tensor, epsilon: float = VARIANCE_EPSILON) -> torch.Tensor:
    """Variance hinge V(Z) = mean_j relu(1 - sqrt(Var_unbiased(Z_j) + epsilon)) over the columns j."""
    standard_deviation = torch.sqrt(embeddings.var(dim=0, unbiased=True) + epsilon)
    return functional.relu(1.0 - standard_deviation).mean()


@full_precision
def covariance_loss(embeddings: torch.Tensor) -> torch.Tensor:
    """Covariance term C(Z) = (1/D) sum_{i != j} Cov(Z)_{ij}^2 with Cov = Zc^T Zc / (N - 1).

    N is the actual number of rows. Deliberate difference from the original code, which divides by the
    configured global batch size (docs/differences.md#covariance-denominator): the two agree except on
    the partial last batch of an epoch, where the original mis-scales the covariance.
    """
    rows, dims = embeddings.shape
    centred = embeddings - embeddings.mean(dim=0)
    covariance = centred.T @ centred / (rows - 1)
    off_diagonal = covariance - torch.diag(torch.diagonal(covariance))
    return off_diagonal.pow(2).sum() / dims


@full_precision
def nt_xent_loss(first: torch.Tensor, second: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent / InfoNCE of SimCLR on paired rows (docs/method.md#nt-xent).

    Rows are L2-normalised and stacked into 2N anchors; the positive of anchor k is k +- N, the
    negatives are the other 2N - 2 rows (self excluded). Mean over the 2N anchors.
    """
    rows = first.shape[0]
    stacked = functional.normalize(torch.cat([first, second], dim=0), dim=1)
    logits = stacked @ stacked.T / temperature
    self_mask = torch.eye(2 * rows, dtype=torch.bool, device=logits.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    indices = torch.arange(2 * rows, device=logits.device)
    positives = (indices + rows) % (2 * rows)
    return functional.cross_entropy(logits, positives)


@full_precision
def global_r2(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """R² with ONE target mean over all samples and dimensions, not sklearn's r2_score
    (docs/evaluations.md#r2-global)."""
    residual = (target - prediction).pow(2).sum()
    total = (target - target.mean()).pow(2).sum()
    return 1.0 - residual / total


def top_k_accuracy(logits: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """Fraction (in [0, 1]) of rows whose label is among the k largest logits (k capped at #classes)."""
    k = min(k, logits.shape[1])
    top = logits.topk(k, dim=1).indices
    return (top == labels.unsqueeze(1)).any(dim=1).float().mean()

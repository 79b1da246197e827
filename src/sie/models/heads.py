"""Projector, transformation-conditioned predictors and the AugSelf head (docs/method.md#heads).

Every width comes from the arguments (the config); nothing is tied to 512-d representations, 55 classes
or 50 views.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import torch
from torch import nn

NormLayer = Callable[[int], nn.Module]


def parse_widths(widths: str | Sequence[int]) -> list[int]:
    """ "2048-2048-2048" -> [2048, 2048, 2048]; an empty string gives []; a sequence is copied."""
    if isinstance(widths, str):
        return [int(part) for part in widths.split("-") if part.strip()]
    return [int(width) for width in widths]


def format_widths(widths: Sequence[int]) -> str:
    """[1024, 1024] -> "1024-1024" (the inverse of ``parse_widths``)."""
    return "-".join(str(width) for width in widths)


def scaled_widths(mlp: str, part_dims: int, total_dims: int) -> str:
    """Scale every projector width by a part's share of the representation: round(d * part / total).

    Used by the SIE split (docs/method.md#split): with mlp "2048-2048-2048" and a 256/512 split each part gets
    "1024-1024-1024".
    """
    widths = [round(width * part_dims / total_dims) for width in parse_widths(mlp)]
    if not widths or min(widths) < 1:
        raise ValueError(f"mlp {mlp!r} scaled by {part_dims}/{total_dims} gives empty widths {widths}")
    return format_widths(widths)


def build_projector(
    input_dim: int, mlp: str | Sequence[int], norm_layer: NormLayer = nn.BatchNorm1d
) -> tuple[nn.Sequential, int]:
    """Projector input_dim -> d1 -> ... -> dk: Linear+norm+ReLU per hidden layer, last Linear without bias.

    Returns the module and its output width dk.
    """
    widths = [input_dim, *parse_widths(mlp)]
    if len(widths) < 2:
        raise ValueError("the projector needs at least one width")
    layers: list[nn.Module] = []
    for in_width, out_width in itertools.pairwise(widths[:-1]):
        layers += [nn.Linear(in_width, out_width), norm_layer(out_width), nn.ReLU(inplace=True)]
    layers.append(nn.Linear(widths[-2], widths[-1], bias=False))
    return nn.Sequential(*layers), widths[-1]


class HypernetworkPredictor(nn.Module):
    """Predictor whose weights are generated from the transformation latent z (docs/method.md#hypernetwork).

    The generated network maps an embedding of width D through the hidden widths back to D. The
    generated vector holds, layer after layer, the (out, in) weight matrix in row-major order followed
    (with ``bias_pred``) by that layer's bias. The hypernetwork is ``linear`` (one Linear k -> #values,
    so W(z) is linear in z without ``bias_hypernet``) or ``deep`` (Linear k->k, ReLU, Linear k->k, ReLU,
    Linear k -> #values); ``bias_hypernet`` sets the bias of every hypernetwork layer.
    """

    def __init__(
        self,
        embedding_dim: int,
        latent_dim: int,
        hidden: str | Sequence[int] = "",
        hypernetwork: str = "linear",
        bias_pred: bool = False,
        bias_hypernet: bool = False,
        predictor_relu: bool = False,
    ) -> None:
        super().__init__()
        self.widths = [embedding_dim, *parse_widths(hidden), embedding_dim]
        self.bias_pred = bias_pred
        self.layer_sizes = [
            out_width * in_width + (out_width if bias_pred else 0)
            for in_width, out_width in itertools.pairwise(self.widths)
        ]
        self.num_values = sum(self.layer_sizes)
        self.hypernet = _build_hypernet(latent_dim, self.num_values, hypernetwork, bias_hypernet)
        self.activation: nn.Module = nn.ReLU() if predictor_relu else nn.Identity()

    def generated_layers(self, latent: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """Per-sample generated (weight (B, out, in), bias (B, out) or None) for each layer."""
        values = self.hypernet(latent)
        layers = []
        start = 0
        for in_width, out_width in itertools.pairwise(self.widths):
            weight = values[:, start : start + out_width * in_width].reshape(-1, out_width, in_width)
            start += out_width * in_width
            bias = None
            if self.bias_pred:
                bias = values[:, start : start + out_width]
                start += out_width
            layers.append((weight, bias))
        return layers

    def forward(self, embedding: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        """Apply each sample's generated network to its embedding: (B, D), (B, k) -> (B, D)."""
        layers = self.generated_layers(latent)
        out = embedding.unsqueeze(-1)  # (B, D, 1): one column per sample for the batched product
        for index, (weight, bias) in enumerate(layers):
            out = torch.bmm(weight, out)
            if bias is not None:
                out = out + bias.unsqueeze(-1)
            if index < len(layers) - 1:
                out = self.activation(out)
        # Squeeze only the singleton column axis so that a batch of one keeps its batch axis
        # (docs/differences.md#hypernetwork-squeeze).
        return out.squeeze(-1)


def _build_hypernet(latent_dim: int, num_values: int, kind: str, bias: bool) -> nn.Sequential:
    if kind == "linear":
        return nn.Sequential(nn.Linear(latent_dim, num_values, bias=bias))
    if kind == "deep":
        return nn.Sequential(
            nn.Linear(latent_dim, latent_dim, bias=bias),
            nn.ReLU(),
            nn.Linear(latent_dim, latent_dim, bias=bias),
            nn.ReLU(),
            nn.Linear(latent_dim, num_values, bias=bias),
        )
    raise ValueError(f"unknown hypernetwork {kind!r}; known: ['deep', 'linear']")


class MLPPredictor(nn.Module):
    """Predictor on the concatenation [z; e] (latent first), docs/method.md#mlp-predictor.

    ``num_layers`` = 1: Linear (D + k) -> D. ``num_layers`` = n >= 2: Linear (D + k) -> D, then n - 1
    Linear D -> D, with ReLU between consecutive layers and none after the last.
    """

    def __init__(self, embedding_dim: int, latent_dim: int, num_layers: int = 1) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"tf_num_layers must be >= 1, got {num_layers}")
        layers: list[nn.Module] = [nn.Linear(embedding_dim + latent_dim, embedding_dim)]
        for _ in range(num_layers - 1):
            layers += [nn.ReLU(), nn.Linear(embedding_dim, embedding_dim)]
        self.net = nn.Sequential(*layers)

    def forward(self, embedding: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        """(B, D), (B, k) -> (B, D)."""
        return self.net(torch.cat([latent, embedding], dim=1))


def build_predictor(
    predictor_type: str,
    embedding_dim: int,
    latent_dim: int,
    *,
    hypernetwork: str = "linear",
    hidden: str = "",
    predictor_relu: bool = False,
    bias_pred: bool = False,
    bias_hypernet: bool = False,
    tf_num_layers: int = 1,
) -> nn.Module:
    """Build the "hypernetwork" or "mlp" predictor; both are called as ``predictor(embedding, latent)``."""
    if predictor_type == "hypernetwork":
        return HypernetworkPredictor(
            embedding_dim, latent_dim, hidden, hypernetwork, bias_pred, bias_hypernet, predictor_relu
        )
    if predictor_type == "mlp":
        return MLPPredictor(embedding_dim, latent_dim, tf_num_layers)
    raise ValueError(f"unknown predictor_type {predictor_type!r}; known: ['hypernetwork', 'mlp']")


class AugSelfHead(nn.Module):
    """AugSelf head (docs/method.md#augself-head): [r_x; r_y] (2R) -> 2R -> ReLU -> 2R -> ReLU -> k."""

    def __init__(self, representation_dim: int, latent_dim: int) -> None:
        super().__init__()
        width = 2 * representation_dim
        self.net = nn.Sequential(
            nn.Linear(width, width),
            nn.ReLU(),
            nn.Linear(width, width),
            nn.ReLU(),
            nn.Linear(width, latent_dim),
        )

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """Regress the transformation latent from the two (non-detached) representations."""
        return self.net(torch.cat([first, second], dim=1))

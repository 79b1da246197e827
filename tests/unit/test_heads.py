"""Projector, predictors, AugSelf head and online probes (docs/method.md#heads,
docs/method.md#online-evaluator)."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from sie.models.heads import (
    AugSelfHead,
    HypernetworkPredictor,
    MLPPredictor,
    build_predictor,
    build_projector,
    parse_widths,
    scaled_widths,
)
from sie.models.online import OnlineEvaluator


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(7)


def test_parse_and_scale_widths() -> None:
    assert parse_widths("2048-2048-2048") == [2048, 2048, 2048]
    assert parse_widths("") == []
    # The table of docs/method.md#split: --equi 128 / 256 / 384 of a 512-d representation.
    assert scaled_widths("2048-2048-2048", 512 - 128, 512) == "1536-1536-1536"
    assert scaled_widths("2048-2048-2048", 128, 512) == "512-512-512"
    assert scaled_widths("2048-2048-2048", 256, 512) == "1024-1024-1024"
    assert scaled_widths("32-16", 16, 64) == "8-4"
    with pytest.raises(ValueError, match="empty"):
        scaled_widths("4-4", 1, 512)


def test_projector_structure() -> None:
    projector, output_dim = build_projector(10, "16-12-8")
    assert output_dim == 8
    kinds = [type(layer) for layer in projector]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    linears = [layer for layer in projector if isinstance(layer, nn.Linear)]
    assert [(layer.in_features, layer.out_features) for layer in linears] == [(10, 16), (16, 12), (12, 8)]
    assert [layer.bias is not None for layer in linears] == [True, True, False]
    assert projector(torch.randn(4, 10)).shape == (4, 8)
    single, _ = build_projector(10, "6")
    assert len(single) == 1 and single[0].bias is None


def generated_network_by_loops(
    predictor: HypernetworkPredictor, embedding: torch.Tensor, latent: torch.Tensor, relu: bool
) -> torch.Tensor:
    """Slice each sample's generated vector by hand and apply it with a per-sample matrix product."""
    widths = predictor.widths
    outputs = []
    for sample in range(embedding.shape[0]):
        values = predictor.hypernet(latent[sample : sample + 1])[0]
        vector, start = embedding[sample], 0
        for layer, (in_width, out_width) in enumerate(itertools.pairwise(widths)):
            weight = values[start : start + out_width * in_width].reshape(out_width, in_width)
            start += out_width * in_width
            vector = weight @ vector
            if predictor.bias_pred:
                vector = vector + values[start : start + out_width]
                start += out_width
            if relu and layer < len(widths) - 2:
                vector = torch.relu(vector)
        assert start == predictor.num_values
        outputs.append(vector)
    return torch.stack(outputs)


@pytest.mark.parametrize(
    ("hidden", "hypernetwork", "bias_pred", "bias_hypernet", "relu"),
    [
        ("", "linear", False, False, False),
        ("5", "linear", True, True, True),
        ("5-3", "deep", True, False, False),
        ("", "deep", False, True, False),
    ],
)
def test_hypernetwork_matches_per_sample_network(
    generator: torch.Generator,
    hidden: str,
    hypernetwork: str,
    bias_pred: bool,
    bias_hypernet: bool,
    relu: bool,
) -> None:
    torch.manual_seed(0)
    predictor = HypernetworkPredictor(6, 4, hidden, hypernetwork, bias_pred, bias_hypernet, relu)
    embedding, latent = torch.randn(5, 6, generator=generator), torch.randn(5, 4, generator=generator)
    expected = generated_network_by_loops(predictor, embedding, latent, relu)
    torch.testing.assert_close(predictor(embedding, latent), expected)
    # A batch of one keeps its batch axis (docs/differences.md#hypernetwork-squeeze).
    assert predictor(embedding[:1], latent[:1]).shape == (1, 6)
    widths = [6, *[int(width) for width in hidden.split("-") if width], 6]
    expected_values = sum(a * b + (b if bias_pred else 0) for a, b in itertools.pairwise(widths))
    assert predictor.num_values == expected_values


def test_linear_hypernetwork_is_linear_in_latent(generator: torch.Generator) -> None:
    predictor = HypernetworkPredictor(8, 4)
    embedding = torch.randn(3, 8, generator=generator)
    first, second = torch.randn(3, 4, generator=generator), torch.randn(3, 4, generator=generator)
    torch.testing.assert_close(
        predictor(embedding, first + second), predictor(embedding, first) + predictor(embedding, second)
    )
    torch.testing.assert_close(predictor(embedding, -2.5 * first), -2.5 * predictor(embedding, first))
    (weight_scaled, _), (weight, _) = (
        predictor.generated_layers(3 * first)[0],
        predictor.generated_layers(first)[0],
    )
    torch.testing.assert_close(weight_scaled, 3 * weight)
    assert predictor(embedding, torch.zeros(3, 4)).abs().max() == 0
    assert isinstance(predictor.hypernet[0], nn.Linear) and predictor.hypernet[0].bias is None


def test_hypernetwork_sizes() -> None:
    sie = HypernetworkPredictor(1024, 4)
    assert sum(parameter.numel() for parameter in sie.parameters()) == 4_194_304
    deep = HypernetworkPredictor(3, 6, hypernetwork="deep", bias_hypernet=True)
    shapes = [
        (layer.in_features, layer.out_features) for layer in deep.hypernet if isinstance(layer, nn.Linear)
    ]
    assert shapes == [(6, 6), (6, 6), (6, 9)]
    assert [type(layer) for layer in deep.hypernet][1::2] == [nn.ReLU, nn.ReLU]
    with pytest.raises(ValueError, match="hypernetwork"):
        HypernetworkPredictor(3, 4, hypernetwork="wide")


def test_mlp_predictor(generator: torch.Generator) -> None:
    single = MLPPredictor(6, 4, num_layers=1)
    assert [(layer.in_features, layer.out_features) for layer in single.net] == [(10, 6)]
    embedding, latent = torch.randn(3, 6, generator=generator), torch.randn(3, 4, generator=generator)
    layer = single.net[0]
    expected = latent @ layer.weight[:, :4].T + embedding @ layer.weight[:, 4:].T + layer.bias
    torch.testing.assert_close(single(embedding, latent), expected)  # latent first
    deep = MLPPredictor(6, 4, num_layers=3)
    assert [type(module) for module in deep.net] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]
    assert deep(embedding, latent).shape == (3, 6)
    assert isinstance(build_predictor("mlp", 6, 6, tf_num_layers=2), MLPPredictor)
    with pytest.raises(ValueError, match="predictor_type"):
        build_predictor("transformer", 6, 4)


def test_augself_head_widths_follow_representation() -> None:
    head = AugSelfHead(representation_dim=12, latent_dim=6)
    shapes = [(layer.in_features, layer.out_features) for layer in head.net if isinstance(layer, nn.Linear)]
    assert shapes == [(24, 24), (24, 24), (24, 6)]
    assert head(torch.randn(2, 12), torch.randn(2, 12)).shape == (2, 6)


def test_online_evaluator_heads_and_metrics(generator: torch.Generator) -> None:
    evaluator = OnlineEvaluator(6, 2, 5, 3, num_classes=7)
    assert set(evaluator.classifiers) == {
        "representations",
        "representations-inv",
        "embeddings",
        "embeddings-inv",
    }
    assert set(evaluator.rotation_heads) == {
        "representations",
        "representations-equi",
        "embeddings",
        "embeddings-equi",
    }
    assert evaluator.rotation_heads["representations-equi"][0].in_features == 4
    representations = (torch.randn(4, 8, generator=generator), torch.randn(4, 8, generator=generator))
    embeddings = (torch.randn(4, 8, generator=generator), torch.randn(4, 8, generator=generator))
    labels, rotation = torch.randint(0, 7, (4,), generator=generator), torch.randn(4, 4, generator=generator)
    loss, metrics = evaluator(representations, embeddings, labels, rotation)
    sums = sum(value for key, value in metrics.items() if key.endswith(("/ce", "/mse")))
    torch.testing.assert_close(loss, sums)
    assert "representations-inv/top5" in metrics and "embeddings-equi/r2" in metrics
    assert all(0 <= metrics[key] <= 1 for key in metrics if "/top" in key)
    only_equi = OnlineEvaluator(0, 8, 0, 8, num_classes=7)
    assert set(only_equi.classifiers) == {"representations", "embeddings"}

"""The 14 pre-training methods as models, each a short composition of loss terms (docs/method.md#methods).

A method is an entry of the torch-free registry ``sie.models.registry`` (name, latent, architecture
``layout``, logged terms, description) plus a loss function returning named (weight, unweighted term)
pairs; the SSL loss is their weighted sum. The layouts are described in ``sie.models.registry``.

The full embedding is always [inv part; equi part] (inv first); the predictor maps view x's equi part and
the latent z to view y's. Variance, covariance and NT-Xent use gathered tensors (``gather_with_grad``);
MSE terms use the local batch, as the original code.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from sie.dist import gather_with_grad
from sie.models import losses
from sie.models.backbone import build_backbone
from sie.models.heads import AugSelfHead, build_predictor, build_projector, scaled_widths
from sie.models.online import ROTATION_DIM, OnlineEvaluator
from sie.models.registry import LAYOUTS, MethodInfo
from sie.models.registry import METHODS as REGISTRY

WeightedTerms = dict[str, tuple[float, torch.Tensor]]
MODEL_CHOICES = {"predictor_type": ("hypernetwork", "mlp"), "hypernetwork": ("linear", "deep")}
"""The values ModelConfig's option keys accept (the schema's enums; a test checks that they agree)."""


@dataclass(frozen=True)
class ModelConfig:
    """Model and loss hyper-parameters; defaults are the original ``main.py`` defaults
    (docs/method.md#hyperparameters)."""

    arch: str = "resnet18"
    width: int = 64
    mlp: str = "2048-2048-2048"
    equi: int = 256
    predictor_type: str = "hypernetwork"
    hypernetwork: str = "linear"
    predictor: str = ""
    predictor_relu: bool = False
    bias_pred: bool = False
    bias_hypernet: bool = False
    tf_num_layers: int = 1
    sim_coeff: float = 10.0
    std_coeff: float = 10.0
    cov_coeff: float = 1.0
    equi_factor: float = 4.5
    simclr_temp: float = 0.1
    ec_weight: float = 1.0
    num_classes: int = 55

    def __post_init__(self) -> None:
        for key, allowed in MODEL_CHOICES.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"{key}={getattr(self, key)!r} is not one of {allowed}")
        for key in ("width", "tf_num_layers", "num_classes"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.simclr_temp <= 0:
            raise ValueError(f"simclr_temp must be positive, got {self.simclr_temp}")


@dataclass
class Features:
    """Intermediate outputs of one step, before any loss (also what the method tests re-derive from)."""

    representations: tuple[torch.Tensor, torch.Tensor]
    embeddings: tuple[torch.Tensor, torch.Tensor]
    inv_embedding_dims: int
    latent: torch.Tensor
    prediction: torch.Tensor | None = None
    augself_prediction: torch.Tensor | None = None

    @property
    def inv_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The invariant part (first dims) of both views' embeddings."""
        return tuple(vector[:, : self.inv_embedding_dims] for vector in self.embeddings)  # type: ignore[return-value]

    @property
    def equi_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The equivariant part (last dims) of both views' embeddings."""
        return tuple(vector[:, self.inv_embedding_dims :] for vector in self.embeddings)  # type: ignore[return-value]


@dataclass
class StepOutput:
    """What one forward pass returns to the training loop."""

    loss: torch.Tensor
    terms: dict[str, torch.Tensor]
    metrics: dict[str, torch.Tensor]


LossFunction = Callable[[Features, ModelConfig], WeightedTerms]


@dataclass(frozen=True)
class MethodSpec(MethodInfo):
    """A registry entry (``sie.models.registry.MethodInfo``) with its loss composition."""

    loss: LossFunction = dataclasses.field(kw_only=True)


# ----------------------------------------------------------------------------------------------- losses


def _variance_covariance(
    first: torch.Tensor, second: torch.Tensor, config: ModelConfig, prefix: str = "", factor: float = 1.0
) -> WeightedTerms:
    """VICReg regulariser on gathered embeddings: std weight * (V(x)+V(y))/2 + cov weight * (C(x)+C(y))."""
    first, second = gather_with_grad(first), gather_with_grad(second)
    variance = (losses.variance_loss(first) + losses.variance_loss(second)) / 2
    covariance = losses.covariance_loss(first) + losses.covariance_loss(second)
    return {
        f"{prefix}variance": (factor * config.std_coeff, variance),
        f"{prefix}covariance": (factor * config.cov_coeff, covariance),
    }


def _predictor_variance(features: Features, config: ModelConfig) -> WeightedTerms:
    """Variance hinge of the gathered predictions, weighted by half the std coefficient."""
    return {
        "predictor_variance": (
            config.std_coeff / 2,
            losses.variance_loss(gather_with_grad(features.prediction)),
        )
    }


def _nt_xent(first: torch.Tensor, second: torch.Tensor, config: ModelConfig) -> torch.Tensor:
    return losses.nt_xent_loss(gather_with_grad(first), gather_with_grad(second), config.simclr_temp)


def vicreg_loss(features: Features, config: ModelConfig) -> WeightedTerms:
    """VICReg / VICRegPartInv: invariance on the inv embedding dims, variance + covariance on all dims."""
    inv_x, inv_y = features.inv_embeddings
    return {
        "invariance": (config.sim_coeff, losses.invariance_loss(inv_x, inv_y)),
        **_variance_covariance(*features.embeddings, config),
    }


def simclr_loss(features: Features, config: ModelConfig) -> WeightedTerms:
    """SimCLR: NT-Xent between the two views' embeddings."""
    return {"contrastive": (1.0, _nt_xent(*features.embeddings, config))}


def simclr_augself_loss(features: Features, config: ModelConfig) -> WeightedTerms:
    """SimCLR + ec_weight * MSE(AugSelf head([r_x; r_y]), z) with the full latent z as target."""
    regression = losses.augself_loss(features.augself_prediction, features.latent)
    return {**simclr_loss(features, config), "augself": (config.ec_weight, regression)}


def simclr_only_equi_loss(features: Features, config: ModelConfig) -> WeightedTerms:
    """NT-Xent between the predicted and the actual embedding of view y (no invariance term)."""
    return {"equivariance": (1.0, _nt_xent(features.prediction, features.embeddings[1], config))}


def simclr_equimod_loss(features: Features, config: ModelConfig, use_factor: bool = True) -> WeightedTerms:
    """NT-Xent(inv heads) + factor * NT-Xent(prediction, equi head of y); factor 1 if not use_factor."""
    factor = config.equi_factor if use_factor else 1.0
    equi_y = features.equi_embeddings[1]
    return {
        "contrastive": (1.0, _nt_xent(*features.inv_embeddings, config)),
        "equivariance": (factor, _nt_xent(features.prediction, equi_y, config)),
    }


def vicreg_equimod_loss(features: Features, config: ModelConfig) -> WeightedTerms:
    """VICReg on the inv head + equi_factor * [sim MSE(prediction, equi y) + VC on the equi head]."""
    factor = config.equi_factor
    equi_y = features.equi_embeddings[1]
    return {
        **vicreg_loss(features_part(features, "inv"), config),
        "equivariance": (factor * config.sim_coeff, losses.predictor_loss(features.prediction, equi_y)),
        **_variance_covariance(*features.equi_embeddings, config, prefix="equivariance_", factor=factor),
    }


def sie_only_equi_loss(features: Features, config: ModelConfig) -> WeightedTerms:
    """sim MSE(prediction, e_y) + VC(e) + std/2 * V(prediction); equi_factor is not used
    (docs/differences.md#equi-factor)."""
    return {
        "equivariance": (
            config.sim_coeff,
            losses.predictor_loss(features.prediction, features.embeddings[1]),
        ),
        **_variance_covariance(*features.embeddings, config),
        **_predictor_variance(features, config),
    }


def sie_loss(features: Features, config: ModelConfig, predictor_variance: bool = True) -> WeightedTerms:
    """SIE: sim MSE(inv) + sim * equi_factor * MSE(prediction, equi y) + VC(full [inv; equi] embedding)
    (+ std/2 * V(prediction) unless ``predictor_variance`` is False, which is SIENoVar)."""
    inv_x, inv_y = features.inv_embeddings
    equi_y = features.equi_embeddings[1]
    terms = {
        "invariance": (config.sim_coeff, losses.invariance_loss(inv_x, inv_y)),
        "equivariance": (
            config.sim_coeff * config.equi_factor,
            losses.predictor_loss(features.prediction, equi_y),
        ),
        **_variance_covariance(*features.embeddings, config),
    }
    if predictor_variance:
        terms.update(_predictor_variance(features, config))
    return terms


def features_part(features: Features, part: str) -> Features:
    """The same features restricted to the inv (or equi) embedding part, with that part as invariant."""
    embeddings = features.inv_embeddings if part == "inv" else features.equi_embeddings
    return Features(features.representations, embeddings, embeddings[0].shape[1], features.latent)


# --------------------------------------------------------------------------------------------- registry


def _losses() -> dict[str, LossFunction]:
    """The loss composition of every registered method."""
    no_predictor_variance = functools.partial(sie_loss, predictor_variance=False)
    equimod_no_factor = functools.partial(simclr_equimod_loss, use_factor=False)
    return {
        "SIE": sie_loss,
        "SIENoVar": no_predictor_variance,
        "SIEOnlyEqui": sie_only_equi_loss,
        "SIERotColor": sie_loss,
        "VICReg": vicreg_loss,
        "VICRegPartInv": vicreg_loss,
        "VICRegEquiMod": vicreg_equimod_loss,
        "SimCLR": simclr_loss,
        "SimCLROnlyEqui": simclr_only_equi_loss,
        "SimCLROnlyEquiRotColor": simclr_only_equi_loss,
        "SimCLRAugSelf": simclr_augself_loss,
        "SimCLRAugSelfRotColor": simclr_augself_loss,
        "SimCLREquiMod": simclr_equimod_loss,
        "SimCLREquiModRotColor": equimod_no_factor,
    }


def _registry() -> dict[str, MethodSpec]:
    """Every entry of ``sie.models.registry`` with its loss, in the registry's order."""
    compositions = _losses()
    if set(compositions) != set(REGISTRY):
        raise RuntimeError(f"losses for {sorted(compositions)}, registry entries {sorted(REGISTRY)}")
    metadata = [field.name for field in dataclasses.fields(MethodInfo)]
    return {
        name: MethodSpec(**{key: getattr(info, key) for key in metadata}, loss=compositions[name])
        for name, info in REGISTRY.items()
    }


METHODS: dict[str, MethodSpec] = _registry()


def get_method(method: str) -> MethodSpec:
    """The registry entry of ``method``; ValueError listing the known names otherwise."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known methods: {', '.join(METHODS)}")
    return METHODS[method]


# ------------------------------------------------------------------------------------------------ model


class SSLModel(nn.Module):
    """Backbone + projector(s) + optional predictor / AugSelf head + online probes of one method.

    ``inv_dims`` is the number of representation dims of the invariant part (the first dims); the
    equivariant part is the rest. ``inv_embedding_dims`` is the same for the embedding.
    """

    def __init__(
        self,
        spec: MethodSpec,
        config: ModelConfig,
        norm_layer_2d: Callable[[int], nn.Module] = nn.BatchNorm2d,
        norm_layer_1d: Callable[[int], nn.Module] = nn.BatchNorm1d,
    ) -> None:
        super().__init__()
        if spec.layout not in LAYOUTS:
            raise ValueError(f"unknown layout {spec.layout!r}; known: {LAYOUTS}")
        self.spec, self.config = spec, config
        self.backbone, self.representation_dim = build_backbone(
            config.arch, config.width, zero_init_residual=True, norm_layer=norm_layer_2d
        )
        self.inv_dims, equi_embedding_dims = self._build_projectors(norm_layer_1d)
        self.inv_embedding_dims = self.embedding_dim - equi_embedding_dims
        self.predictor: nn.Module | None = None
        if spec.has_predictor:
            self.predictor = build_predictor(
                config.predictor_type,
                equi_embedding_dims,
                spec.latent_dim,
                hypernetwork=config.hypernetwork,
                hidden=config.predictor,
                predictor_relu=config.predictor_relu,
                bias_pred=config.bias_pred,
                bias_hypernet=config.bias_hypernet,
                tf_num_layers=config.tf_num_layers,
            )
        self.augself_head = AugSelfHead(self.representation_dim, spec.latent_dim) if spec.augself else None
        self.evaluator = OnlineEvaluator(
            self.inv_dims,
            self.representation_dim - self.inv_dims,
            self.inv_embedding_dims,
            equi_embedding_dims,
            config.num_classes,
        )

    def _build_projectors(self, norm_layer: Callable[[int], nn.Module]) -> tuple[int, int]:
        """Create the projector(s); return (inv representation dims, equi embedding dims)."""
        layout, config, width = self.spec.layout, self.config, self.representation_dim
        if layout in ("invariant", "partial", "equivariant"):
            self.projector, self.embedding_dim = build_projector(width, config.mlp, norm_layer)
            if layout == "invariant":
                return width, 0
            if layout == "equivariant":
                return 0, self.embedding_dim
            if not 0 <= config.equi < self.embedding_dim:
                raise ValueError(f"equi={config.equi} must be in [0, {self.embedding_dim}) embedding dims")
            return width, config.equi
        if layout == "split":
            if not 0 < config.equi < width:
                raise ValueError(f"equi={config.equi} must be in (0, {width}) representation dims")
            inv_mlp = scaled_widths(config.mlp, width - config.equi, width)
            equi_mlp = scaled_widths(config.mlp, config.equi, width)
            self.projector_inv, inv_out = build_projector(width - config.equi, inv_mlp, norm_layer)
            self.projector_equi, equi_out = build_projector(config.equi, equi_mlp, norm_layer)
            self.embedding_dim = inv_out + equi_out
            return width - config.equi, equi_out
        self.projector_inv, inv_out = build_projector(width, config.mlp, norm_layer)
        self.projector_equi, equi_out = build_projector(width, config.mlp, norm_layer)
        self.embedding_dim = inv_out + equi_out
        return 0, equi_out

    def embed(self, representations: torch.Tensor) -> torch.Tensor:
        """The full embedding [inv part; equi part] of one view's representations."""
        if self.spec.layout == "split":
            inv = self.projector_inv(representations[:, : self.inv_dims])
            return torch.cat([inv, self.projector_equi(representations[:, self.inv_dims :])], dim=1)
        if self.spec.layout == "two_heads":
            return torch.cat([self.projector_inv(representations), self.projector_equi(representations)], 1)
        return self.projector(representations)

    def check_latent(self, latent: torch.Tensor) -> None:
        """ValueError unless ``latent`` is (B, 4) for rotation methods or (B, 6) for rotcolor methods."""
        expected = self.spec.latent_dim
        if latent.ndim != 2 or latent.shape[1] != expected:
            raise ValueError(
                f"{self.spec.name} uses the {self.spec.latent!r} latent: expected shape (batch, {expected}), "
                f"got {tuple(latent.shape)}"
            )

    def encode(self, view1: torch.Tensor, view2: torch.Tensor, latent: torch.Tensor) -> Features:
        """Representations, embeddings, prediction of view 2's equi embedding and AugSelf output."""
        self.check_latent(latent)
        representations = (self.backbone(view1), self.backbone(view2))
        embeddings = (self.embed(representations[0]), self.embed(representations[1]))
        features = Features(representations, embeddings, self.inv_embedding_dims, latent)
        if self.predictor is not None:
            features.prediction = self.predictor(features.equi_embeddings[0], latent)
        if self.augself_head is not None:
            features.augself_prediction = self.augself_head(*representations)
        return features

    def forward(
        self, view1: torch.Tensor, view2: torch.Tensor, latent: torch.Tensor, labels: torch.Tensor
    ) -> StepOutput:
        """One training step's loss (SSL + detached online probes), unweighted terms and probe metrics."""
        features = self.encode(view1, view2, latent)
        weighted = self.spec.loss(features, self.config)
        if tuple(weighted) != self.spec.terms:
            raise RuntimeError(
                f"{self.spec.name} computed terms {tuple(weighted)}, declared {self.spec.terms}"
            )
        ssl = sum(weight * term for weight, term in weighted.values())
        probe, metrics = self.evaluator(
            features.representations, features.embeddings, labels, latent[:, :ROTATION_DIM]
        )
        terms = {name: term.detach() for name, (_, term) in weighted.items()}
        terms["ssl"], terms["probe"] = ssl.detach(), probe.detach()
        return StepOutput(loss=ssl + probe, terms=terms, metrics=metrics)


def build_model(
    method: str,
    config: ModelConfig | None = None,
    norm_layer_2d: Callable[[int], nn.Module] = nn.BatchNorm2d,
    norm_layer_1d: Callable[[int], nn.Module] = nn.BatchNorm1d,
) -> SSLModel:
    """Build the model of a registered method (SIERotColor with ``predictor_type="mlp"`` gets a real
    6-input MLP predictor, where the original code could only build the hypernetwork:
    docs/differences.md#rotcolor-mlp-predictor)."""
    return SSLModel(get_method(method), config or ModelConfig(), norm_layer_2d, norm_layer_1d)

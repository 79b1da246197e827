"""The 14 pre-training methods as data: name, latent kind, architecture layout, logged loss terms and a
one-line description, in the paper's order (docs/method.md#methods).

This module imports no torch: the configuration's checks, the Snakefile, the tables and the CLI's
choices read it. ``sie.models.methods`` gives every entry its loss function and builds the models, so a
method is declared here once and composed there once. Layouts:

- ``invariant``: one projector on the whole representation, the embedding is all invariant;
- ``partial``: as ``invariant``, but the last ``equi`` EMBEDDING dims are left out of the invariance;
- ``equivariant``: one projector (unscaled mlp), the whole embedding goes through the predictor;
- ``split``: SIE, representation = [inv (R - equi); equi (equi)], one scaled projector per part;
- ``two_heads``: EquiMod, two unscaled projectors on the whole representation.

Latent kinds (the pair latent z the predictor or AugSelf head is given) are those of
``sie.data.latents.PAIR_LATENT_SIZES``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sie.data.latents import PAIR_LATENT_SIZES

LAYOUTS = ("invariant", "partial", "equivariant", "split", "two_heads")
PREDICTOR_LAYOUTS = ("equivariant", "split", "two_heads")
"""Layouts with a transformation-conditioned predictor (PRE/MRR evaluable)."""


@dataclass(frozen=True)
class MethodInfo:
    """One registry entry: latent kind, architecture layout, logged loss term names, one line for people."""

    name: str
    latent: str
    layout: str
    terms: tuple[str, ...]
    description: str
    augself: bool = False

    def __post_init__(self) -> None:
        if self.latent not in PAIR_LATENT_SIZES:
            raise ValueError(
                f"{self.name}: unknown latent {self.latent!r}; known: {sorted(PAIR_LATENT_SIZES)}"
            )
        if self.layout not in LAYOUTS:
            raise ValueError(f"{self.name}: unknown layout {self.layout!r}; known: {LAYOUTS}")

    @property
    def has_predictor(self) -> bool:
        """True when the method trains a transformation-conditioned predictor (PRE/MRR evaluable)."""
        return self.layout in PREDICTOR_LAYOUTS

    @property
    def latent_dim(self) -> int:
        """Width of the latent z fed to the method: 4 (quaternion) or 6 (quaternion + two hue diffs)."""
        return PAIR_LATENT_SIZES[self.latent]


_VICREG = ("invariance", "variance", "covariance")
_SIE = ("invariance", "equivariance", "variance", "covariance")

METHODS: dict[str, MethodInfo] = {
    method.name: method
    for method in (
        MethodInfo(
            "SIE",
            "rotation",
            "split",
            (*_SIE, "predictor_variance"),
            "the paper's method: invariant and equivariant parts, a predictor maps the equivariant part "
            "by the rotation",
        ),
        MethodInfo(
            "SIENoVar",
            "rotation",
            "split",
            _SIE,
            "SIE without the variance term on the predictor's outputs",
        ),
        MethodInfo(
            "SIEOnlyEqui",
            "rotation",
            "equivariant",
            ("equivariance", "variance", "covariance", "predictor_variance"),
            "SIE with no invariant part: the whole embedding goes through the predictor",
        ),
        MethodInfo(
            "SIERotColor",
            "rotcolor",
            "split",
            (*_SIE, "predictor_variance"),
            "SIE conditioned on the rotation and the floor and light hue changes",
        ),
        MethodInfo(
            "VICReg",
            "rotation",
            "invariant",
            _VICREG,
            "invariant baseline: invariance, variance and covariance on the whole embedding",
        ),
        MethodInfo(
            "VICRegPartInv",
            "rotation",
            "partial",
            _VICREG,
            "VICReg with the last `equi` embedding dims left out of the invariance term",
        ),
        MethodInfo(
            "VICRegEquiMod",
            "rotation",
            "two_heads",
            (*_VICREG, "equivariance", "equivariance_variance", "equivariance_covariance"),
            "EquiMod on VICReg: an invariant head and an equivariant head with a predictor",
        ),
        MethodInfo(
            "SimCLR",
            "rotation",
            "invariant",
            ("contrastive",),
            "invariant baseline: NT-Xent between the two views' embeddings",
        ),
        MethodInfo(
            "SimCLROnlyEqui",
            "rotation",
            "equivariant",
            ("equivariance",),
            "NT-Xent between the predicted and the actual embedding of the second view",
        ),
        MethodInfo(
            "SimCLROnlyEquiRotColor",
            "rotcolor",
            "equivariant",
            ("equivariance",),
            "SimCLROnlyEqui conditioned on the rotation and the hue changes",
        ),
        MethodInfo(
            "SimCLRAugSelf",
            "rotation",
            "invariant",
            ("contrastive", "augself"),
            "SimCLR plus an AugSelf head regressing the rotation from both representations",
            augself=True,
        ),
        MethodInfo(
            "SimCLRAugSelfRotColor",
            "rotcolor",
            "invariant",
            ("contrastive", "augself"),
            "SimCLRAugSelf regressing the rotation and the hue changes",
            augself=True,
        ),
        MethodInfo(
            "SimCLREquiMod",
            "rotation",
            "two_heads",
            ("contrastive", "equivariance"),
            "EquiMod on SimCLR: NT-Xent on an invariant head, and on a predicted equivariant head "
            "weighted by equi_factor",
        ),
        MethodInfo(
            "SimCLREquiModRotColor",
            "rotcolor",
            "two_heads",
            ("contrastive", "equivariance"),
            "SimCLREquiMod conditioned on the rotation and the hue changes, equivariance weighted 1",
        ),
    )
}
"""Method name -> entry, in the paper's order (the order of tables, listings and tests)."""


def method_info(method: str) -> MethodInfo:
    """The registry entry of ``method``; ValueError listing the known names otherwise."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known methods: {', '.join(METHODS)}")
    return METHODS[method]

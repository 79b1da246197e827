"""What a 1-process and a multi-process run of ``sie pretrain`` must agree on, and how closely.

Adam divides each gradient by its own running magnitude. A gradient that is zero up to rounding
(always: the biases right before a BatchNorm, see :func:`pre_norm_biases`; by chance: any that crosses
zero) therefore moves its weight by a full learning rate in a direction set by float32 rounding noise,
and from the first step on the weights of two runs, and the losses computed from them, differ by
amounts left to chance (measured: 3e-3 relative on a loss after one step, for one seed in twelve).
So the runs compared here train with ``lr: 0`` (or ``lr: 1e-30`` where the workflow's schema wants
lr > 0: Adam then moves a weight by ~1e-30 at most): every step starts from the same weights, and

- the weights stay as they were (WEIGHTS_ATOL), and equal in both runs;
- each step's losses (global batch, reduced over ranks) differ by float32 rounding of the forward
  pass only: at most 2.2e-5 relative, measured over 12 seeds x 4 steps x 7 terms (GlobalBatchNorm's
  one-pass variance is a large part of it); LOSS_RTOL = 1e-3 leaves a 45x margin, while breaking the
  run on purpose (loss terms of the local batch only, both ranks on one shard) changes some loss by
  6% or more from step 1 on;
- Adam's first moment (``exp_avg``, a fixed weighted sum of the gradients of every step) differs by
  rounding only (summed over many pixels and through the whole network, the first layers' gradients
  carry the most): at most 2.8e-4 of its largest entry over 12 seeds; GRADIENT_ATOL = 1e-2 of it
  leaves a 36x margin, while gradients left unsynchronised (no DDP) are off by 0.36 or more.

Exact gradients of one step are compared in float64 in tests/method/test_distributed.py.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import nn

WEIGHTS_ATOL = 1e-20
LOSS_RTOL = 1e-3
GRADIENT_ATOL = 1e-2  # as a fraction of the largest |exp_avg| entry of the 1-process run
STRUCTURALLY_ZERO = 1e-5  # same; measured: at most 1.5e-7 (float32 rounding)


def pre_norm_biases(model: nn.Module) -> list[str]:
    """Names of the biases of Linear/Conv layers whose output goes straight into a BatchNorm.

    Their gradient is zero by construction: batch normalisation (on batch statistics) subtracts the
    batch mean, so adding a constant to its input changes nothing (BN(x + b) = BN(x)). What backward
    computes for them is rounding noise, not a quantity two runs can agree on.
    """
    names = []
    for prefix, module in model.named_modules():
        children = list(module.named_children())
        for (name, layer), (_, following) in itertools.pairwise(children):
            affine = isinstance(layer, (nn.Linear, nn.modules.conv._ConvNd)) and layer.bias is not None
            if affine and isinstance(following, nn.modules.batchnorm._BatchNorm):
                names.append(f"{prefix}.{name}.bias" if prefix else f"{name}.bias")
    return names


def assert_losses_agree(single: list[dict], double: list[dict]) -> None:
    """Same steps, same loss terms, every term of every step within LOSS_RTOL."""
    assert [record["step"] for record in double] == [record["step"] for record in single]
    terms = sorted(name for name in single[0] if name.startswith("loss/"))
    assert terms == sorted(name for name in double[0] if name.startswith("loss/"))
    for name in terms:
        np.testing.assert_allclose(
            [record[name] for record in double],
            [record[name] for record in single],
            rtol=LOSS_RTOL,
            err_msg=name,
        )


def assert_checkpoints_agree(single: dict, double: dict, model: nn.Module) -> None:
    """Two final checkpoints of ``lr: 0`` runs of ``model``'s method: the same weights, the same
    Adam first moment (structurally zero gradients: ~0 in both, named)."""
    names = [name for name, _ in model.named_parameters()]
    for name in names:
        torch.testing.assert_close(
            double["model"][name], single["model"][name], rtol=0, atol=WEIGHTS_ATOL, msg=name
        )
    first = [single["optimizer"]["state"][index]["exp_avg"] for index in range(len(names))]
    second = [double["optimizer"]["state"][index]["exp_avg"] for index in range(len(names))]
    scale = max(float(moment.abs().max()) for moment in first)
    zero = set(pre_norm_biases(model))
    assert zero, "the model has no bias right before a BatchNorm any more: update this comparison"
    for name, one, two in zip(names, first, second, strict=True):
        if name in zero:
            for moment in (one, two):
                assert float(moment.abs().max()) <= STRUCTURALLY_ZERO * scale, f"{name}: not ~0"
        else:
            difference = float((two - one).abs().max())
            assert difference <= GRADIENT_ATOL * scale, f"{name}: exp_avg off by {difference / scale:.1e}"

"""Every method of the registry trains under bf16 and fp16 autocast with finite losses close to fp32.

The steps are the training loop's (``sie.training.loop.training_step``): forward under autocast, the
gradient scaler (enabled for fp16 only, default initial scale 2^16), backward, Adam.

Tolerances (relative difference of the loss against the fp32 run of the same model, data and seed):

- bf16: 5e-2. bf16 keeps 8 significant bits (unit roundoff 2^-9, about 2e-3 per rounding); the
  backbone and projectors round at every convolution and matrix product, so the embeddings carry a
  relative error of a few 1e-3, which the squared terms (covariance, MSE) double. Measured on the CPU's
  bf16 autocast: at most 4.8e-3 over the 3 steps (SIEOnlyEqui, the largest of the 14 methods in a first
  probe; 1.0e-2 with a narrower ResNet-18 of width 8).
- fp16: 1e-2. fp16 keeps 11 significant bits (unit roundoff 2^-12, about 2.4e-4); measured at most
  3.2e-3 on the CPU (SIERotColor). The loss terms themselves run in fp32 in both (``sie.models.losses``).
- The fp32 reference is fp32 as the training loop runs it on a GPU: cuDNN convolutions use TF32 by
  default (10-bit mantissa), about 1e-3 relative, inside both tolerances.

A fp16 step whose scaled gradients overflow is skipped by the scaler (it halves the scale and leaves the
weights and Adam's state alone): with these losses (10 to 400) the first 1 to 8 steps overflow at the
initial scale 2^16 (measured on the CPU), as they would at the start of a real run. Each loss is
therefore compared with the fp32 loss after the same number of APPLIED steps, and fp16 runs until
STEPS steps were applied (at most MAX_FP16_STEPS).
"""

import functools
import math

import pytest
import torch
from gpu_support import GPU_TESTS, record, relative_difference, target_device

from sie.models.methods import METHODS, ModelConfig, build_model

pytestmark = GPU_TESTS

MODEL = ModelConfig(arch="resnet18", width=16, mlp="512-512-512", equi=64, equi_factor=0.45, num_classes=10)
SIZE, BATCH, STEPS = 64, 32, 3
MAX_FP16_STEPS = 20
DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
TOLERANCE = {"bf16": 5e-2, "fp16": 1e-2}


def inputs(method: str, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Two views, the pair latent and labels, drawn on the CPU from a seeded generator (the same on
    every device)."""
    generator = torch.Generator().manual_seed(0)
    views = [torch.randn(BATCH, 3, SIZE, SIZE, generator=generator) for _ in range(2)]
    latent = torch.randn(BATCH, METHODS[method].latent_dim, generator=generator)
    labels = torch.randint(0, MODEL.num_classes, (BATCH,), generator=generator)
    return tuple(tensor.to(device) for tensor in (*views, latent, labels))


@functools.cache
def train(method: str, precision: str) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """Losses of the training steps and, per step, how many optimiser steps were applied before it."""
    device = target_device()
    dtype = DTYPES[precision]
    torch.manual_seed(0)  # the model's initialisation
    model = build_model(method, MODEL).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-6)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    first, second, latent, labels = inputs(method, device)
    losses, applied_before, applied = [], [], 0
    while applied < STEPS and len(losses) < MAX_FP16_STEPS:
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            output = model(first, second, latent, labels)
        losses.append(float(output.loss.detach()))
        applied_before.append(applied)
        optimizer.zero_grad(set_to_none=True)
        scale = scaler.get_scale() if scaler.is_enabled() else 1.0
        scaler.scale(output.loss).backward()
        scaler.step(optimizer)
        scaler.update()
        applied += not (scaler.is_enabled() and scaler.get_scale() < scale)
    return tuple(losses), tuple(applied_before)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("method", list(METHODS))
def test_mixed_precision_steps_are_finite_and_close_to_fp32(method, precision):
    reference, _ = train(method, "fp32")
    losses, applied_before = train(method, precision)
    assert all(math.isfinite(loss) for loss in losses), f"{method} {precision}: losses {losses}"
    assert applied_before[-1] == STEPS - 1, (
        f"{method} {precision}: only {applied_before[-1]} of {STEPS} steps applied in {len(losses)} "
        "(the gradient scaler kept skipping: overflow at every scale?)"
    )
    differences = [
        relative_difference(loss, reference[count])
        for loss, count in zip(losses, applied_before, strict=True)
    ]
    skipped = len(losses) - STEPS
    record(
        "amp",
        method=method,
        precision=precision,
        relative_differences=differences,
        skipped_steps=skipped,
        tolerance=TOLERANCE[precision],
    )
    assert max(differences) <= TOLERANCE[precision], (
        f"{method} {precision}: losses {losses} vs fp32 {reference} after {applied_before} applied steps "
        f"(relative differences {differences}, tolerance {TOLERANCE[precision]})"
    )

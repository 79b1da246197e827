#!/usr/bin/env python
"""Benchmark training throughput: images per second of full SIE training steps on random images.

One step = both views through the backbone and projectors, the loss, backward and an Adam update (the
online probes included), as in ``sie pretrain``. On a GPU it also compares fp32, bf16 autocast and
channels-last; on a CPU it runs fp32 (``bench/gpu.py`` adds fp16, ``torch.compile`` and the largest
batch that fits). Usage::

    .venv/bin/python bench/train.py [--method SIE] [--arch resnet18] [--width 64] [--size 256] [--batch 64]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from sie.models.methods import ModelConfig, build_model

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def images_per_second(
    method: str,
    config: ModelConfig,
    size: int,
    batch: int,
    device: torch.device,
    precision: str,
    channels_last: bool,
    steps: int,
    warmup: int,
    compile_model: bool = False,
) -> float:
    """Two views per pair: images/s = 2 x batch x steps / seconds.

    ``precision`` is fp32, bf16 or fp16 (autocast; fp16 with the training loop's gradient scaler);
    ``compile_model`` wraps the model in ``torch.compile`` (compiled during the warm-up steps).
    """
    torch.manual_seed(0)  # the model's initialisation
    model = build_model(method, config).to(device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    trained = torch.compile(model) if compile_model else model
    generator = torch.Generator(device=device).manual_seed(0)
    views = [
        torch.randn(batch, 3, size, size, device=device, generator=generator).contiguous(
            memory_format=memory_format
        )
        for _ in range(2)
    ]
    latent = torch.randn(batch, 4, device=device, generator=generator)
    labels = torch.randint(0, config.num_classes, (batch,), device=device, generator=generator)
    dtype = PRECISIONS[precision]
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    for step in range(warmup + steps):
        if step == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            output = trained(*views, latent, labels)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(output.loss).backward()
        scaler.step(optimizer)
        scaler.update()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 2 * batch * steps / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="SIE")
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--mlp", default="2048-2048-2048")
    parser.add_argument("--equi", type=int, default=256)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    arguments = parser.parse_args()
    if arguments.threads:
        torch.set_num_threads(arguments.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    config = ModelConfig(
        arch=arguments.arch,
        width=arguments.width,
        mlp=arguments.mlp,
        equi=arguments.equi,
        num_classes=55,
        equi_factor=0.45,
    )
    variants = [("fp32", False)]
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        variants += [("bf16", False), ("bf16", True), ("fp32", True)]
    rows = []
    for precision, channels_last in variants:
        rate = images_per_second(
            arguments.method,
            config,
            arguments.size,
            arguments.batch,
            device,
            precision,
            channels_last,
            arguments.steps,
            arguments.warmup,
        )
        rows.append(
            {
                "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                "method": arguments.method,
                "arch": arguments.arch,
                "width": arguments.width,
                "size": arguments.size,
                "batch": arguments.batch,
                "precision": precision,
                "channels_last": channels_last,
                "images_per_second": round(rate, 1),
                "threads": torch.get_num_threads(),
            }
        )
        print(json.dumps(rows[-1]))


if __name__ == "__main__":
    main()

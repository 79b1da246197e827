"""Part "loader" of ``bench/gpu.py``: view pairs per second with CPU JPEG decoding against GPU decoding.

A synthetic release-layout dataset (``bench/loader.py``'s render-like JPEGs, seeded) is indexed and
packed with JPEG bytes, then the same batches are read two ways, with the same loader workers:

- CPU decoding: the training loader as it is (``sie.data.pairs``: workers decode with libjpeg-turbo),
  the batches then copied to the device;
- GPU decoding: the workers only read the JPEG bytes (``EncodedViews``), the training process decodes
  each batch with one ``torchvision.io.decode_jpeg(list, device="cuda")`` call (nvJPEG).

``src/`` has no GPU decoding path yet: ``EncodedViews`` and ``decode_on_device`` are the prototype of
what ``sie.data.readers`` and the training step would need. Also measured: decoding alone (one CPU
thread against one batched GPU call) and the pixel difference between the two decoders.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision.io import ImageReadMode, decode_jpeg

from gpu_common import PartContext, PartResult, synchronize
from loader import epochs_sampler, make_synthetic, warm_cache
from sie.data.pairs import ViewPairDataset, load_pair_dataset, make_loader
from sie.data.readers import PackedViews, decode_image
from sie.data.store import write_store

Encoded = tuple[torch.Tensor, torch.Tensor]
"""A batch of JPEGs: their bytes end to end (uint8) and each one's length (int64)."""


class EncodedViews:
    """A reader whose ``read_images(rows)`` returns the rows' JPEG bytes, not decoded: one buffer and the
    lengths (two tensors per batch cross from a loader worker, not one per image)."""

    def __init__(self, packed: PackedViews) -> None:
        self.packed = packed

    def __len__(self) -> int:
        return len(self.packed)

    def read_images(self, rows: np.ndarray) -> Encoded:
        """The encoded views of ``rows``."""
        parts = [self.packed.read(int(row)) for row in rows]
        lengths = torch.tensor([len(part) for part in parts], dtype=torch.int64)
        return torch.frombuffer(bytearray(b"".join(parts)), dtype=torch.uint8), lengths


def decode_on_device(encoded: Encoded, device: torch.device) -> torch.Tensor:
    """One batched decode on ``device``: uint8 (B, 3, H, W)."""
    data, lengths = encoded
    views = list(torch.split(data, lengths.tolist()))
    return torch.stack(decode_jpeg(views, mode=ImageReadMode.RGB, device=device))


def encoded_pairs(dataset_dir: Path) -> ViewPairDataset:
    """The training split's pair dataset with an ``EncodedViews`` reader."""
    plain = load_pair_dataset(dataset_dir, "train", "rotation", seed=0, reader="packed")
    reader = EncodedViews(PackedViews(dataset_dir, "train"))
    return ViewPairDataset(reader, plain.latents, plain.labels, plain.views, "rotation", 0)


def pairs_per_second(
    dataset: ViewPairDataset,
    settings: dict[str, int],
    device: torch.device,
    decode_device: torch.device | None,
) -> tuple[float, torch.Tensor]:
    """Pairs/s over the timed batches (images on ``device`` at the end of each batch) and the first batch's
    first views. ``decode_device`` None: the loader decoded; else the bytes are decoded there."""
    needed = settings["warmup"] + settings["batches"]
    batches = epochs_sampler(dataset.num_objects, settings["batch"], needed)
    loader = make_loader(dataset, batches, settings["workers"], pin_memory=device.type == "cuda")
    started, first_views = 0.0, None
    for index, (first, second, latent, labels) in enumerate(loader):
        if index == settings["warmup"]:
            synchronize(device)
            started = time.perf_counter()
        if decode_device is None:
            first, second = (images.to(device, non_blocking=True) for images in (first, second))
        else:
            first, second = (decode_on_device(images, decode_device).to(device) for images in (first, second))
        latent, labels = latent.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        if first_views is None:
            first_views = first.cpu()
    synchronize(device)
    return settings["batches"] * settings["batch"] / (time.perf_counter() - started), first_views


def decode_rates(dataset_dir: Path, device: torch.device, count: int) -> dict[str, float]:
    """Images/s of decoding alone: one CPU thread (the reader's decoder) against one batched call."""
    packed = PackedViews(dataset_dir, "train")
    rows = np.arange(min(count, len(packed)))
    data = [packed.read(int(row)) for row in rows]
    started = time.perf_counter()
    for item in data:
        decode_image(item)
    cpu = len(data) / (time.perf_counter() - started)
    lengths = torch.tensor([len(item) for item in data], dtype=torch.int64)
    encoded = torch.frombuffer(bytearray(b"".join(data)), dtype=torch.uint8), lengths
    decode_on_device(encoded, device)  # warm-up: decoder handles, buffers
    synchronize(device)
    started = time.perf_counter()
    decode_on_device(encoded, device)
    synchronize(device)
    return {
        "cpu_one_thread_images_per_second": round(cpu, 1),
        f"{device.type}_batched_images_per_second": round(len(data) / (time.perf_counter() - started), 1),
        "images": len(data),
    }


def run(context: PartContext) -> PartResult:
    """Build the dataset, then measure both loaders, decoding alone and the pixel difference."""
    figures = context.result.figures
    if context.quick:
        shape = {"classes": 2, "objects": 4, "views": 4, "size": 32}
        settings = {"batch": 4, "batches": 3, "warmup": 1, "workers": 0}
    else:
        shape = {"classes": 4, "objects": 24, "views": 8, "size": 256}
        settings = {"batch": 64, "batches": 20, "warmup": 2, "workers": min(8, os.cpu_count() or 1)}
    figures.update(dataset=shape, loader=settings)
    decode_device = context.device  # on a CPU-only run the batched call runs on the CPU: the same code
    with tempfile.TemporaryDirectory(prefix="sie-gpu-loader-") as temporary:
        started = time.perf_counter()
        dataset_dir = make_synthetic(
            Path(temporary), shape["classes"], shape["objects"], shape["views"], shape["size"]
        )
        write_store(dataset_dir, images="jpeg")
        warm_cache(dataset_dir, "train")
        figures["dataset_seconds"] = round(time.perf_counter() - started, 1)
        context.save()
        plain = load_pair_dataset(dataset_dir, "train", "rotation", seed=0, reader="packed")
        measured: dict[str, Any] = {}
        batched = f"batched_decode_on_{decode_device.type}"
        for name, dataset, decoder in (
            ("decode_in_cpu_workers", plain, None),
            (batched, encoded_pairs(dataset_dir), decode_device),
        ):
            outcome = context.attempt(
                name, lambda d=dataset, e=decoder: pairs_per_second(d, settings, context.device, e)
            )
            if outcome is not None:
                measured[name] = outcome[1]
                figures.setdefault("pairs_per_second", {})[name] = round(outcome[0], 1)
        rates = figures.get("pairs_per_second", {})
        if len(rates) == 2:
            figures["batched_over_workers"] = round(rates[batched] / rates["decode_in_cpu_workers"], 2)
        if len(measured) == 2:
            first, second = measured.values()
            difference = (first.int() - second.int()).abs()
            figures["pixel_difference"] = {
                "largest": int(difference.max()),
                "mean": round(float(difference.float().mean()), 4),
                "identical_share": round(float((difference == 0).float().mean()), 6),
            }
        decode = context.attempt("decode alone", lambda: decode_rates(dataset_dir, decode_device, 256))
        if decode:
            figures["decode_only"] = decode
    if not context.cuda:
        return context.finish(
            skipped="no CUDA (CPU decoding measured; the batched decode call ran on the CPU)"
        )
    return context.finish()

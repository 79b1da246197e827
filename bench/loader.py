#!/usr/bin/env python
"""Benchmark the pair loader: view pairs per second of three ways to read the same pairs.

- ``per-file``: a plain per-file reader like the original code's dataset class: per item, two JPEGs
  opened and decoded with PIL, two ``latent_<v>.npy`` files loaded, the relative rotation computed
  with scipy, the default collation (the baseline of the issue);
- ``files+batched``: our batched pair dataset reading one JPEG file per view (isolates the store's effect);
- ``packed``: our batched pair dataset on the packed store (decoded pixels or JPEG bytes, as packed).

Same workers, batch size and number of batches for all; the page cache is warm (every file read once
first), so the numbers measure the code path, not the disk. Each reader runs ``--repeats`` times,
alternating, and the median is kept. Without ``--dataset`` a synthetic release-layout dataset is made
(and indexed and packed) in a temporary folder. Usage::

    .venv/bin/python bench/loader.py [--dataset results/datasets/mini] [--workers 2] [--batch 32]
        [--batches 200] [--repeats 3] [--image-size 64] [--images auto|pixels|jpeg]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.spatial.transform import Rotation
from torch.utils.data import DataLoader, Dataset

from sie.config import dataset_variant, resolve_config
from sie.data.index import build_index
from sie.data.latents import LatentSpace, sample_view_latent
from sie.data.layout import image_path, latent_path, read_split_images
from sie.data.pairs import PairSampler, load_pair_dataset, make_loader
from sie.data.store import dataset_layout, store_dir, write_store
from sie.paths import MANIFEST_FILE, images_file, labels_file


def synthetic_image(generator: np.random.Generator, size: int) -> Image.Image:
    """A render-like view: smooth floor gradient, a shaded disc for the object, a little noise."""
    axis = np.linspace(0.0, 1.0, size)
    rows, columns = np.meshgrid(axis, axis, indexing="ij")
    floor = generator.uniform(0.2, 0.8, 3)
    pixels = floor[None, None, :] * (0.6 + 0.4 * rows[..., None])
    centre = generator.uniform(0.3, 0.7, 2)
    radius = generator.uniform(0.15, 0.3)
    inside = (rows - centre[0]) ** 2 + (columns - centre[1]) ** 2 < radius**2
    pixels[inside] = generator.uniform(0.1, 0.9, 3) * (0.5 + 0.5 * columns[inside, None])
    pixels += generator.normal(0.0, 0.01, pixels.shape)
    return Image.fromarray((np.clip(pixels, 0, 1) * 255).astype(np.uint8))


def make_synthetic(folder: Path, classes: int, objects: int, views: int, size: int) -> Path:
    """Write, index and pack a synthetic release-layout dataset; returns the dataset folder."""
    generator = np.random.default_rng(0)
    root = folder / "release"
    for class_index in range(classes):
        synset = f"{class_index:08d}"
        for object_index in range(objects):
            target = root / synset / f"object{object_index:04d}"
            target.mkdir(parents=True)
            for view in range(views):
                synthetic_image(generator, size).save(target / f"image_{view}.jpg", quality=90)
                latent = sample_view_latent(LatentSpace.paper(), 0, f"{synset}/{object_index}", view)
                np.save(target / f"latent_{view}.npy", latent)
    spec = {"source": "prerendered", "root": str(root), "views": views, "image_size": size}
    variant = dataset_variant("bench", resolve_config({"datasets": {"bench": spec}})["datasets"]["bench"])
    build_index(variant, folder / "dataset")
    return folder / "dataset"


class PlainPairs(Dataset):
    """The baseline: one item = one object; two PIL decodes, two latent files and scipy per item."""

    def __init__(self, dataset_dir: Path, split: str) -> None:
        self.root, self.views = dataset_layout(dataset_dir)
        self.objects = read_split_images(dataset_dir / images_file(split))
        self.labels = np.load(dataset_dir / labels_file(split))

    def __len__(self) -> int:
        return len(self.objects)

    def __getitem__(self, index: int):
        item = self.objects[index]
        generator = np.random.default_rng(np.random.SeedSequence([0, index]))
        first, second = generator.choice(self.views, 2, replace=False)
        images = [
            torch.from_numpy(np.array(Image.open(image_path(self.root, item, view)).convert("RGB"))).permute(
                2, 0, 1
            )
            for view in (first, second)
        ]
        latents = [np.load(latent_path(self.root, item, view)) for view in (first, second)]
        rotation = Rotation.from_euler("xyz", latents[0][:3]).inv() * Rotation.from_euler(
            "xyz", latents[1][:3]
        )
        return (
            images[0],
            images[1],
            torch.from_numpy(rotation.as_quat().astype(np.float32)),
            int(self.labels[index]),
        )


def warm_cache(dataset_dir: Path, split: str) -> None:
    """Read every file of the split and the store once."""
    root, views = dataset_layout(dataset_dir)
    for item in read_split_images(dataset_dir / images_file(split)):
        for view in range(views):
            image_path(root, item, view).read_bytes()
            latent_path(root, item, view).read_bytes()
    for path in (dataset_dir / "store").iterdir():
        path.read_bytes()


def timed(loader, warmup: int, batches: int, batch: int) -> float:
    """Pairs per second over ``batches`` batches after ``warmup`` untimed ones."""
    started, count = 0.0, 0
    for index, _ in enumerate(loader):
        if index == warmup:
            started = time.perf_counter()
        if index >= warmup:
            count += 1
        if count == batches:
            break
    return count * batch / (time.perf_counter() - started)


def epochs_sampler(num_objects: int, batch: int, needed: int) -> list[list[int]]:
    """Batches of item keys of as many consecutive epochs as needed."""
    sampler = PairSampler(num_objects, batch, rank=0, world_size=1, seed=0)
    batches: list[list[int]] = []
    epoch = 0
    while len(batches) < needed:
        sampler.set_epoch(epoch)
        batches += list(sampler)
        epoch += 1
    return batches[:needed]


def measure(dataset_dir: Path, reader: str, arguments: argparse.Namespace) -> float:
    """Pairs per second of one reader."""
    needed = arguments.warmup + arguments.batches
    if reader == "per-file":
        plain = PlainPairs(dataset_dir, arguments.split)
        indices = torch.utils.data.RandomSampler(
            plain,
            replacement=True,
            num_samples=needed * arguments.batch,
            generator=torch.Generator().manual_seed(0),
        )
        loader = DataLoader(plain, batch_size=arguments.batch, sampler=indices, num_workers=arguments.workers)
    else:
        pairs = load_pair_dataset(
            dataset_dir,
            arguments.split,
            "rotation",
            seed=0,
            reader="files" if reader == "files+batched" else "packed",
        )
        batches = epochs_sampler(pairs.num_objects, arguments.batch, needed)
        loader = make_loader(pairs, batches, arguments.workers, pin_memory=False)
    return timed(loader, arguments.warmup, arguments.batches, arguments.batch)


def main() -> None:
    """Measure the three readers and print a table and the speed-ups."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, help="an indexed dataset folder (packed if needed)")
    parser.add_argument("--split", default="train")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--objects", type=int, default=60, help="synthetic objects per class")
    parser.add_argument("--views", type=int, default=10)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--images", default="auto", help="store format when packing: auto, pixels or jpeg")
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sie-bench-loader-") as temporary:
        dataset = arguments.dataset or make_synthetic(
            Path(temporary), arguments.classes, arguments.objects, arguments.views, arguments.image_size
        )
        manifest_path = store_dir(dataset) / MANIFEST_FILE
        manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else None
        if manifest is None or arguments.images not in ("auto", manifest["images"]):
            write_store(dataset, images=arguments.images)
        warm_cache(dataset, arguments.split)
        readers = ("per-file", "files+batched", "packed")
        rates: dict[str, list[float]] = {reader: [] for reader in readers}
        for _ in range(arguments.repeats):
            for reader in readers:
                rates[reader].append(measure(dataset, reader, arguments))
        report(
            dataset, arguments, {reader: statistics.median(values) for reader, values in rates.items()}, rates
        )


def report(dataset: Path, arguments: argparse.Namespace, medians: dict[str, float], rates: dict) -> None:
    """Print the table, the speed-ups and a JSON line."""
    manifest = json.loads((store_dir(dataset) / MANIFEST_FILE).read_text())
    size = "x".join(str(value) for value in manifest["image_size"])
    print(
        f"{dataset}: image {size}, store {manifest['images']}, workers {arguments.workers}, "
        f"batch {arguments.batch}, {arguments.batches} timed batches, median of {arguments.repeats} runs"
    )
    print(f"{'reader':<14} {'pairs/s':>9} {'us/pair':>8}  speed-up vs per-file")
    for reader, rate in medians.items():
        print(f"{reader:<14} {rate:>9.0f} {1e6 / rate:>8.1f}  {rate / medians['per-file']:.2f}x")
    print(
        json.dumps(
            {
                "image_size": manifest["image_size"],
                "store": manifest["images"],
                "workers": arguments.workers,
                "batch": arguments.batch,
                "pairs_per_second": {
                    reader: [round(rate) for rate in values] for reader, values in rates.items()
                },
            }
        )
    )


if __name__ == "__main__":
    main()

"""The feature store: one pass of a frozen pretrained model over every view of a dataset.

For each split, in the row order of ``all_latents_<split>.npy`` (object-major, views in order):
``<split>_representations.npy`` (backbone outputs) and, for methods with a predictor,
``<split>_embeddings.npy`` (the equivariant embeddings the predictor maps). BatchNorm runs in eval mode
(the original evaluations re-estimated its statistics on the probe data:
docs/differences.md#probe-batchnorm), on images normalised and resized as in training (model.pt records
both: docs/dataset.md#resolution). Arrays are written through memory maps (bounded memory at
2.6 M views), each to a temporary file renamed at the end; ``manifest.json`` is written last and marks
the store complete.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sie.data.pairs import prepare_images
from sie.data.readers import open_reader
from sie.data.store import dataset_layout
from sie.devices import resolve_device
from sie.io import atomic_path, read_json, write_json
from sie.models.files import load_pretrained
from sie.models.methods import SSLModel
from sie.paths import FEATURES_ARRAY_FILE, MANIFEST_FILE, SPLITS, fill
from sie.progress import Progress

FEATURES_FORMAT = 1


@dataclass(frozen=True)
class ImageInputs:
    """How a pretrained model's inputs are made: the training normalisation and resolution."""

    mean: list[float]
    std: list[float]
    resolution: int | None = None

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> ImageInputs:
        """The inputs model.pt records (files written before resolutions existed: the dataset's size)."""
        normalization = payload["normalization"]
        return cls(list(normalization["mean"]), list(normalization["std"]), payload.get("resolution"))

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images (B, 3, H, W) to the model's float input, on the images' device."""
        return prepare_images(images, self.mean, self.std, self.resolution)


def equivariant_embeddings(model: SSLModel, representations: torch.Tensor) -> torch.Tensor:
    """The embedding part the predictor acts on (the whole embedding for OnlyEqui methods)."""
    return model.embed(representations)[:, model.inv_embedding_dims :]


def compute_features(
    model_path: Path,
    dataset_dir: Path,
    output_dir: Path,
    device: str = "auto",
    batch_size: int = 256,
    reader: str = "packed",
) -> dict[str, Any]:
    """Write the feature store of one pretrained model on one dataset; returns the manifest."""
    model, payload = load_pretrained(model_path)
    target = resolve_device(device)
    model = model.to(target)
    _, views = dataset_layout(dataset_dir)
    inputs = ImageInputs.from_payload(payload)
    with_embeddings = model.spec.has_predictor
    (output_dir / MANIFEST_FILE).unlink(missing_ok=True)
    splits = {}
    started = time.perf_counter()
    for split in SPLITS:
        source = open_reader(dataset_dir, split, reader)
        splits[split] = write_split(
            model, source, len(source), output_dir, split, target, inputs, batch_size, with_embeddings
        )
    manifest = {
        "format": FEATURES_FORMAT,
        "model": str(model_path),
        "dataset": str(dataset_dir),
        # The table row: the method, or the reference row an untrained model.pt names
        # (sie.training.untrained); "architecture" is always the method the model is built as.
        "method": payload.get("reference", payload["method"]),
        "architecture": payload["method"],
        "latent": payload["latent"],
        "variant": payload["variant"],
        "seed": payload["seed"],
        "views_per_object": views,
        "resolution": inputs.resolution,
        "normalization": {"mean": inputs.mean, "std": inputs.std},
        "representation_dim": model.representation_dim,
        "inv_dims": model.inv_dims,
        "has_predictor": with_embeddings,
        "embedding_dim": model.embedding_dim - model.inv_embedding_dims if with_embeddings else None,
        "splits": splits,
        "seconds": round(time.perf_counter() - started, 2),
        "device": str(target),
    }
    write_json(output_dir / MANIFEST_FILE, manifest)
    return manifest


def output_widths(model: SSLModel, with_embeddings: bool) -> dict[str, int]:
    """Name -> width of the arrays stored per view."""
    widths = {"representations": model.representation_dim}
    if with_embeddings:
        widths["embeddings"] = model.embedding_dim - model.inv_embedding_dims
    return widths


@torch.no_grad()
def write_split(
    model: SSLModel,
    source: Any,
    rows: int,
    output_dir: Path,
    split: str,
    device: torch.device,
    inputs: ImageInputs,
    batch_size: int,
    with_embeddings: bool,
) -> dict:
    """Stream one split's features into memory-mapped .npy files (renamed into place at the end)."""
    widths = output_widths(model, with_embeddings)
    progress = Progress(f"features {split}", rows, unit="views", interval=10.0)
    with contextlib.ExitStack() as stack:
        paths = {
            name: stack.enter_context(atomic_path(output_dir / features_file(split, name), suffix=".npy"))
            for name in widths
        }
        if rows == 0:
            for name, width in widths.items():
                np.save(paths[name], np.zeros((0, width), dtype=np.float32))
            return {"rows": 0, "outputs": list(widths)}
        arrays = {
            name: np.lib.format.open_memmap(paths[name], mode="w+", dtype=np.float32, shape=(rows, width))
            for name, width in widths.items()
        }
        for start in range(0, rows, batch_size):
            stop = min(start + batch_size, rows)
            images = source.read_images(np.arange(start, stop)).to(device, non_blocking=True)
            representations = model.backbone(inputs.prepare(images))
            arrays["representations"][start:stop] = representations.float().cpu().numpy()
            if with_embeddings:
                embeddings = equivariant_embeddings(model, representations)
                arrays["embeddings"][start:stop] = embeddings.float().cpu().numpy()
            progress.advance(stop - start)
        for array in arrays.values():
            array.flush()
        arrays.clear()
    for stale in {"embeddings"} - set(widths):
        (output_dir / features_file(split, stale)).unlink(missing_ok=True)
    return {"rows": rows, "outputs": list(widths)}


def features_file(split: str, output: str) -> str:
    """The name of a feature store's array (``output``: ``representations`` or ``embeddings``)."""
    return fill(FEATURES_ARRAY_FILE, split=split, output=output)


def read_manifest(features_dir: Path) -> dict[str, Any]:
    """The feature store's manifest; a clear error when the store is incomplete."""
    path = features_dir / MANIFEST_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no complete feature store (run `sie features` first)")
    return read_json(path)


def load_split(features_dir: Path, split: str, name: str = "representations") -> np.ndarray:
    """A stored feature array, memory-mapped (nothing is read until used)."""
    return np.load(features_dir / features_file(split, name), mmap_mode="r")

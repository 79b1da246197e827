"""The feature store: one pass of a frozen pretrained model over every view of a dataset.

For each split, in the row order of ``all_latents_<split>.npy`` (object-major, views in order):
``<split>_representations.npy`` (backbone outputs) and, for methods with a predictor,
``<split>_embeddings.npy`` (the equivariant embeddings the predictor maps). BatchNorm runs in eval mode
(the original evaluations re-estimated its statistics on the probe data: quirk 11). Arrays are written
through memory maps (bounded memory at 2.6 M views), each to a temporary file renamed at the end;
``manifest.json`` is written last and marks the store complete.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sie.data.layout import SPLITS
from sie.data.pairs import normalize
from sie.data.readers import open_reader
from sie.data.store import dataset_layout
from sie.io import atomic_path, read_json, write_json
from sie.models.methods import SSLModel
from sie.progress import Progress
from sie.training.outputs import load_pretrained

FEATURES_FORMAT = 1


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
    target = torch.device(
        "cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device)
    )
    model = model.to(target)
    _, views = dataset_layout(dataset_dir)
    mean, std = payload["normalization"]["mean"], payload["normalization"]["std"]
    with_embeddings = model.spec.has_predictor
    (output_dir / "manifest.json").unlink(missing_ok=True)
    splits = {}
    started = time.perf_counter()
    for split in SPLITS:
        source = open_reader(dataset_dir, split, reader)
        splits[split] = write_split(
            model, source, len(source), output_dir, split, target, (mean, std), batch_size, with_embeddings
        )
    manifest = {
        "format": FEATURES_FORMAT,
        "model": str(model_path),
        "dataset": str(dataset_dir),
        "method": payload["method"],
        "latent": payload["latent"],
        "variant": payload["variant"],
        "seed": payload["seed"],
        "views_per_object": views,
        "representation_dim": model.representation_dim,
        "inv_dims": model.inv_dims,
        "has_predictor": with_embeddings,
        "embedding_dim": model.embedding_dim - model.inv_embedding_dims if with_embeddings else None,
        "splits": splits,
        "seconds": round(time.perf_counter() - started, 2),
        "device": str(target),
    }
    write_json(output_dir / "manifest.json", manifest)
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
    normalization: tuple[list[float], list[float]],
    batch_size: int,
    with_embeddings: bool,
) -> dict:
    """Stream one split's features into memory-mapped .npy files (renamed into place at the end)."""
    widths = output_widths(model, with_embeddings)
    progress = Progress(f"features {split}", rows, unit="views", interval=10.0)
    with contextlib.ExitStack() as stack:
        paths = {
            name: stack.enter_context(atomic_path(output_dir / f"{split}_{name}.npy", suffix=".npy"))
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
            representations = model.backbone(normalize(images, *normalization))
            arrays["representations"][start:stop] = representations.float().cpu().numpy()
            if with_embeddings:
                embeddings = equivariant_embeddings(model, representations)
                arrays["embeddings"][start:stop] = embeddings.float().cpu().numpy()
            progress.advance(stop - start)
        for array in arrays.values():
            array.flush()
        arrays.clear()
    for stale in {"embeddings"} - set(widths):
        (output_dir / f"{split}_{stale}.npy").unlink(missing_ok=True)
    return {"rows": rows, "outputs": list(widths)}


def read_manifest(features_dir: Path) -> dict[str, Any]:
    """The feature store's manifest; a clear error when the store is incomplete."""
    path = features_dir / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no complete feature store (run `sie features` first)")
    return read_json(path)


def load_split(features_dir: Path, split: str, name: str = "representations") -> np.ndarray:
    """A stored feature array, memory-mapped (nothing is read until used)."""
    return np.load(features_dir / f"{split}_{name}.npy", mmap_mode="r")

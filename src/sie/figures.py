"""Pictures for the report: training curves of every method, and what the SIE predictor retrieves."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
import numpy as np
import torch

from sie.io import atomic_path
from sie.paths import METRICS_LOG_FILE, latents_file

CURVES = (
    ("loss/ssl", "SSL loss"),
    ("probe/representations/top1", "online class top-1 (representations)"),
    ("probe/representations/r2", "online rotation R² (representations)"),
)


def read_metrics(run_dir: Path) -> list[dict]:
    """The JSON lines a pretraining run logged."""
    path = run_dir / METRICS_LOG_FILE
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def training_curves(run_dirs: Sequence[Path], output: Path) -> None:
    """One panel per curve of ``CURVES``, one line per run (labelled method/seed)."""
    figure, axes = plt.subplots(1, len(CURVES), figsize=(5 * len(CURVES), 3.6), constrained_layout=True)
    for run_dir in run_dirs:
        records = read_metrics(run_dir)
        label = f"{run_dir.parent.name} ({run_dir.name})"
        for axis, (key, _) in zip(axes, CURVES, strict=True):
            points = [(record["step"], record[key]) for record in records if key in record]
            if points:
                steps, values = zip(*points, strict=True)
                axis.plot(steps, values, label=label, linewidth=1.2)
    for axis, (_, title) in zip(axes, CURVES, strict=True):
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    save(figure, output)


def save(figure: plt.Figure, output: Path) -> None:
    """Write a figure as PNG atomically."""
    with atomic_path(output, suffix=".png") as temporary:
        figure.savefig(temporary, dpi=110, format="png")
    plt.close(figure)


@torch.no_grad()
def retrieval_figure(
    features_dir: Path, model_path: Path, dataset_dir: Path, output: Path, examples: int = 6, seed: int = 0
) -> None:
    """Rows of (source view, retrieved view, true view): the source is view 0 of a validation object,
    the predictor maps its embedding with the true relative transformation, and the retrieved view is
    the nearest validation embedding (any object) of that prediction."""
    from sie.data.latents import pair_latents
    from sie.data.readers import open_reader
    from sie.evaluate.features import load_split, read_manifest
    from sie.evaluate.retrieval import normalise
    from sie.models.files import load_pretrained

    manifest = read_manifest(features_dir)
    model, payload = load_pretrained(model_path)
    views = manifest["views_per_object"]
    embeddings = torch.from_numpy(np.array(load_split(features_dir, "val", "embeddings"), dtype=np.float32))
    latents = np.load(dataset_dir / latents_file("val"))
    objects = len(embeddings) // views
    generator = np.random.default_rng(seed)
    chosen = generator.choice(objects, size=min(examples, objects), replace=False)
    targets = chosen * views + generator.integers(1, views, size=len(chosen))
    sources = chosen * views
    condition = torch.from_numpy(pair_latents(latents[sources], latents[targets], payload["latent"]))
    prediction = normalise(model.predictor(embeddings[sources], condition))
    retrieved = (prediction @ normalise(embeddings).T).argmax(dim=1).numpy()
    reader = open_reader(dataset_dir, "val")
    columns = (
        ("source (view 0)", sources),
        ("retrieved from the prediction", retrieved),
        ("true view", targets),
    )
    figure, axes = plt.subplots(
        len(chosen), 3, figsize=(6, 2 * len(chosen)), constrained_layout=True, squeeze=False
    )
    for column, (title, rows) in enumerate(columns):
        images = reader.read_images(np.asarray(rows)).permute(0, 2, 3, 1).numpy()
        for row, image in enumerate(images):
            axis = axes[row, column]
            axis.imshow(image)
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(title, fontsize=9)
    figure.suptitle(
        f"{payload['method']} predictor on {payload['variant']} (validation objects)", fontsize=10
    )
    save(figure, output)

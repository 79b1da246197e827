#!/usr/bin/env python
"""Benchmark the evaluation suite of one checkpoint against the original protocol.

- ours: one pass of the frozen backbone (eval-mode BatchNorm) over every view (``sie features``), then
  every probe trains on the stored features;
- original: every probe runs the frozen backbone on the images of every batch of every epoch, with its
  BatchNorm in training mode (as the original scripts), validating on one random view / pair per object
  per epoch.

Same probes (classification, rotation, colour on every part the model has), heads, optimiser, batch
size and epochs. Prints wall times, the speed-up and the metrics of both. Usage::

    .venv/bin/python bench/evaluation.py --model results/pretrain/test/SIE/seed0/model.pt \\
        --dataset results/datasets/test [--epochs 300] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as functional

from sie.data.pairs import normalize
from sie.data.readers import open_reader
from sie.evaluate.features import compute_features
from sie.evaluate.probes import (
    PARTS,
    ProbeSettings,
    build_head,
    color_targets,
    feature_slice,
    rotation_targets,
)
from sie.evaluate.run import PROBES, evaluate_probe, part_reason
from sie.models.losses import global_r2
from sie.training.outputs import load_pretrained


def run_ours(model_path: Path, dataset: Path, settings: ProbeSettings, folder: Path) -> tuple[float, dict]:
    """Features once, then every probe on them; returns (seconds, metrics by 'evaluation-part')."""
    started = time.perf_counter()
    manifest = compute_features(model_path, dataset, folder / "features", "cpu", 256)
    metrics = {}
    for evaluation in PROBES:
        for part in PARTS:
            if part_reason(manifest, part) is None:
                record = evaluate_probe(
                    folder / "features",
                    dataset,
                    evaluation,
                    part,
                    folder / f"{evaluation}-{part}.json",
                    settings,
                )
                metrics[f"{evaluation}-{part}"] = record["metrics"]
    return time.perf_counter() - started, metrics


class OriginalProbe:
    """One probe as the original scripts run it: backbone forward on images for every batch."""

    def __init__(self, model_path: Path, dataset: Path, evaluation: str, part: str, settings: ProbeSettings):
        self.model, payload = load_pretrained(model_path)
        self.model.backbone.train()  # quirk 11: BatchNorm in training mode during probing
        self.normalization = (payload["normalization"]["mean"], payload["normalization"]["std"])
        self.readers = {split: open_reader(dataset, split) for split in ("train", "val")}
        self.latents = {split: np.load(dataset / f"all_latents_{split}.npy") for split in self.readers}
        self.labels = {split: np.load(dataset / f"{split}_labels.npy") for split in self.readers}
        self.views = len(self.readers["train"]) // len(self.labels["train"])
        self.columns = feature_slice(part, self.model.inv_dims, self.model.representation_dim)
        self.evaluation, self.settings = evaluation, settings
        self.generator = np.random.default_rng(settings.seed)
        width = self.columns.stop - self.columns.start
        outputs = {"classification": int(self.labels["train"].max()) + 1, "rotation": 4, "color": 2}[
            evaluation
        ]
        kind = "linear" if evaluation == "classification" else "mlp"
        inputs = width if evaluation == "classification" else 2 * width
        self.head = build_head(inputs, outputs, kind, settings.hidden_dims, settings.seed)
        self.optimizer = torch.optim.Adam(
            self.head.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
        )

    def features(self, split: str, rows: np.ndarray) -> torch.Tensor:
        images = normalize(self.readers[split].read_images(rows), *self.normalization)
        with torch.no_grad():
            return self.model.backbone(images)[:, self.columns]

    def batch(self, split: str, objects: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        first = self.generator.integers(self.views, size=len(objects))
        rows_first = objects * self.views + first
        if self.evaluation == "classification":
            return self.features(split, rows_first), torch.from_numpy(self.labels[split][objects])
        second = (first + 1 + self.generator.integers(self.views - 1, size=len(objects))) % self.views
        rows_second = objects * self.views + second
        targets = rotation_targets if self.evaluation == "rotation" else color_targets
        target = targets(self.latents[split][rows_first], self.latents[split][rows_second])
        inputs = torch.cat([self.features(split, rows_first), self.features(split, rows_second)], dim=1)
        return inputs, torch.from_numpy(target)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.evaluation == "classification":
            return functional.cross_entropy(output, target)
        return functional.mse_loss(output, target)

    def run(self) -> dict[str, float]:
        """Train every epoch from images; the last epoch's validation metrics."""
        size = self.settings.batch_size
        for _ in range(self.settings.epochs):
            order = self.generator.permutation(len(self.labels["train"]))
            for start in range(0, len(order), size):
                inputs, target = self.batch("train", order[start : start + size])
                loss = self.loss(self.head(inputs), target)
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
            metrics = self.validate()
        return metrics

    def validate(self) -> dict[str, float]:
        objects = np.arange(len(self.labels["val"]))
        outputs, targets = [], []
        for start in range(0, len(objects), self.settings.batch_size):
            inputs, target = self.batch("val", objects[start : start + self.settings.batch_size])
            with torch.no_grad():
                outputs.append(self.head(inputs))
            targets.append(target)
        output, target = torch.cat(outputs), torch.cat(targets)
        if self.evaluation == "classification":
            return {"top1": float((output.argmax(1) == target).float().mean())}
        return {
            "r2": float(global_r2(output.double(), target.double())),
            "mse": float(self.loss(output, target)),
        }


def run_original(
    model_path: Path, dataset: Path, settings: ProbeSettings, inv_parts: list[str]
) -> tuple[float, dict]:
    started = time.perf_counter()
    metrics = {}
    for evaluation in PROBES:
        for part in inv_parts:
            metrics[f"{evaluation}-{part}"] = OriginalProbe(
                model_path, dataset, evaluation, part, settings
            ).run()
    return time.perf_counter() - started, metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    settings = ProbeSettings(
        epochs=arguments.epochs, batch_size=arguments.batch_size, seed=arguments.seed, device="cpu"
    )
    with tempfile.TemporaryDirectory(prefix="sie-bench-evaluation-") as temporary:
        ours_seconds, ours = run_ours(arguments.model, arguments.dataset, settings, Path(temporary))
    parts = [key.split("-")[1] for key in ours if key.startswith("classification-")]
    original_seconds, original = run_original(arguments.model, arguments.dataset, settings, parts)
    print(
        f"model {arguments.model}, dataset {arguments.dataset}, {arguments.epochs} epochs, "
        f"batch {arguments.batch_size}, {arguments.threads} threads"
    )
    print(f"{'probe':<22} {'ours':>28} {'original protocol':>28}")
    for key in ours:
        print(
            f"{key:<22} {json.dumps({k: round(v, 3) for k, v in ours[key].items() if k != 'loss'}):>28} "
            f"{json.dumps({k: round(v, 3) for k, v in original[key].items()}):>28}"
        )
    print(
        f"wall time: ours {ours_seconds:.1f} s (features + {len(ours)} probes), original protocol "
        f"{original_seconds:.1f} s: {original_seconds / ours_seconds:.1f}x less time"
    )
    print(
        json.dumps(
            {
                "ours_seconds": ours_seconds,
                "original_seconds": original_seconds,
                "ours": ours,
                "original": original,
            }
        )
    )


if __name__ == "__main__":
    main()

"""The original scripts' evaluation protocol (docs/evaluations.md#original-protocol), re-implemented
for `bench/evaluation.py`.

Every probe runs the frozen backbone on the images of every batch of every epoch; nothing is reused.
Two ways to run it:

- ``lean``: only what makes the protocol (the backbone forwards, the head, the optimiser and the
  original's validation on one random view or pair per val object every epoch): the least any
  implementation of this protocol can cost;
- ``as the scripts run it`` (``loader_workers`` set): also what the original scripts do
  every epoch: a fresh DataLoader (``num_workers`` processes, not persistent) for the train and for the
  val objects, ``model.pth`` (head, backbone, optimiser) overwritten, TensorBoard scalars (train every 10
  steps, val every epoch).

Both draw the same views from the same generator, so they give the same metrics; only time differs.
BatchNorm: ``"train"`` as the original (docs/differences.md#probe-batchnorm: the frozen backbone's
BatchNorm normalises training batches with their own statistics and overwrites its running
statistics; validation uses those), or ``"eval"`` (the defect fixed: the pretrained statistics
throughout, the features ``sie features`` stores).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as functional
from torch.utils.data import DataLoader, Dataset

from sie.data.pairs import normalize
from sie.data.readers import open_reader
from sie.evaluate.probes import (
    ProbeSettings,
    build_head,
    classification_summary,
    color_targets,
    distinct_views,
    feature_slice,
    regression_summary,
    rotation_targets,
)
from sie.evaluate.run import PROBES
from sie.models.files import load_pretrained

BATCHNORM_MODES = ("train", "eval")
TRAIN_LOG_EVERY_STEPS = 10  # the original's --log-freq-time


@dataclass(frozen=True)
class Protocol:
    """How the original protocol is run: BatchNorm mode and, for 'as the scripts run it', the loaders."""

    batchnorm: str = "train"
    loader_workers: int | None = None  # None: lean (images read in the main process, no files written)

    @property
    def scripted(self) -> bool:
        """As the original scripts run it: DataLoaders, model.pth and TensorBoard every epoch."""
        return self.loader_workers is not None

    def __post_init__(self) -> None:
        if self.batchnorm not in BATCHNORM_MODES:
            raise ValueError(f"batchnorm must be one of {BATCHNORM_MODES}, got {self.batchnorm!r}")


class RowImages(Dataset):
    """Normalised images by row, read in DataLoader workers as the original's dataset does."""

    def __init__(self, dataset: Path, split: str, normalization: tuple[list[float], list[float]]) -> None:
        self.reader, self.normalization = open_reader(dataset, split), normalization

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, row: int) -> torch.Tensor:
        return normalize(self.reader.read_images(np.array([row])), *self.normalization)[0]


class OriginalProbe:
    """One probe (evaluation x part) as the original scripts run it."""

    def __init__(
        self,
        model_path: Path,
        dataset: Path,
        evaluation: str,
        part: str,
        settings: ProbeSettings,
        protocol: Protocol,
        run_dir: Path | None = None,
    ) -> None:
        self.model, payload = load_pretrained(model_path)
        self.normalization = (payload["normalization"]["mean"], payload["normalization"]["std"])
        self.evaluation, self.settings, self.protocol = evaluation, settings, protocol
        self.readers = {split: open_reader(dataset, split) for split in ("train", "val")}
        self.latents = {split: np.load(dataset / f"all_latents_{split}.npy") for split in self.readers}
        self.labels = {split: np.load(dataset / f"{split}_labels.npy") for split in self.readers}
        self.views = len(self.readers["train"]) // len(self.labels["train"])
        self.columns = feature_slice(part, self.model.inv_dims, self.model.representation_dim)
        self.generator = np.random.default_rng(settings.seed)
        width = self.columns.stop - self.columns.start
        classes = int(self.labels["train"].max()) + 1
        outputs = {"classification": classes, "rotation": 4, "color": 2}[evaluation]
        kind, inputs = ("linear", width) if evaluation == "classification" else ("mlp", 2 * width)
        self.head = build_head(inputs, outputs, kind, settings.hidden_dims, settings.seed)
        self.optimizer = torch.optim.Adam(
            self.head.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
        )
        self.run_dir, self.writer, self.step = run_dir, None, 0
        if protocol.scripted:
            if run_dir is None:
                raise ValueError("the protocol as the scripts run it writes model.pth: give a run_dir")
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))
            self.datasets = {split: RowImages(dataset, split, self.normalization) for split in self.readers}

    def draw(self, split: str, objects: np.ndarray) -> list[tuple[np.ndarray, torch.Tensor]]:
        """Rows (first views, then second views for pairs) and targets of each batch of an epoch."""
        batches = []
        for start in range(0, len(objects), self.settings.batch_size):
            chunk = objects[start : start + self.settings.batch_size]
            if self.evaluation == "classification":
                rows = chunk * self.views + self.generator.integers(self.views, size=len(chunk))
                batches.append((rows, torch.from_numpy(self.labels[split][chunk])))
                continue
            first, second = distinct_views(self.generator, len(chunk), self.views)
            rows_first, rows_second = chunk * self.views + first, chunk * self.views + second
            targets = rotation_targets if self.evaluation == "rotation" else color_targets
            target = targets(self.latents[split][rows_first], self.latents[split][rows_second])
            batches.append((np.concatenate([rows_first, rows_second]), torch.from_numpy(target)))
        return batches

    def images(self, split: str, rows: list[np.ndarray]) -> Iterator[torch.Tensor]:
        """Normalised images of each batch of rows: in this process (lean) or from a fresh DataLoader."""
        if not self.protocol.scripted:
            for batch in rows:
                yield normalize(self.readers[split].read_images(batch), *self.normalization)
            return
        yield from DataLoader(  # created every epoch: its workers start anew, as the original's
            self.datasets[split],
            batch_sampler=[batch.tolist() for batch in rows],
            num_workers=self.protocol.loader_workers,
        )

    def inputs(self, images: torch.Tensor) -> torch.Tensor:
        """Head inputs: the backbone's features of the part; for pairs each view's batch separately."""
        halves = [images] if self.evaluation == "classification" else list(images.chunk(2))
        with torch.no_grad():
            features = [self.model.backbone(half)[:, self.columns] for half in halves]
        return torch.cat(features, dim=1)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = functional.cross_entropy if self.evaluation == "classification" else functional.mse_loss
        return loss(output, target)

    def run(self) -> dict[str, float]:
        """Train every epoch from images; the last epoch's validation metrics."""
        metrics: dict[str, float] = {}
        for epoch in range(self.settings.epochs):
            self.train_epoch()
            metrics = self.validate()
            self.end_epoch(epoch, metrics)
        if self.writer is not None:
            self.writer.close()
        return metrics

    def train_epoch(self) -> None:
        self.head.train()
        self.model.backbone.train(self.protocol.batchnorm == "train")  # net.train() reaches the backbone
        batches = self.draw("train", self.generator.permutation(len(self.labels["train"])))
        images = self.images("train", [rows for rows, _ in batches])
        for batch_images, (_, target) in zip(images, batches, strict=True):
            loss = self.loss(self.head(self.inputs(batch_images)), target)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            self.step += 1
            if self.writer is not None and self.step % TRAIN_LOG_EVERY_STEPS == 0:
                self.writer.add_scalar("Loss/loss", float(loss.detach()), self.step)

    def validate(self) -> dict[str, float]:
        """Metrics on one random view (classification) or pair (regression) of each val object."""
        self.head.eval()
        self.model.backbone.eval()
        batches = self.draw("val", self.generator.permutation(len(self.labels["val"])))
        outputs = []
        with torch.no_grad():
            for images in self.images("val", [rows for rows, _ in batches]):
                outputs.append(self.head(self.inputs(images)))
        output, target = torch.cat(outputs), torch.cat([target for _, target in batches])
        summarise = classification_summary if self.evaluation == "classification" else regression_summary
        return summarise(output, target)

    def end_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        """As the scripts: val scalars to TensorBoard and model.pth overwritten (only when not lean)."""
        if self.writer is None or self.run_dir is None:  # lean: nothing written
            return
        for name, value in metrics.items():
            self.writer.add_scalar(f"Metrics/val_{name}", value, epoch)
        state = {"head": self.head.state_dict(), "backbone": self.model.backbone.state_dict()}
        torch.save(
            {"epoch": epoch, "model": state, "optimizer": self.optimizer.state_dict()},
            self.run_dir / "model.pth",
        )


def run_original(
    model_path: Path, dataset: Path, settings: ProbeSettings, parts: list[str], protocol: Protocol
) -> tuple[float, dict[str, dict[str, float]]]:
    """Every probe of ``parts`` under ``protocol``; (wall seconds, metrics by 'evaluation-part')."""
    started = time.perf_counter()
    metrics = {}
    with tempfile.TemporaryDirectory(prefix="sie-bench-original-") as temporary:
        for evaluation in PROBES:
            for part in parts:
                run_dir = Path(temporary) / f"{evaluation}-{part}"
                run_dir.mkdir()  # used only as the scripts run it
                probe = OriginalProbe(model_path, dataset, evaluation, part, settings, protocol, run_dir)
                metrics[f"{evaluation}-{part}"] = probe.run()
    return time.perf_counter() - started, metrics

"""Probes trained on stored features: classification, rotation and colour prediction
(docs/evaluations.md#probes).

Every head trains with Adam on features computed once per checkpoint (the backbone never runs here), so
the original's train-mode BatchNorm re-estimation (docs/differences.md#probe-batchnorm)
does not apply: features are eval-mode ones.
Deliberate differences from the original scripts, all for lower variance and reproducibility
(docs/differences.md#probe-sampling):

- classification validates on EVERY view of every val object (the original: one random view per object
  per epoch), so the number is deterministic given the head;
- rotation and colour validate on a FIXED set of ``val_pairs_per_object`` seeded pairs per object (the
  original: one fresh random pair per object per epoch);
- every draw comes from generators derived from ``seed`` (view choices, shuffling, head initialisation).

Training is as the original: one random view (classification) or one random pair of distinct views
(regression) per object per epoch, shuffled, batches of ``batch_size`` with a partial last batch.
Accuracies are fractions in [0, 1] (docs/differences.md#units); R² is the paper's global R²
(docs/evaluations.md#r2-global).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as functional
from torch import nn

from sie.data.latents import hue_differences, relative_quaternion
from sie.evaluate.metrics import true_class_ranks
from sie.evaluate.registry import HEADS, PARTS
from sie.models.losses import global_r2

_LOAD_CHUNK_ROWS = 16384

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class FeatureSplit:
    """Stored features of one split; rows are object-major (row = object_index * views + view)."""

    representations: np.ndarray
    latents: np.ndarray
    views: int
    labels: np.ndarray | None = None

    def __post_init__(self) -> None:
        rows = self.representations.shape[0]
        if self.views < 1 or rows % self.views:
            raise ValueError(f"{rows} rows are not a whole number of objects of {self.views} views")
        if self.latents.shape[0] != rows:
            raise ValueError(f"latents have {self.latents.shape[0]} rows, representations {rows}")
        if self.labels is not None and len(self.labels) != self.objects:
            raise ValueError(f"labels have {len(self.labels)} entries for {self.objects} objects")

    @property
    def objects(self) -> int:
        """Number of objects in the split."""
        return self.representations.shape[0] // self.views


@dataclass(frozen=True)
class ProbeSettings:
    """Optimisation and evaluation settings (defaults: the paper's README commands,
    docs/evaluations.md#settings)."""

    epochs: int = 300
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    device: str = "cpu"
    hidden_dims: int = 1024
    val_pairs_per_object: int = 10
    validate_every: int = 5  # validation curves every 5 epochs (and the last): it never changes training
    eval_batch_size: int = 8192
    max_resident_bytes: int = 8 * 1024**3

    def __post_init__(self) -> None:
        counts = (
            "epochs",
            "batch_size",
            "hidden_dims",
            "val_pairs_per_object",
            "validate_every",
            "eval_batch_size",
        )
        for name in counts:
            if getattr(self, name) < 1:
                raise ValueError(f"probe setting {name} must be at least 1, got {getattr(self, name)}")


class ProbeResult(NamedTuple):
    """Final validation metrics (last epoch) and one dict per epoch.

    History keys: ``epoch``, ``train_<metric>`` (over the epoch's training batches, as the parameters moved)
    and, on validated epochs, ``val_<metric>``; metrics are top1/top5/loss or r2/mse.
    """

    metrics: dict[str, float]
    history: list[dict[str, float]]


def feature_slice(part: str, inv_dims: int, total: int) -> slice:
    """Columns of a part: "inv" = the first inv_dims, "equi" = the rest, "all" = every column."""
    if part not in PARTS:
        raise ValueError(f"unknown feature part {part!r}; choose one of {PARTS}")
    if not 0 <= inv_dims <= total:
        raise ValueError(f"inv_dims {inv_dims} outside [0, {total}]")
    selected = {"inv": slice(0, inv_dims), "equi": slice(inv_dims, total), "all": slice(0, total)}[part]
    if selected.stop == selected.start:
        raise ValueError(f"the {part!r} part is empty (inv_dims={inv_dims}, total dims={total})")
    return selected


def rotation_targets(first_latents: np.ndarray, second_latents: np.ndarray) -> np.ndarray:
    """Quaternion of R1^-1 R2 (scipy order and sign, as the original), float32 (pairs, 4)."""
    return relative_quaternion(first_latents, second_latents).astype(np.float32)


def color_targets(first_latents: np.ndarray, second_latents: np.ndarray) -> np.ndarray:
    """[floor hue(2) - floor hue(1), spot hue(2) - spot hue(1)] (not wrapped), float32 (pairs, 2)."""
    return hue_differences(first_latents, second_latents).astype(np.float32)


def build_head(input_dims: int, outputs: int, kind: str, hidden_dims: int, seed: int) -> nn.Sequential:
    """Linear(in, out), or "mlp" in-hidden-hidden-out with ReLU; PyTorch's default init from ``seed``."""
    if kind not in HEADS:
        raise ValueError(f"unknown head {kind!r}; choose one of {HEADS}")
    widths = [input_dims, outputs] if kind == "linear" else [input_dims, hidden_dims, hidden_dims, outputs]
    layers: list[nn.Module] = []
    for index, (fan_in, fan_out) in enumerate(itertools.pairwise(widths)):
        if index:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(fan_in, fan_out))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in layers:
            if isinstance(layer, nn.Linear):
                bound = 1.0 / math.sqrt(layer.in_features)
                layer.weight.uniform_(-bound, bound, generator=generator)
                layer.bias.uniform_(-bound, bound, generator=generator)
    return nn.Sequential(*layers)


class _FeatureSource:
    """Rows of one part of a (possibly memory-mapped) array: resident on the device, or read per batch."""

    def __init__(self, array: np.ndarray, columns: slice, device: torch.device, resident: bool) -> None:
        self.array, self.columns, self.device, self.resident = array, columns, device, resident
        self.table: torch.Tensor | None = None
        if resident:
            width = columns.stop - columns.start
            self.table = torch.empty((array.shape[0], width), dtype=torch.float32, device=device)
            for start in range(0, array.shape[0], _LOAD_CHUNK_ROWS):
                block = np.array(array[start : start + _LOAD_CHUNK_ROWS, columns], dtype=np.float32)
                self.table[start : start + len(block)] = torch.from_numpy(block).to(device)

    def index(self, rows: np.ndarray) -> torch.Tensor:
        """Row indices where ``gather`` wants them (the device when resident, the host otherwise)."""
        return torch.from_numpy(np.asarray(rows, dtype=np.int64)).to(self.device if self.resident else "cpu")

    def gather(self, rows: torch.Tensor) -> torch.Tensor:
        """float32 features of ``rows`` on the device."""
        if self.table is not None:
            return self.table.index_select(0, rows)
        block = np.asarray(self.array[rows.numpy()][:, self.columns], dtype=np.float32)
        return torch.from_numpy(block).to(self.device)

    def gather_range(self, start: int, stop: int) -> torch.Tensor:
        """float32 features of the contiguous rows start..stop-1 on the device (a view when resident)."""
        if self.table is not None:
            return self.table[start:stop]
        block = np.array(self.array[start:stop, self.columns], dtype=np.float32)
        return torch.from_numpy(block).to(self.device)


def _sources(
    train: FeatureSplit, val: FeatureSplit, columns: slice, settings: ProbeSettings
) -> list[_FeatureSource]:
    """Feature sources of both splits; each is resident if it fits what is left of the memory budget."""
    device = torch.device(settings.device)
    budget = settings.max_resident_bytes
    sources: list[_FeatureSource] = []
    for split in (train, val):
        size = split.representations.shape[0] * (columns.stop - columns.start) * 4
        sources.append(_FeatureSource(split.representations, columns, device, size <= budget))
        budget -= size if size <= budget else 0
    return sources


def distinct_views(generator: np.random.Generator, count: int, views: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` pairs of distinct views drawn uniformly (no replacement within a pair)."""
    if views < 2:
        raise ValueError("pair probes need at least 2 views per object")
    first = generator.integers(views, size=count)
    second = (first + 1 + generator.integers(views - 1, size=count)) % views
    return first, second


def object_pairs(
    objects: int, views: int, per_object: int, generator: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Rows (view 1, view 2) of ``per_object`` pairs of distinct views of every object, object-major."""
    owners = np.repeat(np.arange(objects), per_object)
    first, second = distinct_views(generator, len(owners), views)
    return owners * views + first, owners * views + second


def validation_pairs(objects: int, views: int, settings: ProbeSettings) -> tuple[np.ndarray, np.ndarray]:
    """Rows (view 1, view 2) of the fixed validation pairs of the pair probes: ``val_pairs_per_object``
    pairs of distinct views per object, drawn from the probe seed's third generator (the chance row's
    mean predictor is scored on the same pairs)."""
    seeds = np.random.SeedSequence(settings.seed).generate_state(3)
    return object_pairs(objects, views, settings.val_pairs_per_object, np.random.default_rng(seeds[2]))


def batch_slices(count: int, size: int) -> Iterator[slice]:
    """Consecutive slices of at most ``size`` rows covering ``range(count)``."""
    for start in range(0, count, size):
        yield slice(start, min(start + size, count))


def _fit(
    head: nn.Module,
    settings: ProbeSettings,
    epoch_batches: Callable[[], Iterator[Batch]],
    val_batches: Callable[[], Iterator[Batch]],
    loss_function: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    summarise: Callable[[torch.Tensor, torch.Tensor], dict[str, float]],
) -> ProbeResult:
    """Adam on the head for ``settings.epochs``; summaries of each epoch's train outputs and of val."""
    # fused=True: one kernel for all parameters (CPU and CUDA), several times faster than the
    # per-tensor loop for these small heads; the same update as plain Adam.
    optimizer = torch.optim.Adam(
        head.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay, fused=True
    )
    history: list[dict[str, float]] = []
    metrics: dict[str, float] = {}
    for epoch in range(1, settings.epochs + 1):
        head.train()
        outputs, targets = [], []
        for inputs, target in epoch_batches():
            output = head(inputs)
            loss = loss_function(output, target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            outputs.append(output.detach())
            targets.append(target)
        record = {"epoch": float(epoch)}
        record |= {
            f"train_{key}": value for key, value in summarise(torch.cat(outputs), torch.cat(targets)).items()
        }
        if epoch % settings.validate_every == 0 or epoch == settings.epochs:
            metrics = _evaluate(head, val_batches, summarise)
            if not all(math.isfinite(value) for value in metrics.values()):
                raise FloatingPointError(f"non-finite probe metrics at epoch {epoch}: {metrics}")
            record |= {f"val_{key}": value for key, value in metrics.items()}
        history.append(record)
    return ProbeResult(metrics, history)


def _evaluate(
    head: nn.Module,
    val_batches: Callable[[], Iterator[Batch]],
    summarise: Callable[[torch.Tensor, torch.Tensor], dict[str, float]],
) -> dict[str, float]:
    head.eval()
    with torch.no_grad():
        pairs = [(head(inputs), target) for inputs, target in val_batches()]
    return summarise(torch.cat([output for output, _ in pairs]), torch.cat([target for _, target in pairs]))


def classification_summary(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """``top1``, ``top5`` (fractions) and cross-entropy ``loss`` of logits against labels."""
    ranks = true_class_ranks(logits, labels)
    return {
        "top1": float((ranks <= 1).double().mean()),
        "top5": float((ranks <= 5).double().mean()),
        "loss": float(functional.cross_entropy(logits.float(), labels)),
    }


def regression_summary(prediction: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Global ``r2`` (docs/evaluations.md#r2-global, in float64) and ``mse`` of predictions vs targets."""
    return {
        "r2": float(global_r2(prediction.double(), target.double())),
        "mse": float(functional.mse_loss(prediction, target)),
    }


def classification(
    train: FeatureSplit,
    val: FeatureSplit,
    part: str,
    inv_dims: int,
    *,
    head: str = "linear",
    classes: int | None = None,
    settings: ProbeSettings | None = None,
) -> ProbeResult:
    """Class probe (docs/evaluations.md#classification): one random view per train object per epoch;
    val on every view.

    Metrics: ``top1``, ``top5`` (fractions) and ``loss`` (cross-entropy) on all val views.
    """
    settings = settings or ProbeSettings()
    if train.labels is None or val.labels is None:
        raise ValueError("classification needs labels for both splits")
    columns = feature_slice(part, inv_dims, train.representations.shape[1])
    classes = classes or int(max(train.labels.max(), val.labels.max())) + 1
    device = torch.device(settings.device)
    train_source, val_source = _sources(train, val, columns, settings)
    seeds = np.random.SeedSequence(settings.seed).generate_state(2)
    generator = np.random.default_rng(seeds[0])
    model = build_head(columns.stop - columns.start, classes, head, settings.hidden_dims, int(seeds[1]))
    train_labels = np.asarray(train.labels, dtype=np.int64)
    val_labels = torch.from_numpy(np.repeat(np.asarray(val.labels, dtype=np.int64), val.views)).to(device)

    def epoch_batches() -> Iterator[Batch]:
        order = generator.permutation(train.objects)
        rows = train_source.index(order * train.views + generator.integers(train.views, size=train.objects))
        labels = torch.from_numpy(train_labels[order]).to(device)
        for batch in batch_slices(train.objects, settings.batch_size):
            yield train_source.gather(rows[batch]), labels[batch]

    def val_batches() -> Iterator[Batch]:
        for batch in batch_slices(len(val_labels), settings.eval_batch_size):
            yield val_source.gather_range(batch.start, batch.stop), val_labels[batch]

    loss = functional.cross_entropy
    return _fit(model.to(device), settings, epoch_batches, val_batches, loss, classification_summary)


def _pair_regression(
    train: FeatureSplit,
    val: FeatureSplit,
    part: str,
    inv_dims: int,
    targets: Callable[[np.ndarray, np.ndarray], np.ndarray],
    settings: ProbeSettings,
) -> ProbeResult:
    """MLP on [features(view 1), features(view 2)] regressing ``targets(latent 1, latent 2)`` (MSE)."""
    columns = feature_slice(part, inv_dims, train.representations.shape[1])
    device = torch.device(settings.device)
    train_source, val_source = _sources(train, val, columns, settings)
    seeds = np.random.SeedSequence(settings.seed).generate_state(3)
    generator = np.random.default_rng(seeds[0])

    def pairs(
        split: FeatureSplit, objects: np.ndarray, draw: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
        first, second = distinct_views(draw, len(objects), split.views)
        rows_first, rows_second = objects * split.views + first, objects * split.views + second
        target = targets(np.asarray(split.latents[rows_first]), np.asarray(split.latents[rows_second]))
        return rows_first, rows_second, torch.from_numpy(target).to(device)

    outputs = targets(np.asarray(train.latents[:1]), np.asarray(train.latents[:1])).shape[1]
    model = build_head(
        2 * (columns.stop - columns.start), outputs, "mlp", settings.hidden_dims, int(seeds[1])
    )

    def epoch_batches() -> Iterator[Batch]:
        rows_first, rows_second, target = pairs(train, generator.permutation(train.objects), generator)
        first, second = train_source.index(rows_first), train_source.index(rows_second)
        for batch in batch_slices(train.objects, settings.batch_size):
            inputs = torch.cat([train_source.gather(first[batch]), train_source.gather(second[batch])], 1)
            yield inputs, target[batch]

    val_first, val_second = validation_pairs(val.objects, val.views, settings)
    val_target = torch.from_numpy(
        targets(np.asarray(val.latents[val_first]), np.asarray(val.latents[val_second]))
    ).to(device)
    val_first, val_second = val_source.index(val_first), val_source.index(val_second)

    def val_batches() -> Iterator[Batch]:
        for batch in batch_slices(len(val_target), settings.eval_batch_size):
            inputs = torch.cat([val_source.gather(val_first[batch]), val_source.gather(val_second[batch])], 1)
            yield inputs, val_target[batch]

    return _fit(
        model.to(device), settings, epoch_batches, val_batches, functional.mse_loss, regression_summary
    )


def rotation(
    train: FeatureSplit, val: FeatureSplit, part: str, inv_dims: int, *, settings: ProbeSettings | None = None
) -> ProbeResult:
    """Rotation probe (docs/evaluations.md#rotation-probe): quaternion of R1^-1 R2 from two views;
    metrics ``r2``, ``mse``."""
    return _pair_regression(train, val, part, inv_dims, rotation_targets, settings or ProbeSettings())


def color(
    train: FeatureSplit, val: FeatureSplit, part: str, inv_dims: int, *, settings: ProbeSettings | None = None
) -> ProbeResult:
    """Colour probe (docs/evaluations.md#colour-probe): floor and spot hue differences; metrics ``r2``,
    ``mse``."""
    return _pair_regression(train, val, part, inv_dims, color_targets, settings or ProbeSettings())

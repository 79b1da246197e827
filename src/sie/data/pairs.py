"""View pairs for pre-training: the dataset, its sampler, normalisation, resizing and the loader.

An item is addressed by a key ``epoch * num_objects + object_index``; its two views come from the
epoch's view choices, drawn at once by a generator seeded by (seed, epoch), so an object's pair depends
only on (seed, epoch, object index): not on the number of workers, the rank, or how items are grouped
into batches. The loader fetches whole batches (one reader call per batch, no per-item collation).
The sampler shuffles objects per epoch, keeps only full global batches, and gives each rank its
contiguous slice of every global batch, so the ranks' batches of a step concatenate to the
single-process batch.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.nn import functional as nn_functional
from torch.utils.data import DataLoader, Dataset, Sampler

from sie.data.latents import LATENT_SIZE, PAIR_LATENT_SIZES, pair_latents
from sie.data.readers import open_reader
from sie.data.store import READERS, dataset_layout
from sie.paths import labels_file, latents_file

SAMPLER_STREAM = 1_000_003
"""Entropy word that keeps the sampler's permutations apart from the view choices."""

VIEW_STREAM = 2_000_003
"""Entropy word of the per-epoch view choices."""

RELEASE_NORMALIZATION = {"mean": [0.5016, 0.5037, 0.5060], "std": [0.1030, 0.0999, 0.0969]}
"""The original code's fixed per-channel constants (``normalization: release``,
docs/dataset.md#normalisation)."""


Item = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class ViewReader(Protocol):
    """What the pair dataset needs from a reader: decoded images of rows, and the number of rows."""

    def read_images(self, rows: np.ndarray) -> torch.Tensor: ...

    def __len__(self) -> int: ...


def epoch_view_pairs(seed: int, epoch: int, num_objects: int, views: int) -> np.ndarray:
    """The two distinct views of every object in an epoch, (num_objects, 2), uniform over ordered pairs.

    One generator per (seed, epoch) draws all pairs at once, so an object's pair depends only on (seed,
    epoch, object index): not on workers, ranks or batch composition.
    """
    generator = np.random.default_rng(np.random.SeedSequence([seed, VIEW_STREAM, epoch]))
    first = generator.integers(0, views, num_objects)
    second = (first + 1 + generator.integers(0, views - 1, num_objects)) % views
    return np.stack([first, second], axis=1)


class ViewPairDataset(Dataset):
    """Items (image 1, image 2, pair latent, label) keyed by ``epoch * num_objects + object_index``."""

    def __init__(
        self,
        reader: ViewReader,
        latents: np.ndarray,
        labels: np.ndarray,
        views: int,
        latent_kind: str,
        seed: int,
    ) -> None:
        if latent_kind not in PAIR_LATENT_SIZES:
            raise ValueError(f"unknown latent kind {latent_kind!r}; known: {sorted(PAIR_LATENT_SIZES)}")
        if views < 2:
            raise ValueError(f"a view pair needs at least 2 views per object, found {views}")
        self.labels = np.asarray(labels, dtype=np.int64)
        self.num_objects = len(self.labels)
        rows = self.num_objects * views
        self.latents = np.ascontiguousarray(latents, dtype=np.float64)
        if self.latents.shape != (rows, LATENT_SIZE):
            raise ValueError(
                f"latents of shape {self.latents.shape} do not match {self.num_objects} objects x "
                f"{views} views (expected ({rows}, {LATENT_SIZE}))"
            )
        if len(reader) != rows:
            raise ValueError(f"the reader holds {len(reader)} views, expected {rows}")
        self.reader = reader
        self.views = views
        self.latent_kind = latent_kind
        self.seed = seed
        self._pairs_epoch: int | None = None
        self._pairs = np.zeros((0, 2), dtype=np.int64)

    def __len__(self) -> int:
        return self.num_objects

    def epoch_pairs(self, epoch: int) -> np.ndarray:
        """The (num_objects, 2) views of an epoch, computed once per epoch and process."""
        if self._pairs_epoch != epoch:
            self._pairs = epoch_view_pairs(self.seed, epoch, self.num_objects, self.views)
            self._pairs_epoch = epoch
        return self._pairs

    def view_pair(self, key: int) -> tuple[int, int, int]:
        """(object index, first view, second view) of an item key."""
        if key < 0:
            raise IndexError(f"item key {key} is negative")
        epoch, object_index = divmod(int(key), self.num_objects)
        first, second = self.epoch_pairs(epoch)[object_index].tolist()
        return object_index, first, second

    def __getitem__(self, key: int | Sequence[int]) -> Item:
        """One item, or a whole batch when ``key`` is a list of keys (what the loader asks for)."""
        if isinstance(key, int | np.integer):
            return tuple(tensor[0] for tensor in self.batch([int(key)]))  # type: ignore[return-value]
        return self.batch(key)

    def batch(self, keys: Sequence[int]) -> Item:
        """Batched items: images (B, 3, H, W) uint8, latents (B, size) float32, labels (B,) int64."""
        pairs = np.array([self.view_pair(key) for key in keys], dtype=np.int64).reshape(-1, 3)
        first_rows = pairs[:, 0] * self.views + pairs[:, 1]
        second_rows = pairs[:, 0] * self.views + pairs[:, 2]
        latents = pair_latents(self.latents[first_rows], self.latents[second_rows], self.latent_kind)
        return (
            self.reader.read_images(first_rows),
            self.reader.read_images(second_rows),
            torch.from_numpy(latents),
            torch.from_numpy(self.labels[pairs[:, 0]]),
        )


def load_pair_dataset(
    dataset_dir: Path, split: str, latent_kind: str, seed: int, reader: str = "packed"
) -> ViewPairDataset:
    """The pair dataset of a split of an indexed dataset folder; ``reader`` is 'packed' or 'files'."""
    if reader not in READERS:
        raise ValueError(f"unknown reader {reader!r}; known: {sorted(READERS)}")
    dataset_dir = Path(dataset_dir)
    _, views = dataset_layout(dataset_dir)
    return ViewPairDataset(
        open_reader(dataset_dir, split, reader),
        np.load(dataset_dir / latents_file(split), allow_pickle=False),
        np.load(dataset_dir / labels_file(split), allow_pickle=False),
        views,
        latent_kind,
        seed,
    )


class PairSampler(Sampler[list[int]]):
    """Item keys of one rank: per epoch a seeded permutation of the objects, full global batches only."""

    def __init__(self, num_objects: int, global_batch: int, rank: int, world_size: int, seed: int) -> None:
        if global_batch <= 0 or world_size <= 0:
            raise ValueError(f"global batch {global_batch} and world size {world_size} must be positive")
        if global_batch % world_size:
            raise ValueError(f"global batch {global_batch} is not divisible by the world size {world_size}")
        if num_objects // global_batch == 0:
            raise ValueError(f"batch size {global_batch} larger than the {num_objects} training objects")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside [0, {world_size})")
        self.num_objects = num_objects
        self.global_batch = global_batch
        self.local_batch = global_batch // world_size
        self.rank = rank
        self.world_size = world_size
        self.seed = seed
        self.epoch = 0
        self.start_step = 0

    @property
    def steps_per_epoch(self) -> int:
        """Full global batches per epoch (the last partial batch is dropped)."""
        return self.num_objects // self.global_batch

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose permutation the next iteration follows; resets the start step to 0.

        To resume mid-epoch, call ``set_start_step`` after ``set_epoch``.
        """
        self.epoch = int(epoch)
        self.start_step = 0

    def set_start_step(self, step: int) -> None:
        """Skip the first ``step`` batches of the epoch (resuming mid-epoch)."""
        if not 0 <= step <= self.steps_per_epoch:
            raise ValueError(f"start step {step} outside [0, {self.steps_per_epoch}]")
        self.start_step = int(step)

    def global_batches(self) -> np.ndarray:
        """Object indices of the epoch's global batches, (steps_per_epoch, global_batch)."""
        generator = np.random.default_rng(np.random.SeedSequence([self.seed, SAMPLER_STREAM, self.epoch]))
        order = generator.permutation(self.num_objects)
        return order[: self.steps_per_epoch * self.global_batch].reshape(-1, self.global_batch)

    def __iter__(self) -> Iterator[list[int]]:
        """This rank's batches of item keys, from the start step to the end of the epoch."""
        start = self.rank * self.local_batch
        objects = self.global_batches()[self.start_step :, start : start + self.local_batch]
        return iter((objects + self.epoch * self.num_objects).tolist())

    def __len__(self) -> int:
        return self.steps_per_epoch - self.start_step


def ignore_stop_signals(worker_id: int) -> None:
    """Loader workers leave SIGTERM/SIGUSR1 to the training process, which checkpoints before exiting
    (Slurm signals every process of a job step)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)


def make_loader(dataset: Dataset, sampler: PairSampler, workers: int, pin_memory: bool) -> DataLoader:
    """A DataLoader fetching whole batches (``dataset[list of keys]``) in the sampler's order.

    Workers restart each epoch so they see the sampler's state. The loader draws its workers' base seed
    from its own generator, so iterating it leaves the caller's random state untouched (items do not use
    worker seeds).
    """
    return DataLoader(
        dataset,
        batch_size=None,
        sampler=sampler,
        num_workers=workers,
        pin_memory=pin_memory,
        persistent_workers=False,
        worker_init_fn=ignore_stop_signals if workers else None,
        generator=torch.Generator().manual_seed(0),
    )


def normalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 images (..., 3, H, W) to float32 ``(x / 255 - mean) / std``, on the images' device.

    Same operations and order as the original ToTensor + Normalize.
    """
    shape = (-1, 1, 1)
    mean_tensor = torch.as_tensor(mean, dtype=torch.float32, device=images.device).view(shape)
    std_tensor = torch.as_tensor(std, dtype=torch.float32, device=images.device).view(shape)
    return images.to(torch.float32, copy=True).div_(255.0).sub_(mean_tensor).div_(std_tensor)


def normalization_constants(kind: str, statistics: dict[str, Any]) -> tuple[list[float], list[float]]:
    """(mean, std) of a normalisation kind: ``dataset`` (the dataset's ``statistics.json``, given as
    ``statistics``) or ``release`` (the original's constants)."""
    if kind == "dataset":
        return list(statistics["mean"]), list(statistics["std"])
    if kind == "release":
        return list(RELEASE_NORMALIZATION["mean"]), list(RELEASE_NORMALIZATION["std"])
    raise ValueError(f"unknown normalization {kind!r}; known: dataset, release")


def resize(images: torch.Tensor, resolution: int | None) -> torch.Tensor:
    """Float images (B, C, H, W) resized to ``resolution`` x ``resolution`` on their device; unchanged
    when ``resolution`` is None or already their size (docs/dataset.md#resolution).

    The original resizes each decoded PIL image with torchvision's ``Resize((r, r))`` before
    ``ToTensor``: bilinear, and PIL's bilinear filter widens with the scale factor when shrinking
    (antialiased). Here the batch is resized at once with ``interpolate(mode="bilinear",
    antialias=True, align_corners=False)``, torch's equivalent of that filter; since Normalize is a
    per-channel affine map and the filter's weights sum to 1, resizing normalised images equals
    normalising resized ones (the original also rounds the resized pixels to uint8; this does not).
    """
    if resolution is None or tuple(images.shape[-2:]) == (resolution, resolution):
        return images
    return nn_functional.interpolate(
        images, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False
    )


def prepare_images(
    images: torch.Tensor, mean: Sequence[float], std: Sequence[float], resolution: int | None = None
) -> torch.Tensor:
    """uint8 images (B, 3, H, W) to the float32 network input: normalised, then resized."""
    return resize(normalize(images, mean, std), resolution)

"""Per-class train/validation split of a dataset's objects, and how many objects training gets."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sie.data.objects import ObjectRef
from sie.errors import ConfigError

if TYPE_CHECKING:
    from sie.config import DatasetVariant


def class_generator(seed: int, synset: str) -> np.random.Generator:
    """Generator of one class's split: adding or removing a class leaves the other classes' splits alone."""
    words = np.frombuffer(hashlib.sha256(synset.encode("utf-8")).digest(), dtype="<u4").tolist()
    return np.random.default_rng(np.random.SeedSequence([int(seed), *words]))


def validation_count(object_count: int, val_fraction: float) -> int:
    """Objects of a class that go to validation: round(n * fraction), but at least one object in each
    split whenever the class has two or more objects."""
    if object_count < 2:
        return 0
    return min(max(round(object_count * val_fraction), 1), object_count - 1)


def split_objects(
    objects: Sequence[ObjectRef], val_fraction: float, seed: int
) -> tuple[list[ObjectRef], list[ObjectRef]]:
    """Split objects per class into (train, val); both sorted by (synset, object id).

    The result depends only on the set of objects, the fraction and the seed (not on list order).
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    by_class: dict[str, list[ObjectRef]] = defaultdict(list)
    for item in objects:
        by_class[item.synset].append(item)
    train: list[ObjectRef] = []
    val: list[ObjectRef] = []
    for synset in sorted(by_class):
        members = sorted(by_class[synset])
        order = class_generator(seed, synset).permutation(len(members))
        count = validation_count(len(members), val_fraction)
        val.extend(members[index] for index in order[:count])
        train.extend(members[index] for index in order[count:])
    return sorted(train), sorted(val)


def train_count(class_sizes: Iterable[int], val_fraction: float) -> int:
    """Objects :func:`split_objects` puts in the training split, from the class sizes alone."""
    return sum(size - validation_count(size, val_fraction) for size in class_sizes)


def train_object_count(variant: DatasetVariant) -> int | None:
    """Objects in the training split the index stage will write, known from the configuration alone.

    Counted from the split file when the variant names one, else from the object list (procedural
    recipes, ShapeNet lists). None when only a walk over a prerendered folder could tell (also when
    ``split.only_present`` keeps only the objects found there), or when an input file is missing or
    unreadable (the stage that reads it reports that, naming the file).
    """
    from sie.data.layout import read_split_images
    from sie.data.objects import variant_objects

    settings = variant.split
    if settings.only_present:
        return None
    try:
        if settings.train_images and settings.val_images:
            return len(read_split_images(Path(settings.train_images).expanduser()))
        if settings.train_images or settings.val_images or variant.source == "prerendered":
            return None
        objects = variant_objects(variant)
    except (FileNotFoundError, ValueError):
        return None
    return train_count(Counter(item.synset for item in objects).values(), settings.val_fraction)


def check_batch_fits(
    batch_size: int, train_objects: int, key: str, variant_name: str, fix: str = "", unset: bool = False
) -> None:
    """Refuse a global batch larger than the training split, naming the key, its value and the fix.

    ``fix`` is a further remedy (e.g. more objects per class); ``unset`` says the key takes its default.

    The pair sampler (``sie.data.pairs.PairSampler``) keeps only full global batches of objects, so such
    an epoch would have no step. The batch is global (every process together), so the process count
    does not change this bound (it must divide the batch, which ``sie pretrain`` checks at start).
    """
    if batch_size <= train_objects:
        return
    value = f"{batch_size} (unset: the default)" if unset else f"{batch_size}"
    remedy = f"Set it to at most {train_objects}" + (f", or {fix}" if fix else "")
    raise ConfigError(
        f"config key '{key}': batch size {value} is larger than the {train_objects} training objects of "
        f"dataset variant '{variant_name}' (an epoch keeps only full batches, so it would train no "
        f"step). {remedy}."
    )

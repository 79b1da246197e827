"""Per-class train/validation split of a dataset's objects."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from sie.data.objects import ObjectRef


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

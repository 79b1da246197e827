"""Per-class train/validation split."""

from collections import Counter

import pytest

from sie.data.objects import ObjectRef
from sie.data.split import split_objects, validation_count


def make_objects(counts):
    return [
        ObjectRef(synset, f"{synset}_{index}") for synset, count in counts.items() for index in range(count)
    ]


@pytest.mark.parametrize(
    ("count", "fraction", "expected"),
    [(1, 0.2, 0), (2, 0.2, 1), (2, 0.9, 1), (10, 0.2, 2), (10, 0.25, 2), (9, 0.5, 4), (100, 0.2, 20)],
)
def test_validation_count(count, fraction, expected):
    assert validation_count(count, fraction) == expected


def test_every_class_in_both_splits_when_it_has_two_objects():
    objects = make_objects({"a": 2, "b": 5, "c": 1, "d": 40})
    train, val = split_objects(objects, 0.2, seed=0)
    assert set(train) | set(val) == set(objects) and not set(train) & set(val)
    train_counts, val_counts = Counter(i.synset for i in train), Counter(i.synset for i in val)
    assert val_counts == {"a": 1, "b": 1, "d": 8}
    assert train_counts == {"a": 1, "b": 4, "c": 1, "d": 32}
    assert train == sorted(train) and val == sorted(val)


def test_split_depends_on_seed_not_on_list_order():
    objects = make_objects({"a": 20, "b": 20})
    first = split_objects(objects, 0.3, seed=1)
    assert split_objects(list(reversed(objects)), 0.3, seed=1) == first
    assert split_objects(objects, 0.3, seed=2) != first


def test_adding_a_class_keeps_the_other_classes_split():
    before = split_objects(make_objects({"a": 20}), 0.3, seed=1)
    after = split_objects(make_objects({"a": 20, "b": 7}), 0.3, seed=1)
    assert [i for i in after[1] if i.synset == "a"] == before[1]


def test_invalid_fraction():
    with pytest.raises(ValueError, match="val_fraction"):
        split_objects(make_objects({"a": 3}), 1.5, seed=0)

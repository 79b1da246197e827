"""Object lists, ids, sharding."""

import numpy as np
import pytest

from sie.data.objects import (
    ObjectRef,
    parse_release_path,
    procedural_objects,
    procedural_seed,
    read_object_list,
    shard_count,
    shard_objects,
)


def test_release_paths_round_trip():
    item = parse_release_path("/02691156/dc8d9003cde43b66c8727b27ee96a4b7/", "test")
    assert item == ObjectRef("02691156", "dc8d9003cde43b66c8727b27ee96a4b7")
    assert item.release_path == "/02691156/dc8d9003cde43b66c8727b27ee96a4b7/"
    assert item.key == "02691156/dc8d9003cde43b66c8727b27ee96a4b7"


def test_object_list_formats(tmp_path):
    pairs = tmp_path / "all_objects.npy"
    np.save(pairs, np.array([["02691156", "a1"], ["03001627", "b2"]]))
    paths = tmp_path / "train_images.npy"
    np.save(paths, np.array(["/02691156/a1/", "/03001627/b2/"]))
    text = tmp_path / "objects.txt"
    text.write_text("# comment\n02691156/a1\n\n03001627 b2\n")
    expected = [ObjectRef("02691156", "a1"), ObjectRef("03001627", "b2")]
    assert read_object_list(pairs) == expected
    assert read_object_list(paths) == expected
    assert read_object_list(text) == expected


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (np.array([["a", "b", "c"]]), r"expected shape \(N, 2\) or \(N,\)"),
        (np.array([1, 2, 3]), "expected strings"),
        (np.array(["/02691156/a1/extra/"]), "not of the form"),
        (np.array([["../etc", "passwd"]]), "not a valid synset or object id"),
    ],
)
def test_malformed_npy_object_lists_name_the_file(tmp_path, content, message):
    path = tmp_path / "objects.npy"
    np.save(path, content)
    with pytest.raises(ValueError, match=message) as error:
        read_object_list(path)
    assert str(path) in str(error.value)


def test_malformed_text_object_list_names_the_line(tmp_path):
    path = tmp_path / "objects.txt"
    path.write_text("02691156/a1\n02691156 a1 extra\n")
    with pytest.raises(ValueError, match=r"objects.txt:2: expected 'synset/id'"):
        read_object_list(path)
    garbage = tmp_path / "garbage.npy"
    garbage.write_bytes(b"not numpy")
    with pytest.raises(ValueError, match="garbage.npy: not a readable .npy"):
        read_object_list(garbage)
    with pytest.raises(FileNotFoundError, match="missing.npy: object list not found"):
        read_object_list(tmp_path / "missing.npy")


def test_procedural_objects_and_seeds():
    objects = procedural_objects(["mug", "chair"], 3)
    assert len(objects) == 6 and objects[0].object_id == "mug_0000" and objects[-1].object_id == "chair_0002"
    assert len({item.synset for item in objects}) == 2
    seeds = {procedural_seed(0, item) for item in objects}
    assert len(seeds) == 6
    assert procedural_seed(0, objects[0]) == procedural_seed(0, objects[0])
    assert procedural_seed(1, objects[0]) != procedural_seed(0, objects[0])
    with pytest.raises(ValueError, match="unknown procedural class 'spaceship'"):
        procedural_objects(["spaceship"], 1)


def test_shards_cover_every_object_once():
    objects = [ObjectRef("s", f"o{index}") for index in range(11)]
    assert shard_count(11, 4) == 3
    chunks = [shard_objects(objects, 4, shard) for shard in range(3)]
    assert [len(chunk) for chunk in chunks] == [4, 4, 3]
    assert [item for chunk in chunks for item in chunk] == objects
    with pytest.raises(ValueError, match="shard 3 out of range"):
        shard_objects(objects, 4, 3)

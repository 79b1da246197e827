"""The packed store and the two view readers, on a small release-layout folder (no Blender)."""

import pickle

import numpy as np
import pytest
import torch

import sie.data.store as store
from sie.config import dataset_variant, resolve_config
from sie.data.index import build_index
from sie.data.layout import image_path, read_split_images
from sie.data.readers import FileViews, PackedViews, PixelViews
from sie.data.store import read_manifest, store_dir, write_store
from support import write_release_folder

SYNSETS = ("02691156", "03001627", "03797390")
VIEWS = 4
WIDTH, HEIGHT = 24, 20


def make_release_folder(root, objects_per_class=3, views=VIEWS):
    """Classes x objects x views of WIDTH x HEIGHT JPEGs with latents, in the release layout."""
    return write_release_folder(root, SYNSETS, objects_per_class, views, (HEIGHT, WIDTH))


def make_dataset(tmp_path):
    """An indexed dataset folder (6 train, 3 val objects) over a fresh release folder."""
    root = make_release_folder(tmp_path / "release")
    spec = {"source": "prerendered", "root": str(root), "views": VIEWS, "image_size": [WIDTH, HEIGHT]}
    spec["split"] = {"val_fraction": 0.34}
    variant = dataset_variant(
        "release", resolve_config({"datasets": {"release": spec}})["datasets"]["release"]
    )
    build_index(variant, tmp_path / "dataset")
    return tmp_path / "dataset"


@pytest.fixture
def dataset(tmp_path):
    return make_dataset(tmp_path)


def split_files(dataset, split):
    """The JPEG paths of a split in row order."""
    root = store.dataset_layout(dataset)[0]
    objects = read_split_images(dataset / f"{split}_images.npy")
    return [image_path(root, item, view) for item in objects for view in range(VIEWS)]


def test_round_trip_every_row_is_the_files_bytes(dataset):
    manifest = write_store(dataset, images="jpeg")
    assert manifest == read_manifest(dataset)
    assert manifest["image_size"] == [WIDTH, HEIGHT] and manifest["views_per_object"] == VIEWS
    assert {split: counts["rows"] for split, counts in manifest["splits"].items()} == {"train": 24, "val": 12}
    for split in ("train", "val"):
        offsets = np.load(store_dir(dataset) / f"{split}_offsets.npy")
        data = (store_dir(dataset) / f"{split}.jpegs").read_bytes()
        files = split_files(dataset, split)
        assert offsets.dtype == np.int64 and offsets.shape == (len(files) + 1,)
        assert offsets[0] == 0 and offsets[-1] == len(data) == manifest["splits"][split]["bytes"]
        assert np.all(np.diff(offsets) > 0)
        for row, path in enumerate(files):
            assert data[offsets[row] : offsets[row + 1]] == path.read_bytes()
    assert sorted(path.name for path in store_dir(dataset).iterdir()) == [
        "manifest.json",
        "train.jpegs",
        "train_offsets.npy",
        "val.jpegs",
        "val_offsets.npy",
    ]


def test_failure_mid_split_leaves_no_manifest(dataset, monkeypatch):
    write_store(dataset)  # a complete earlier store must not stay marked complete either
    read = store.read_view_bytes
    calls = []

    def failing(path):
        calls.append(path)
        if len(calls) == 30:  # in the middle of the val split
            raise OSError("disk full")
        return read(path)

    monkeypatch.setattr(store, "read_view_bytes", failing)
    with pytest.raises(OSError, match="disk full"):
        write_store(dataset)
    assert not (store_dir(dataset) / "manifest.json").exists()
    assert not [path for path in store_dir(dataset).iterdir() if path.name.startswith(".")]
    with pytest.raises(FileNotFoundError, match="run `sie pack`"):
        PackedViews(dataset, "train")


def test_missing_view_names_the_file(dataset):
    missing = split_files(dataset, "val")[5]
    missing.unlink()
    with pytest.raises(FileNotFoundError, match=f"{missing}: image file missing"):
        write_store(dataset)
    assert not (store_dir(dataset) / "manifest.json").exists()


def test_truncated_jpeg_names_the_file(dataset):
    corrupt = split_files(dataset, "train")[7]
    corrupt.write_bytes(corrupt.read_bytes()[:100])
    with pytest.raises(ValueError, match=f"{corrupt}: corrupt JPEG"):
        write_store(dataset)
    assert not (store_dir(dataset) / "manifest.json").exists()
    assert not (store_dir(dataset) / "train.jpegs").exists()


def test_latents_that_do_not_match_the_split(dataset):
    np.save(dataset / "all_latents_val.npy", np.zeros((5, 7)))
    with pytest.raises(ValueError, match=r"all_latents_val.npy: expected \(12, 7\) latents"):
        write_store(dataset)
    assert not (store_dir(dataset) / "manifest.json").exists()


def test_readers_agree_on_every_row(dataset, tmp_path):
    write_store(dataset, images="jpeg")
    import shutil

    pixels_dataset = tmp_path / "pixels"
    shutil.copytree(dataset, pixels_dataset, ignore=shutil.ignore_patterns("store"))
    write_store(pixels_dataset, images="pixels")
    for split in ("train", "val"):
        packed, files = PackedViews(dataset, split), FileViews(dataset, split)
        pixels = PixelViews(pixels_dataset, split)
        assert len(packed) == len(files) == len(pixels) == len(split_files(dataset, split))
        for row in range(len(files)):
            assert packed.read(row) == files.read(row)
        rows = np.arange(len(files))[::-1]
        decoded = files.read_images(rows)
        assert decoded.shape == (len(rows), 3, HEIGHT, WIDTH) and decoded.dtype == torch.uint8
        assert torch.equal(packed.read_images(rows), decoded)
        assert torch.equal(pixels.read_images(rows), decoded)
        for reader in (packed, files):
            with pytest.raises(IndexError, match=f"row {len(files)} out of range"):
                reader.read(len(files))
        with pytest.raises(IndexError, match="rows outside"):
            pixels.read_images(np.array([len(files)]))


def test_auto_format_follows_the_pixel_budget(dataset):
    assert write_store(dataset)["images"] == "pixels"
    assert sorted(path.name for path in store_dir(dataset).iterdir()) == [
        "manifest.json",
        "train.pixels.npy",
        "val.pixels.npy",
    ]
    assert write_store(dataset, max_pixel_bytes=100)["images"] == "jpeg"
    with pytest.raises(ValueError, match="unknown store image format 'png'"):
        write_store(dataset, images="png")


def test_packed_reader_pickles_without_its_map(dataset):
    write_store(dataset, images="jpeg")
    reader = PackedViews(dataset, "train")
    first = reader.read(3)
    payload = pickle.dumps(reader)
    assert len(payload) < 1000
    assert pickle.loads(payload).read(3) == first


def test_unknown_split(dataset):
    write_store(dataset)
    with pytest.raises(ValueError, match="split 'test' not in the store"):
        PackedViews(dataset, "test")
    with pytest.raises(ValueError, match="unknown split 'test'"):
        FileViews(dataset, "test")

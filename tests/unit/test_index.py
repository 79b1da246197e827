"""The index stage on a small folder in the release layout (built here without Blender)."""

import numpy as np
import pytest
from PIL import Image

from sie.config import dataset_variant, resolve_config
from sie.data.index import build_index
from sie.data.latents import LatentSpace, sample_view_latent

SYNSETS = ("02691156", "03001627", "03797390")
VIEWS = 4


@pytest.fixture
def release_folder(tmp_path):
    """3 classes x 3 objects x 4 views of 16x16 JPEGs with latents, in the release layout."""
    root = tmp_path / "release"
    generator = np.random.default_rng(0)
    for synset in SYNSETS:
        for index in range(3):
            folder = root / synset / f"object{index}"
            folder.mkdir(parents=True)
            for view in range(VIEWS):
                pixels = generator.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"image_{view}.jpg", quality=95)
                np.save(
                    folder / f"latent_{view}.npy",
                    sample_view_latent(LatentSpace.paper(), 0, f"{synset}/{index}", view),
                )
    return root


def prerendered(root, **keys):
    spec = {"source": "prerendered", "root": str(root), "views": VIEWS, "image_size": 16, **keys}
    return dataset_variant("release", resolve_config({"datasets": {"release": spec}})["datasets"]["release"])


def test_release_folder_is_accepted_and_files_have_documented_shapes(release_folder, tmp_path):
    output = tmp_path / "index"
    card = build_index(prerendered(release_folder, split={"val_fraction": 0.34}), output)
    train_images = np.load(output / "train_images.npy")
    val_images = np.load(output / "val_images.npy")
    assert train_images.dtype.kind == "U" and train_images.shape == (6,) and val_images.shape == (3,)
    assert all(path.startswith("/") and path.endswith("/") and path.count("/") == 3 for path in train_images)
    train_labels = np.load(output / "train_labels.npy")
    assert train_labels.dtype == np.int64 and sorted(set(train_labels.tolist())) == [0, 1, 2]
    for name, images in (("train", train_images), ("val", val_images)):
        latents = np.load(output / f"all_latents_{name}.npy")
        assert latents.dtype == np.float64 and latents.shape == (len(images) * VIEWS, 7)
        # Object-major, views in order: row 4*i + v is latent_<v> of object i.
        synset, object_id = images[1].strip("/").split("/")
        np.testing.assert_array_equal(
            latents[VIEWS * 1 + 2], np.load(release_folder / synset / object_id / "latent_2.npy")
        )
    assert np.load(output / "all_objects.npy").shape == (9, 2)
    assert card["counts"] == {
        "classes": 3,
        "objects": 9,
        "train_objects": 6,
        "val_objects": 3,
        "views_per_object": VIEWS,
        "images": 36,
    }
    assert [entry["train"] for entry in card["classes"]] == [2, 2, 2]
    statistics = card["statistics"]
    assert len(statistics["mean"]) == 3 and all(0.4 < value < 0.6 for value in statistics["mean"])
    assert Image.open(output / "samples.png").size[1] == 3 * 96


def test_release_split_files_are_used_when_given(release_folder, tmp_path):
    splits = tmp_path / "splits"
    splits.mkdir()
    train = [f"/{synset}/object{index}/" for synset in SYNSETS for index in (0, 1)]
    val = [f"/{synset}/object2/" for synset in SYNSETS]
    np.save(splits / "train_images.npy", np.array(train))
    np.save(splits / "val_images.npy", np.array(val))
    variant = prerendered(
        release_folder,
        split={
            "train_images": str(splits / "train_images.npy"),
            "val_images": str(splits / "val_images.npy"),
        },
    )
    build_index(variant, tmp_path / "index")
    assert np.load(tmp_path / "index" / "val_images.npy").tolist() == val


def assert_nothing_written(output):
    assert not output.exists() or not any(output.iterdir())


def test_missing_view_names_the_file(release_folder, tmp_path):
    missing = release_folder / SYNSETS[1] / "object2" / "image_3.jpg"
    missing.unlink()
    with pytest.raises(FileNotFoundError if False else ValueError, match=f"{missing}: image file missing"):
        build_index(prerendered(release_folder), tmp_path / "index")
    assert_nothing_written(tmp_path / "index")


def test_wrong_latent_shape_names_the_file(release_folder, tmp_path):
    bad = release_folder / SYNSETS[0] / "object1" / "latent_0.npy"
    np.save(bad, np.zeros(9))
    with pytest.raises(ValueError, match=rf"{bad}: latent must be 7 float64 values, found shape \(9,\)"):
        build_index(prerendered(release_folder), tmp_path / "index")
    assert_nothing_written(tmp_path / "index")


def test_truncated_jpeg_names_the_file(release_folder, tmp_path):
    corrupt = release_folder / SYNSETS[2] / "object0" / "image_1.jpg"
    corrupt.write_bytes(corrupt.read_bytes()[:100])
    with pytest.raises(ValueError, match=f"{corrupt}: corrupt JPEG"):
        build_index(prerendered(release_folder), tmp_path / "index")
    assert_nothing_written(tmp_path / "index")


def test_split_files_that_do_not_match_the_folder(release_folder, tmp_path):
    np.save(tmp_path / "train.npy", np.array([f"/{SYNSETS[0]}/object0/"]))
    np.save(tmp_path / "val.npy", np.array([f"/{SYNSETS[0]}/object1/"]))
    variant = prerendered(
        release_folder,
        split={"train_images": str(tmp_path / "train.npy"), "val_images": str(tmp_path / "val.npy")},
    )
    # The split files define the object list of a prerendered variant, so only those objects are read.
    build_index(variant, tmp_path / "index")
    assert np.load(tmp_path / "index" / "all_objects.npy").shape == (2, 2)

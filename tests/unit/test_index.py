"""The index stage on a small folder in the release layout (built here without Blender)."""

import re

import numpy as np
import pytest
from PIL import Image

from sie.config import ConfigError, dataset_variant, resolve_config
from sie.data.index import build_index
from sie.data.latents import LatentSpace, sample_view_latent
from sie.data.layout import label_count
from sie.data.objects import ObjectRef
from support import write_release_folder

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


# --- The release path: the original repository's split files over a partial download ------------------


def write_split_files(folder, train, val, train_labels=None, val_labels=None):
    """Release-format split files (and labels files when given); returns the variant's split section."""
    folder.mkdir(parents=True, exist_ok=True)
    split = {}
    for name, images, labels in (("train", train, train_labels), ("val", val, val_labels)):
        np.save(folder / f"{name}_images.npy", np.array(images))
        split[f"{name}_images"] = str(folder / f"{name}_images.npy")
        if labels is not None:
            np.save(folder / f"{name}_labels.npy", np.array(labels, dtype=np.int64))
            split[f"{name}_labels"] = str(folder / f"{name}_labels.npy")
    return split


def test_a_partial_download_is_summarised_by_object_and_names_the_way_on(release_folder, tmp_path):
    """Split files of 10,512 objects over a folder holding 9 of them: one summary, not a line per view."""
    present_train = [f"/{synset}/object{index}/" for synset in SYNSETS for index in (0, 1)]
    present_val = [f"/{synset}/object2/" for synset in SYNSETS]
    absent = [f"/{SYNSETS[index % 3]}/absent{index:05d}/" for index in range(10_503)]
    split = write_split_files(
        tmp_path / "splits", present_train + absent[:8_000], present_val + absent[8_000:]
    )
    with pytest.raises(ValueError) as refusal:
        build_index(prerendered(release_folder, split=split), tmp_path / "index")
    message = str(refusal.value)
    assert "10,503 of 10,512 objects are missing" in message
    assert f"/{SYNSETS[0]}/absent00000/" in message and "and 10,498 more" in message
    assert "index the 9 objects that are present" in message
    assert "    release:\n      split:\n        only_present: true" in message
    assert len(message.splitlines()) < 12 and "latent file missing" not in message
    assert_nothing_written(tmp_path / "index")

    card = build_index(prerendered(release_folder, split={**split, "only_present": True}), tmp_path / "index")
    assert card["counts"]["objects"] == 9 and card["split"]["objects_left_out"] == 10_503
    assert np.load(tmp_path / "index" / "train_images.npy").tolist() == present_train
    assert np.load(tmp_path / "index" / "val_images.npy").tolist() == present_val
    assert np.load(tmp_path / "index" / "all_objects.npy").shape == (9, 2)


def test_a_damaged_object_of_a_partial_download_is_still_refused(release_folder, tmp_path):
    (release_folder / SYNSETS[0] / "object1" / "latent_2.npy").unlink()
    train = [f"/{synset}/object{index}/" for synset in SYNSETS for index in (0, 1)]
    split = write_split_files(tmp_path / "splits", train, [f"/{SYNSETS[0]}/gone/"])
    with pytest.raises(ValueError, match="object1/latent_2.npy: latent file missing"):
        build_index(prerendered(release_folder, split={**split, "only_present": True}), tmp_path / "index")


def test_missing_objects_of_a_folder_without_split_files_are_summarised_too(tmp_path):
    """A rendered variant's missing objects: the summary by object, then the repair."""
    from sie.data.index import absent_objects_message

    variant = dataset_variant(
        "tiny",
        resolve_config({"datasets": {"tiny": {"source": "procedural", "objects_per_class": 1}}})["datasets"][
            "tiny"
        ],
    )
    absent = [ObjectRef("02691156", f"mug_{index:04d}") for index in range(7)]
    message = absent_objects_message(variant, tmp_path, 50, absent, "re-render them")
    assert message.startswith(f"dataset {tmp_path}: 7 of 50 objects are missing")
    assert "and 2 more." in message and message.endswith("To repair: re-render them")
    assert "only_present" not in message


def test_the_release_labels_are_kept_when_its_labels_files_are_given(release_folder, tmp_path):
    """A class subset of the release keeps the release's numbers (here 0, 16, 30), not 0, 1, 2."""
    release_label = dict(zip(SYNSETS, (0, 16, 30), strict=True))
    train = [f"/{synset}/object{index}/" for synset in SYNSETS for index in (0, 1)]
    val = [f"/{synset}/object2/" for synset in SYNSETS]
    labels = [[release_label[path.split("/")[1]] for path in paths] for paths in (train, val)]
    split = write_split_files(tmp_path / "splits", train, val, *labels)
    card = build_index(prerendered(release_folder, split=split), tmp_path / "index")
    assert np.load(tmp_path / "index" / "train_labels.npy").tolist() == labels[0]
    assert np.load(tmp_path / "index" / "val_labels.npy").tolist() == labels[1]
    assert [(entry["synset"], entry["label"]) for entry in card["classes"]] == list(release_label.items())
    assert card["counts"]["classes"] == 3 and card["split"]["labels"] == "release"
    # The classifiers (online probe, classification probe) get the largest label + 1 outputs.
    assert label_count(card) == 31

    drawn = build_index(
        prerendered(release_folder, split={k: v for k, v in split.items() if "labels" not in k}),
        tmp_path / "drawn",
    )
    assert [entry["label"] for entry in drawn["classes"]] == [0, 1, 2] and label_count(drawn) == 3
    assert drawn["split"]["labels"] == "sorted synsets"


def test_labels_files_that_disagree_are_refused_naming_the_row(release_folder, tmp_path):
    train = [f"/{synset}/object{index}/" for synset in SYNSETS for index in (0, 1)]
    val = [f"/{synset}/object2/" for synset in SYNSETS]
    split = write_split_files(tmp_path / "splits", train, val, [0, 0, 1, 2, 2, 2], [0, 1, 2])
    with pytest.raises(
        ValueError,
        match="train_labels.npy row 3: label 2 for /03001627/object1/, but earlier rows give synset "
        "03001627 label 1",
    ):
        build_index(prerendered(release_folder, split=split), tmp_path / "index")
    split = write_split_files(tmp_path / "other", train, val, [0, 0, 1, 1, 2, 2], [0, 1, 5])
    with pytest.raises(ValueError, match="synset 03797390 has label 5, the other labels file gives it 2"):
        build_index(prerendered(release_folder, split=split), tmp_path / "index")
    split = write_split_files(tmp_path / "short", train, val, [0, 0, 1], [0, 1, 2])
    with pytest.raises(ValueError, match="expected 6 integer labels"):
        build_index(prerendered(release_folder, split=split), tmp_path / "index")


def test_a_declared_image_size_other_than_the_images_is_refused_with_the_fix(release_folder, tmp_path):
    variant = prerendered(release_folder, image_size=256)
    with pytest.raises(ValueError) as refusal:
        build_index(variant, tmp_path / "index")
    first = release_folder / SYNSETS[0] / "object0" / "image_0.jpg"
    assert str(refusal.value) == (
        f"{first}: image of 16x16 px, but config key 'datasets.release.image_size' declares 256x256 px. "
        "Set 'datasets.release.image_size: 16' (the images' size), or point the variant's root at the "
        "images of the declared size."
    )
    assert_nothing_written(tmp_path / "index")


def test_non_square_images_are_declared_as_width_and_height(tmp_path):
    root = write_release_folder(tmp_path / "release", SYNSETS[:2], 2, 2, (20, 24))
    spec = {"source": "prerendered", "root": str(root), "views": 2, "split": {"val_fraction": 0.5}}
    resolved = resolve_config({"datasets": {"wide": {**spec, "image_size": [24, 20]}}})["datasets"]["wide"]
    assert build_index(dataset_variant("wide", resolved), tmp_path / "index")["counts"]["objects"] == 4
    resolved = resolve_config({"datasets": {"wide": {**spec, "image_size": 24}}})["datasets"]["wide"]
    with pytest.raises(
        ValueError,
        match=r"image of 24x20 px, .* declares 24x24 px. Set 'datasets.wide.image_size: \[24, 20\]'",
    ):
        build_index(dataset_variant("wide", resolved), tmp_path / "again")


@pytest.mark.parametrize(
    ("variant", "message"),
    [
        (
            {"source": "prerendered", "root": "/data", "split": {"only_present": True}},
            "split.only_present': only applies to a prerendered variant with split files",
        ),
        (
            {
                "source": "procedural",
                "objects_per_class": 2,
                "split": {"train_labels": "/x/train_labels.npy"},
            },
            "split.train_labels': labels files come with the split files",
        ),
        (
            {"source": "procedural", "objects_per_class": 2, "image_size": [32, 24]},
            "image_size': [width, height] only describes a prerendered folder",
        ),
    ],
)
def test_release_keys_out_of_place_are_configuration_errors(variant, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        resolve_config({"datasets": {"tiny": variant}})


def test_a_missing_labels_file_stops_the_workflow_naming_the_key(release_folder, tmp_path):
    from sie.workflow import check_variant_inputs

    split = write_split_files(tmp_path / "splits", [f"/{SYNSETS[0]}/object0/"], [f"/{SYNSETS[0]}/object1/"])
    split["train_labels"] = str(tmp_path / "nowhere" / "train_labels.npy")
    with pytest.raises(ConfigError, match=r"'datasets.release.split.train_labels': split file .* not found"):
        check_variant_inputs(prerendered(release_folder, split=split))

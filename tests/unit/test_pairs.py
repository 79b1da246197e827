"""View-pair dataset, sampler, decoding, normalisation and loader."""

import io

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.spatial.transform import Rotation
from torchvision.io import ImageReadMode, decode_jpeg

from sie.config import dataset_variant, resolve_config
from sie.data.index import build_index
from sie.data.pairs import (
    RELEASE_NORMALIZATION,
    PairSampler,
    ViewPairDataset,
    epoch_view_pairs,
    load_pair_dataset,
    make_loader,
    normalization_constants,
    normalize,
    prepare_images,
    resize,
)
from sie.data.readers import JpegReader, decode_image
from sie.data.store import write_store
from support import write_release_folder

SYNSETS = ("02691156", "03001627", "03797390")
VIEWS = 5
WIDTH, HEIGHT = 24, 20

# torchvision 0.29 warns that its codecs are deprecated (sie.data.pairs silences it at run time).
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding capabilities of TorchVision")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Indexed and packed: 3 classes x 4 objects x 5 views of 24x20 JPEGs (9 train, 3 val objects)."""
    base = tmp_path_factory.mktemp("pairs")
    write_release_folder(base / "release", SYNSETS, 4, VIEWS, (HEIGHT, WIDTH))
    spec = {"source": "prerendered", "root": str(base / "release"), "views": VIEWS}
    spec.update(image_size=[WIDTH, HEIGHT], split={"val_fraction": 0.25})
    variant = dataset_variant("r", resolve_config({"datasets": {"r": spec}})["datasets"]["r"])
    build_index(variant, base / "dataset")
    write_store(base / "dataset", images="jpeg")
    return base / "dataset"


class ConstantReader(JpegReader):
    """A reader that returns the same small JPEG for every row (for tests over many objects)."""

    def __init__(self, rows, views):
        buffer = io.BytesIO()
        Image.new("RGB", (8, 8), (10, 20, 30)).save(buffer, format="JPEG")
        self.data, self.rows, self.views = buffer.getvalue(), rows, views

    def read(self, row):
        return self.data

    def __len__(self):
        return self.rows


def synthetic_dataset(objects=300, views=10, latent_kind="rotation", seed=0):
    latents = np.random.default_rng(5).uniform(-1.5, 1.5, size=(objects * views, 7))
    labels = np.arange(objects) % 7
    return ViewPairDataset(ConstantReader(objects * views, views), latents, labels, views, latent_kind, seed)


def assert_items_equal(first, second):
    assert len(first) == len(second) == 4
    for left, right in zip(first, second, strict=True):
        assert left.dtype == right.dtype and torch.equal(left, right)


def test_same_key_same_item_and_readers_agree(dataset):
    packed = load_pair_dataset(dataset, "train", "rotcolor", seed=3)
    files = load_pair_dataset(dataset, "train", "rotcolor", seed=3, reader="files")
    for key in (0, 5, 9 * 2 + 4):
        assert_items_equal(packed[key], packed[key])
        assert_items_equal(packed[key], files[key])
    image, other, latent, label = packed[4]
    assert image.shape == other.shape == (3, HEIGHT, WIDTH) and image.dtype == torch.uint8
    assert latent.shape == (6,) and latent.dtype == torch.float32
    assert label.dtype == torch.int64 and label.item() == np.load(dataset / "train_labels.npy")[4]


def test_batched_items_equal_single_items(dataset):
    pairs = load_pair_dataset(dataset, "val", "rotation", seed=0)
    keys = [2, 0, 4, 1, 3]
    batch = pairs[keys]
    for position, key in enumerate(keys):
        assert_items_equal(tuple(tensor[position] for tensor in batch), pairs[key])


def test_pixel_store_gives_the_same_items_as_jpeg_store(dataset, tmp_path):
    import shutil

    pixels = tmp_path / "pixels"
    shutil.copytree(dataset, pixels, ignore=shutil.ignore_patterns("store"))
    assert write_store(pixels, images="pixels")["images"] == "pixels"
    from_pixels = load_pair_dataset(pixels, "train", "rotcolor", seed=3)
    from_jpeg = load_pair_dataset(dataset, "train", "rotcolor", seed=3)
    keys = list(range(9))
    assert_items_equal(from_pixels[keys], from_jpeg[keys])


def test_epoch_view_pairs_are_uniform_over_ordered_pairs():
    pairs = epoch_view_pairs(seed=0, epoch=0, num_objects=90_000, views=4)
    assert np.all(pairs[:, 0] != pairs[:, 1])
    counts = np.bincount(pairs[:, 0] * 4 + pairs[:, 1], minlength=16).reshape(4, 4)
    assert np.all(np.diag(counts) == 0)
    off_diagonal = counts[~np.eye(4, dtype=bool)]
    assert np.all(np.abs(off_diagonal - 7500) < 5 * np.sqrt(7500))  # 12 ordered pairs, equally likely


def test_views_distinct_reproducible_and_new_each_epoch():
    pairs = synthetic_dataset()
    epoch0 = [pairs.view_pair(key) for key in range(300)]
    epoch1 = [pairs.view_pair(300 + key) for key in range(300)]
    assert epoch0 == [synthetic_dataset().view_pair(key) for key in range(300)]
    assert all(first != second for _, first, second in epoch0 + epoch1)
    assert [pair[0] for pair in epoch1] == list(range(300))
    changed = sum(left != right for left, right in zip(epoch0, epoch1, strict=True))
    assert changed > 250  # 90 ordered pairs: about 299 of 300 differ
    assert {view for _, first, second in epoch0 for view in (first, second)} == set(range(10))
    other_seed = synthetic_dataset(seed=1)
    assert sum(pair != other_seed.view_pair(key) for key, pair in enumerate(epoch0)) > 250


def test_latents_match_scipy_and_hue_differences():
    pairs = synthetic_dataset(objects=40, latent_kind="rotcolor")
    for key in range(40, 80):
        object_index, first, second = pairs.view_pair(key)
        one, two = pairs.latents[object_index * 10 + first], pairs.latents[object_index * 10 + second]
        latent = pairs[key][2].numpy()
        rotation_one, rotation_two = Rotation.from_euler("xyz", one[:3]), Rotation.from_euler("xyz", two[:3])
        expected = (rotation_one.inv() * rotation_two).as_quat()
        np.testing.assert_array_equal(latent[:4], expected.astype(np.float32))  # scipy's order and sign
        matrix = rotation_one.as_matrix().T @ rotation_two.as_matrix()  # R1^-1 R2
        np.testing.assert_allclose(Rotation.from_quat(latent[:4]).as_matrix(), matrix, atol=1e-6)
        hues = np.array([two[3] - one[3], two[6] - one[6]], dtype=np.float32)
        np.testing.assert_array_equal(latent[4:], hues)
    rotation_only = synthetic_dataset(objects=40, latent_kind="rotation")
    assert torch.equal(rotation_only[41][2], pairs[41][2][:4])


def test_decoded_image_equals_pil_exactly(dataset):
    # Both decoders are libjpeg-turbo with the same defaults (fancy upsampling, integer IDCT).
    path = next((dataset.parent / "release" / SYNSETS[0]).iterdir()) / "image_2.jpg"
    decoded = decode_image(path.read_bytes())
    expected = np.asarray(Image.open(path).convert("RGB"))
    assert decoded.shape == (3, HEIGHT, WIDTH)
    np.testing.assert_array_equal(decoded.permute(1, 2, 0).numpy(), expected)


def test_unknown_latent_kind_and_reader(dataset):
    with pytest.raises(ValueError, match="unknown latent kind 'euler'"):
        synthetic_dataset(latent_kind="euler")
    with pytest.raises(ValueError, match="unknown reader 'lmdb'"):
        load_pair_dataset(dataset, "train", "rotation", 0, reader="lmdb")


def test_sampler_full_batches_cover_each_object_once():
    sampler = PairSampler(num_objects=103, global_batch=10, rank=0, world_size=1, seed=4)
    assert sampler.steps_per_epoch == 10 and len(sampler) == 10
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == 10 and all(len(batch) == 10 for batch in batches)
        keys = [key for batch in batches for key in batch]
        assert len(keys) == len(set(keys)) == 100  # the 3 objects of the partial batch are dropped
        assert all(epoch * 103 <= key < (epoch + 1) * 103 for key in keys)
    sampler.set_epoch(0)
    first = list(sampler)
    sampler.set_epoch(1)
    assert [[key - 103 for key in batch] for batch in sampler] != first
    again = PairSampler(num_objects=103, global_batch=10, rank=0, world_size=1, seed=4)
    assert list(again) == first
    assert list(PairSampler(103, 10, 0, 1, seed=5)) != first


def test_rank_slices_concatenate_to_the_single_process_batch():
    single = PairSampler(50, 12, rank=0, world_size=1, seed=2)
    ranks = [PairSampler(50, 12, rank=rank, world_size=3, seed=2) for rank in range(3)]
    for sampler in (single, *ranks):
        sampler.set_epoch(7)
    single_batches = np.array(list(single))
    rank_batches = [np.array(list(sampler)) for sampler in ranks]
    assert single_batches.shape == (4, 12) and all(batch.shape == (4, 4) for batch in rank_batches)
    np.testing.assert_array_equal(np.concatenate(rank_batches, axis=1), single_batches)


def test_start_step_skips_exactly_the_done_batches():
    sampler = PairSampler(40, 8, rank=1, world_size=2, seed=0)
    sampler.set_epoch(3)
    everything = list(sampler)
    sampler.set_start_step(2)
    assert len(sampler) == 3 and list(sampler) == everything[2:]
    sampler.set_start_step(5)
    assert list(sampler) == [] and len(sampler) == 0
    with pytest.raises(ValueError, match="start step 6 outside"):
        sampler.set_start_step(6)
    sampler.set_epoch(3)  # a new epoch starts from its first batch again
    assert list(sampler) == everything


def test_sampler_errors():
    with pytest.raises(ValueError, match="global batch 10 is not divisible by the world size 4"):
        PairSampler(100, 10, rank=0, world_size=4, seed=0)
    with pytest.raises(ValueError, match="batch size 64 larger than the 50 training objects"):
        PairSampler(50, 64, rank=0, world_size=1, seed=0)


def test_two_workers_give_the_same_batches_as_none(dataset):
    pairs = load_pair_dataset(dataset, "train", "rotcolor", seed=1)
    sampler = PairSampler(pairs.num_objects, 4, rank=0, world_size=1, seed=1)
    runs = []
    for workers in (0, 2):
        loader = make_loader(pairs, sampler, workers=workers, pin_memory=False)
        batches = []
        for epoch in (0, 1):
            sampler.set_epoch(epoch)
            batches += list(loader)
        runs.append(batches)
    assert len(runs[0]) == len(runs[1]) == 4
    for left, right in zip(*runs, strict=True):
        assert left[0].shape == (4, 3, HEIGHT, WIDTH)
        for first, second in zip(left, right, strict=True):
            assert torch.equal(first, second)


def test_loader_leaves_the_global_random_state_alone(dataset):
    pairs = load_pair_dataset(dataset, "val", "rotation", seed=0)
    loader = make_loader(pairs, PairSampler(pairs.num_objects, 3, 0, 1, 0), workers=0, pin_memory=False)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    assert len(list(loader)) == 1
    assert torch.equal(torch.rand(3), expected)


def test_normalize_matches_totensor_and_normalize():
    images = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (2, 3, 5, 4), dtype=np.uint8))
    mean, std = [0.5016, 0.5037, 0.5060], [0.1030, 0.0999, 0.0969]
    result = normalize(images, mean, std)
    expected = (images.double() / 255 - torch.tensor(mean).view(3, 1, 1).double()) / torch.tensor(std).view(
        3, 1, 1
    ).double()
    assert result.dtype == torch.float32 and result.device == images.device
    torch.testing.assert_close(result, expected.float(), rtol=1e-6, atol=1e-5)
    floats = images.float()
    normalize(floats, mean, std)
    assert torch.equal(floats, images.float())  # the input is never modified in place


@pytest.mark.parametrize(("size", "resolution"), [(64, 32), (37, 16), (32, 48)])
def test_prepare_images_matches_the_original_resize_totensor_normalize(size, resolution):
    """The original's pipeline, torchvision's Resize((r, r)) on the PIL image then ToTensor and
    Normalize, within one grey level (PIL rounds the resized pixels to 8 bits); a resize without
    antialiasing is far off when shrinking."""
    from torchvision import transforms

    mean, std = RELEASE_NORMALIZATION["mean"], RELEASE_NORMALIZATION["std"]
    pixels = np.random.default_rng(size).integers(0, 256, (size, size, 3), dtype=np.uint8)
    original = transforms.Compose(
        [transforms.Resize((resolution, resolution)), transforms.ToTensor(), transforms.Normalize(mean, std)]
    )(Image.fromarray(pixels))
    images = torch.from_numpy(pixels).permute(2, 0, 1)[None]
    result = prepare_images(images, mean, std, resolution)[0]
    to_grey_levels = torch.tensor(std).view(3, 1, 1) * 255
    difference = ((result - original) * to_grey_levels).abs()
    assert result.shape == (3, resolution, resolution) and result.dtype == torch.float32
    assert difference.max() <= 1.01 and difference.mean() < 0.4
    if resolution < size:
        aliased = torch.nn.functional.interpolate(
            normalize(images, mean, std), size=(resolution, resolution), mode="bilinear", antialias=False
        )[0]
        assert ((aliased - original) * to_grey_levels).abs().mean() > 5


def test_resize_keeps_images_at_their_size_or_without_a_resolution():
    images = torch.rand(2, 3, 8, 8)
    assert resize(images, None) is images and resize(images, 8) is images
    assert resize(images, 4).shape == (2, 3, 4, 4)
    assert prepare_images((images * 255).byte(), [0, 0, 0], [1, 1, 1]).shape == (2, 3, 8, 8)


def test_normalization_constants_of_both_kinds():
    statistics = {"mean": [0.1, 0.2, 0.3], "std": [0.4, 0.5, 0.6], "images": 10}
    assert normalization_constants("dataset", statistics) == ([0.1, 0.2, 0.3], [0.4, 0.5, 0.6])
    assert normalization_constants("release", statistics) == (
        [0.5016, 0.5037, 0.5060],
        [0.1030, 0.0999, 0.0969],
    )
    with pytest.raises(ValueError, match="unknown normalization 'other'"):
        normalization_constants("other", statistics)


def test_fast_decoder_equals_the_public_one(dataset):
    path = next((dataset.parent / "release" / SYNSETS[1]).iterdir()) / "image_0.jpg"
    data = path.read_bytes()
    public = decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB)
    assert torch.equal(decode_image(data), public)


def test_corrupt_jpeg_names_the_row():
    pairs = synthetic_dataset(objects=3, views=4)
    pairs.reader.data = b"\xff\xd8 not a jpeg at all"
    object_index, first, _ = pairs.view_pair(1)
    with pytest.raises(ValueError, match=f"row {object_index * 4 + first} \\(object 1, view {first}\\)"):
        pairs[1]

"""Damaged JPEGs are refused where data enters: `sie index` (strict decoding) and `sie pack` (checksums).

The three corruptions of issue 11: 20 zeroed bytes near the end, 200 seeded random bytes in the middle,
a truncated file. The first decodes "successfully" with a plain libjpeg or Pillow decode (libjpeg prints
a warning, or in some files nothing), the second does too in some files and fails without naming the
file in others.
"""

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from corruptions import CORRUPTIONS, a_jpeg, truncate, zero_near_end
from sie.config import dataset_variant, resolve_config
from sie.data.index import build_index
from sie.data.integrity import CHECKSUM_DTYPE, digest
from sie.data.jpeg import ZERO_RUN, CorruptJpeg, StrictDecoder, structure_problem
from sie.data.layout import image_path, latent_path, read_split_images
from sie.data.objects import prerendered_objects
from sie.data.readers import FileViews, PackedViews, decode_image
from sie.data.store import store_dir, write_store
from sie.paths import CHECKSUMS_FILE
from support import write_release_folder

SYNSETS = ("02691156", "03001627", "03797390")
OBJECTS_PER_CLASS = 3
VIEWS = 3
SIZE = 32


def damage(path, corruption):
    path.write_bytes(CORRUPTIONS[corruption](path.read_bytes()))


def prerendered(root):
    spec = {"source": "prerendered", "root": str(root), "views": VIEWS, "image_size": SIZE}
    spec["split"] = {"val_fraction": 0.34}
    return dataset_variant("release", resolve_config({"datasets": {"release": spec}})["datasets"]["release"])


@pytest.fixture
def release(tmp_path):
    return write_release_folder(tmp_path / "release", SYNSETS, OBJECTS_PER_CLASS, VIEWS, SIZE)


@pytest.fixture
def indexed(release, tmp_path):
    build_index(prerendered(release), tmp_path / "dataset")
    return tmp_path / "dataset"


def noisy_jpeg(seed, quality=75, size=32):
    """A class colour plus noise, as the test datasets' views, at a quality where libjpeg often
    decodes 20 zeroed bytes without a warning."""
    generator = np.random.default_rng(seed)
    base = generator.integers(0, 256, 3)
    pixels = np.clip(base + generator.integers(-40, 40, size=(size, size, 3)), 0, 255).astype(np.uint8)
    stream = io.BytesIO()
    Image.fromarray(pixels).save(stream, format="JPEG", quality=quality)
    return stream.getvalue()


def test_libjpeg_warnings_are_errors_and_are_not_printed(capfd):
    data = bytearray(a_jpeg(256))
    data[-40:-30] = bytes(10)  # too short a run for the zero-run check: only libjpeg sees it
    data = bytes(data)
    assert decode_image(data).shape == (3, 256, 256)  # what training would have used
    with Image.open(io.BytesIO(data)) as image:
        image.load()
    assert "Corrupt JPEG data" in capfd.readouterr().err  # libjpeg's warning, naming no file
    with StrictDecoder() as decoder, pytest.raises(CorruptJpeg, match="Corrupt JPEG data: .* extraneous"):
        decoder.decode(data)
    assert capfd.readouterr().err == "", "libjpeg's warning is captured, not printed"


def test_zeroed_bytes_that_libjpeg_decodes_silently_are_refused(capfd):
    data = zero_near_end(noisy_jpeg(seed=1))
    assert decode_image(data).shape == (3, 32, 32)
    assert capfd.readouterr().err == "", "libjpeg does not notice this damage"
    with StrictDecoder() as decoder, pytest.raises(CorruptJpeg, match="20 zero bytes in a row at byte"):
        decoder.decode(data)


def test_long_zero_runs_of_optimised_huffman_tables_are_sound():
    pixels = np.full((64, 64, 3), 120, dtype=np.uint8)
    stream = io.BytesIO()
    Image.fromarray(pixels).save(stream, format="JPEG", quality=95, optimize=True)
    data = stream.getvalue()
    assert b"\x00" * ZERO_RUN in data[data.index(b"\xff\xda") :], "a flat image gives all-zero codes"
    with StrictDecoder() as decoder:
        assert decoder.decode(data).shape == (3, 64, 64)


def test_strict_decoder_passes_sound_jpegs_and_keeps_stderr_working(capfd):
    data = a_jpeg()
    with StrictDecoder() as decoder:
        for _ in range(3):
            assert torch.equal(decoder.decode(data), decode_image(data))
        with pytest.raises(CorruptJpeg, match="no end-of-image marker"):
            decoder.decode(truncate(data))
        assert torch.equal(decoder.decode(data), decode_image(data))  # nothing left over in the capture
    print("still here", file=sys.stderr, flush=True)
    assert capfd.readouterr().err == "still here\n"
    with pytest.raises(RuntimeError, match="outside its `with` block"):
        StrictDecoder().decode(data)


def test_structure_problems():
    data = a_jpeg()
    assert structure_problem(data) is None
    assert structure_problem(b"\xff\xd8") == "2 bytes"
    assert structure_problem(b"GIF89a" + data) == "no start-of-image marker"
    assert "truncated" in structure_problem(data[:-1])
    assert structure_problem(data[:2] + b"\x00" + data[3:]) == "malformed header segment at byte 2"
    assert structure_problem(data[:2] + data[-2:]) == "no start-of-scan marker"


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_index_refuses_each_corruption_naming_the_file(release, tmp_path, corruption):
    corrupt = release / SYNSETS[1] / "object2" / "image_1.jpg"
    damage(corrupt, corruption)
    with pytest.raises(ValueError, match="1 problem") as raised:
        build_index(prerendered(release), tmp_path / "index")
    message = str(raised.value)
    assert f"{corrupt}: corrupt JPEG (" in message
    assert "restore the damaged files from the 3DIEBench release" in message
    assert not (tmp_path / "index").exists() or not any((tmp_path / "index").iterdir())


def test_index_refuses_images_of_another_size(release, tmp_path):
    odd = release / SYNSETS[2] / "object0" / "image_2.jpg"
    odd.write_bytes(a_jpeg(16))
    with pytest.raises(ValueError, match=f"{odd}: image of 16x16 px, the dataset's first image is 32x32 px"):
        build_index(prerendered(release), tmp_path / "index")


def test_index_records_size_and_checksum_of_every_view_file(indexed, release):
    table = np.load(indexed / CHECKSUMS_FILE)
    assert table.dtype == CHECKSUM_DTYPE and table.shape == (len(SYNSETS) * OBJECTS_PER_CLASS, VIEWS)
    objects = np.load(indexed / "all_objects.npy")
    synset, object_id = objects[4]
    image = (release / synset / object_id / "image_2.jpg").read_bytes()
    latent = (release / synset / object_id / "latent_2.npy").read_bytes()
    entry = table[4, 2]
    assert entry["image_bytes"] == len(image) and entry["latent_bytes"] == len(latent)
    assert np.array_equal(entry["image_sha256"], digest(image))
    assert np.array_equal(entry["latent_sha256"], digest(latent))
    assert CHECKSUMS_FILE in json.loads((indexed / "card.json").read_text())["files"]


def split_image(dataset, split, row):
    root = Path(json.loads((dataset / "card.json").read_text())["root"])
    objects = read_split_images(dataset / f"{split}_images.npy")
    return image_path(root, objects[row // VIEWS], row % VIEWS)


@pytest.mark.parametrize("images", ["jpeg", "pixels"])
@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_pack_refuses_each_corruption_since_indexing_naming_the_file(indexed, corruption, images):
    corrupt = split_image(indexed, "val", 4)
    damage(corrupt, corruption)
    with pytest.raises(ValueError) as raised:
        write_store(indexed, images=images)
    message = str(raised.value)
    assert message.startswith(f"{corrupt}: corrupt JPEG (changed since `sie index`: ")
    assert "restore the damaged files from the 3DIEBench release" in message
    assert not (store_dir(indexed) / "manifest.json").exists()


def test_pack_refuses_a_missing_checksum_table(indexed):
    (indexed / CHECKSUMS_FILE).unlink()
    with pytest.raises(
        FileNotFoundError, match=f"{indexed / CHECKSUMS_FILE}: checksum table missing; re-index"
    ):
        write_store(indexed)


def test_index_rejects_an_unreadable_latent_and_names_it(release, tmp_path):
    bad = latent_path(release, prerendered_objects(release)[0], 0)
    bad.write_bytes(bad.read_bytes()[:-8])
    with pytest.raises(ValueError, match=f"{bad}: unreadable latent"):
        build_index(prerendered(release), tmp_path / "index")


def test_training_readers_name_split_row_object_and_view(indexed):
    write_store(indexed, images="jpeg")
    packed = PackedViews(indexed, "train")
    data = bytearray((store_dir(indexed) / "train.jpegs").read_bytes())
    offsets = np.load(store_dir(indexed) / "train_offsets.npy")
    data[offsets[6] : offsets[6] + 40] = bytes(40)  # row 6's header, from its start-of-image marker on
    (store_dir(indexed) / "train.jpegs").write_bytes(bytes(data))
    object_name = read_split_images(indexed / "train_images.npy")[2].release_path
    with pytest.raises(ValueError, match=rf"train row 6 \(object {object_name}, view 0\): corrupt JPEG"):
        packed.read_images(np.array([5, 6]))
    files = FileViews(indexed, "val")
    corrupt = split_image(indexed, "val", 1)
    corrupt.write_bytes(truncate(corrupt.read_bytes()))
    with pytest.raises(ValueError, match=rf"{corrupt} \(val row 1\): corrupt JPEG \(no start or end marker"):
        files.read_images(np.array([1]))

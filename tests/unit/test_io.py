"""Atomic writes: a failure never leaves a partial or temporary file."""

import json

import numpy as np
import pytest

from sie.io import atomic_open, atomic_path, read_json, write_json, write_npy


def test_write_json_and_npy(tmp_path):
    write_json(tmp_path / "a" / "data.json", {"b": np.float64(1.5), "a": np.arange(2)})
    assert json.loads((tmp_path / "a" / "data.json").read_text()) == {"a": [0, 1], "b": 1.5}
    write_npy(tmp_path / "x.npy", np.eye(2))
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), np.eye(2))


def test_failed_write_keeps_previous_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_open(target) as stream:
        stream.write("partial new content")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["file.txt"]


def test_atomic_path_keeps_the_extension_for_writers(tmp_path):
    with atomic_path(tmp_path / "image.jpg", suffix=".jpg") as temporary:
        assert temporary.suffix == ".jpg" and temporary.parent == tmp_path
        temporary.write_bytes(b"data")
    assert (tmp_path / "image.jpg").read_bytes() == b"data"
    assert len(list(tmp_path.iterdir())) == 1


def test_read_json_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.json: file not found"):
        read_json(tmp_path / "nothing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ValueError, match="bad.json: not valid JSON"):
        read_json(bad)


def test_jpeg_metadata_is_stripped_without_touching_pixels(tmp_path):
    import io

    from PIL import Image

    from sie.data.layout import strip_jpeg_metadata

    pixels = np.random.default_rng(0).integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x010E] = "rendered by Blender"  # ImageDescription
    Image.fromarray(pixels).save(
        buffer, format="JPEG", quality=95, comment=b"Blender:Date:2026/11/29", exif=exif.tobytes()
    )
    original = buffer.getvalue()
    stripped = strip_jpeg_metadata(original)
    assert b"Blender:Date" in original and b"Exif" in original
    assert b"Blender:Date" not in stripped and b"Exif" not in stripped
    np.testing.assert_array_equal(
        np.asarray(Image.open(io.BytesIO(stripped))), np.asarray(Image.open(io.BytesIO(original)))
    )
    assert strip_jpeg_metadata(stripped) == stripped
    with pytest.raises(ValueError, match="not a JPEG"):
        strip_jpeg_metadata(b"\x89PNG....")

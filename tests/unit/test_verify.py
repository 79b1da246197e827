"""`sie verify` and `--repair` on small variant folders written here without Blender.

A "rendered" procedural variant is faked: its views are random JPEGs written where the renderer would
write them, with the shard markers the renderer would leave, so the index and verify run as after a
render (the real render and re-render are in tests/workflow/test_verify_run.py).
"""

import io

import numpy as np
import pytest

from corruptions import a_jpeg, zero_near_end
from sie.cli import main
from sie.config import dataset_variant, resolve_config
from sie.data.index import build_index
from sie.data.latents import sample_view_latent
from sie.data.layout import image_path, latent_path
from sie.data.objects import shard_count, shard_objects, variant_objects
from sie.data.shards import check_render_settings, data_root, shard_marker
from sie.data.verify import MAX_LISTED, verify_command, verify_dataset
from sie.io import write_json
from sie.paths import CHECKSUMS_FILE
from support import write_release_folder

VIEWS = 2
CHUNK = 2


def procedural_variant(objects_per_class=2):
    spec = {
        "source": "procedural",
        "classes": ["mug", "chair"],
        "objects_per_class": objects_per_class,
        "views": VIEWS,
        "image_size": 16,
        "chunk_size": CHUNK,
        "split": {"val_fraction": 0.5},
    }
    return dataset_variant("fake", resolve_config({"datasets": {"fake": spec}})["datasets"]["fake"])


def fake_render(variant, output):
    """Write every view and the completion marker of every shard, as `sie render` would."""
    check_render_settings(output, variant)
    objects = variant_objects(variant)
    for index, item in enumerate(objects):
        for view in range(variant.views):
            image_path(data_root(output), item, view).parent.mkdir(parents=True, exist_ok=True)
            image_path(data_root(output), item, view).write_bytes(a_jpeg(16, seed=index * 10 + view))
            np.save(
                latent_path(data_root(output), item, view),
                sample_view_latent(variant.latents, 0, item.key, view),
            )
    for shard in range(shard_count(len(objects), variant.chunk_size)):
        members = shard_objects(objects, variant.chunk_size, shard)
        report = {"objects": [item.key for item in members], "views": variant.views, "rendered_views": 4}
        write_json(
            shard_marker(output, shard), {**report, "render_seconds": 1.0, "device": "cpu", "blender": "-"}
        )


@pytest.fixture
def rendered(tmp_path):
    """An indexed fake-rendered variant folder: 4 objects in 2 shards of 2, 2 views each."""
    variant = procedural_variant()
    output = tmp_path / "fake"
    fake_render(variant, output)
    build_index(variant, output)
    return output


def view_files(output, index, view):
    item = variant_objects(procedural_variant())[index]
    return image_path(data_root(output), item, view), latent_path(data_root(output), item, view)


def run(capsys, *arguments):
    status = main(["verify", *arguments])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_sound_folder_passes_every_check(rendered, capsys):
    for options in ([], ["--checksums"], ["--decode"]):
        status, out, err = run(capsys, "--dataset", str(rendered), *options)
        assert status == 0, err
        assert f"{rendered}: all 8 views are sound" in out


def test_deleted_image_and_changed_latent_are_found_with_the_repair_command(rendered, capsys):
    deleted, _ = view_files(rendered, 1, 0)
    deleted.unlink()
    _, shortened = view_files(rendered, 2, 1)
    shortened.write_bytes(shortened.read_bytes()[:-8])
    _, changed = view_files(rendered, 3, 0)
    data = bytearray(changed.read_bytes())
    data[-8:] = np.float64(123.0).tobytes()  # same size, other bytes
    changed.write_bytes(bytes(data))
    status, _, err = run(capsys, "--dataset", str(rendered))
    assert status == 1
    assert f"{deleted}: missing" in err and f"{shortened}: 176 bytes, indexed with 184" in err
    assert str(changed) not in err, "the fast check compares sizes only"
    assert f"To repair: re-render them: `sie verify --dataset {rendered} --checksums --repair`" in err
    status, _, err = run(capsys, "--dataset", str(rendered), "--checksums")
    assert status == 1
    assert "3 damaged file(s) (1 missing, 1 of another size, 1 with another checksum) in 3 of 8 views" in err
    assert f"{changed}: same size, but its SHA-256 differs from the indexed one" in err
    assert "then `snakemake datasets` renders exactly those views again" in err


def test_repair_deletes_the_damaged_views_their_shard_markers_and_the_card(rendered, capsys):
    kept = {path: path.read_bytes() for path in sorted(data_root(rendered).rglob("*.*"))}
    image, latent = view_files(rendered, 2, 1)  # object 2 is in shard 1
    image.unlink()
    status, out, _ = run(capsys, "--dataset", str(rendered), "--checksums", "--repair")
    assert status == 0
    assert "deleted 1 file(s) of 1 damaged view(s), the markers of shard(s) 0001.json" in out
    assert "now run `snakemake datasets`" in out
    assert not latent.exists() and not shard_marker(rendered, 1).exists()
    assert shard_marker(rendered, 0).exists() and not (rendered / "card.json").exists()
    remaining = {path: path.read_bytes() for path in sorted(data_root(rendered).rglob("*.*"))}
    assert remaining == {path: data for path, data in kept.items() if path not in (image, latent)}


def test_damage_before_indexing_is_repaired_from_the_shard_markers(tmp_path, capsys):
    variant = procedural_variant()
    output = tmp_path / "fake"
    fake_render(variant, output)
    corrupt, latent = view_files(output, 0, 1)
    corrupt.write_bytes(zero_near_end(corrupt.read_bytes()))
    with pytest.raises(ValueError) as raised:
        build_index(variant, output)
    assert f"{corrupt}: corrupt JPEG (20 zero bytes in a row" in str(raised.value)
    command = f"`sie verify --dataset {output} --decode --repair`"
    assert command in str(raised.value)
    status, _, err = run(capsys, "--dataset", str(output))
    assert status == 1 and "not indexed yet" in err and "--decode" in err
    status, out, err = run(capsys, "--dataset", str(output), "--decode", "--repair")
    assert status == 0 and f"{corrupt}: corrupt JPEG" in err and "0000.json" in out
    assert not corrupt.exists() and not latent.exists() and not shard_marker(output, 0).exists()


def test_prerendered_damage_is_restored_from_the_release_not_repaired(tmp_path, capsys):
    root = write_release_folder(tmp_path / "release", ("02691156", "03001627"), 2, VIEWS, 16)
    spec = {"source": "prerendered", "root": str(root), "views": VIEWS, "image_size": 16}
    variant = dataset_variant(
        "release", resolve_config({"datasets": {"release": spec}})["datasets"]["release"]
    )
    build_index(variant, tmp_path / "dataset")
    missing = root / "02691156" / "object1" / "latent_0.npy"
    missing.unlink()
    status, _, err = run(capsys, "--dataset", str(tmp_path / "dataset"))
    assert status == 1 and f"{missing}: missing" in err
    assert "To repair: restore the damaged files from the 3DIEBench release" in err
    status, _, err = run(capsys, "--dataset", str(tmp_path / "dataset"), "--repair")
    assert status == 1 and "a prerendered dataset is not rendered here" in err
    assert (tmp_path / "dataset" / "card.json").exists()


def test_missing_index_files_are_repaired_by_re_indexing(rendered, capsys):
    (rendered / CHECKSUMS_FILE).unlink()
    status, _, err = run(capsys, "--dataset", str(rendered))
    assert status == 1 and f"{rendered / CHECKSUMS_FILE}: missing (an index file)" in err
    assert f"re-index: `sie verify --dataset {rendered} --checksums --repair` deletes" in err
    status, _, _ = run(capsys, "--dataset", str(rendered), "--checksums", "--repair")
    assert status == 0 and not (rendered / "card.json").exists()
    assert all(shard_marker(rendered, shard).exists() for shard in (0, 1))


def test_many_damaged_files_are_summarised(tmp_path):
    variant = procedural_variant(objects_per_class=8)
    output = tmp_path / "fake"
    fake_render(variant, output)
    build_index(variant, output)
    for path in sorted(data_root(output).rglob("image_*.jpg"))[:13]:
        path.unlink()
    report = verify_dataset(output)
    assert len(report.damage) == 13 and len(report.damaged_views) == 13 and report.views == 32
    errors = io.StringIO()
    assert verify_command([output], errors=errors, output=io.StringIO()) == 1
    lines = errors.getvalue().splitlines()
    assert lines[0] == f"{output}: 13 damaged file(s) (13 missing) in 13 of 32 views:"
    assert lines[MAX_LISTED + 1] == f"  ... and {13 - MAX_LISTED} more"
    assert len(lines) == MAX_LISTED + 3 and lines[-1].startswith("To repair: re-render them")


def test_several_folders_and_an_unindexed_one(rendered, tmp_path, capsys):
    status, out, err = run(capsys, "--dataset", str(rendered), str(tmp_path / "nothing"))
    assert status == 1 and "all 8 views are sound" in out
    assert f"{tmp_path / 'nothing' / 'card.json'}: not indexed yet; run `snakemake datasets`" in err

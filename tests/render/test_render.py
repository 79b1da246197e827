"""Rendering with Blender (in this process): colours, resume, settings guard, ShapeNet-style input."""

import numpy as np
import pytest

from sie.config import dataset_variant, resolve_config
from sie.data.layout import image_path, latent_path
from sie.data.mesh import write_obj
from sie.data.objects import ObjectRef
from sie.data.preview import load_rgb
from sie.data.procedural import build_object
from sie.data.shards import data_root, shard_marker

render = pytest.importorskip("sie.data.render")
pytestmark = pytest.mark.render

FAST = {"image_size": 32, "render": {"samples": 4, "noise_threshold": 0, "denoise": False, "max_bounces": 2}}


def make_variant(**keys):
    spec = {"source": "procedural", "classes": ["mug"], "objects_per_class": 1, "views": 2, **FAST, **keys}
    return dataset_variant("t", resolve_config({"datasets": {"t": spec}})["datasets"]["t"])


def channel_means(output, variant, view=0):
    item = ObjectRef("03797390", "mug_0000")
    return load_rgb(image_path(data_root(output), item, view)).reshape(-1, 3).mean(axis=0)


@pytest.mark.parametrize(("hue", "dominant"), [(0.0, 0), (1 / 3, 1), (2 / 3, 2)])
def test_jpegs_are_in_true_rgb_order(tmp_path, hue, dominant):
    variant = make_variant(latents={"floor_hue": hue, "spot_hue": hue})
    render.render_shard(variant, 0, tmp_path, threads=2)
    means = channel_means(tmp_path, variant)
    others = [channel for channel in range(3) if channel != dominant]
    # The floor is HSV(hue, 0.6, 0.6): 2.5:1 in linear light, about 1.5:1 after the sRGB view transform;
    # a red/blue swap would invert the ratio.
    assert all(means[dominant] > 1.3 * means[other] for other in others), means


def test_resume_renders_only_missing_views_and_reproduces_them(tmp_path):
    variant = make_variant(views=3)
    first = render.render_shard(variant, 0, tmp_path / "a", threads=2)
    assert (first["rendered_views"], first["skipped_views"]) == (3, 0)
    root = data_root(tmp_path / "a")
    item = ObjectRef("03797390", "mug_0000")
    reference = {path.name: path.read_bytes() for path in (root / item.key).iterdir()}
    image_path(root, item, 1).unlink()  # a view never rendered
    latent_path(root, item, 2).unlink()  # killed after the image, before the latent
    (root / item.key / ".image_0.jpg.abc.tmp.jpg").write_bytes(b"partial")  # left by a SIGKILL
    second = render.render_shard(variant, 0, tmp_path / "a", threads=1)
    assert (second["rendered_views"], second["skipped_views"]) == (2, 1)
    assert {path.name: path.read_bytes() for path in (root / item.key).iterdir()} == reference


def test_changed_render_settings_are_refused(tmp_path):
    render.render_shard(make_variant(), 0, tmp_path, threads=2)
    changed = make_variant(render={**FAST["render"], "samples": 8})
    with pytest.raises(
        ValueError, match=r"render_settings.json: dataset 't' was rendered with other settings \(samples"
    ):
        render.render_shard(changed, 0, tmp_path, threads=2)


def shapenet_variant(tmp_path, listed):
    (tmp_path / "list.txt").write_text("\n".join(listed) + "\n")
    spec = {
        "source": "shapenet",
        "shapenet_root": str(tmp_path / "ShapeNetCore.v2"),
        "object_list": str(tmp_path / "list.txt"),
        "views": 2,
        **FAST,
    }
    return dataset_variant("sn", resolve_config({"datasets": {"sn": spec}})["datasets"]["sn"])


def test_shapenet_tree_renders_like_the_release(tmp_path):
    model = tmp_path / "ShapeNetCore.v2" / "03001627" / "abc123" / "models" / "model_normalized.obj"
    write_obj(build_object("chair", 4), model)
    variant = shapenet_variant(tmp_path, ["03001627/abc123"])
    report = render.render_shard(variant, 0, tmp_path / "out", threads=2)
    assert report["rendered_views"] == 2
    assert np.load(latent_path(data_root(tmp_path / "out"), ObjectRef("03001627", "abc123"), 1)).shape == (7,)


def test_missing_shapenet_model_names_the_file_and_marks_nothing(tmp_path):
    (tmp_path / "ShapeNetCore.v2").mkdir()
    variant = shapenet_variant(tmp_path, ["03001627/missing1"])
    expected = tmp_path / "ShapeNetCore.v2/03001627/missing1/models/model_normalized.obj"
    with pytest.raises(FileNotFoundError, match=f"{expected}: ShapeNet model file missing"):
        render.render_shard(variant, 0, tmp_path / "out", threads=2)
    assert not shard_marker(tmp_path / "out", 0).exists()
    assert not data_root(tmp_path / "out").exists()


def test_missing_shapenet_root_is_named(tmp_path):
    variant = shapenet_variant(tmp_path, ["03001627/x"])
    with pytest.raises(FileNotFoundError, match="ShapeNetCore.v2: ShapeNet root not found"):
        render.render_shard(variant, 0, tmp_path / "out", threads=2)

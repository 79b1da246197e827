"""The pure checks behind configuration-time refusals: render settings, training split size, config files."""

import itertools
import json

import pytest

from sie.config import ConfigError, dataset_variant, resolve_config
from sie.data.objects import ObjectRef
from sie.data.shards import (
    SCENE_VERSION,
    check_render_settings,
    check_stored_render_settings,
    render_fingerprint,
    render_settings_differences,
    render_settings_path,
)
from sie.data.split import check_batch_fits, split_objects, train_count, train_object_count
from sie.workflow import check_config_file, check_rendered_views_match


def make_variant(**render):
    spec = {"source": "procedural", "classes": ["mug", "chair"], "objects_per_class": 3, "render": render}
    return dataset_variant("tiny", resolve_config({"datasets": {"tiny": spec}})["datasets"]["tiny"])


def test_differences_name_config_keys_and_survive_a_json_round_trip():
    stored = render_fingerprint(make_variant(samples=4))
    wanted = render_fingerprint(make_variant(samples=8, denoise=False))
    assert render_settings_differences(stored, stored, "tiny") == []
    assert render_settings_differences(json.loads(json.dumps(wanted)), wanted, "tiny") == []
    assert render_settings_differences(stored, wanted, "tiny") == [
        "denoise: stored True, now False (datasets.tiny.render.denoise)",
        "samples: stored 4, now 8 (datasets.tiny.render.samples)",
    ]
    older_scene = stored | {"scene": "old-scene", "image_size": 16}
    assert render_settings_differences(older_scene, stored, "tiny") == [
        "image_size: stored 16, now 256 (datasets.tiny.image_size)",
        f"scene: stored 'old-scene', now {SCENE_VERSION!r} (the renderer's scene version, not a config key)",
    ]


def test_the_stored_settings_check_only_reads_and_sie_render_records_then_refuses(tmp_path):
    check_stored_render_settings(tmp_path, make_variant(samples=4))
    assert not render_settings_path(tmp_path).exists()
    check_render_settings(tmp_path, make_variant(samples=4))
    recorded = render_settings_path(tmp_path).read_bytes()
    check_render_settings(tmp_path, make_variant(samples=4))
    for check in (check_stored_render_settings, check_render_settings):
        with pytest.raises(ValueError) as raised:
            check(tmp_path, make_variant(samples=8))
        message = str(raised.value)
        assert message.startswith(f"{render_settings_path(tmp_path)}: dataset 'tiny' was rendered")
        assert "(samples: stored 4, now 8 (datasets.tiny.render.samples))" in message
        assert f"delete {tmp_path} to re-render it" in message
    assert render_settings_path(tmp_path).read_bytes() == recorded


def test_the_workflow_check_is_a_config_error_and_skips_prerendered_data(tmp_path):
    check_render_settings(tmp_path, make_variant(samples=4))
    check_rendered_views_match(make_variant(samples=4), tmp_path)
    with pytest.raises(ConfigError, match=r"samples: stored 4, now 8 \(datasets.tiny.render.samples\)"):
        check_rendered_views_match(make_variant(samples=8), tmp_path)
    check_rendered_views_match(make_variant(samples=8), tmp_path / "never-rendered")


@pytest.mark.parametrize(
    ("sizes", "fraction"), list(itertools.product([(1,), (2, 5), (4, 4, 4), (1, 7, 30)], [0.2, 0.5]))
)
def test_train_count_is_what_the_split_gives(sizes, fraction):
    objects = [
        ObjectRef(f"class{index}", f"object{number}")
        for index, size in enumerate(sizes)
        for number in range(size)
    ]
    train, _ = split_objects(objects, fraction, seed=3)
    assert train_count(sizes, fraction) == len(train)


def test_train_object_count_of_a_procedural_variant_and_of_missing_inputs(tmp_path):
    assert train_object_count(make_variant()) == 2 * (3 - 1)
    spec = {"source": "shapenet", "shapenet_root": str(tmp_path), "object_list": str(tmp_path / "none.txt")}
    shapenet = dataset_variant("sn", resolve_config({"datasets": {"sn": spec}})["datasets"]["sn"])
    assert train_object_count(shapenet) is None


def test_check_batch_fits_is_exactly_the_samplers_bound():
    check_batch_fits(9, 9, "pretrain.training.batch_size", "tiny")
    with pytest.raises(
        ConfigError, match=r"^config key 'pretrain.training.batch_size': batch size 10 .* at most 9\.$"
    ):
        check_batch_fits(10, 9, "pretrain.training.batch_size", "tiny")


def test_the_snakefile_config_check_names_the_file_and_leaves_a_missing_file_to_snakemake(tmp_path):
    check_config_file(tmp_path / "absent.yaml")
    broken = tmp_path / "config.yaml"
    broken.write_text("datasets:\n  a: [1\n")
    with pytest.raises(ConfigError, match=r"config.yaml: line 3, column 1: not valid YAML"):
        check_config_file(broken)

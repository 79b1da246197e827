"""Configuration validation: defaults, parsing, and errors that name the key."""

import math

import pytest

from sie.config import ConfigError, dataset_variant, load_config_files, parse_number, resolve_config

MINIMAL = {"datasets": {"tiny": {"source": "procedural", "objects_per_class": 2}}}


def resolve_variant(**keys):
    return resolve_config({"datasets": {"tiny": {"source": "procedural", "objects_per_class": 2, **keys}}})


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("pi", math.pi),
        ("-pi/2", -math.pi / 2),
        ("2*pi", 2 * math.pi),
        ("0.5pi", math.pi / 2),
        (1.25, 1.25),
        (3, 3.0),
    ],
)
def test_parse_number(text, value):
    assert parse_number(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["tau", "pi/", "1+pi", "__import__('os')", True])
def test_parse_number_rejects_anything_else(text):
    with pytest.raises(ConfigError):
        parse_number(text, "some.key")


def test_defaults_are_the_papers():
    config = resolve_config(MINIMAL)
    variant = dataset_variant("tiny", config["datasets"]["tiny"])
    assert (variant.views, variant.image_size, variant.render.samples) == (50, 256, 100)
    assert variant.render.denoise is True and variant.render.view_transform == "Standard"
    assert variant.latents.ranges[0] == pytest.approx((-math.pi / 2, math.pi / 2))
    assert variant.latents.ranges[5] == pytest.approx((0.0, 2 * math.pi))
    assert variant.split.val_fraction == 0.2
    assert variant.output_dir.as_posix() == "results/datasets/tiny"


def test_resolving_twice_changes_nothing():
    once = resolve_config(MINIMAL)
    assert resolve_config(once) == once


def test_a_number_freezes_a_factor():
    config = resolve_variant(latents={"floor_hue": 0.5, "spot_theta": [0, "pi/8"]})
    latents = config["datasets"]["tiny"]["latents"]
    assert latents["floor_hue"] == [0.5, 0.5]
    assert latents["spot_theta"] == pytest.approx([0, math.pi / 8])


@pytest.mark.parametrize(
    ("keys", "named"),
    [
        ({"viewz": 3}, "datasets.tiny': unknown key(s) 'viewz'"),
        ({"views": 1}, "datasets.tiny.views"),
        ({"image_size": "big"}, "datasets.tiny.image_size"),
        ({"render": {"samples": 0}}, "datasets.tiny.render.samples"),
        ({"render": {"denoiser": True}}, "datasets.tiny.render': unknown key(s) 'denoiser'"),
        ({"latents": {"floor_hue": [0, 2]}}, "datasets.tiny.latents"),
        ({"latents": {"floor_hue": [0.6, 0.2]}}, "datasets.tiny.latents.floor_hue"),
        ({"latents": {"floor_hue": "lots"}}, "datasets.tiny.latents.floor_hue"),
        ({"split": {"val_fraction": 1.0}}, "datasets.tiny.split.val_fraction"),
        ({"source": "blender"}, "datasets.tiny.source"),
        ({"root": "/data"}, "datasets.tiny.root': only applies to source 'prerendered'"),
    ],
)
def test_bad_values_name_their_key(keys, named):
    with pytest.raises(ConfigError) as error:
        resolve_variant(**keys)
    assert named in str(error.value)


def test_unknown_top_level_key_and_missing_datasets():
    with pytest.raises(ConfigError, match="unknown key"):
        resolve_config({**MINIMAL, "dataset": {}})
    with pytest.raises(ConfigError, match="'datasets' is a required property"):
        resolve_config({})


def test_source_specific_required_keys():
    with pytest.raises(ConfigError, match="datasets.paper.shapenet_root': required"):
        resolve_config({"datasets": {"paper": {"source": "shapenet", "object_list": "x.npy"}}})
    with pytest.raises(ConfigError, match="datasets.tiny.objects_per_class': required"):
        resolve_config({"datasets": {"tiny": {"source": "procedural"}}})


def test_environment_variables_in_paths(monkeypatch):
    monkeypatch.setenv("SHAPENET_ROOT", "/data/shapenet")
    variant = {
        "source": "shapenet",
        "shapenet_root": "${SHAPENET_ROOT}",
        "object_list": "$SHAPENET_ROOT/list.txt",
    }
    config = resolve_config({"datasets": {"paper": variant}})
    assert config["datasets"]["paper"]["shapenet_root"] == "/data/shapenet"
    assert config["datasets"]["paper"]["object_list"] == ["/data/shapenet/list.txt"]
    monkeypatch.delenv("SHAPENET_ROOT")
    with pytest.raises(ConfigError, match="shapenet_root': environment variable SHAPENET_ROOT is not set"):
        resolve_config({"datasets": {"paper": variant}})


def test_shipped_configurations_are_valid(repository, monkeypatch):
    monkeypatch.setenv("SHAPENET_ROOT", "/nowhere")
    monkeypatch.setenv("SIE_SPLITS", "/nowhere")
    for name in ("config.yaml", "configs/test.yaml", "configs/paper.yaml"):
        config = resolve_config(load_config_files([repository / name]))
        for variant_name, variant in config["datasets"].items():
            dataset_variant(variant_name, variant)


def test_paper_configuration_describes_3diebench(repository, monkeypatch):
    monkeypatch.setenv("SHAPENET_ROOT", "/data/shapenet")
    monkeypatch.setenv("SIE_SPLITS", "/data/splits")
    config = resolve_config(load_config_files([repository / "configs/paper.yaml"]))
    variant = dataset_variant("3diebench", config["datasets"]["3diebench"])
    assert (variant.views, variant.image_size, variant.render.samples) == (50, 256, 100)
    assert variant.object_list == ("/data/splits/train_images.npy", "/data/splits/val_images.npy")


def test_config_files_merge_and_report_bad_files(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("datasets:\n  a:\n    source: procedural\n    objects_per_class: 2\n    views: 4\n")
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("datasets:\n  a:\n    views: 6\n")
    merged = load_config_files([base, overlay])
    assert merged["datasets"]["a"] == {"source": "procedural", "objects_per_class": 2, "views": 6}
    broken = tmp_path / "broken.yaml"
    broken.write_text("datasets: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml: not valid YAML"):
        load_config_files([broken])
    with pytest.raises(ConfigError, match="missing.yaml: configuration file not found"):
        load_config_files([tmp_path / "missing.yaml"])

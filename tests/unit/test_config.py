"""Configuration validation: defaults, parsing, and errors that name the key."""

import math

import numpy as np
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
    with pytest.raises(ConfigError, match="broken.yaml: line 2, column 1: not valid YAML"):
        load_config_files([broken])
    with pytest.raises(ConfigError, match="missing.yaml: configuration file not found"):
        load_config_files([tmp_path / "missing.yaml"])


@pytest.mark.parametrize(
    ("text", "where", "cause"),
    [
        ("datasets:\n  a:\n    source: procedural\n   views: 3\n", "line 4, column 4", "expected <block"),
        ("datasets:\n\ta: 1\n", "line 2, column 1", "found character '\\t'"),
        ("datasets:\n  a:\n    source: a: b\n", "line 3, column 14", "mapping values are not allowed"),
    ],
)
def test_yaml_errors_name_the_file_the_line_and_the_fix(tmp_path, text, where, cause):
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_config_files([path])
    message = str(raised.value)
    assert message.startswith(f"{path}: {where}: not valid YAML: ") and cause in message
    assert "indent with spaces, never tabs" in message


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_an_empty_config_file_is_an_error_naming_it(tmp_path, text):
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"^{path}: empty configuration file"):
        load_config_files([path])


def test_a_config_file_must_be_a_mapping_of_utf8_text(tmp_path):
    listing = tmp_path / "list.yaml"
    listing.write_text("- datasets\n")
    with pytest.raises(ConfigError, match="list.yaml: the top level must be a mapping of keys"):
        load_config_files([listing])
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"datasets: caf\xe9\n")
    with pytest.raises(ConfigError, match="latin.yaml: byte 13: not UTF-8 text"):
        load_config_files([latin])


def with_pretrain(training=None, methods_settings=None, **variant):
    """A 3-class procedural variant (4 objects each: 3 train, 1 val) with SIE and VICReg pretraining."""
    spec = {"source": "procedural", "classes": ["mug", "chair", "airplane"], "objects_per_class": 4}
    pretrain = {"methods": ["SIE", "VICReg"], "training": training or {}}
    if methods_settings:
        pretrain["methods_settings"] = methods_settings
    return {"datasets": {"tiny": {**spec, **variant}}, "pretrain": pretrain}


def test_a_batch_that_fits_the_training_split_is_accepted():
    resolve_config(with_pretrain({"batch_size": 9}))


@pytest.mark.parametrize(
    ("training", "methods_settings", "message"),
    [
        ({"batch_size": 10}, None, "'pretrain.training.batch_size': batch size 10 is larger"),
        (
            {"batch_size": 4},
            {"VICReg": {"training": {"batch_size": 16}}},
            "'pretrain.methods_settings.VICReg.training.batch_size': batch size 16 is larger",
        ),
        ({}, None, "'pretrain.training.batch_size': batch size 1024 (unset: the default) is larger"),
    ],
)
def test_a_batch_larger_than_the_training_split_names_the_key_value_variant_and_fix(
    training, methods_settings, message
):
    with pytest.raises(ConfigError) as raised:
        resolve_config(with_pretrain(training, methods_settings))
    text = str(raised.value)
    assert message in text
    assert "the 9 training objects of dataset variant 'tiny'" in text
    assert "Set it to at most 9, or raise datasets.tiny.objects_per_class" in text


def test_the_batch_check_counts_the_train_split_file(tmp_path):
    train = tmp_path / "train_images.npy"
    val = tmp_path / "val_images.npy"
    np.save(train, np.array([f"/02691156/object{index}/" for index in range(5)]))
    np.save(val, np.array(["/02691156/object9/"]))
    (tmp_path / "release").mkdir()
    variant = {
        "source": "prerendered",
        "root": str(tmp_path / "release"),
        "split": {"train_images": str(train), "val_images": str(val)},
    }
    config = {"datasets": {"release": variant}, "pretrain": {"methods": ["SIE"], "training": {}}}
    config["pretrain"]["training"]["batch_size"] = 5
    resolve_config(config)
    config["pretrain"]["training"]["batch_size"] = 6
    with pytest.raises(ConfigError, match="batch size 6 is larger than the 5 training objects"):
        resolve_config(config)


def test_a_prerendered_folder_without_split_files_is_not_walked(tmp_path):
    """Counting it would mean listing every object folder at every Snakefile parse: `sie pretrain`
    checks it at its start instead."""
    variant = {"source": "prerendered", "root": str(tmp_path / "nowhere")}
    resolve_config({"datasets": {"release": variant}, "pretrain": {"methods": ["SIE"]}})

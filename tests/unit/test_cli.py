"""The `sie` command for people: every --help, `sie methods`, and the by-hand `sie pretrain` spec."""

import argparse
import json

import pytest

from sie.cli import build_parser, main
from sie.config import ConfigError, resolve_config
from sie.models.registry import METHODS
from sie.training.by_hand import hand_run_spec, parse_settings
from sie.training.config import run_spec_from_dict
from sie.workflow import pretrain_spec


def subcommands() -> dict[str, argparse.ArgumentParser]:
    """Name -> parser of every subcommand."""
    action = next(
        action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction)
    )
    return dict(action.choices)


@pytest.mark.parametrize("command", sorted(subcommands()))
def test_every_help_exits_0_and_names_its_options(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    options = [
        option
        for action in subcommands()[command]._actions
        for option in action.option_strings
        if option.startswith("--")
    ]
    assert options and all(option in text for option in options), (command, options)


def test_the_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert all(command in text for command in subcommands())


def test_pretrain_help_lists_all_14_methods(capsys):
    with pytest.raises(SystemExit):
        main(["pretrain", "--help"])
    text = capsys.readouterr().out.replace("\n", " ")
    assert len(METHODS) == 14 and all(f" {name}," in text or f" {name} " in text for name in METHODS)
    assert "--set" in text and "<output>/checkpoint.pt" in text


def test_methods_lists_the_registry(capsys):
    assert main(["methods"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [line.split()[0] for line in lines[1::2]]
    assert lines[0].split()[:3] == ["method", "latent", "layout"] and names == list(METHODS)
    for row, spec in zip(lines[1::2], METHODS.values(), strict=True):
        assert row.split()[1:3] == [spec.latent, spec.layout] and ", ".join(spec.terms) in row
    assert [line.strip() for line in lines[2::2]] == [spec.description for spec in METHODS.values()]


def test_methods_json(capsys):
    assert main(["methods", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["name"] for row in rows] == list(METHODS)
    assert rows[0] == {
        "name": "SIE",
        "latent": "rotation",
        "layout": "split",
        "terms": ["invariance", "equivariance", "variance", "covariance", "predictor_variance"],
        "description": METHODS["SIE"].description,
    }
    assert all(row["description"] for row in rows)


@pytest.fixture
def indexed(tmp_path):
    """A folder with the card.json of an indexed variant named 'tiny' (all the spec needs)."""
    (tmp_path / "card.json").write_text(json.dumps({"variant": "tiny", "root": str(tmp_path)}))
    return tmp_path


def test_by_hand_spec_is_the_workflow_spec(indexed):
    settings = ["training.epochs=10", "model.arch=resnet9", "training.batch_size=64", "training.lr=1e-3"]
    settings += ["model.equi_factor=0.45", "training.resolution=null", "pretrain.training.amp=off"]
    config = {
        "datasets": {"tiny": {"source": "prerendered", "root": str(indexed)}},
        "pretrain": {
            "methods": ["SIE"],
            "seeds": [3],
            "model": {"arch": "resnet9", "equi_factor": 0.45},
            "training": {"epochs": 10, "batch_size": 64, "lr": 0.001, "resolution": None, "amp": "off"},
        },
    }
    expected = run_spec_from_dict(pretrain_spec(resolve_config(config), "tiny", "SIE", 3))
    assert hand_run_spec("SIE", indexed, 3, settings) == expected
    assert expected.training.lr == 0.001 and expected.training.epochs == 10


def test_settings_are_yaml_scalars():
    settings = ["model.mlp=16-16", "model.predictor=", "training.deterministic=true", "model.width=4"]
    settings += ["training.warmup_epochs=0.5", "training.resolution=null", "model.width=8"]
    settings += ["training.amp=off", "model.bias_pred=False", "training.lr=2E-4"]
    assert parse_settings(settings) == {
        "model": {"mlp": "16-16", "predictor": "", "width": 8, "bias_pred": False},
        "training": {
            "deterministic": True,
            "warmup_epochs": 0.5,
            "resolution": None,
            "amp": "off",
            "lr": 0.0002,
        },
    }


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (["training.epoch=3"], r"pretrain.training': unknown key\(s\) 'epoch'"),
        (["model.arch=resnet50"], r"pretrain.model.arch': 'resnet50' is not one of"),
        (["training.epochs=0"], r"pretrain.training.epochs': 0 is less than the minimum"),
        (["training.normalization=imagenet"], r"pretrain.training.normalization': 'imagenet'"),
        (["training.resolution=4"], r"pretrain.training.resolution': 4 is not valid"),
        (["seed=3"], r"--set 'seed=3': expected model.KEY=VALUE or training.KEY=VALUE"),
        (["training.epochs"], r"--set 'training.epochs': expected"),
        (["training.lr=[1, 2]"], r"--set 'training.lr=\[1, 2\]': expected one value"),
    ],
)
def test_bad_settings_name_the_key(indexed, settings, message):
    with pytest.raises(ConfigError, match=message):
        hand_run_spec("SIE", indexed, 0, settings)


def test_by_hand_needs_an_indexed_dataset(tmp_path):
    with pytest.raises(ConfigError, match="no card.json"):
        hand_run_spec("SIE", tmp_path, 0, [])


def test_spec_and_method_exclude_each_other(indexed, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["pretrain", "--spec", "{}", "--method", "SIE", "--dataset", str(indexed), "--output", "x"])
    assert exit_info.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["pretrain", "--method", "SIEE", "--dataset", str(indexed), "--output", "x"])
    assert "invalid choice: 'SIEE'" in capsys.readouterr().err
    arguments = ["pretrain", "--spec", "{}", "--set", "training.epochs=1", "--dataset", str(indexed)]
    assert main([*arguments, "--output", "x"]) == 1
    assert "--seed and --set go with --method" in capsys.readouterr().err

"""One home per fact: the schema agrees with the dataclasses and registries it repeats, and every list of
names (CLI choices, wildcard constraints, schema enums) comes from its registry."""

import argparse
import dataclasses
import inspect
import re
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from sie import cli, config, devices
from sie.data import latents, store
from sie.evaluate import features, probes, registry, run
from sie.models import backbone, methods
from sie.models import registry as method_registry
from sie.tables import TABLES
from sie.training.config import NORMALIZATIONS, PRECISIONS, SCHEDULES, TrainConfig
from sie.workflow import method_patterns, wildcard_patterns

REPOSITORY = Path(__file__).resolve().parents[2]
SCHEMA = config.load_schema()
EVALUATE = SCHEMA["properties"]["evaluate"]["properties"]

NOT_IN_SCHEMA = {
    methods.ModelConfig: {"num_classes"},  # always the dataset's number of classes
    probes.ProbeSettings: {"device", "max_resident_bytes"},  # evaluate.device; a memory budget, not science
}
SECTIONS = [
    (SCHEMA["$defs"]["model"], methods.ModelConfig),
    (SCHEMA["$defs"]["training"], TrainConfig),
    (EVALUATE["probe"], probes.ProbeSettings),
    (EVALUATE["retrieval"], run.RetrievalSettings),
]
SECTION_IDS = [cls.__name__ for _, cls in SECTIONS]


def field_defaults(cls) -> dict:
    defaults = cls()
    return {field.name: getattr(defaults, field.name) for field in dataclasses.fields(cls)}


@pytest.mark.parametrize(("section", "cls"), SECTIONS, ids=SECTION_IDS)
def test_schema_keys_are_the_dataclass_fields(section, cls):
    fields = {field.name for field in dataclasses.fields(cls)} - NOT_IN_SCHEMA.get(cls, set())
    assert set(section["properties"]) == fields


@pytest.mark.parametrize(("section", "cls"), SECTIONS, ids=SECTION_IDS)
def test_dataclass_defaults_are_the_only_defaults_and_valid(section, cls):
    """The dataclass holds the default of every key (the schema states none or the same), and the
    default is a value the schema accepts."""
    for key, value in field_defaults(cls).items():
        if key not in section["properties"]:
            continue
        prop = section["properties"][key]
        assert prop.get("default", value) == value, key
        as_json = list(value) if isinstance(value, tuple) else value
        jsonschema.validate(as_json, {**prop, "$defs": SCHEMA["$defs"]})


def enums(section: dict) -> dict[str, list]:
    """Key -> allowed values of every enum property of a section (``items`` enums for arrays)."""
    found = {}
    for key, prop in section["properties"].items():
        if "enum" in prop:
            found[key] = prop["enum"]
        elif "enum" in prop.get("items", {}):
            found[key] = prop["items"]["enum"]
    return found


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (
            SCHEMA["$defs"]["training"],
            {
                "schedule": SCHEDULES,
                "amp": PRECISIONS,
                "reader": store.READERS,
                "device": devices.DEVICES,
                "normalization": NORMALIZATIONS,
            },
        ),
        (
            SCHEMA["$defs"]["model"],
            {"arch": tuple(backbone.BLOCKS_PER_STAGE), **methods.MODEL_CHOICES},
        ),
        (
            SCHEMA["properties"]["evaluate"],
            {
                "evaluations": registry.EVALUATIONS,
                "parts": registry.PARTS,
                "references": tuple(registry.REFERENCES),
                "classifier": registry.HEADS,
                "device": devices.DEVICES,
            },
        ),
        (EVALUATE["retrieval"], {"modes": registry.RETRIEVAL_MODES, "dtype": registry.RETRIEVAL_DTYPES}),
        (SCHEMA["$defs"]["variant"], {"source": config.SOURCES}),
    ],
    ids=["training", "model", "evaluate", "retrieval", "variant"],
)
def test_schema_enums_are_the_registries(section, expected):
    """Every enum of the section is a registry's names, in its order (an enum added to the schema needs
    its registry named here)."""
    assert enums(section) == {key: list(values) for key, values in expected.items()}


def test_evaluate_defaults_are_the_codes():
    assert EVALUATE["evaluations"]["default"] == list(registry.EVALUATIONS)
    assert EVALUATE["parts"]["default"] == list(registry.PARTS)
    compute = inspect.signature(features.compute_features).parameters
    assert EVALUATE["device"]["default"] == compute["device"].default
    assert EVALUATE["features_batch_size"]["default"] == compute["batch_size"].default
    head = inspect.signature(run.evaluate_probes).parameters["head"]
    assert EVALUATE["classifier"]["default"] == head.default


def test_variant_names_pattern():
    assert SCHEMA["properties"]["datasets"]["propertyNames"]["pattern"] == f"^{config.VARIANT_NAME}$"


def test_probe_code_covers_the_registry():
    assert tuple(run.PROBES) == registry.PROBE_EVALUATIONS
    assert dataclasses.fields(run.RetrievalSettings)[0].default == registry.RETRIEVAL_MODES


def test_methods_are_the_registry_with_losses():
    assert list(methods.METHODS) == list(method_registry.METHODS)
    for name, spec in methods.METHODS.items():
        info = method_registry.METHODS[name]
        for field in dataclasses.fields(method_registry.MethodInfo):
            assert getattr(spec, field.name) == getattr(info, field.name), (name, field.name)
        assert callable(spec.loss) and spec.description
        assert spec.latent_dim == latents.PAIR_LATENT_SIZES[spec.latent]


def test_latent_contract():
    assert latents.HUE_COLUMNS == (3, 6)
    assert [latents.FACTORS[column] for column in latents.HUE_COLUMNS] == list(latents.HUE_FACTORS)
    assert latents.PAIR_LATENT_SIZES == {"rotation": 4, "rotcolor": 6}
    assert sorted(latents.COLOUR_LATENTS) == ["rotcolor"]
    generator = np.random.default_rng(0)
    first, second = generator.random((5, latents.LATENT_SIZE)), generator.random((5, latents.LATENT_SIZE))
    hues = latents.hue_differences(first, second)
    np.testing.assert_array_equal(hues, second[:, [3, 6]] - first[:, [3, 6]])
    rotcolor = latents.pair_latents(first, second, "rotcolor")
    np.testing.assert_array_equal(rotcolor[:, :4], latents.pair_latents(first, second, "rotation"))
    np.testing.assert_array_equal(rotcolor[:, 4:], hues.astype(np.float32))
    np.testing.assert_array_equal(probes.color_targets(first, second), hues.astype(np.float32))


def subcommand_choices(command: str) -> dict[str, list]:
    """Option -> choices of one ``sie`` subcommand."""
    parser = cli.build_parser()
    subparsers = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    return {
        action.option_strings[0]: list(action.choices)
        for action in subparsers.choices[command]._actions
        if action.choices is not None and action.option_strings
    }


def test_cli_choices_are_the_registries():
    assert subcommand_choices("evaluate")["--evaluation"] == list(registry.EVALUATIONS)
    assert subcommand_choices("evaluate")["--part"] == list(registry.PARTS)
    assert subcommand_choices("tables")["--table"] == list(TABLES)
    assert subcommand_choices("features")["--device"] == list(devices.DEVICES)
    pretrain = subcommand_choices("pretrain")
    if "--method" in pretrain:
        assert pretrain["--method"] == list(method_registry.METHODS)


@pytest.mark.parametrize(
    ("wildcard", "names"),
    [
        ("method", [*method_registry.METHODS, *registry.REFERENCES]),
        ("table", list(TABLES)),
        ("evaluation", [*registry.EVALUATIONS, registry.HEALTH_EVALUATION]),
        ("part", list(registry.PARTS)),
        ("variant", ["test", "paper-256", "v_2"]),
    ],
)
def test_wildcard_patterns_match_registered_names_only(wildcard, names):
    pattern = re.compile(wildcard_patterns()[wildcard])
    assert all(pattern.fullmatch(name) for name in names)
    assert not pattern.fullmatch("unknown-name_x" if wildcard != "variant" else "-starts-with-dash")
    assert not pattern.fullmatch(names[0] + "/seed0")


def test_common_smk_uses_the_patterns():
    common = (REPOSITORY / "workflow/rules/common.smk").read_text()
    block = common.split("wildcard_constraints:", 1)[1].split("\n\n", 1)[0]
    for wildcard in wildcard_patterns():
        assert f'{wildcard}=WILDCARDS["{wildcard}"]' in block


def test_rules_make_only_their_own_rows():
    """Trained methods come from `pretrain`, the references from their own rules (no ambiguous rule)."""
    rows = method_patterns()
    trained = re.compile(rows["trained"])
    assert all(trained.fullmatch(name) for name in method_registry.METHODS)
    assert not any(trained.fullmatch(name) for name in registry.REFERENCES)
    assert re.fullmatch(rows["modelled"], "untrained") and not re.fullmatch(rows["modelled"], "oracle")
    assert re.fullmatch(rows["featured"], "oracle") and not re.fullmatch(rows["featured"], "chance")
    rules = "".join(path.read_text() for path in (REPOSITORY / "workflow/rules").glob("*.smk"))
    for name in rows:
        assert f'method=ROW_PATTERNS["{name}"]' in rules, name


def test_schema_is_package_data_linked_from_the_workflow():
    packaged = REPOSITORY / "src/sie" / config.SCHEMA_RESOURCE
    linked = REPOSITORY / "workflow/schemas/config.schema.yaml"
    assert packaged.is_file()
    assert linked.is_symlink(), (
        f"{linked} must stay a link to {packaged} (one schema): edit the packaged file, and recreate the "
        "link with `ln -sf ../../src/sie/schemas/config.schema.yaml workflow/schemas/config.schema.yaml`"
    )
    assert linked.resolve() == packaged.resolve()
    pyproject = (REPOSITORY / "pyproject.toml").read_text()
    assert '"schemas/*.yaml"' in pyproject

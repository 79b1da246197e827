"""What the Snakefile derives from the configuration, as plain functions (testable without Snakemake).

Everything here runs when Snakemake parses the workflow, so it must stay cheap: no bpy, no torch, no
walk over a dataset's files.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sie.config import ConfigError, DatasetVariant
from sie.data.objects import shard_count, variant_objects


def check_variant_inputs(variant: DatasetVariant) -> None:
    """Fail early, naming the config key, when a variant's external inputs are missing."""
    key = f"datasets.{variant.name}"
    if variant.source == "shapenet":
        root = Path(variant.shapenet_root).expanduser()
        if not root.is_dir():
            raise ConfigError(
                f"config key '{key}.shapenet_root': ShapeNetCore v2 folder {root} not found. Point it at "
                "the folder holding <synset>/<id>/models/model_normalized.obj (see the README)."
            )
        for path in variant.object_list:
            if not Path(path).expanduser().is_file():
                raise ConfigError(f"config key '{key}.object_list': object list {path} not found")
    if variant.source == "prerendered" and not Path(variant.root).expanduser().is_dir():
        raise ConfigError(f"config key '{key}.root': prerendered dataset folder {variant.root} not found")
    for name in ("train_images", "val_images"):
        path = getattr(variant.split, name)
        if path and not Path(path).expanduser().is_file():
            raise ConfigError(f"config key '{key}.split.{name}': split file {path} not found")


def variant_shard_ids(variant: DatasetVariant) -> list[str]:
    """Render shard ids ("0000", "0001", ...) of a variant; none for prerendered data."""
    if variant.source == "prerendered":
        return []
    try:
        objects = variant_objects(variant)
    except (FileNotFoundError, ValueError) as error:
        raise ConfigError(f"config key 'datasets.{variant.name}': {error}") from None
    return [f"{shard:04d}" for shard in range(shard_count(len(objects), variant.chunk_size))]


def pretrain_runs(config: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    """Every (dataset variant, method, seed) of the pretrain section, in a stable order."""
    pretrain = config.get("pretrain")
    if not pretrain:
        return []
    return [
        (variant, method, seed)
        for variant in pretrain["datasets"]
        for method in pretrain["methods"]
        for seed in pretrain["seeds"]
    ]


def pretrain_spec(config: Mapping[str, Any], variant: str, method: str, seed: int) -> dict[str, Any]:
    """The run spec of one pretraining job: global model/training keys, then the method's overrides."""
    pretrain = config["pretrain"]
    overrides = pretrain["methods_settings"].get(method, {})
    return {
        "variant": variant,
        "method": method,
        "seed": int(seed),
        "model": {**pretrain["model"], **overrides.get("model", {})},
        "training": {**pretrain["training"], **overrides.get("training", {})},
    }


def evaluation_files(config: Mapping[str, Any]) -> list[str]:
    """Metrics files of every evaluation of every pretraining run (predictor: one file, part "equi")."""
    evaluate = config.get("evaluate", {})
    files = []
    for variant, method, seed in pretrain_runs(config):
        folder = f"results/evaluations/{variant}/{method}/seed{seed}"
        for evaluation in evaluate.get("evaluations", ()):
            parts = ["equi"] if evaluation == "predictor" else evaluate.get("parts", ())
            files.extend(f"{folder}/{evaluation}-{part}.json" for part in parts)
    return files


def table_evaluations() -> dict[str, set[str]]:
    """The evaluations each table reads (from the table specifications of ``sie.tables``)."""
    from sie.tables import TABLES

    return {name: {column.evaluation for column in spec.columns} for name, spec in TABLES.items()}


def tables(config: Mapping[str, Any]) -> list[str]:
    """The tables the configuration's evaluations can fill."""
    evaluations = set(config.get("evaluate", {}).get("evaluations", ()))
    if not pretrain_runs(config):
        return []
    return [name for name, needed in table_evaluations().items() if evaluations & needed]


def table_inputs(config: Mapping[str, Any], table: str) -> list[str]:
    """The metrics files a table reads, and nothing more: a predictor-only table (MRR) lists only
    methods with a predictor, so it does not ask for the other methods to be trained."""
    from sie.models.methods import METHODS
    from sie.tables import TABLES

    needed = table_evaluations()[table]
    files = [path for path in evaluation_files(config) if Path(path).name.split("-")[0] in needed]
    if TABLES[table].predictor_only:
        files = [path for path in files if METHODS[Path(path).parent.parent.name].has_predictor]
    return files


def figure_files(config: Mapping[str, Any]) -> list[str]:
    """Training curves per pretrained variant; the retrieval picture of SIE's first seed, if SIE is run."""
    runs = pretrain_runs(config)
    variants = list(dict.fromkeys(variant for variant, _, _ in runs))
    files = [f"results/figures/training_{variant}.png" for variant in variants]
    for variant in variants:
        seeds = [seed for run_variant, method, seed in runs if run_variant == variant and method == "SIE"]
        if seeds:
            files.append(f"results/figures/retrieval_{variant}_SIE_seed{seeds[0]}.png")
    return files

"""What the Snakefile derives from the configuration, as plain functions (testable without Snakemake).

Everything here runs when Snakemake parses the workflow, so it must stay cheap: no bpy, no torch, no
walk over a dataset's files. Paths are built from the templates of ``sie.paths`` (the same ones the rules
declare) with structured values such as :data:`Run` and :class:`Evaluation`; nothing parses a path back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from sie.config import VARIANT_NAME, ConfigError, DatasetVariant, load_config_file
from sie.config import pretrain_spec as pretrain_spec  # re-exported: the rules build run specs here
from sie.data.objects import shard_count, variant_objects
from sie.data.shards import check_stored_render_settings
from sie.paths import EVALUATION_PATH, RETRIEVAL_FIGURE_PATH, TRAINING_FIGURE_PATH, fill, shard_name

Run = tuple[str, str, int]
"""A pretraining run: (dataset variant, method, seed)."""


def check_config_file(path: str | Path) -> None:
    """Read a configuration file the Snakefile is about to load, so that a YAML error or an empty file
    names the file and the line (Snakemake's own message names neither); a missing file is left to
    Snakemake's ``configfile:``, whose message gives the full path it checked.

    Files given with ``--configfile`` cannot be checked here: Snakemake reads them before it evaluates
    the Snakefile (``sie config --configfile FILE`` locates their errors).
    """
    if Path(path).exists():
        load_config_file(path)


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
    for name in ("train_images", "val_images", "train_labels", "val_labels"):
        path = getattr(variant.split, name)
        if path and not Path(path).expanduser().is_file():
            raise ConfigError(f"config key '{key}.split.{name}': split file {path} not found")


def check_rendered_views_match(variant: DatasetVariant, output_dir: Path | None = None) -> None:
    """Stop the workflow when a variant's stored views were rendered with other settings.

    Runs when the Snakefile is parsed: a changed render setting changes the render jobs' params, so
    Snakemake would rerun them and delete their completion markers before ``sie render`` refuses the
    change; refusing here first loses no completed work. Reads one small JSON file per variant.
    """
    if variant.source == "prerendered":
        return
    try:
        check_stored_render_settings(output_dir or variant.output_dir, variant)
    except ValueError as error:
        raise ConfigError(str(error)) from None


def variant_shard_ids(variant: DatasetVariant) -> list[str]:
    """Render shard ids ("0000", "0001", ...) of a variant; none for prerendered data."""
    if variant.source == "prerendered":
        return []
    try:
        objects = variant_objects(variant)
    except (FileNotFoundError, ValueError) as error:
        raise ConfigError(f"config key 'datasets.{variant.name}': {error}") from None
    return [shard_name(shard) for shard in range(shard_count(len(objects), variant.chunk_size))]


def pretrain_runs(config: Mapping[str, Any]) -> list[Run]:
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


def run_path(template: str, run: Run) -> str:
    """A run's path: ``template`` (a ``sie.paths`` template, or a rule's output) with its ``{variant}``,
    ``{method}`` and ``{seed}`` filled."""
    variant, method, seed = run
    return fill(template, variant=variant, method=method, seed=seed)


def run_paths(template: str, runs: Iterable[Run]) -> list[str]:
    """:func:`run_path` of every run, in order."""
    return [run_path(template, run) for run in runs]


class Evaluation(NamedTuple):
    """One metrics file: an evaluation of one part of one run's representation."""

    variant: str
    method: str
    seed: int
    evaluation: str
    part: str

    @property
    def path(self) -> str:
        """The metrics file (``sie.paths.EVALUATION_PATH``)."""
        return fill(EVALUATION_PATH, **self._asdict())


def evaluations(config: Mapping[str, Any]) -> list[Evaluation]:
    """Every evaluation of every pretraining run, then of the reference rows of each pretrained variant
    (``evaluate.references``: untrained at every seed; oracle and chance at the first seed), in a stable
    order. The predictor evaluation is one file (part "equi") and its health a second one."""
    from sie.evaluate.registry import CHANCE, ORACLE, PREDICTOR_EVALUATION, UNTRAINED

    evaluate = config.get("evaluate", {})
    chosen = list(evaluate.get("evaluations", ()))
    probes_only = [name for name in chosen if name != PREDICTOR_EVALUATION]
    runs = [(run, chosen) for run in pretrain_runs(config)]
    references = evaluate.get("references", ())
    seeds = config["pretrain"]["seeds"] if runs else []
    for variant in dict.fromkeys(variant for variant, _, _ in pretrain_runs(config)):
        if UNTRAINED in references:
            runs += [((variant, UNTRAINED, seed), chosen) for seed in seeds]
        if ORACLE in references:
            runs.append(((variant, ORACLE, seeds[0]), probes_only))
        if CHANCE in references:
            runs.append(((variant, CHANCE, seeds[0]), chosen))
    return [
        entry
        for (variant, method, seed), names in runs
        for evaluation in names
        for entry in run_evaluations(variant, method, seed, evaluation, evaluate.get("parts", ()))
    ]


def run_evaluations(
    variant: str, method: str, seed: int, evaluation: str, parts: Iterable[str]
) -> list[Evaluation]:
    """The metrics files of one evaluation of one row (:func:`evaluation_files_of`)."""
    return [
        Evaluation(variant, method, seed, name, part)
        for name, part in evaluation_files_of(method, evaluation, parts)
    ]


def evaluation_files_of(method: str, evaluation: str, parts: Iterable[str]) -> list[tuple[str, str]]:
    """(evaluation, part) of every metrics file one evaluation of a row writes: one per part, or for the
    predictor its file and its health's (the chance row has no predictor whose health to check)."""
    from sie.evaluate.registry import CHANCE, HEALTH_EVALUATION, PREDICTOR_EVALUATION, PREDICTOR_PART

    if evaluation != PREDICTOR_EVALUATION:
        return [(evaluation, part) for part in parts]
    names = [PREDICTOR_EVALUATION] + ([HEALTH_EVALUATION] if method != CHANCE else [])
    return [(name, PREDICTOR_PART) for name in names]


def evaluation_files(config: Mapping[str, Any]) -> list[str]:
    """Metrics files of every evaluation of every pretraining run (predictor: one file, part "equi")."""
    return [entry.path for entry in evaluations(config)]


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
    from sie.tables import TABLES, row_has_predictor

    needed = table_evaluations()[table]
    predictor_only = TABLES[table].predictor_only
    return [
        entry.path
        for entry in evaluations(config)
        if entry.evaluation in needed and (row_has_predictor(entry.method) or not predictor_only)
    ]


def figure_files(config: Mapping[str, Any]) -> list[str]:
    """Training curves per pretrained variant; the retrieval picture of SIE's first seed, if SIE is run."""
    runs = pretrain_runs(config)
    variants = list(dict.fromkeys(variant for variant, _, _ in runs))
    files = [fill(TRAINING_FIGURE_PATH, variant=variant) for variant in variants]
    for variant in variants:
        seeds = [seed for run_variant, method, seed in runs if run_variant == variant and method == "SIE"]
        if seeds:
            files.append(run_path(RETRIEVAL_FIGURE_PATH, (variant, "SIE", seeds[0])))
    return files


def one_of(names: Iterable[str]) -> str:
    """A regex matching exactly one of ``names``."""
    return "|".join(re.escape(name) for name in names)


def wildcard_patterns() -> dict[str, str]:
    """Regexes of the rules' name wildcards, built from the registries (the variant name pattern, the
    method registry, the tables, the evaluations and their parts): a path naming anything else matches
    no rule."""
    from sie.evaluate.registry import EVALUATIONS, HEALTH_EVALUATION, PARTS, REFERENCES
    from sie.models.registry import METHODS
    from sie.tables import TABLES

    return {
        "variant": VARIANT_NAME,
        "method": one_of([*METHODS, *REFERENCES]),
        "table": one_of(TABLES),
        "evaluation": one_of([*EVALUATIONS, HEALTH_EVALUATION]),
        "part": one_of(PARTS),
    }


def method_patterns() -> dict[str, str]:
    """Rule-level ``method`` constraints: which rows each rule makes, so that no path matches two rules
    (the reference rows have their own rules): ``trained`` (pretrain: the registry's methods),
    ``modelled`` (features and predictor: those and the untrained model), ``featured`` (probes: those
    and the oracle's features)."""
    from sie.evaluate.registry import ORACLE, UNTRAINED
    from sie.models.registry import METHODS

    return {
        "trained": one_of(METHODS),
        "modelled": one_of([*METHODS, UNTRAINED]),
        "featured": one_of([*METHODS, UNTRAINED, ORACLE]),
    }

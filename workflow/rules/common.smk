# Shared helpers of the rules: the validated configuration and the values rules derive from it.
# Logic lives in the `sie` package (src/sie); this file only adapts it to Snakemake.

import json

from sie import paths
from sie.config import dataset_variant, resolve_config
from sie.evaluate.registry import (
    CHANCE,
    HEALTH_EVALUATION,
    ORACLE,
    PREDICTOR_EVALUATION,
    PREDICTOR_PART,
    UNTRAINED,
    UNTRAINED_SHAPE,
)
from sie.workflow import (
    check_rendered_views_match,
    check_variant_inputs,
    evaluation_files,
    figure_files,
    method_patterns,
    pretrain_runs,
    evaluation_files_of,
    pretrain_spec,
    run_paths,
    table_inputs as tables_inputs_of,
    tables,
    variant_shard_ids,
    wildcard_patterns,
)

_resolved = resolve_config(config)
config.clear()
config.update(_resolved)
VARIANTS = {
    name: dataset_variant(name, spec) for name, spec in config["datasets"].items()
}
# Refusals before any job starts: a refused change must never cost completed work (Snakemake deletes
# the outputs of the jobs it reruns before they run).
for _variant in VARIANTS.values():
    check_variant_inputs(_variant)
    check_rendered_views_match(_variant)
SHARDS = {name: variant_shard_ids(variant) for name, variant in VARIANTS.items()}
PRETRAIN_RUNS = pretrain_runs(config)
EVALUATION_FILES = evaluation_files(config)
TABLES = tables(config)
FIGURE_FILES = figure_files(config)
PROBE_EVALUATIONS = [
    name for name in config["evaluate"]["evaluations"] if name != PREDICTOR_EVALUATION
]
PROBE_FILES = [
    paths.partial(paths.EVALUATION_PATH, evaluation=evaluation, part=part)
    for evaluation in PROBE_EVALUATIONS
    for part in config["evaluate"]["parts"]
]


# Name wildcards match only registered names (sie.workflow.wildcard_patterns builds them).
WILDCARDS = wildcard_patterns()
ROW_PATTERNS = method_patterns()  # the rules' own `method` constraints


wildcard_constraints:
    variant=WILDCARDS["variant"],
    shard="[0-9]+",
    method=WILDCARDS["method"],
    seed="[0-9]+",
    table=WILDCARDS["table"],
    evaluation=WILDCARDS["evaluation"],
    part=WILDCARDS["part"],


def filled(template):
    """A params function: ``template`` (from sie.paths) with the job's wildcards filled."""
    return lambda wildcards: paths.fill(template, **dict(wildcards.items()))


def variant_spec(wildcards):
    """The resolved variant as JSON, the --spec of every dataset command."""
    spec = {"name": wildcards.variant, **config["datasets"][wildcards.variant]}
    return json.dumps(spec, sort_keys=True)


def shard_markers(wildcards):
    """Completion markers of every render shard of a variant (none for prerendered data)."""
    return expand(
        rules.render_shard.output.marker,
        variant=wildcards.variant,
        shard=SHARDS[wildcards.variant],
    )


def pretrain_spec_json(wildcards):
    """The run spec of one pretraining job, the --spec of `sie pretrain`."""
    spec = pretrain_spec(
        config, wildcards.variant, wildcards.method, int(wildcards.seed)
    )
    return json.dumps(spec, sort_keys=True)


def untrained_spec_json(wildcards):
    """The run spec of the untrained reference: SIE's, with the configuration's settings."""
    spec = pretrain_spec(
        config, wildcards.variant, UNTRAINED_SHAPE, int(wildcards.seed)
    )
    return json.dumps(spec, sort_keys=True)


def evaluate_spec_json(wildcards):
    """The evaluate section of the configuration, the --spec of `sie evaluate`."""
    return json.dumps(config["evaluate"], sort_keys=True)


def table_inputs(wildcards):
    """The metrics files one table reads."""
    return tables_inputs_of(config, wildcards.table)


def variant_runs(wildcards):
    """The pretraining runs of the job's dataset variant."""
    return [run for run in PRETRAIN_RUNS if run[0] == wildcards.variant]


def training_summaries(wildcards):
    """summary.json of every pretraining run of a variant (their metrics.jsonl are complete)."""
    return run_paths(rules.pretrain.output.summary, variant_runs(wildcards))


def training_run_folders(wildcards):
    """The output folders of every pretraining run of a variant."""
    return run_paths(paths.PRETRAIN_DIR, variant_runs(wildcards))


# The chance row's metrics files: every chosen evaluation and part, the predictor without its health.
CHANCE_FILES = [
    paths.partial(paths.EVALUATION_PATH, method=CHANCE, evaluation=name, part=part)
    for evaluation in config["evaluate"]["evaluations"]
    for name, part in evaluation_files_of(
        CHANCE, evaluation, config["evaluate"]["parts"]
    )
]

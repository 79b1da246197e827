# Shared helpers of the rules: the validated configuration and the values rules derive from it.
# Logic lives in the `sie` package (src/sie); this file only adapts it to Snakemake.

import json
from pathlib import Path

from sie.config import dataset_variant, resolve_config
from sie.workflow import (
    check_variant_inputs,
    evaluation_files,
    figure_files,
    pretrain_runs,
    pretrain_spec,
    table_inputs as tables_inputs_of,
    tables,
    variant_shard_ids,
)

_resolved = resolve_config(config)
config.clear()
config.update(_resolved)
VARIANTS = {
    name: dataset_variant(name, spec) for name, spec in config["datasets"].items()
}
for _variant in VARIANTS.values():
    check_variant_inputs(_variant)
SHARDS = {name: variant_shard_ids(variant) for name, variant in VARIANTS.items()}
PRETRAIN_RUNS = pretrain_runs(config)
EVALUATION_FILES = evaluation_files(config)
TABLES = tables(config)
FIGURE_FILES = figure_files(config)
PROBE_EVALUATIONS = [
    name for name in config["evaluate"]["evaluations"] if name != "predictor"
]
PROBE_FILES = [
    f"{evaluation}-{part}"
    for evaluation in PROBE_EVALUATIONS
    for part in config["evaluate"]["parts"]
]


wildcard_constraints:
    variant="[A-Za-z0-9][A-Za-z0-9_-]*",
    shard="[0-9]+",
    method="[A-Za-z]+",
    seed="[0-9]+",
    table="main|mrr",


def variant_spec(wildcards):
    """The resolved variant as JSON, the --spec of every dataset command."""
    spec = {"name": wildcards.variant, **config["datasets"][wildcards.variant]}
    return json.dumps(spec, sort_keys=True)


def shard_markers(wildcards):
    """Completion markers of every render shard of a variant (none for prerendered data)."""
    return expand(
        "results/datasets/{variant}/shards/{shard}.json",
        variant=wildcards.variant,
        shard=SHARDS[wildcards.variant],
    )


def pretrain_spec_json(wildcards):
    """The run spec of one pretraining job, the --spec of `sie pretrain`."""
    spec = pretrain_spec(
        config, wildcards.variant, wildcards.method, int(wildcards.seed)
    )
    return json.dumps(spec, sort_keys=True)


def checkpoint_path(wildcards):
    """Resumable checkpoint of a pretraining job: outside its declared outputs, which Snakemake
    deletes when a job fails."""
    return f"results/checkpoints/{wildcards.variant}/{wildcards.method}/seed{wildcards.seed}/checkpoint.pt"


def evaluate_spec_json(wildcards):
    """The evaluate section of the configuration, the --spec of `sie evaluate`."""
    return json.dumps(config["evaluate"], sort_keys=True)


def table_inputs(wildcards):
    """The metrics files one table reads."""
    return tables_inputs_of(config, wildcards.table)


def training_summaries(wildcards):
    """summary.json of every pretraining run of a variant (their metrics.jsonl are complete)."""
    return [
        f"results/pretrain/{variant}/{method}/seed{seed}/summary.json"
        for variant, method, seed in PRETRAIN_RUNS
        if variant == wildcards.variant
    ]

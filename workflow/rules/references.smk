# Reference rows of the tables (docs/evaluations.md#reference-rows): an untrained model that goes
# through the methods' own features and evaluation rules, oracle features that go through the probes,
# and the chance row's metrics files. Rules of trained methods are constrained to the registry's names.


# Seconds of work: Snakemake runs them itself, never submitting them to a cluster.
localrules:
    untrained_model,
    chance_metrics,


rule untrained_model:
    """SIE's model at the seed's initial weights (the trained run starts from them), its BatchNorm
    statistics estimated on training views, as a model.pt."""
    input:
        store=rules.pack_dataset.output.manifest,
        card=rules.index_dataset.output.card,
        statistics=rules.index_dataset.output.statistics,
    output:
        model=paths.partial(paths.MODEL_PATH, method=UNTRAINED),
    log:
        paths.partial(paths.PRETRAIN_LOG, method=UNTRAINED),
    conda:
        "../envs/sie.yaml"
    params:
        spec=untrained_spec_json,
        dataset=filled(paths.DATASET_DIR),
        folder=filled(paths.partial(paths.PRETRAIN_DIR, method=UNTRAINED)),
    shell:
        "sie reference untrained --spec {params.spec:q} --dataset {params.dataset} --output {params.folder}"
        " 2>&1 | tee {log}"


rule oracle_features:
    """A feature store of the views' true factors plus noise, for the probes."""
    input:
        card=rules.index_dataset.output.card,
    output:
        manifest=paths.partial(paths.FEATURES_MANIFEST_PATH, method=ORACLE),
    log:
        paths.partial(paths.FEATURES_LOG, method=ORACLE),
    conda:
        "../envs/sie.yaml"
    params:
        dataset=filled(paths.DATASET_DIR),
        folder=filled(paths.partial(paths.FEATURES_DIR, method=ORACLE)),
    shell:
        "sie reference oracle --dataset {params.dataset} --output {params.folder} --seed {wildcards.seed}"
        " 2>&1 | tee {log}"


rule chance_metrics:
    """The chance row: mean predictor, most frequent class, random ranking and random neighbour."""
    input:
        card=rules.index_dataset.output.card,
    output:
        CHANCE_FILES,
    log:
        paths.partial(paths.PROBES_LOG, method=CHANCE),
    conda:
        "../envs/sie.yaml"
    params:
        dataset=filled(paths.DATASET_DIR),
        folder=filled(paths.partial(paths.EVALUATIONS_DIR, method=CHANCE)),
        spec=evaluate_spec_json,
    shell:
        "sie reference chance --dataset {params.dataset} --output {params.folder} --spec {params.spec:q}"
        " --seed {wildcards.seed} 2>&1 | tee {log}"

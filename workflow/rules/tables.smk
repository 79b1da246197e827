# Tables and report: the paper's tables from the metrics files, training curves, a retrieval picture.


# Seconds of work on small files: Snakemake runs them itself, never submitting them to a cluster.
localrules:
    table,
    training_curves,
    retrieval_figure,


rule table:
    """One of the paper's tables (main: probes; mrr: predictor) as CSV, LaTeX, Markdown and HTML."""
    input:
        table_inputs,
    output:
        csv=paths.partial(paths.TABLE_PATH, extension="csv"),
        tex=paths.partial(paths.TABLE_PATH, extension="tex"),
        markdown=paths.partial(paths.TABLE_PATH, extension="md"),
        html=report(
            paths.partial(paths.TABLE_PATH, extension="html"),
            caption="../report/table.rst",
            category="Tables",
        ),
    log:
        paths.TABLE_LOG,
    conda:
        "../envs/sie.yaml"
    params:
        folder=filled(paths.TABLES_DIR),
    shell:
        "sie tables --table {wildcards.table} --metrics {input} --output {params.folder} 2>&1 | tee {log}"


rule training_curves:
    """Loss and online-probe curves of every pretraining run of a dataset variant."""
    input:
        training_summaries,
    output:
        report(
            paths.TRAINING_FIGURE_PATH,
            caption="../report/training.rst",
            category="Training",
        ),
    log:
        paths.TRAINING_FIGURE_LOG,
    conda:
        "../envs/sie.yaml"
    params:
        runs=training_run_folders,
    shell:
        "sie curves --runs {params.runs} --output {output} 2>&1 | tee {log}"


rule retrieval_figure:
    """Source, retrieved and true views of a model's predictor on validation objects."""
    input:
        features=rules.features.output.manifest,
        model=rules.pretrain.output.model,
        card=rules.index_dataset.output.card,
    output:
        report(
            paths.RETRIEVAL_FIGURE_PATH,
            caption="../report/retrieval.rst",
            category="Retrieval",
        ),
    log:
        paths.RETRIEVAL_FIGURE_LOG,
    conda:
        "../envs/sie.yaml"
    params:
        features=filled(paths.FEATURES_DIR),
        dataset=filled(paths.DATASET_DIR),
    shell:
        "sie retrieval-figure --features {params.features} --model {input.model} --dataset {params.dataset}"
        " --output {output} 2>&1 | tee {log}"


rule tables:
    """Both tables of the paper."""
    input:
        expand(rules.table.output.tex, table=TABLES),


rule figures:
    """The report's pictures: training curves per variant, SIE retrieval examples."""
    input:
        FIGURE_FILES,

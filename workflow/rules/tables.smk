# Tables and report: the paper's tables from the metrics files, training curves, a retrieval picture.


rule table:
    """One of the paper's tables (main: probes; mrr: predictor) as CSV, LaTeX, Markdown and HTML."""
    input:
        table_inputs,
    output:
        csv="results/tables/{table}.csv",
        tex="results/tables/{table}.tex",
        markdown="results/tables/{table}.md",
        html=report(
            "results/tables/{table}.html",
            caption="../report/table.rst",
            category="Tables",
        ),
    log:
        "results/logs/tables/{table}.log",
    conda:
        "../envs/sie.yaml"
    shell:
        "sie tables --table {wildcards.table} --metrics {input} --output results/tables 2>&1 | tee {log}"


rule training_curves:
    """Loss and online-probe curves of every pretraining run of a dataset variant."""
    input:
        training_summaries,
    output:
        report(
            "results/figures/training_{variant}.png",
            caption="../report/training.rst",
            category="Training",
        ),
    log:
        "results/logs/figures/training_{variant}.log",
    conda:
        "../envs/sie.yaml"
    params:
        runs=lambda wildcards, input: [str(Path(path).parent) for path in input],
    shell:
        "sie curves --runs {params.runs} --output {output} 2>&1 | tee {log}"


rule retrieval_figure:
    """Source, retrieved and true views of a model's predictor on validation objects."""
    input:
        features="results/features/{variant}/{method}/seed{seed}/manifest.json",
        model="results/pretrain/{variant}/{method}/seed{seed}/model.pt",
        card="results/datasets/{variant}/card.json",
    output:
        report(
            "results/figures/retrieval_{variant}_{method}_seed{seed}.png",
            caption="../report/retrieval.rst",
            category="Retrieval",
        ),
    log:
        "results/logs/figures/retrieval_{variant}_{method}_seed{seed}.log",
    conda:
        "../envs/sie.yaml"
    params:
        features=lambda wildcards, input: str(Path(input.features).parent),
        dataset=lambda wildcards, input: str(Path(input.card).parent),
    shell:
        "sie retrieval-figure --features {params.features} --model {input.model} --dataset {params.dataset}"
        " --output {output} 2>&1 | tee {log}"


rule tables:
    """Both tables of the paper."""
    input:
        expand("results/tables/{table}.tex", table=TABLES),


rule figures:
    """The report's pictures: training curves per variant, SIE retrieval examples."""
    input:
        FIGURE_FILES,

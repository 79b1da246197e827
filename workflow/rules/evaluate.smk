# Evaluation stage: features once per pretrained model, then every evaluation from them. The probes of
# one model run in one job (a job per probe would spend more time starting Python than training heads);
# the predictor evaluation is its own job, so the MRR table needs no probe.


rule features:
    """One pass of the frozen model (eval-mode BatchNorm) over every train and val view."""
    input:
        model="results/pretrain/{variant}/{method}/seed{seed}/model.pt",
        store="results/datasets/{variant}/store/manifest.json",
    output:
        "results/features/{variant}/{method}/seed{seed}/manifest.json",
    log:
        "results/logs/features/{variant}/{method}/seed{seed}.log",
    conda:
        "../envs/sie.yaml"
    threads: 2
    params:
        dataset=lambda wildcards, input: str(Path(input.store).parent.parent),
        folder=lambda wildcards, output: str(Path(output[0]).parent),
        device=config["evaluate"]["device"],
        batch=config["evaluate"]["features_batch_size"],
    shell:
        "sie features --model {input.model} --dataset {params.dataset} --output {params.folder}"
        " --device {params.device} --batch-size {params.batch} --threads {threads} 2>&1 | tee {log}"


rule evaluate_probes:
    """Classification, rotation and colour probes on every part of the stored representations."""
    input:
        features="results/features/{variant}/{method}/seed{seed}/manifest.json",
        card="results/datasets/{variant}/card.json",
    output:
        [
            f"results/evaluations/{{variant}}/{{method}}/seed{{seed}}/{name}.json"
            for name in PROBE_FILES
        ],
    log:
        "results/logs/evaluate/{variant}/{method}/seed{seed}/probes.log",
    conda:
        "../envs/sie.yaml"
    threads: 2
    params:
        dataset=lambda wildcards, input: str(Path(input.card).parent),
        features=lambda wildcards, input: str(Path(input.features).parent),
        folder=lambda wildcards, output: str(Path(output[0]).parent),
        evaluations=" ".join(PROBE_EVALUATIONS),
        parts=" ".join(config["evaluate"]["parts"]),
        spec=evaluate_spec_json,
    shell:
        "sie evaluate --features {params.features} --dataset {params.dataset} --evaluation {params.evaluations}"
        " --part {params.parts} --output {params.folder} --spec {params.spec:q} --threads {threads}"
        " 2>&1 | tee {log}"


rule evaluate_predictor:
    """PRE, MRR and H@k of the learned predictor (not applicable to methods without one)."""
    input:
        features="results/features/{variant}/{method}/seed{seed}/manifest.json",
        model="results/pretrain/{variant}/{method}/seed{seed}/model.pt",
        card="results/datasets/{variant}/card.json",
    output:
        "results/evaluations/{variant}/{method}/seed{seed}/predictor-equi.json",
    log:
        "results/logs/evaluate/{variant}/{method}/seed{seed}/predictor.log",
    conda:
        "../envs/sie.yaml"
    threads: 2
    params:
        dataset=lambda wildcards, input: str(Path(input.card).parent),
        features=lambda wildcards, input: str(Path(input.features).parent),
        folder=lambda wildcards, output: str(Path(output[0]).parent),
        spec=evaluate_spec_json,
    shell:
        "sie evaluate --features {params.features} --dataset {params.dataset} --evaluation predictor"
        " --model {input.model} --output {params.folder} --spec {params.spec:q} --threads {threads}"
        " 2>&1 | tee {log}"


rule evaluations:
    """Every evaluation of every pretrained model of the configuration."""
    input:
        EVALUATION_FILES,

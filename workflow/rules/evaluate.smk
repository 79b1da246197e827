# Evaluation stage: features once per pretrained model, then every evaluation from them. The probes of
# one model run in one job (a job per probe would spend more time starting Python than training heads);
# the predictor evaluation is its own job, so the MRR table needs no probe.


rule features:
    """One pass of the frozen model (eval-mode BatchNorm) over every train and val view."""
    input:
        model=rules.pretrain.output.model,
        store=rules.pack_dataset.output.manifest,
    output:
        manifest=paths.FEATURES_MANIFEST_PATH,
    log:
        paths.FEATURES_LOG,
    wildcard_constraints:
        method=ROW_PATTERNS["modelled"],
    conda:
        "../envs/sie.yaml"
    threads: 2
    params:
        dataset=filled(paths.DATASET_DIR),
        folder=filled(paths.FEATURES_DIR),
        device=config["evaluate"]["device"],
        batch=config["evaluate"]["features_batch_size"],
    shell:
        "sie features --model {input.model} --dataset {params.dataset} --output {params.folder}"
        " --device {params.device} --batch-size {params.batch} --threads {threads} 2>&1 | tee {log}"


rule evaluate_probes:
    """Classification, rotation and colour probes on every part of the stored representations."""
    input:
        features=rules.features.output.manifest,
        card=rules.index_dataset.output.card,
    output:
        PROBE_FILES,
    log:
        paths.PROBES_LOG,
    wildcard_constraints:
        method=ROW_PATTERNS["featured"],
    conda:
        "../envs/sie.yaml"
    threads: 2
    params:
        dataset=filled(paths.DATASET_DIR),
        features=filled(paths.FEATURES_DIR),
        folder=filled(paths.EVALUATIONS_DIR),
        evaluations=" ".join(PROBE_EVALUATIONS),
        parts=" ".join(config["evaluate"]["parts"]),
        spec=evaluate_spec_json,
    shell:
        "sie evaluate --features {params.features} --dataset {params.dataset} --evaluation {params.evaluations}"
        " --part {params.parts} --output {params.folder} --spec {params.spec:q} --threads {threads}"
        " 2>&1 | tee {log}"


rule evaluate_predictor:
    """PRE, MRR and H@k of the learned predictor and its health (true / shuffled / no latent); not
    applicable to methods without a predictor."""
    input:
        features=rules.features.output.manifest,
        model=rules.pretrain.output.model,
        card=rules.index_dataset.output.card,
    output:
        retrieval=paths.partial(
            paths.EVALUATION_PATH, evaluation=PREDICTOR_EVALUATION, part=PREDICTOR_PART
        ),
        health=paths.partial(
            paths.EVALUATION_PATH, evaluation=HEALTH_EVALUATION, part=PREDICTOR_PART
        ),
    log:
        paths.PREDICTOR_LOG,
    wildcard_constraints:
        method=ROW_PATTERNS["modelled"],
    conda:
        "../envs/sie.yaml"
    threads: 2
    params:
        dataset=filled(paths.DATASET_DIR),
        features=filled(paths.FEATURES_DIR),
        folder=filled(paths.EVALUATIONS_DIR),
        spec=evaluate_spec_json,
    shell:
        "sie evaluate --features {params.features} --dataset {params.dataset} --evaluation predictor"
        " --model {input.model} --output {params.folder} --spec {params.spec:q} --threads {threads}"
        " 2>&1 | tee {log}"


rule evaluations:
    """Every evaluation of every pretrained model of the configuration."""
    input:
        EVALUATION_FILES,

# Pretraining stage: pack each dataset for fast loading, then one job per (variant, method, seed).


rule pack_dataset:
    """Pack every view's JPEG of each split into one file (no small-file reads while training)."""
    input:
        card=rules.index_dataset.output.card,
    output:
        manifest=paths.STORE_MANIFEST_PATH,
    log:
        paths.PACK_LOG,
    conda:
        "../envs/sie.yaml"
    params:
        folder=filled(paths.DATASET_DIR),
    shell:
        "sie pack --dataset {params.folder} 2>&1 | tee {log}"


rule pretrain:
    """Train one method on one dataset variant; resumes from its checkpoint after any interruption."""
    input:
        store=rules.pack_dataset.output.manifest,
        statistics=rules.index_dataset.output.statistics,
    output:
        model=paths.MODEL_PATH,
        backbone=paths.BACKBONE_PATH,
        config=paths.RUN_CONFIG_PATH,
        summary=paths.SUMMARY_PATH,
    log:
        paths.PRETRAIN_LOG,
    wildcard_constraints:
        method=ROW_PATTERNS["trained"],
    conda:
        "../envs/sie.yaml"
    threads: 2
    resources:
        # The launcher of the training processes: empty here (one process); the SLURM profile sets it
        # to srun, which starts one task per GPU across the allocation. Declaring `mpi` also tells the
        # SLURM jobstep not to wrap the rule in an srun of its own.
        mpi="",
    params:
        spec=pretrain_spec_json,
        dataset=filled(paths.DATASET_DIR),
        folder=filled(paths.PRETRAIN_DIR),
        checkpoint=filled(paths.CHECKPOINT_PATH),
    shell:
        "{resources.mpi} sie pretrain --spec {params.spec:q} --dataset {params.dataset} --output {params.folder}"
        " --checkpoint {params.checkpoint} --threads {threads} 2>&1 | tee {log}"


rule pretrained:
    """Every pretraining run of the configuration."""
    input:
        run_paths(rules.pretrain.output.summary, PRETRAIN_RUNS),

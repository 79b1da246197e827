# Pretraining stage: pack each dataset for fast loading, then one job per (variant, method, seed).


rule pack_dataset:
    """Pack every view's JPEG of each split into one file (no small-file reads while training)."""
    input:
        card="results/datasets/{variant}/card.json",
    output:
        "results/datasets/{variant}/store/manifest.json",
    log:
        "results/logs/pack/{variant}.log",
    conda:
        "../envs/sie.yaml"
    params:
        folder=lambda wildcards, input: str(Path(input.card).parent),
    shell:
        "sie pack --dataset {params.folder} 2>&1 | tee {log}"


rule pretrain:
    """Train one method on one dataset variant; resumes from its checkpoint after any interruption."""
    input:
        store="results/datasets/{variant}/store/manifest.json",
        statistics="results/datasets/{variant}/statistics.json",
    output:
        model="results/pretrain/{variant}/{method}/seed{seed}/model.pt",
        backbone="results/pretrain/{variant}/{method}/seed{seed}/backbone.pt",
        config="results/pretrain/{variant}/{method}/seed{seed}/config.json",
        summary="results/pretrain/{variant}/{method}/seed{seed}/summary.json",
    log:
        "results/logs/pretrain/{variant}/{method}/seed{seed}.log",
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
        dataset=lambda wildcards, input: str(Path(input.store).parent.parent),
        folder=lambda wildcards, output: str(Path(output.model).parent),
        checkpoint=checkpoint_path,
    shell:
        "{resources.mpi} sie pretrain --spec {params.spec:q} --dataset {params.dataset} --output {params.folder}"
        " --checkpoint {params.checkpoint} --threads {threads} 2>&1 | tee {log}"


rule pretrained:
    """Every pretraining run of the configuration."""
    input:
        [
            f"results/pretrain/{variant}/{method}/seed{seed}/summary.json"
            for variant, method, seed in PRETRAIN_RUNS
        ],

# Dataset stage: render shards of objects with Blender, then index (validate, split, release files).


rule render_shard:
    """Render one chunk of objects (every missing view) in one Blender process."""
    output:
        "results/datasets/{variant}/shards/{shard}.json",
    log:
        "results/logs/render/{variant}/{shard}.log",
    conda:
        "../envs/sie.yaml"
    threads: 2
    resources:
        render_device="cpu",
    params:
        spec=variant_spec,
        folder=lambda wildcards: f"results/datasets/{wildcards.variant}",
    shell:
        "sie render --spec {params.spec:q} --shard {wildcards.shard} --output {params.folder}"
        " --threads {threads} --device {resources.render_device} 2>&1 | tee {log}"


rule index_dataset:
    """Validate every view, split per class, write the release-format files, statistics and card."""
    input:
        shard_markers,
    output:
        card="results/datasets/{variant}/card.json",
        statistics="results/datasets/{variant}/statistics.json",
        samples=report(
            "results/datasets/{variant}/samples.png",
            caption="../report/samples.rst",
            category="Datasets",
        ),
        split_files=multiext(
            "results/datasets/{variant}/",
            "train_images.npy",
            "train_labels.npy",
            "val_images.npy",
            "val_labels.npy",
            "all_latents_train.npy",
            "all_latents_val.npy",
            "all_objects.npy",
        ),
    log:
        "results/logs/index/{variant}.log",
    conda:
        "../envs/sie.yaml"
    params:
        spec=variant_spec,
        folder=lambda wildcards: f"results/datasets/{wildcards.variant}",
    shell:
        "sie index --spec {params.spec:q} --output {params.folder} 2>&1 | tee {log}"


rule datasets:
    """Every dataset variant of the configuration, rendered and indexed."""
    input:
        expand("results/datasets/{variant}/card.json", variant=VARIANTS),

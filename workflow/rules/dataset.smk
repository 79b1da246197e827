# Dataset stage: render shards of objects with Blender, then index (validate, split, release files).


rule render_shard:
    """Render one chunk of objects (every missing view) in one Blender process."""
    output:
        marker=paths.SHARD_MARKER_PATH,
    log:
        paths.RENDER_LOG,
    conda:
        "../envs/sie.yaml"
    threads: 2
    resources:
        render_device="cpu",
    params:
        spec=variant_spec,
        folder=filled(paths.DATASET_DIR),
    shell:
        "sie render --spec {params.spec:q} --shard {wildcards.shard} --output {params.folder}"
        " --threads {threads} --device {resources.render_device} 2>&1 | tee {log}"


rule index_dataset:
    """Validate every view, split per class, write the release-format files, statistics and card."""
    input:
        shard_markers,
    output:
        card=paths.CARD_PATH,
        statistics=paths.STATISTICS_PATH,
        samples=report(
            paths.SAMPLES_PATH,
            caption="../report/samples.rst",
            category="Datasets",
        ),
        split_files=multiext(f"{paths.DATASET_DIR}/", *paths.SPLIT_FILES),
    log:
        paths.INDEX_LOG,
    conda:
        "../envs/sie.yaml"
    params:
        spec=variant_spec,
        folder=filled(paths.DATASET_DIR),
    shell:
        "sie index --spec {params.spec:q} --output {params.folder} 2>&1 | tee {log}"


rule datasets:
    """Every dataset variant of the configuration, rendered and indexed."""
    input:
        expand(rules.index_dataset.output.card, variant=VARIANTS),


# Not part of `all`: run it by name. `sie verify --checksums` also re-hashes every file.
rule verify:
    """Check every variant's view files against its index (present, recorded sizes); names the repair."""
    log:
        paths.VERIFY_LOG,
    localrule: True
    conda:
        "../envs/sie.yaml"
    params:
        folders=expand(paths.DATASET_DIR, variant=VARIANTS),
    shell:
        "sie verify --dataset {params.folders} 2>&1 | tee {log}"

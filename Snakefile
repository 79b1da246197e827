# The SIE / 3DIEBench workflow: render -> index -> (pretrain -> features -> evaluations -> tables).
# Science settings come from config.yaml, or from the files given with --configfile (which then
# replace config.yaml; several --configfile files are merged in order). Cluster settings live in
# profiles/. See README.md.

from snakemake.utils import min_version

from sie.workflow import check_config_file

min_version("9.0")


if not workflow.overwrite_configfiles:
    # Snakemake's own message for a malformed file names neither the file nor the line.
    check_config_file("config.yaml")

    configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/references.smk"
include: "workflow/rules/tables.smk"


rule all:
    default_target: True
    input:
        rules.datasets.input,
        rules.pretrained.input,
        rules.evaluations.input,
        rules.tables.input,
        rules.figures.input,

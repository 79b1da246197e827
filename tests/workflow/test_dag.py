"""Dry runs, lint and formatting of the workflow (nothing is rendered)."""

import math
import re
import subprocess
import sys

import pytest
import yaml
from workflow_helpers import PAPER_SPLIT, REPOSITORY, job_counts, run_snakemake, snakemake_environment

from sie.models.methods import METHODS

pytestmark = pytest.mark.workflow


def test_lint_is_clean(tmp_path):
    result = run_snakemake(
        tmp_path, "--lint", "--configfile", str(REPOSITORY / "configs/test.yaml"), check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_snakefmt_is_clean():
    result = subprocess.run(
        [sys.executable, "-m", "snakefmt", "--check", "Snakefile", "workflow"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_default_configuration_dag(tmp_path):
    result = run_snakemake(tmp_path, "-n", "--configfile", str(REPOSITORY / "config.yaml"))
    counts = job_counts(result.stdout)
    assert counts["render_shard"] == math.ceil(10 * 30 / 30)
    assert counts["index_dataset"] == 1
    methods = 5
    for rule in ("pretrain", "features", "evaluate_probes", "evaluate_predictor"):
        assert counts[rule] == methods, rule
    assert counts["table"] == 2 and counts["training_curves"] == 1 and counts["retrieval_figure"] == 1


def test_test_configuration_dag(tmp_path):
    counts = job_counts(
        run_snakemake(tmp_path, "-n", "--configfile", str(REPOSITORY / "configs/test.yaml")).stdout
    )
    assert counts["render_shard"] == 3 and counts["index_dataset"] == 1


def test_mrr_table_builds_only_what_it_needs(tmp_path):
    """`snakemake -n results/tables/mrr.tex`: methods with a predictor, their features and retrieval."""
    test_config = yaml.safe_load((REPOSITORY / "configs/test.yaml").read_text())
    with_predictor = [name for name in test_config["pretrain"]["methods"] if METHODS[name].has_predictor]
    assert 0 < len(with_predictor) < len(test_config["pretrain"]["methods"])
    result = run_snakemake(
        tmp_path, "-n", "results/tables/mrr.tex", "--configfile", str(REPOSITORY / "configs/test.yaml")
    )
    counts = job_counts(result.stdout)
    counts.pop("total", None)
    dataset_jobs = {"render_shard": 3, "index_dataset": 1, "pack_dataset": 1}
    per_method = {rule: len(with_predictor) for rule in ("pretrain", "features", "evaluate_predictor")}
    assert counts == {**dataset_jobs, **per_method, "table": 1}
    pretrained = set(re.findall(r"results/pretrain/test/(\w+)/seed0/model\.pt", result.stdout))
    assert pretrained == set(with_predictor)
    assert "results/tables/main" not in result.stdout


def test_paper_configuration_shows_the_full_dag(tmp_path, paper_inputs):
    objects = sum(train + val for train, val in PAPER_SPLIT.values())
    assert objects == 52_472 and len(PAPER_SPLIT) == 55
    environment = {**snakemake_environment(), **paper_inputs}
    result = run_snakemake(
        tmp_path, "-n", "--configfile", str(REPOSITORY / "configs/paper.yaml"), environment=environment
    )
    counts = job_counts(result.stdout)
    assert counts["render_shard"] == math.ceil(52_472 / 50)
    assert counts["index_dataset"] == 1


def test_paper_configuration_without_shapenet_says_what_is_missing(tmp_path, paper_inputs):
    environment = {key: value for key, value in snakemake_environment().items() if key != "SHAPENET_ROOT"}
    result = run_snakemake(
        tmp_path,
        "-n",
        "--configfile",
        str(REPOSITORY / "configs/paper.yaml"),
        environment={**environment, "SIE_SPLITS": paper_inputs["SIE_SPLITS"]},
        check=False,
    )
    assert result.returncode != 0
    assert (
        "datasets.3diebench.shapenet_root': environment variable SHAPENET_ROOT is not set"
        in result.stdout + result.stderr
    )
    environment = {**snakemake_environment(), **paper_inputs, "SHAPENET_ROOT": str(tmp_path / "nowhere")}
    result = run_snakemake(
        tmp_path,
        "-n",
        "--configfile",
        str(REPOSITORY / "configs/paper.yaml"),
        environment=environment,
        check=False,
    )
    assert result.returncode != 0
    assert f"ShapeNetCore v2 folder {tmp_path / 'nowhere'} not found" in result.stdout + result.stderr


def test_bad_configuration_is_named_and_nothing_runs(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("datasets:\n  tiny:\n    source: procedural\n    objects_per_class: 1\n    views: 0\n")
    result = run_snakemake(tmp_path, "-n", "--configfile", str(bad), check=False)
    assert result.returncode != 0 and "datasets.tiny.views" in result.stdout + result.stderr
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("datasets:\n  tiny:\n    source: sketchfab\n")
    result = run_snakemake(tmp_path, "-n", "--configfile", str(unknown), check=False)
    assert result.returncode != 0 and "datasets.tiny.source" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_ruff_is_clean():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "src", "tests", "bench"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_local_profile_never_constrains_cluster_jobs(repository):
    """profiles/default is loaded under --profile profiles/slurm too: a `cores` there would cap every
    cluster job's threads at the login node's CPU count."""
    import yaml

    profile = yaml.safe_load((repository / "profiles" / "default" / "config.yaml").read_text())
    assert not {"cores", "executor", "set-threads", "set-resources", "default-resources"} & set(profile)

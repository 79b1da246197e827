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
    default = yaml.safe_load((REPOSITORY / "config.yaml").read_text())
    variant = default["datasets"]["mini"]
    assert counts["render_shard"] == math.ceil(len(variant["classes"]) * 30 / variant["chunk_size"])
    assert counts["index_dataset"] == 1
    runs = len(default["pretrain"]["methods"]) * len(default["pretrain"]["seeds"])
    assert counts["pretrain"] == runs
    untrained = len(default["pretrain"]["seeds"])  # one untrained reference model per seed
    assert counts["untrained_model"] == untrained
    for rule in ("features", "evaluate_predictor"):
        assert counts[rule] == runs + untrained, rule
    assert counts["evaluate_probes"] == runs + untrained + 1  # + the oracle's features
    assert counts["oracle_features"] == counts["chance_metrics"] == 1
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
    per_method = {rule: len(with_predictor) + 1 for rule in ("features", "evaluate_predictor")}
    references = {"untrained_model": 1, "chance_metrics": 1}  # no oracle: it has no predictor
    assert counts == {**dataset_jobs, "pretrain": len(with_predictor), **per_method, **references, "table": 1}
    pretrained = set(re.findall(r"results/pretrain/test/(\w+)/seed0/model\.pt", result.stdout))
    assert pretrained == {*with_predictor, "untrained"}
    assert "results/evaluations/test/SIE/seed0/health-equi.json" in result.stdout
    assert "results/evaluations/test/chance/seed0/predictor-equi.json" in result.stdout
    assert "results/tables/main" not in result.stdout


def test_dry_run_lists_the_reference_rows_and_predictor_health(tmp_path):
    """The test configuration's dry run: every reference row and every predictor's health is a job."""
    result = run_snakemake(tmp_path, "-n", "--configfile", str(REPOSITORY / "configs/test.yaml"))
    counts = job_counts(result.stdout)
    assert counts["untrained_model"] == counts["oracle_features"] == counts["chance_metrics"] == 1
    for path in (
        "results/pretrain/test/untrained/seed0/model.pt",
        "results/features/test/oracle/seed0/manifest.json",
        "results/evaluations/test/oracle/seed0/rotation-equi.json",
        "results/evaluations/test/chance/seed0/color-all.json",
        "results/evaluations/test/untrained/seed0/health-equi.json",
        "results/evaluations/test/SIERotColor/seed0/health-equi.json",
    ):
        assert path in result.stdout, path


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

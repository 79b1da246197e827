"""The whole test configuration end to end: render, pretrain all 14 methods, evaluate, tables, report."""

import json

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from workflow_helpers import REPOSITORY, run_snakemake

from sie.models.methods import METHODS

pytestmark = [pytest.mark.workflow, pytest.mark.render, pytest.mark.slow]
TEST_CONFIG = str(REPOSITORY / "configs" / "test.yaml")
ONE_THREAD_EACH = [
    "--set-threads",
    "render_shard=1",
    "pretrain=1",
    "features=1",
    "evaluate_probes=1",
    "evaluate_predictor=1",
    "untrained_model=1",
]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A working directory where `all` ran to completion on the test configuration."""
    workdir = tmp_path_factory.mktemp("full")
    run_snakemake(workdir, "all", "--cores", "2", *ONE_THREAD_EACH, "--configfile", TEST_CONFIG)
    return workdir


def test_every_method_trains_with_finite_losses_logged_to_tensorboard(finished):
    for name, spec in METHODS.items():
        folder = finished / "results" / "pretrain" / "test" / name / "seed0"
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["steps"] > 0
        events = EventAccumulator(str(folder / "tensorboard"))
        events.Reload()
        tags = set(events.Tags()["scalars"])
        for term in (*spec.terms, "ssl", "probe"):
            assert f"loss/{term}" in tags, (name, term)
            assert all(abs(event.value) < float("inf") for event in events.Scalars(f"loss/{term}"))


def test_every_evaluation_and_both_tables(finished):
    evaluations = finished / "results" / "evaluations" / "test"
    for name, spec in METHODS.items():
        predictor = json.loads((evaluations / name / "seed0" / "predictor-equi.json").read_text())
        assert predictor["applicable"] == spec.has_predictor
        classification = json.loads((evaluations / name / "seed0" / "classification-all.json").read_text())
        assert 0 <= classification["metrics"]["top1"] <= 1
    tables = finished / "results" / "tables"
    main = (tables / "main.tex").read_text()
    assert main.startswith("\\begin{tabular}") and all(f" & {name} & " in main for name in METHODS)
    mrr = (tables / "mrr.tex").read_text()
    assert " & SIE & " in mrr and " & VICReg & " not in mrr


def test_reference_rows_and_predictor_health(finished):
    evaluations = finished / "results" / "evaluations" / "test"
    for name, spec in [*METHODS.items()]:
        health = json.loads((evaluations / name / "seed0" / "health-equi.json").read_text())
        assert health["applicable"] == spec.has_predictor
        if spec.has_predictor:
            assert {"error/true/val", "error/shuffled/train", "uses_latent/val"} <= set(health["metrics"])
    untrained = json.loads((evaluations / "untrained" / "seed0" / "health-equi.json").read_text())
    assert untrained["method"] == "untrained" and untrained["applicable"]
    oracle = json.loads((evaluations / "oracle" / "seed0" / "rotation-equi.json").read_text())
    assert oracle["method"] == "oracle" and 0 < oracle["metrics"]["mse"] < 1  # 3 probe epochs: no ceiling
    chance = json.loads((evaluations / "chance" / "seed0" / "predictor-equi.json").read_text())
    assert chance["metrics"]["MRR/val-val"] == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)  # 3 views
    tables = finished / "results" / "tables"
    main, mrr = (tables / "main.tex").read_text(), (tables / "mrr.tex").read_text()
    for label in ("untrained SIE", "oracle: true factors + noise", "chance (no features)"):
        assert f"\\emph{{{label}}}" in main, label
    assert "\\emph{untrained SIE}" in mrr and "oracle" not in mrr


def test_rerun_does_nothing_and_the_report_builds(finished):
    rerun = run_snakemake(finished, "all", "--cores", "2", "--configfile", TEST_CONFIG)
    assert "Nothing to be done" in rerun.stdout + rerun.stderr
    run_snakemake(finished, "--report", "results/report.html", "--configfile", TEST_CONFIG)
    report = (finished / "results" / "report.html").read_text()
    for name in ("samples.png", "training_test.png", "retrieval_test_SIE_seed0.png", "main.html", "mrr.html"):
        assert name in report

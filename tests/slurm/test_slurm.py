"""The SLURM profile: what it requests (dry runs, no cluster), then the workflow on a real two-node Slurm
cluster started on this machine (conftest.py): the test configuration end to end, a two-node gloo
pretraining equal to one process, and a requeued and a signalled pretraining that resume from their
checkpoints.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from slurm_helpers import (
    BASE_PROFILE,
    OBJECTS_PER_CLASS,
    REPOSITORY,
    SYNSETS,
    TEST_CONFIG,
    TEST_PROFILE,
    TINY_MODEL,
    VIEWS,
    Run,
    active_jobs_in,
    derived_profile,
    environment,
    job_fields,
    jobs_by_comment,
    metrics,
    run_snakemake,
    sbatch_call_of,
    sbatch_calls,
    slurm,
    slurm_command,
    slurm_logs,
    snakemake_command,
    tiny_training_config,
    wait_for,
    without_wrap,
)

from equivalence import assert_checkpoints_agree, assert_losses_agree
from leftovers import describe, read_process, still_running
from sie.config import load_config_files, resolve_config
from sie.models.methods import ModelConfig, build_model
from sie.training import checkpoint
from sie.workflow import evaluation_files
from support import job_counts, write_paper_inputs, write_release_folder

pytestmark = pytest.mark.slurm

E2E_METHODS = ["SIE", "VICReg"]  # the test configuration's 14 methods take too long on 2 cores
LOSSES = ("loss/ssl", "loss/invariance", "loss/variance", "loss/covariance")


# ------------------------------------------------------------------------------- dry runs (no cluster)


def dry_run(workdir: Path, profiles: list[Path], *arguments: str, env: dict[str, str] | None = None) -> str:
    """Output of a dry run with the SLURM executor (no cluster needed)."""
    command = snakemake_command(workdir, "-n", *arguments, profiles=profiles)
    result = subprocess.run(
        command, cwd=workdir, env=env or environment(), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result.stdout + result.stderr


def resources_by_rule(output: str) -> dict[str, dict[str, Any]]:
    """The resources of the first job of each rule in a dry run's output."""
    resources: dict[str, dict[str, Any]] = {}
    rule = None
    for line in output.splitlines():
        stripped = line.strip()
        if stripped.startswith(("rule ", "localrule ")) and stripped.endswith(":"):
            rule = stripped.split()[1].rstrip(":")
        elif stripped.startswith("resources: ") and rule and rule not in resources:
            entries = (entry.split("=", 1) for entry in stripped.removeprefix("resources: ").split(", "))
            resources[rule] = {key: int(value) if value.isdigit() else value for key, value in entries}
    return resources


def plugin_sbatch_call(resources: dict[str, Any], threads: int = 1) -> str:
    """The sbatch call the SLURM plugin builds for a job with these resources (its own functions)."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    class JobResources(dict):
        __getattr__ = dict.__getitem__

    job = SimpleNamespace(resources=JobResources(resources), threads=threads)
    parameters = {
        "run_uuid": "RUN",
        "slurm_logfile": "LOG",
        "comment_str": "COMMENT",
        "account": f"-A {resources['slurm_account']}",
        "partition": f"-p {resources['slurm_partition']}",
        "workdir": "WORKDIR",
    }
    settings = SimpleNamespace(requeue=True, qos=None, reservation=None)
    return get_submit_command(job, parameters, settings) + set_gres_string(job)


@pytest.fixture(scope="module")
def base_profile_dry_run(tmp_path_factory) -> str:
    workdir = tmp_path_factory.mktemp("dry-base")
    return dry_run(workdir, [BASE_PROFILE], "--configfile", str(TEST_CONFIG))


def test_profile_dry_run_requests_the_paper_resources(base_profile_dry_run):
    counts = job_counts(base_profile_dry_run)
    assert counts["pretrain"] == 14 and counts["render_shard"] == 3
    resources = resources_by_rule(base_profile_dry_run)
    pretrain = resources["pretrain"]
    assert (pretrain["nodes"], pretrain["tasks_per_node"], pretrain["gres"]) == (1, 8, "gpu:8")
    # The launcher repeats the step's shape (the job step strips SLURM_NTASKS & co. from the rule).
    launcher = pretrain["mpi"].split()
    assert launcher[:2] == ["srun", "--kill-on-bad-exit=1"]
    assert f"--nodes={pretrain['nodes']}" in launcher
    assert f"--ntasks-per-node={pretrain['tasks_per_node']}" in launcher
    assert f"--cpus-per-task={pretrain['cpus_per_task']}" in launcher
    assert pretrain["runtime"] == 2880 and pretrain["slurm_extra"].startswith("--signal=USR1@300")
    for rule in ("features", "evaluate_probes", "evaluate_predictor"):
        assert resources[rule]["gpu"] == 1, rule
    assert resources["render_shard"]["render_device"] == "cpu"


def test_paper_pretrain_sbatch_line_has_one_task_per_gpu(base_profile_dry_run):
    resources = resources_by_rule(base_profile_dry_run)
    pretrain = plugin_sbatch_call(resources["pretrain"])
    assert (
        "-t 2880 --mem 480000 --nodes=1 --requeue --ntasks-per-node=8 --cpus-per-task=10 "
        "--signal=USR1@300 --open-mode=append -D WORKDIR --gres=gpu:8" in pretrain
    ), pretrain
    assert "--ntasks-per-gpu" not in pretrain and "--gpus" not in pretrain
    evaluation = plugin_sbatch_call(resources["evaluate_probes"])
    assert evaluation.endswith("--ntasks-per-gpu=1 --cpus-per-task=8 -D WORKDIR --gpus=1"), evaluation
    render = plugin_sbatch_call(resources["render_shard"])
    assert "-t 720 --mem 8000 --requeue --ntasks=1 --cpus-per-task=8 -D WORKDIR" in render, render


def test_overlay_profile_replaces_every_rule_resource(tmp_path):
    output = dry_run(tmp_path, [BASE_PROFILE, TEST_PROFILE], "--configfile", str(TEST_CONFIG))
    resources = resources_by_rule(output)
    for rule, values in resources.items():
        assert values.get("slurm_partition") == "sietest", rule
        assert "slurm_account" not in values and "gpu" not in values and "gres" not in values, rule
    pretrain = resources["pretrain"]
    assert pretrain["mpi"] == "srun --kill-on-bad-exit=1 --nodes=1 --ntasks-per-node=2 --cpus-per-task=1"
    assert (pretrain["nodes"], pretrain["tasks_per_node"], pretrain["cpus_per_task"]) == (1, 2, 1)


def test_paper_scale_dag_with_the_profile(tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()
    env = {**environment(), **write_paper_inputs(tmp_path / "paper")}
    output = dry_run(
        workdir, [BASE_PROFILE], "all", "--configfile", str(REPOSITORY / "configs" / "paper.yaml"), env=env
    )
    counts = job_counts(output)
    assert counts["render_shard"] == 1050 and counts["index_dataset"] == 1 and counts["pack_dataset"] == 1
    seeds = len(
        yaml.safe_load((REPOSITORY / "configs" / "paper.yaml").read_text())["pretrain"].get("seeds", [0])
    )
    assert counts["pretrain"] == 14 * seeds and counts["untrained_model"] == seeds
    for rule in ("features", "evaluate_predictor"):
        assert counts[rule] == 14 * seeds + seeds, rule  # + the untrained reference of every seed
    assert counts["evaluate_probes"] == 14 * seeds + seeds + 1  # + the oracle's features


# ----------------------------------------------------------------------------- on the local cluster


def test_test_configuration_end_to_end(slurm_cluster, tmp_path):
    methods = tmp_path / "methods.yaml"
    methods.write_text(yaml.safe_dump({"pretrain": {"methods": E2E_METHODS}}))
    workdir = tmp_path / "work"
    workdir.mkdir()
    command = slurm_command(workdir, "all", "--verbose", "--configfile", str(TEST_CONFIG), str(methods))
    output = run_snakemake(command, workdir, "all", timeout=600)

    results = workdir / "results"
    assert json.loads((results / "datasets/test/card.json").read_text())["counts"]
    config = resolve_config(load_config_files([TEST_CONFIG, methods]))
    for method in E2E_METHODS:
        run = results / f"pretrain/test/{method}/seed0"
        assert (run / "model.pt").is_file(), method
        launch = json.loads((run / "config.json").read_text())
        assert (launch["world_size"], launch["launcher"]) == (2, "slurm"), method
    missing = [path for path in evaluation_files(config) if not (workdir / path).is_file()]
    assert not missing, missing

    render = sbatch_call_of(output, "rule_render_shard_wildcards_test_0000")
    pretrain = sbatch_call_of(output, "rule_pretrain_wildcards_test_SIE_0")
    evaluation = sbatch_call_of(output, "rule_evaluate_probes_wildcards_test_SIE_0")
    assert " -p sietest -t 15 --mem 1500 --requeue --ntasks=1 --cpus-per-task=1 -D " in render
    assert (
        " --nodes=1 --requeue --ntasks-per-node=2 --cpus-per-task=1 --signal=USR1@300 --open-mode=append"
        in pretrain
    )
    assert " --requeue --ntasks=1 --cpus-per-task=1 -D " in evaluation
    print("\n".join(["", "sbatch calls:", *(without_wrap(call) for call in (render, pretrain, evaluation))]))


def test_two_node_pretraining_equals_one_process(slurm_cluster, tmp_path):
    release = write_release_folder(tmp_path / "release", SYNSETS, OBJECTS_PER_CLASS, VIEWS, 32)
    # lr 1e-30 (the schema wants lr > 0): the weights stay put, so the comparison is well defined
    # (tests/equivalence.py says why and how closely)
    config = tiny_training_config(tmp_path / "two_nodes.yaml", release, ["SIE"], epochs=2, lr=1e-30)
    target = "results/pretrain/tiny/SIE/seed0/summary.json"
    local = tmp_path / "local"
    local.mkdir()
    run_snakemake(
        snakemake_command(local, target, "--cores", "2", "--configfile", str(config)),
        local,
        "local",
        timeout=300,
    )

    distributed = tmp_path / "distributed"
    shutil.copytree(local / "results" / "datasets", distributed / "results" / "datasets")
    two_nodes = derived_profile(
        tmp_path / "two-nodes-profile",
        {
            "mpi": "srun --kill-on-bad-exit=1 --nodes=2 --ntasks-per-node=1 --cpus-per-task=1",
            "nodes": 2,
            "tasks": 2,  # tasks_per_node must be > 1 for mpi jobs: one task per node is tasks = nodes
            "cpus_per_task": 1,
            "mem_mb": 1000,
        },
    )
    command = slurm_command(
        distributed,
        target,
        "--verbose",
        "--configfile",
        str(config),
        profiles=(BASE_PROFILE, two_nodes),
    )
    output = run_snakemake(command, distributed, "two-nodes", timeout=300)
    assert "rule index_dataset" not in output, "the copied dataset was rebuilt"

    call = sbatch_call_of(output, "rule_pretrain_wildcards_tiny_SIE_0")
    assert " --nodes=2 --requeue --ntasks=2 --cpus-per-task=1 " in call, call
    print("\nsbatch call:", without_wrap(call))
    (job_id,) = slurm_logs(distributed, "pretrain", "tiny_SIE_0")
    fields = job_fields(job_id)
    assert (fields["NumNodes"], fields["NodeList"], fields["JobState"]) == ("2", "n[1-2]", "COMPLETED")

    one = local / "results/pretrain/tiny/SIE/seed0"
    two = distributed / "results/pretrain/tiny/SIE/seed0"
    launch = json.loads((two / "config.json").read_text())
    assert (launch["world_size"], launch["launcher"]) == (2, "slurm")
    assert json.loads((one / "config.json").read_text())["world_size"] == 1
    single, double = metrics(one), metrics(two)
    assert [record["step"] for record in single] == [1, 2, 3, 4]
    assert set(LOSSES) <= set(single[0])
    assert_losses_agree(single, double)
    model = build_model("SIE", ModelConfig(**TINY_MODEL, num_classes=len(SYNSETS)))
    checkpoints = [checkpoint.load(checkpoint_of(folder, "SIE")) for folder in (local, distributed)]
    assert_checkpoints_agree(*checkpoints, model)


def test_a_process_that_escapes_its_job_is_found_and_stopped(slurm_cluster, tmp_path):
    """What the cluster's stop does after scancel: a job's process re-parented to PID 1 (here by a
    double fork; in practice when its job step dies first) outlives the job, and is killed by PID."""
    pid_file = tmp_path / "escaped.pid"
    script = f"(setsid sleep 600 & echo $! > {pid_file}); sleep 600"
    log = tmp_path / "job.log"
    job = slurm("sbatch", "--parsable", "-D", str(tmp_path), "-o", str(log), "--wrap", script).strip()
    job = job.split(";")[0]  # "id" or "id;cluster"
    started = wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), 60, "the job to start")
    escaped = int(started)
    slurm("scancel", job)
    wait_for(lambda: job_fields(job)["JobState"] == "CANCELLED", 60, "the job to be cancelled")
    wait_for(lambda: not active_jobs_in(tmp_path), 60, "the job to end")
    survivor = read_process(escaped)
    assert survivor is not None and "sleep" in survivor.command, "Slurm now stops escaped processes"
    with pytest.warns(UserWarning, match="outlived their jobs"):
        stopped = slurm_cluster.stop_escaped_processes()
    assert escaped in [process.pid for process in stopped], describe(stopped)
    assert read_process(escaped) is None or not still_running(survivor)


# ------------------------------------------------------------------------- requeue and stop signal

REQUEUED, SIGNALLED = "SIE", "VICReg"


@pytest.fixture(scope="module")
def interrupted_runs(slurm_cluster, tmp_path_factory) -> SimpleNamespace:
    """Two pretraining jobs of one Snakemake run on the cluster: once both have a checkpoint, the
    SIE job is requeued with `scontrol requeue` and the VICReg job gets SIGUSR1, as SLURM sends it
    before the time limit (`--signal=USR1@300` signals the job's steps, as `scancel --signal` does)."""
    folder = tmp_path_factory.mktemp("interrupted")
    release = write_release_folder(folder / "release", SYNSETS, OBJECTS_PER_CLASS, VIEWS, 32)
    config = tiny_training_config(folder / "long.yaml", release, [REQUEUED, SIGNALLED], epochs=100)
    workdir = folder / "work"
    workdir.mkdir()
    run_snakemake(
        snakemake_command(
            workdir, "results/datasets/tiny/store/manifest.json", "--cores", "2", "--configfile", str(config)
        ),
        workdir,
        "dataset",
        timeout=300,
    )
    targets = [f"results/pretrain/tiny/{method}/seed0/summary.json" for method in (REQUEUED, SIGNALLED)]
    run = Run(slurm_command(workdir, *targets, "--verbose", "--configfile", str(config)), workdir, "pretrain")
    try:
        jobs = {}
        for method, interrupt in (
            (REQUEUED, ["scontrol", "requeue"]),
            (SIGNALLED, ["scancel", "--signal=USR1"]),
        ):
            comment = f"rule_pretrain_wildcards_tiny_{method}_0"
            jobs[method] = wait_for(
                lambda comment=comment: (
                    jobs_by_comment(workdir).get(comment, ("", ""))[0] or (not run.running())
                ),
                120,
                f"the {method} job in the queue",
            )
            assert run.running(), run.output[-4000:]
            wait_for(
                lambda method=method: (
                    checkpoint_of(workdir, method).exists() and steps_logged(workdir, method) >= 3
                ),
                180,
                f"a checkpoint and 3 steps of {method}",
            )
            slurm(*interrupt, jobs[method])
        # A requeued job becomes eligible only 121 s later (BeginTime); start it as soon as it pends.
        wait_for(lambda: job_fields(jobs[REQUEUED])["JobState"] == "PENDING", 60, "the requeued job to pend")
        slurm("scontrol", "update", f"JobId={jobs[REQUEUED]}", "StartTime=now")
        status = run.wait(timeout=480)
    finally:
        run.stop()
        # On this cluster (proctrack/linuxproc) the requeue leaves the first run's job-step Snakemake
        # behind: re-parented to PID 1 when its batch shell is killed, it waits for its outputs.
        escaped = slurm_cluster.stop_escaped_processes(warn=False)
    return SimpleNamespace(workdir=workdir, jobs=jobs, status=status, output=run.output, escaped=escaped)


def checkpoint_of(workdir: Path, method: str) -> Path:
    """The resumable checkpoint of a tiny pretraining run (outside the rule's outputs)."""
    return workdir / f"results/checkpoints/tiny/{method}/seed0/checkpoint.pt"


def steps_logged(workdir: Path, method: str) -> int:
    """How many steps a tiny pretraining run has logged so far."""
    path = workdir / f"results/pretrain/tiny/{method}/seed0/metrics.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_requeued_pretraining_resumes_from_its_checkpoint(interrupted_runs):
    runs = interrupted_runs
    assert runs.status == 0, runs.output[-6000:]
    run_folder = runs.workdir / f"results/pretrain/tiny/{REQUEUED}/seed0"
    assert (run_folder / "summary.json").is_file()
    log = (runs.workdir / f"results/logs/pretrain/tiny/{REQUEUED}/seed0.log").read_text()
    assert "resumed from" in log, log[-2000:]
    assert resumed_after(log) < 200, "interrupted before the end"
    # One submission, run twice by SLURM (same job id); Snakemake saw no failure.
    logs = slurm_logs(runs.workdir, "pretrain", f"tiny_{REQUEUED}_0")
    assert list(logs) == [runs.jobs[REQUEUED]]
    assert "DUE TO JOB REQUEUE" in logs[runs.jobs[REQUEUED]].read_text()
    assert json.loads((run_folder / "config.json").read_text())["world_size"] == 2
    fields = job_fields(runs.jobs[REQUEUED])
    assert (fields["Restarts"], fields["JobState"]) == ("1", "COMPLETED")
    assert f"/{REQUEUED}/seed0/" not in failed_jobs(runs.output)
    assert [record["step"] for record in metrics(run_folder)] == list(range(1, 201)), "reads as one run"


def test_stop_signal_checkpoints_then_the_retry_resumes(interrupted_runs):
    runs = interrupted_runs
    assert runs.status == 0, runs.output[-6000:]
    run_folder = runs.workdir / f"results/pretrain/tiny/{SIGNALLED}/seed0"
    assert (run_folder / "summary.json").is_file()
    logs = slurm_logs(runs.workdir, "pretrain", f"tiny_{SIGNALLED}_0")
    assert len(logs) == 2 and runs.jobs[SIGNALLED] in logs, logs
    first = logs.pop(runs.jobs[SIGNALLED]).read_text()
    assert "stopped by signal 10" in first and "checkpoint saved" in first, first[-3000:]
    (retry,) = logs.values()
    assert resumed_after(retry.read_text()) < 200, "interrupted before the end"
    assert json.loads((run_folder / "config.json").read_text())["world_size"] == 2
    assert f"/{SIGNALLED}/seed0/" in failed_jobs(runs.output)
    comment = f"--comment rule_pretrain_wildcards_tiny_{SIGNALLED}_0 "
    submissions = [call for call in sbatch_calls(runs.output) if comment in call]
    assert len(submissions) == 2 and "--attempt 2" in submissions[1], "resubmitted as Snakemake's retry"
    assert [record["step"] for record in metrics(run_folder)] == list(range(1, 201)), "reads as one run"


def resumed_after(log: str) -> int:
    """The step count of the "resumed from ... (N steps done)" line of a pretraining log."""
    match = re.search(r"resumed from .* \((\d+) steps done\)", log)
    assert match, "no 'resumed from' line in the log"
    return int(match.group(1))


def failed_jobs(output: str) -> str:
    """The text of Snakemake's error blocks (they name the failed jobs' outputs)."""
    blocks = output.split("Error in rule ")[1:]
    return "".join(block[:1500] for block in blocks)

"""`kill -9` of Snakemake mid-pretraining, then `snakemake --unlock` and the same command (README).

Before the checkpoint lock and the workflow watch (sie.ownership), the orphaned trainer kept running
and the rerun started a second one on the same checkpoint: duplicate steps in metrics.jsonl.
"""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from workflow_helpers import REPOSITORY, run_snakemake, snakemake_command, snakemake_environment

from sie.training import checkpoint

pytestmark = pytest.mark.slow

TARGET = "results/pretrain/test/SIE/seed0/summary.json"
OVERLAY = "pretrain: {methods: [SIE], training: {epochs: 30}}\n"


def processes_mentioning(text: str) -> list[int]:
    """PIDs of live processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in command and state != "Z":
            found.append(int(entry.name))
    return found


def job_processes(checkpoint_path: Path) -> list[int]:
    """The pretraining job's processes: the trainer (names its checkpoint) and tee (names its log)."""
    return processes_mentioning(str(checkpoint_path.relative_to(checkpoint_path.parents[4]))) + (
        processes_mentioning("logs/pretrain/test/SIE/seed0.log")
    )


def wait_for(condition, what: str, seconds: float = 300) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``seconds`` (a bound, not a timing)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.1)


def checkpoint_step(path: Path) -> int:
    try:
        return checkpoint.load(path)["position"]["global_step"]
    except (FileNotFoundError, ValueError):
        return 0


def test_kill_snakemake_then_unlock_and_rerun_trains_once(tmp_path):
    (tmp_path / "overlay.yaml").write_text(OVERLAY)
    configs = ("--configfile", str(REPOSITORY / "configs" / "test.yaml"), "overlay.yaml")
    run_snakemake(tmp_path, "--cores", "2", "results/datasets/test/store/manifest.json", *configs)
    checkpoint_path = tmp_path / "results/checkpoints/test/SIE/seed0/checkpoint.pt"
    workflow = subprocess.Popen(
        snakemake_command(tmp_path, "--cores", "2", TARGET, *configs),
        cwd=tmp_path,
        env=snakemake_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: checkpoint_step(checkpoint_path) >= 10, "a checkpoint of 10 steps")
        os.kill(workflow.pid, signal.SIGKILL)  # Snakemake alone: its job keeps running, orphaned
        workflow.wait()
        wait_for(lambda: not job_processes(checkpoint_path), "the orphaned job (trainer, tee) to stop")
    finally:
        for pid in job_processes(checkpoint_path):
            os.kill(pid, signal.SIGKILL)
    stopped_at = checkpoint_step(checkpoint_path)
    log = (tmp_path / "results/logs/pretrain/test/SIE/seed0.log").read_text()
    assert "the Snakemake process" in log and "is gone" in log, log[-2000:]
    assert not (tmp_path / TARGET).exists() and stopped_at >= 10
    run_snakemake(tmp_path, "--unlock", *configs)
    run_snakemake(tmp_path, "--cores", "2", TARGET, *configs)

    output = tmp_path / "results/pretrain/test/SIE/seed0"
    summary = json.loads((output / "summary.json").read_text())
    steps = [json.loads(line)["step"] for line in (output / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, summary["steps"] + 1)), "one trainer, no duplicate steps"
    assert stopped_at < summary["steps"]
    spec = json.loads((output / "config.json").read_text())["spec"]
    reference = tmp_path / "reference"
    subprocess.run(
        [
            *("sie", "pretrain", "--spec", json.dumps(spec), "--dataset", "results/datasets/test"),
            *("--output", str(reference / "out"), "--checkpoint", str(reference / "checkpoint.pt")),
            *("--threads", "2"),
        ],
        cwd=tmp_path,
        env=snakemake_environment(),
        check=True,
        capture_output=True,
    )
    resumed = checkpoint.load(output / "model.pt")["state_dict"]
    uninterrupted = checkpoint.load(reference / "out" / "model.pt")["state_dict"]
    assert resumed.keys() == uninterrupted.keys()
    for key, value in uninterrupted.items():
        assert torch.equal(value, resumed[key]), key

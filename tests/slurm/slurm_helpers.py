"""Helpers of the SLURM tests: Snakemake command lines with the SLURM profiles, runs with a hard
timeout, Slurm queries, a tiny dataset in the release layout, and small configurations."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from local_slurm import ACTIVE_STATES

REPOSITORY = Path(__file__).resolve().parents[2]
SNAKEFILE = REPOSITORY / "Snakefile"
BASE_PROFILE = REPOSITORY / "profiles" / "slurm"
TEST_PROFILE = Path(__file__).resolve().parent / "profile"
TEST_CONFIG = REPOSITORY / "configs" / "test.yaml"

SYNSETS = ("02691156", "03001627", "03797390")
OBJECTS_PER_CLASS = 4
VIEWS = 3
TINY_MODEL = {"arch": "resnet9", "width": 4, "mlp": "16-16", "equi": 8, "equi_factor": 0.45}


def environment() -> dict[str, str]:
    """The test's environment for Snakemake and Slurm commands.

    The virtualenv's scripts come first on PATH (jobs inherit it through sbatch --export=ALL);
    MASTER_ADDR is 127.0.0.1 because the test cluster's node names (n1, n2) do not resolve; no
    SLURM_* variable of an enclosing job leaks in.
    """
    result = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLURM_", "SBATCH_", "SRUN_")) and key != "MASTER_PORT"
    }
    result["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{result.get('PATH', '')}"
    result["MASTER_ADDR"] = "127.0.0.1"
    return result


def snakemake_command(workdir: Path, *arguments: str, profiles: Sequence[Path] = ()) -> list[str]:
    """Snakemake on this repository's workflow in ``workdir``, with the given profiles in order.

    ``--workflow-profile none`` keeps profiles/default (the local profile) out: it would win key by
    key over the SLURM profiles (and its `cores: all` would cap the jobs' threads).
    """
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE), "--directory", str(workdir)]
    for profile in profiles:
        command += ["--profile", str(profile)]
    return [*command, "--workflow-profile", "none", *arguments]


def slurm_command(workdir: Path, *arguments: str, profiles: Sequence[Path] | None = None) -> list[str]:
    """Snakemake with profiles/slurm overlaid by the test cluster's profile (or ``profiles``)."""
    return snakemake_command(workdir, *arguments, profiles=profiles or (BASE_PROFILE, TEST_PROFILE))


class Run:
    """A Snakemake process in its own session, output in a file, stopped for sure at the end."""

    def __init__(self, command: list[str], workdir: Path, name: str) -> None:
        self.command = command
        self.workdir = workdir
        self.output_path = workdir / f"{name}.snakemake.out"
        self.started = time.monotonic()
        with open(self.output_path, "w") as output:
            self.process = subprocess.Popen(
                command,
                cwd=workdir,
                env=environment(),
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    @property
    def output(self) -> str:
        """Everything Snakemake printed so far."""
        return self.output_path.read_text(errors="replace")

    def running(self) -> bool:
        """True while the process has not exited."""
        return self.process.poll() is None

    def wait(self, timeout: float) -> int:
        """Wait for the exit status; past ``timeout`` stop it (SIGINT, then SIGKILL) and fail the test."""
        remaining = max(1.0, timeout - (time.monotonic() - self.started))
        try:
            status = self.process.wait(timeout=remaining)
            kill_group(self.process.pid)  # local jobs that outlived Snakemake, if any
            return status
        except subprocess.TimeoutExpired:
            self.stop()
            pytest.fail(f"snakemake still running after {timeout:.0f} s:\n{self.output[-6000:]}")
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Stop the run (Snakemake's SLURM executor ignores SIGTERM; SIGINT makes it cancel its jobs),
        then cancel whatever job of its working directory is still active and wait for it to end."""
        if self.running():
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                kill_group(self.process.pid)
                self.process.wait(timeout=30)
        kill_group(self.process.pid)
        # best effort: without a cluster (a local run) there is nothing to cancel, and the cluster's
        # own stop cancels every job anyway
        with contextlib.suppress(RuntimeError, OSError, subprocess.TimeoutExpired):
            cancel_jobs_in(self.workdir)

    def check(self, timeout: float) -> str:
        """Wait for success; fail the test with Snakemake's output otherwise. Returns the output."""
        status = self.wait(timeout)
        if status != 0:
            pytest.fail(f"snakemake exited with {status}:\n{self.output[-8000:]}")
        return self.output


def kill_group(group: int) -> None:
    """SIGKILL what is left of a process group (nothing when it is gone)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGKILL)


def active_jobs_in(workdir: Path) -> list[str]:
    """Ids of the jobs working in ``workdir`` that are pending, running or ending."""
    listing = slurm("squeue", "-h", "-t", ACTIVE_STATES, "-o", "%i|%Z")
    jobs = (line.split("|", 1) for line in listing.splitlines() if "|" in line)
    return [job for job, directory in jobs if Path(directory).resolve() == workdir.resolve()]


def cancel_jobs_in(workdir: Path, timeout: float = 60) -> None:
    """scancel the jobs still active in ``workdir`` (a stopped Snakemake's) and wait until they end."""
    jobs = active_jobs_in(workdir)
    if not jobs:
        return
    slurm("scancel", *jobs)
    wait_for(lambda: not active_jobs_in(workdir), timeout, f"jobs {', '.join(jobs)} to end after scancel")


def run_snakemake(command: list[str], workdir: Path, name: str, timeout: float) -> str:
    """Run a Snakemake command to success (see :class:`Run`) and return its output."""
    return Run(command, workdir, name).check(timeout)


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.3) -> Any:
    """Poll ``condition`` until it returns something true; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def slurm(*arguments: str) -> str:
    """Run a Slurm client command (squeue, scontrol, scancel ...) and return its output."""
    result = subprocess.run(arguments, capture_output=True, text=True, env=environment(), timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(arguments)} failed ({result.returncode}): {result.stderr}")
    return result.stdout


def job_fields(job_id: str) -> dict[str, str]:
    """``scontrol show job`` as {field: value} (JobState, Restarts, NodeList, ...)."""
    fields: dict[str, str] = {}
    for token in slurm("scontrol", "show", "job", "--oneliner", job_id).split():
        key, _, value = token.partition("=")
        fields.setdefault(key, value)
    return fields


def jobs_by_comment(workdir: Path) -> dict[str, tuple[str, str]]:
    """{comment: (job id, state)} of the jobs (also recently finished ones) working in ``workdir``.

    The plugin's --comment names the rule and wildcards (rule_pretrain_wildcards_tiny_SIE_0); the
    working directory tells this run's jobs from other tests' (Slurm keeps finished jobs MinJobAge s).
    """
    jobs = {}
    for line in slurm("squeue", "-h", "-t", "all", "-o", "%i|%k|%T|%Z").splitlines():
        job_id, comment, state, directory = line.split("|")
        if Path(directory).resolve() == workdir.resolve():
            jobs[comment] = (job_id, state)
    return jobs


def sbatch_calls(output: str) -> list[str]:
    """The "sbatch call: ..." lines the plugin logs with --verbose."""
    return [line.split("sbatch call: ", 1)[1] for line in output.splitlines() if "sbatch call: " in line]


def sbatch_call_of(output: str, comment: str) -> str:
    """The sbatch call of the job whose --comment is ``comment`` (e.g. rule_render_shard_wildcards_...)."""
    calls = [call for call in sbatch_calls(output) if f"--comment {comment} " in call]
    assert calls, f"no sbatch call with --comment {comment} in the output"
    return calls[0]


def without_wrap(call: str) -> str:
    """An sbatch call without its --wrap="python -m snakemake ..." payload (for reading and reports)."""
    return call.split(" --wrap=", 1)[0] + ' --wrap="..."'


def tiny_training_config(
    path: Path, release: Path, methods: Sequence[str], epochs: int, lr: float | None = None
) -> Path:
    """A configuration training ``methods`` on the prerendered tiny dataset (variant ``tiny``), with
    the default learning rate unless ``lr`` is given."""
    config = {
        "datasets": {
            "tiny": {
                "source": "prerendered",
                "root": str(release),
                "views": VIEWS,
                "image_size": 32,
                "split": {"val_fraction": 0.2},
            }
        },
        "pretrain": {
            "methods": list(methods),
            "seeds": [0],
            "model": dict(TINY_MODEL),
            "training": {
                "epochs": epochs,
                "batch_size": 4,
                "workers": 0,
                "checkpoint_minutes": 0,
                "log_every_steps": 1,
                "deterministic": True,
            },
        },
    }
    if lr is not None:
        config["pretrain"]["training"]["lr"] = lr
    path.write_text(yaml.safe_dump(config))
    return path


def derived_profile(folder: Path, pretrain_resources: dict[str, Any]) -> Path:
    """A copy of the test profile whose pretrain resources are ``pretrain_resources`` (replaced)."""
    profile = yaml.safe_load((TEST_PROFILE / "config.yaml").read_text())
    profile["set-resources"]["pretrain"] = pretrain_resources
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(profile))
    return folder


def metrics(run_folder: Path) -> list[dict[str, Any]]:
    """The records of a run's metrics.jsonl."""
    return [json.loads(line) for line in (run_folder / "metrics.jsonl").read_text().splitlines()]


def slurm_logs(workdir: Path, rule: str, wildcards: str) -> dict[str, Path]:
    """{job id: SLURM log} of one job's submissions (each submission writes <jobid>.log)."""
    folder = workdir / ".snakemake" / "slurm_logs" / f"rule_{rule}" / wildcards
    return {path.stem: path for path in sorted(folder.glob("*.log"))}

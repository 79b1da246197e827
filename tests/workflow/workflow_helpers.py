"""Helpers to run the workflow's Snakemake in a subprocess, in a scratch working directory."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from support import PAPER_SPLIT, job_counts  # noqa: F401 (re-exported for the tests)

REPOSITORY = Path(__file__).resolve().parents[2]
SNAKEFILE = REPOSITORY / "Snakefile"


def snakemake_environment() -> dict[str, str]:
    """The test's environment with the virtualenv's scripts (sie, snakemake) first on PATH."""
    environment = dict(os.environ)
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}"
    return environment


def snakemake_command(workdir: Path, *arguments: str) -> list[str]:
    """Command line running this repository's workflow with ``workdir`` as working directory."""
    return [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(SNAKEFILE),
        "--directory",
        str(workdir),
        *arguments,
    ]


def run_snakemake(
    workdir: Path, *arguments: str, check: bool = True, environment: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run Snakemake to completion; on an unexpected exit status, fail showing its output."""
    result = subprocess.run(
        snakemake_command(workdir, *arguments),
        capture_output=True,
        text=True,
        env=environment or snakemake_environment(),
        cwd=workdir,
        timeout=900,
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"snakemake {' '.join(arguments)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result

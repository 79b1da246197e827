"""Helpers to run the workflow's Snakemake in a subprocess, in a scratch working directory."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
SNAKEFILE = REPOSITORY / "Snakefile"

# Objects per class in the release's split files (train, val), reference Appendix A.
PAPER_SPLIT = {
    "02691156": (3241, 804), "02747177": (272, 71), "02773838": (65, 18), "02801938": (88, 25),
    "02808440": (667, 189), "02818832": (197, 36), "02828884": (1452, 361), "02843684": (51, 22),
    "02871439": (354, 98), "02876657": (413, 85), "02880940": (145, 41), "02924116": (731, 208),
    "02933112": (1254, 317), "02942699": (95, 18), "02946921": (83, 25), "02954340": (44, 12),
    "02958343": (2788, 726), "02992529": (676, 155), "03001627": (5398, 1380), "03046257": (512, 139),
    "03085013": (49, 16), "03207941": (79, 14), "03211117": (889, 204), "03261776": (58, 15),
    "03325088": (581, 163), "03337140": (235, 63), "03467517": (632, 165), "03513137": (121, 41),
    "03593526": (479, 117), "03624134": (333, 91), "03636649": (1887, 431), "03642806": (363, 97),
    "03691459": (1274, 323), "03710193": (75, 19), "03759954": (55, 12), "03761084": (119, 33),
    "03790512": (270, 67), "03797390": (171, 43), "03928116": (188, 51), "03938244": (80, 16),
    "03948459": (239, 68), "03991062": (489, 113), "04004475": (126, 40), "04074963": (54, 12),
    "04090263": (1919, 454), "04099429": (67, 18), "04225987": (128, 24), "04256520": (2538, 635),
    "04330267": (186, 32), "04379243": (6748, 1688), "04401088": (861, 228), "04460130": (114, 19),
    "04468005": (316, 73), "04530566": (1540, 399), "04554684": (131, 38),
}  # fmt: skip


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


def job_counts(output: str) -> dict[str, int]:
    """Parse the 'Job stats' table of a Snakemake dry run into {rule: count}."""
    counts: dict[str, int] = {}
    lines = output.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("Job stats"))
    for line in lines[start + 3 :]:
        fields = line.split()
        if len(fields) != 2 or not fields[1].isdigit():
            break
        counts[fields[0]] = int(fields[1])
    return counts

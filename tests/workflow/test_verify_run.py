"""`snakemake verify` on the rendered test dataset: damage found, `--repair`, re-render, same bytes."""

import subprocess
import sys

import numpy as np
import pytest
from workflow_helpers import REPOSITORY, job_counts, run_snakemake, snakemake_environment

pytestmark = pytest.mark.workflow
TEST_CONFIG = REPOSITORY / "configs" / "test.yaml"
FOLDER = "results/datasets/test"


def sie(workdir, *arguments):
    """Run the `sie` command in ``workdir`` (the paths in the dataset card are relative to it)."""
    return subprocess.run(
        [sys.executable, "-m", "sie.cli", *arguments],
        cwd=workdir,
        env=snakemake_environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def view_files(workdir):
    root = workdir / FOLDER / "data"
    return {
        str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()
    }


def test_the_default_target_does_not_verify(tmp_path):
    counts = job_counts(run_snakemake(tmp_path, "-n", "--configfile", str(TEST_CONFIG)).stdout)
    assert "verify" not in counts and counts["index_dataset"] == 1


@pytest.mark.render
def test_verify_finds_damage_and_repair_re_renders_the_same_bytes(tmp_path):
    workdir = tmp_path
    arguments = ("--configfile", str(TEST_CONFIG))
    run_snakemake(workdir, "datasets", "--cores", "2", *arguments)
    sound = view_files(workdir)
    verified = run_snakemake(workdir, "verify", "--cores", "1", *arguments)
    assert "results/datasets/test: all 36 views are sound" in verified.stdout + verified.stderr

    data = workdir / FOLDER / "data"
    deleted = data / "03001627" / "chair_0000" / "image_2.jpg"  # chairs are shard 1 (mug, chair, airplane)
    deleted.unlink()
    changed = data / "03001627" / "chair_0003" / "latent_0.npy"
    content = bytearray(changed.read_bytes())
    content[-8:] = np.float64(0.5).tobytes()
    changed.write_bytes(bytes(content))

    failed = run_snakemake(workdir, "verify", "--cores", "1", *arguments, check=False)
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0
    assert f"{deleted.relative_to(workdir)}: missing" in output
    assert "`sie verify --dataset results/datasets/test --checksums --repair`" in output
    rerun = run_snakemake(workdir, "datasets", "--cores", "2", *arguments)
    assert "Nothing to be done" in rerun.stdout + rerun.stderr, "Snakemake alone does not notice"

    checked = sie(workdir, "verify", "--dataset", FOLDER, "--checksums")
    assert checked.returncode == 1
    assert "2 damaged file(s) (1 missing, 1 with another checksum) in 2 of 36 views" in checked.stderr
    assert f"{changed.relative_to(workdir)}: same size, but its SHA-256 differs" in checked.stderr
    repaired = sie(workdir, "verify", "--dataset", FOLDER, "--checksums", "--repair")
    assert repaired.returncode == 0, repaired.stderr
    assert "now run `snakemake datasets`" in repaired.stdout

    rendered = run_snakemake(workdir, "datasets", "--cores", "2", *arguments)
    counts = job_counts(rendered.stdout + rendered.stderr)
    assert counts["render_shard"] == 1 and counts["index_dataset"] == 1
    assert "render test shard 1: 2 views rendered, 10 already done" in rendered.stdout + rendered.stderr
    assert view_files(workdir) == sound
    assert sie(workdir, "verify", "--dataset", FOLDER, "--checksums").returncode == 0
    run_snakemake(workdir, "verify", "--cores", "1", *arguments)

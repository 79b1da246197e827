"""The dataset stage end to end on the tiny test configuration: render, rerun, shard sizes, SIGKILL."""

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from workflow_helpers import REPOSITORY, run_snakemake, snakemake_command, snakemake_environment

pytestmark = [pytest.mark.workflow, pytest.mark.render]
TEST_CONFIG = REPOSITORY / "configs" / "test.yaml"


def dataset_files(workdir: Path) -> dict[str, bytes]:
    """Every image and latent of the rendered test dataset, by relative path."""
    root = workdir / "results" / "datasets" / "test" / "data"
    return {
        str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()
    }


def with_chunk_size(tmp_path: Path, chunk_size: int) -> Path:
    config = yaml.safe_load(TEST_CONFIG.read_text())
    config["datasets"]["test"]["chunk_size"] = chunk_size
    path = tmp_path / f"chunk{chunk_size}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The test dataset rendered once, uninterrupted, with the shipped shard size."""
    workdir = tmp_path_factory.mktemp("reference")
    run_snakemake(workdir, "datasets", "--cores", "2", "--configfile", str(TEST_CONFIG))
    return workdir


def test_datasets_renders_and_indexes_then_rerun_does_nothing(reference):
    folder = reference / "results" / "datasets" / "test"
    assert len(list((folder / "shards").glob("*.json"))) == 3
    files = dataset_files(reference)
    assert len(files) == 3 * 4 * 3 * 2  # classes x objects x views x (image, latent)
    assert np.load(folder / "all_latents_train.npy").shape[1] == 7
    assert (folder / "samples.png").is_file() and (folder / "card.json").is_file()
    rerun = run_snakemake(reference, "datasets", "--cores", "2", "--configfile", str(TEST_CONFIG))
    assert "Nothing to be done" in rerun.stdout + rerun.stderr


def test_other_shard_sizes_give_identical_files(reference, tmp_path):
    workdir = tmp_path / "chunks"
    workdir.mkdir()
    run_snakemake(workdir, "datasets", "--cores", "2", "--configfile", str(with_chunk_size(tmp_path, 1)))
    assert len(list((workdir / "results/datasets/test/shards").glob("*.json"))) == 12
    assert dataset_files(workdir) == dataset_files(reference)
    for name in ("all_latents_train.npy", "all_latents_val.npy", "train_images.npy", "val_labels.npy"):
        assert (workdir / "results/datasets/test" / name).read_bytes() == (
            reference / "results/datasets/test" / name
        ).read_bytes()


def test_sigkill_mid_shard_then_rerun_gives_identical_files(reference, tmp_path):
    workdir = tmp_path / "killed"
    workdir.mkdir()
    config = with_chunk_size(tmp_path, 12)  # one shard: the kill lands inside it
    process = subprocess.Popen(
        snakemake_command(workdir, "datasets", "--cores", "2", "--configfile", str(config)),
        env=snakemake_environment(),
        cwd=workdir,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    data = workdir / "results" / "datasets" / "test" / "data"
    deadline = time.monotonic() + 120
    while not any(data.rglob("latent_*.npy")) if data.exists() else True:
        assert time.monotonic() < deadline and process.poll() is None, "the render never started"
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    rendered = len(list(data.rglob("latent_*.npy")))
    assert 0 < rendered < 36, f"the kill should land mid-shard ({rendered} of 36 views done)"
    assert not (workdir / "results/datasets/test/shards/0000.json").exists()
    run_snakemake(workdir, "--unlock", "--configfile", str(config))
    run_snakemake(workdir, "datasets", "--cores", "2", "--configfile", str(config))
    assert dataset_files(workdir) == dataset_files(reference)
    assert not list(data.rglob(".*")), "temporary files were left behind"

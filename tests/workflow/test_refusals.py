"""Configuration-time refusals: a refused change stops the workflow before any job (or deletion) runs."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from workflow_helpers import REPOSITORY, job_counts, run_snakemake, snakemake_environment

pytestmark = pytest.mark.workflow
TEST_CONFIG = REPOSITORY / "configs" / "test.yaml"


def with_render_samples(folder: Path, samples: int) -> Path:
    """The test configuration with another Cycles sample count (a setting that changes pixels)."""
    config = yaml.safe_load(TEST_CONFIG.read_text())
    config["datasets"]["test"]["render"]["samples"] = samples
    path = folder / f"samples{samples}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def with_batch_sizes(folder: Path, batch_size: int, method_batch_size: int | None = None) -> Path:
    """The test configuration with another global batch, and optionally VICReg's own."""
    config = yaml.safe_load(TEST_CONFIG.read_text())
    config["pretrain"]["training"]["batch_size"] = batch_size
    if method_batch_size is not None:
        config["pretrain"]["methods_settings"] = {"VICReg": {"training": {"batch_size": method_batch_size}}}
    path = folder / f"batch{batch_size}-{method_batch_size}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def completed_work(workdir: Path) -> dict[str, bytes]:
    """Shard markers, index outputs and the stored render settings of the test variant."""
    folder = workdir / "results" / "datasets" / "test"
    paths = [
        *sorted((folder / "shards").glob("*.json")),
        folder / "card.json",
        folder / "render_settings.json",
    ]
    return {str(path.relative_to(folder)): path.read_bytes() for path in paths if path.is_file()}


@pytest.mark.render
def test_changed_render_setting_is_refused_before_any_job_and_loses_nothing(tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    run_snakemake(workdir, "datasets", "--cores", "2", "--configfile", str(TEST_CONFIG))
    before = completed_work(workdir)
    assert len([name for name in before if name.startswith("shards/")]) == 3 and "card.json" in before

    changed = with_render_samples(tmp_path, 8)
    result = run_snakemake(workdir, "datasets", "--cores", "2", "--configfile", str(changed), check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "results/datasets/test/render_settings.json" in output
    assert "samples: stored 4, now 8 (datasets.test.render.samples)" in output
    assert "delete results/datasets/test to re-render" in output
    assert completed_work(workdir) == before

    reverted = run_snakemake(workdir, "-n", "datasets", "--configfile", str(TEST_CONFIG))
    assert "Nothing to be done" in reverted.stdout + reverted.stderr
    everything = job_counts(run_snakemake(workdir, "-n", "--configfile", str(TEST_CONFIG)).stdout)
    assert not {"render_shard", "index_dataset"} & set(everything), everything


@pytest.mark.parametrize(
    ("batch_size", "method_batch_size", "key", "value"),
    [
        (10, None, "pretrain.training.batch_size", 10),
        (4, 32, "pretrain.methods_settings.VICReg.training.batch_size", 32),
    ],
)
def test_a_batch_larger_than_the_training_split_fails_the_dry_run(
    tmp_path, batch_size, method_batch_size, key, value
):
    config = with_batch_sizes(tmp_path, batch_size, method_batch_size)
    result = run_snakemake(tmp_path, "-n", "--configfile", str(config), check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"config key '{key}': batch size {value} is larger than the 9 training objects" in output
    assert "of dataset variant 'test'" in output and "Set it to at most 9" in output
    assert not (tmp_path / "results").exists()


def test_a_malformed_default_config_file_is_named_with_its_line(tmp_path):
    """Without --configfile the Snakefile reads config.yaml (of the working directory) itself first."""
    (tmp_path / "config.yaml").write_text("datasets:\n  mini:\n    source: procedural\n   views: 3\n")
    result = run_snakemake(tmp_path, "-n", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "config.yaml: line 4, column 4: not valid YAML: expected <block end>" in output
    (tmp_path / "config.yaml").write_text("# nothing yet\n")
    result = run_snakemake(tmp_path, "-n", check=False)
    assert result.returncode != 0
    assert "config.yaml: empty configuration file" in result.stdout + result.stderr


def test_a_malformed_configfile_is_refused_by_snakemake_and_located_by_sie_config(tmp_path):
    """Snakemake reads --configfile files before it evaluates the Snakefile, and its message names
    neither the file nor the line (snakemake.common.configfile): `sie config` locates the error."""
    broken = tmp_path / "broken.yaml"
    broken.write_text("datasets:\n  test:\n    views: [3\n")
    result = run_snakemake(tmp_path, "-n", "--configfile", str(broken), check=False)
    assert result.returncode != 0 and "not valid JSON or YAML" in result.stdout + result.stderr
    located = subprocess.run(
        [str(Path(sys.executable).parent / "sie"), "config", "--configfile", str(broken)],
        capture_output=True,
        text=True,
        env=snakemake_environment(),
        cwd=REPOSITORY,
    )
    assert located.returncode != 0
    assert located.stderr.startswith(f"sie config: error: {broken}: line 4, column 1: not valid YAML")

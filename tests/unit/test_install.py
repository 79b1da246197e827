"""A non-editable install of the package validates a configuration from outside the checkout: the schema
is package data (read with importlib.resources), not a file of the source tree."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]


def install(tmp_path: Path) -> Path:
    """``pip install --no-deps`` of a copy of the project into a target folder; returns the folder."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPOSITORY / name, source / name)
    shutil.copytree(
        REPOSITORY / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    target = tmp_path / "site"
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    result = subprocess.run(
        [*command, "--no-index", "--target", str(target), str(source)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return target


def test_installed_package_validates_a_configuration(tmp_path):
    target = install(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    environment = {**os.environ, "PYTHONPATH": str(target)}

    def sie(*arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(target / "bin" / "sie"), *arguments],
            capture_output=True,
            text=True,
            cwd=elsewhere,
            env=environment,
        )

    where = subprocess.run(
        [sys.executable, "-c", "import sie.config; print(sie.config.__file__)"],
        capture_output=True,
        text=True,
        cwd=elsewhere,
        env=environment,
    )
    assert Path(where.stdout.strip()).is_relative_to(target), where.stdout + where.stderr
    shutil.copy(REPOSITORY / "configs/test.yaml", elsewhere / "test.yaml")
    result = sie("config", "--configfile", "test.yaml")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["pretrain"]["training"]["epochs"] == 2
    (elsewhere / "wrong.yaml").write_text(
        "datasets: {test: {source: procedural, objects_per_class: 2, colour: 1}}\n"
    )
    refused = sie("config", "--configfile", "wrong.yaml")
    assert refused.returncode == 1 and "unknown key(s) 'colour'" in refused.stderr, refused.stderr

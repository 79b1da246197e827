"""Provenance of every output: software versions and the workflow's git revision."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path


def software_versions() -> dict[str, str]:
    """Versions of Python, the key packages, and the workflow's git revision."""
    versions = {"python": platform.python_version()}
    for package in ("sie", "numpy", "pillow", "scipy", "torch", "snakemake", "bpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    versions["git"] = git_revision()
    return versions


def git_revision() -> str:
    """The checkout's commit (with '+dirty' when it has uncommitted changes), or 'unknown'."""
    repository = Path(__file__).resolve().parents[2]
    try:
        revision = subprocess.run(
            ["git", "-C", str(repository), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repository), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return revision + ("+dirty" if dirty else "")

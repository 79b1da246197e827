"""Shared test fixtures and paths."""

from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]


@pytest.fixture
def repository() -> Path:
    """The repository root (where the Snakefile is)."""
    return REPOSITORY

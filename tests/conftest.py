"""Shared test fixtures and paths."""

from pathlib import Path

import pytest
import torch

REPOSITORY = Path(__file__).resolve().parents[1]


@pytest.fixture
def repository() -> Path:
    """The repository root (where the Snakefile is)."""
    return REPOSITORY


@pytest.fixture
def one_thread():
    """Tiny models gain nothing from threads, and OpenMP threads crawl when other jobs hold the cores."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)

"""Fixtures of the workflow tests."""

import pytest

from support import write_paper_inputs


@pytest.fixture
def paper_inputs(tmp_path) -> dict[str, str]:
    """A stand-in for ShapeNetCore v2 (an empty folder) and the release's split files (52,472 objects)."""
    return write_paper_inputs(tmp_path / "paper")

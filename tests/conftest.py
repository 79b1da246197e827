"""Shared test fixtures and paths; at the end of the session, a check that no process outlives it."""

import os
from pathlib import Path

import pytest
import torch

from leftovers import describe, left_behind, sweep

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


@pytest.hookimpl(trylast=True)  # after the session fixtures (the test Slurm) are torn down
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the session when processes the tests started are still alive, naming them (then kill them).

    Looked for (after every fixture, the Slurm cluster included, has been torn down): descendants of
    this pytest process, and processes whose working directory or command line lies under pytest's base
    temporary folder (an orphan re-parented to PID 1 is no descendant, but it still works there).
    """
    factory = getattr(session.config, "_tmp_path_factory", None)
    basetemp = getattr(factory, "_basetemp", None)  # None when no test used a temporary folder
    folders = [Path(basetemp)] if basetemp is not None else []
    survivors = sweep(folders, descendants_of=os.getpid())
    if not survivors:
        return
    unkillable = left_behind(folders, descendants_of=os.getpid())
    lines = [
        f"{len(survivors)} process(es) started by the tests outlived them (killed now):",
        describe(survivors),
    ]
    if unkillable:
        lines += ["still alive after SIGKILL:", describe(unkillable)]
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("")
        reporter.write_sep("=", "processes left behind", red=True)
        reporter.write_line("\n".join(lines))
    else:
        print("\n".join(lines))
    session.exitstatus = pytest.ExitCode.TESTS_FAILED

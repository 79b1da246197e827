"""tests/leftovers.py: which processes count as the tests' and how they are stopped (Linux /proc)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from leftovers import Process, left_behind, refers_to, sweep

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def test_a_folder_counts_only_as_a_whole_path(tmp_path):
    folder = tmp_path / "pytest-2"
    inside = Process(1, 0, ("snakemake", "--directory", f"{folder}/work"), "/")
    sibling = Process(2, 0, ("snakemake", "--directory", f"{folder}5/work"), f"{folder}5")
    working_there = Process(3, 0, ("sleep", "1"), str(folder / "work"))
    assert refers_to(inside, [folder]) and refers_to(working_there, [folder])
    assert not refers_to(sibling, [folder])


def test_a_detached_process_working_in_a_folder_is_found_and_stopped(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"], cwd=tmp_path, start_new_session=True
    )
    try:
        found = [entry.pid for entry in left_behind([tmp_path])]
        assert process.pid in found
        assert process.pid in [entry.pid for entry in sweep([tmp_path])]
        assert process.wait(timeout=30) < 0, "killed by a signal"
        assert process.pid not in [entry.pid for entry in left_behind([tmp_path])]
    finally:
        process.kill()
        process.wait()


def test_this_process_and_its_ancestors_never_count():
    found = {entry.pid for entry in left_behind([Path.cwd()], descendants_of=os.getppid())}
    assert os.getpid() not in found and os.getppid() not in found

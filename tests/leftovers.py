"""Processes the tests left behind: found in /proc, described, killed by PID.

A process belongs to the tests when it descends from the pytest process, when its working directory
or one of its command-line arguments lies under one of the tests' folders (pytest's base temporary
folder, the Slurm cluster's state), or when its environment carries a marker (``SLURM_CLUSTER_NAME``
of the test cluster: every process of a job on it). Used by the Slurm fixture after the cluster is
stopped and by tests/conftest.py at the end of the session. Linux only (nothing is found elsewhere).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
# Helpers of Python's multiprocessing that end on their own with the interpreter that started them.
INTERPRETER_HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")


@dataclass(frozen=True)
class Process:
    """One live process: PID, parent PID, command line and working directory ("" when unreadable)."""

    pid: int
    parent: int
    command: tuple[str, ...]
    cwd: str

    def describe(self) -> str:
        """ "PID (parent PPID, in CWD): COMMAND" for failure messages."""
        return f"{self.pid} (parent {self.parent}, in {self.cwd or '?'}): {' '.join(self.command)[:300]}"


def read_process(pid: int) -> Process | None:
    """The process ``pid``, or None when it is gone, a zombie or a kernel thread."""
    folder = PROC / str(pid)
    try:
        status = (folder / "stat").read_text()
        command = (folder / "cmdline").read_bytes()
    except OSError:
        return None
    state, parent = status.rsplit(")", 1)[1].split()[:2]
    if state == "Z" or not command:
        return None
    try:
        cwd = os.readlink(folder / "cwd")
    except OSError:
        cwd = ""
    arguments = tuple(part.decode(errors="replace") for part in command.rstrip(b"\0").split(b"\0"))
    return Process(pid, int(parent), arguments, cwd)


def live_processes() -> list[Process]:
    """Every live user-space process (empty where there is no /proc)."""
    if not PROC.is_dir():
        return []
    found = (read_process(int(entry.name)) for entry in PROC.iterdir() if entry.name.isdigit())
    return [process for process in found if process is not None]


def environment_has(pid: int, markers: Iterable[str]) -> bool:
    """True when the environment of ``pid`` holds one of ``markers`` ("NAME=value") exactly."""
    try:
        entries = set((PROC / str(pid) / "environ").read_bytes().split(b"\0"))
    except OSError:
        return False
    return any(marker.encode() in entries for marker in markers)


def ancestors(pid: int, processes: Sequence[Process]) -> set[int]:
    """``pid`` and the PIDs of its ancestors."""
    parents = {process.pid: process.parent for process in processes}
    chain = {pid}
    while pid in parents and parents[pid] not in chain and parents[pid] > 0:
        pid = parents[pid]
        chain.add(pid)
    return chain


def descendants(pid: int, processes: Sequence[Process]) -> set[int]:
    """PIDs of the children of ``pid``, their children, and so on."""
    children: dict[int, list[int]] = {}
    for process in processes:
        children.setdefault(process.parent, []).append(process.pid)
    found, pending = set(), list(children.get(pid, []))
    while pending:
        child = pending.pop()
        if child not in found:
            found.add(child)
            pending.extend(children.get(child, []))
    return found


def refers_to(process: Process, folders: Sequence[Path]) -> bool:
    """True when the working directory or an argument of ``process`` lies under one of ``folders``
    (a whole path: /tmp/pytest-2 is not a prefix of /tmp/pytest-25)."""
    paths = {str(path) for folder in folders for path in (Path(folder), Path(folder).resolve())}
    for path in paths:
        if process.cwd == path or process.cwd.startswith(path + os.sep):
            return True
        mention = re.compile(re.escape(path) + r"(?![\w.-])")
        if any(mention.search(argument) for argument in process.command):
            return True
    return False


def left_behind(
    folders: Sequence[Path] = (), markers: Sequence[str] = (), descendants_of: int | None = None
) -> list[Process]:
    """The processes that belong to the tests (see the module docstring), except this process, its
    ancestors and the interpreter's own multiprocessing helpers."""
    processes = live_processes()
    exempt = ancestors(os.getpid(), processes)
    children = descendants(descendants_of, processes) if descendants_of is not None else set()
    result = []
    for process in processes:
        if process.pid in exempt or any(
            helper in " ".join(process.command) for helper in INTERPRETER_HELPERS
        ):
            continue
        if process.pid in children or refers_to(process, folders) or environment_has(process.pid, markers):
            result.append(process)
    return result


def kill(processes: Iterable[Process], grace: float = 5.0) -> None:
    """SIGTERM each process by PID, then SIGKILL those still alive after ``grace`` seconds."""
    pending = list(processes)
    for process in pending:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pending and time.monotonic() < deadline:
        time.sleep(0.1)
        pending = [process for process in pending if still_running(process)]
    for process in pending:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(process.pid, signal.SIGKILL)


def still_running(process: Process) -> bool:
    """True while the same process (same PID and command line) is alive."""
    current = read_process(process.pid)
    return current is not None and current.command == process.command


def sweep(
    folders: Sequence[Path] = (),
    markers: Sequence[str] = (),
    descendants_of: int | None = None,
    rounds: int = 3,
) -> list[Process]:
    """Kill what :func:`left_behind` finds, a few rounds (a dying parent may start a child); return
    what was found in the first round (empty when nothing was left)."""
    first: list[Process] = []
    for round_number in range(rounds):
        found = left_behind(folders, markers, descendants_of)
        if round_number == 0:
            first = found
        if not found:
            break
        kill(found)
    return first


def describe(processes: Iterable[Process]) -> str:
    """One line per process (PID, parent, working directory, command line)."""
    return "\n".join(process.describe() for process in processes)

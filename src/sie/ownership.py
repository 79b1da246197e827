"""One process owns a piece of work: an exclusive lock on it, and an end when its workflow is gone.

``exclusive_lock`` takes an ``fcntl.flock`` lock on a file beside the work (a checkpoint, a render
shard) and writes the holder's PID, host and command into it; a second process asking for the same
lock is refused with a message naming the holder. The kernel releases the lock when the holder exits,
however it exits (a ``kill -9`` included), so a stale lock file never blocks anything. On network
file systems flock works where the mount supports it (NFSv4 does; Lustre needs ``-o flock``).

``watch_workflow`` makes a job's process stop when the Snakemake process that started it is gone:
a ``kill -9`` of Snakemake leaves its job processes running, and the next ``snakemake`` would start a
second one on the same outputs. A daemon thread looks every ``WATCH_SECONDS`` at the nearest
``snakemake`` ancestor (found once, at start, through ``/proc``); when it has exited, the thread sends
this process SIGTERM, which the trainer turns into "save the checkpoint and exit 143" and which ends a
render between two atomically written views. Without ``/proc`` (not Linux) or without a Snakemake
ancestor (a command run by hand, or a SLURM job step, which dies with its job) it does nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

WATCH_SECONDS = 1.0
"""How often the watcher looks at the Snakemake ancestor."""


class LockedError(RuntimeError):
    """The work is owned by another live process; the message names it."""


@contextlib.contextmanager
def exclusive_lock(path: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the block, or raise LockedError.

    ``what`` names the work in the message ("the checkpoint results/.../checkpoint.pt").
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockedError(_refusal(path, what, _read_holder(descriptor))) from None
        _write_holder(descriptor)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


def _write_holder(descriptor: int) -> None:
    """Record who holds the lock (for the message a second process gets)."""
    holder = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": " ".join(sys.argv)[:500],
        "since": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, (json.dumps(holder) + "\n").encode(), 0)


def _read_holder(descriptor: int) -> dict:
    """What the holder wrote (empty when it had not written yet)."""
    try:
        return json.loads(os.pread(descriptor, 4096, 0).decode() or "{}")
    except (ValueError, OSError):
        return {}


def _refusal(path: Path, what: str, holder: dict) -> str:
    """The message of a refused lock: who holds it and what to do."""
    pid = holder.get("pid", "?")
    where = f" on {holder['host']}" if holder.get("host") not in (None, socket.gethostname()) else ""
    return (
        f"{path}: {what} is in use by process {pid}{where} (since {holder.get('since', '?')}: "
        f"{holder.get('command', '?')}). Only one process may work on it. If that process belongs to a "
        f"Snakemake run that was killed, it saves its state and stops by itself within seconds: run "
        f"again then. Otherwise wait for it, or stop it with `kill {pid}` (it saves its state first)."
    )


def snakemake_ancestor(pid: int | None = None) -> tuple[int, str] | None:
    """(PID, start time) of the nearest ancestor process that is Snakemake, or None."""
    current = os.getppid() if pid is None else pid
    while current > 1:
        command = _command_line(current)
        if command is None:
            return None
        if any(Path(word).name == "snakemake" for word in command[:6]):
            start = _start_time(current)
            return None if start is None else (current, start)
        current = _parent(current)
    return None


_ANCESTOR_AT_START: tuple[int, str] | None = None


def remember_workflow() -> None:
    """Find the Snakemake ancestor now (the ``sie`` command calls this first thing), so that a
    Snakemake killed during a long start-up (imports, rendezvous, data loading) is still noticed:
    by the time the watcher starts, this process may already have been re-parented."""
    global _ANCESTOR_AT_START
    _ANCESTOR_AT_START = snakemake_ancestor()


def watch_workflow(on_gone: Callable[[], None] | None = None) -> threading.Thread | None:
    """Start the watcher thread (see the module docstring); returns it, or None when nothing to watch.

    ``on_gone`` runs once when the Snakemake ancestor has exited; the default sends SIGTERM to this
    process. ``SIE_NO_WORKFLOW_WATCH=1`` turns the watcher off.
    """
    if os.environ.get("SIE_NO_WORKFLOW_WATCH") == "1":
        return None
    ancestor = _ANCESTOR_AT_START if _ANCESTOR_AT_START is not None else snakemake_ancestor()
    if ancestor is None:
        return None
    action = on_gone or _terminate_self
    thread = threading.Thread(target=_watch, args=(ancestor, action), name="sie-workflow-watch", daemon=True)
    thread.start()
    return thread


def _watch(ancestor: tuple[int, str], action: Callable[[], None]) -> None:
    pid, start = ancestor
    while is_alive(pid, start):
        time.sleep(WATCH_SECONDS)
    print(
        f"sie: the Snakemake process {pid} that started this job is gone; stopping this job "
        "(its state is kept; run snakemake again to continue)",
        file=sys.stderr,
        flush=True,
    )
    action()


def is_alive(pid: int, start: str) -> bool:
    """Whether the process ``pid`` started at ``start`` still runs (a zombie does not).

    Only a missing /proc entry means gone: another read error (say, too many open files) is not
    taken as the end of the workflow."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    except OSError:
        return True
    fields = text[text.rindex(")") + 2 :].split()
    return fields[19] == start and fields[0] != "Z"


def _terminate_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


def _command_line(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return None


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (which may hold spaces)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _parent(pid: int) -> int:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else 0


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (tells a reused PID apart), or None."""
    fields = _stat_fields(pid)
    return fields[19] if fields else None

"""Atomic file writes and small JSON/NumPy helpers shared by every stage.

Every file the workflow produces is written to a temporary file in the destination folder and then
renamed over the final name, so a process killed at any moment leaves either the previous file or the
complete new one, never a truncated file that a later run would take as done. (No fsync: the failure
this guards against is a killed or preempted job, not a power cut; an fsync per rendered view cost
about 1 ms, a tenth of a small render.)
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

_TEMPORARY_NUMBERS = itertools.count()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds.

    The temporary name keeps ``suffix`` as its extension so that writers that choose the format
    from the extension (Blender, PIL) still work. On an exception the temporary file is removed.
    """
    destination = Path(path)
    destination.parent.mkdir(parents=True, exist_ok=True)
    # Unique per process and call; created by the writer itself (so its mode follows the umask, as
    # with any open()): no extra file creation per write, which showed in per-view render costs.
    number = next(_TEMPORARY_NUMBERS)
    temporary_path = destination.parent / f".{destination.name}.{os.getpid()}.{number}.tmp{suffix}"
    try:
        yield temporary_path
        os.replace(temporary_path, destination)
    except OSError as error:
        # Name the destination for errors of writing it (not for a source file read in the block).
        writing = error.filename in (None, str(temporary_path), str(destination))
        if error.errno in STORAGE_ERRORS and writing:
            raise OSError(error.errno, error.strerror, str(destination)) from error
        raise
    finally:
        with contextlib.suppress(OSError):  # a read-only remount: keep the error that matters
            temporary_path.unlink(missing_ok=True)


STORAGE_ERRORS = {
    errno.ENOSPC: "the disk is full: free space on it (or put results/ on a larger disk), then run the "
    "same command again; nothing finished is lost",
    errno.EDQUOT: "the disk quota is exceeded: free space (or put results/ elsewhere), then run again",
    errno.EROFS: "the file system is read-only: run from a checkout whose results/ is writable, or "
    "point the output elsewhere",
    errno.EACCES: "permission denied: make the folder writable for this user, or point the output elsewhere",
    errno.EPERM: "operation not permitted: make the folder writable for this user, or point the "
    "output elsewhere",
    errno.EFBIG: "the file is larger than this file system allows: put results/ on another file system",
    errno.EIO: "input/output error: the disk or network file system failed; check it, then run again",
}
"""Errors of the storage a user can cause or fix, with the fix (see ``describe_os_error``)."""


def describe_os_error(error: OSError) -> str:
    """``<file>: <cause>; <fix>`` for an operating-system error, naming the file when known."""
    cause = error.strerror or str(error)
    fix = STORAGE_ERRORS.get(error.errno)
    text = f"{error.filename}: {cause}" if error.filename else cause
    return f"{text} ({fix})" if fix else text


def ensure_writable(*folders: str | os.PathLike[str]) -> None:
    """Check, before long work starts, that a file can be written in each folder (or, for a folder
    not created yet, in its nearest existing parent); creates nothing."""
    for folder in map(Path, folders):
        existing = folder.absolute()
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        probe = existing / f".sie-write-check.{os.getpid()}"
        try:
            descriptor = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(descriptor, b"x")
            finally:
                os.close(descriptor)
            probe.unlink()
        except OSError as error:
            raise OSError(error.errno, f"cannot write here: {error.strerror}", str(folder)) from error


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (storage errors name ``path``)."""
    with atomic_open(path, "wb") as stream:
        stream.write(data)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file for writing; it replaces ``path`` only when the block succeeds."""
    with atomic_path(path) as temporary, open(temporary, mode) as stream:
        yield stream


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as indented, key-sorted JSON, atomically."""
    with atomic_open(path, "w") as stream:
        json.dump(data, stream, indent=2, sort_keys=True, default=_json_default)
        stream.write("\n")


def write_npy(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Save ``array`` in NumPy's .npy format, atomically (no pickled objects)."""
    with atomic_open(path, "wb") as stream:
        np.save(stream, array, allow_pickle=False)


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file, naming the file when it is missing or malformed."""
    file_path = Path(path)
    try:
        return json.loads(file_path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{file_path}: file not found") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{file_path}: not valid JSON ({error})") from None


def read_json_argument(text: str, option: str = "--spec") -> Any:
    """A command-line JSON value: the JSON text itself, or the path of a JSON file."""
    if not text.lstrip().startswith(("{", "[")):
        path = Path(text)
        if not path.is_file():
            raise FileNotFoundError(f"{option}: {text!r} is neither JSON text nor an existing file")
        text = path.read_text()
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{option}: not valid JSON ({error})") from None


def _json_default(value: Any) -> Any:
    """Make NumPy scalars, arrays and paths JSON serialisable."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")

"""torchrun on this machine for the tests, with every listening socket on 127.0.0.1.

``python -m torch.distributed.run --master-addr 127.0.0.1 ...`` alone is not enough: the agent's
TCPStore (the static rendezvous on MASTER_PORT) listens on every interface whatever address it is given
(torch 2.14's TCPStore servers, libuv and legacy alike, bind the wildcard address; the only way to
restrict one is a socket bound beforehand, passed as ``master_listen_fd``). Run as a script, this file
is torchrun with the static rendezvous creating its store through :func:`sie.dist.tcp_store`, which
does exactly that for a loopback address. The workers are clients of that store, and
``sie.dist.initialize`` puts gloo's sockets on the loopback interface.

Also: a free loopback port, a process run in its own session (its whole group is killed if it outlives
its timeout) and the listening sockets of a process, read from /proc.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

TESTS = Path(__file__).resolve().parent
LOOPBACK = "127.0.0.1"


def free_loopback_port() -> int:
    """A TCP port free on 127.0.0.1 right now (bound to port 0, read, released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def torchrun_command(processes: int, port: int, *program: str) -> list[str]:
    """torchrun (through this file) of ``program`` (a script and its arguments, or ``-m module ...``)
    as ``processes`` local processes, rendezvous on 127.0.0.1:``port``, no restarts."""
    return [
        sys.executable,
        str(Path(__file__).resolve()),
        "--nnodes",
        "1",
        "--nproc-per-node",
        str(processes),
        "--rdzv-backend",
        "static",
        "--master-addr",
        LOOPBACK,
        "--master-port",
        str(port),
        "--max-restarts",
        "0",
        *program,
    ]


def local_environment(**extra: str) -> dict[str, str]:
    """The test's environment for torchrun: one OpenMP thread per process, tests/ importable, no
    launcher variables of an enclosing run, plus ``extra``."""
    launcher = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "GLOO_SOCKET_IFNAME")
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in launcher and not key.startswith(("TORCHELASTIC_", "SLURM_"))
    }
    python_path = [str(TESTS), *filter(None, environment.get("PYTHONPATH", "").split(os.pathsep))]
    environment.update(OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(python_path), **extra)
    return environment


def run_in_own_session(
    command: Sequence[str], timeout: float, environment: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run ``command`` in a new session, capturing its output as text.

    Past ``timeout`` seconds the whole process group (torchrun and its workers) is killed and
    TimeoutExpired raised; whatever happens, nothing of the group outlives the call.
    """
    process = subprocess.Popen(
        list(command),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=environment,
        start_new_session=True,
    )
    try:
        output, errors = process.communicate(timeout=timeout)
    except BaseException:
        kill_group(process.pid)
        process.communicate()
        raise
    kill_group(process.pid)  # workers that outlived a finished torchrun
    return subprocess.CompletedProcess(process.args, process.returncode, output, errors)


def kill_group(group: int) -> None:
    """SIGKILL every process of a process group (nothing when the group is gone)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGKILL)


def listening_addresses(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket process ``pid`` listens on (IPv4 and IPv6, from /proc)."""
    inodes = set()
    for descriptor in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(descriptor)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A: LISTEN
                address, port = local.split(":")
                found.append((_address(address, width), int(port, 16)))
    return found


def _address(hexadecimal: str, width: int) -> str:
    """An address of /proc/net/tcp{,6} (host byte order, 32-bit words) as text."""
    raw = b"".join(
        int(hexadecimal[start : start + 8], 16).to_bytes(4, sys.byteorder) for start in range(0, width, 8)
    )
    family = socket.AF_INET if width == 8 else socket.AF_INET6
    return socket.inet_ntop(family, raw)


def main() -> None:
    """torchrun, its static rendezvous store bound to the master address when that is loopback."""
    from torch.distributed import run
    from torch.distributed.elastic.rendezvous import static_tcp_rendezvous

    from sie import dist

    if not hasattr(static_tcp_rendezvous, "TCPStore"):
        raise SystemExit("torch's static rendezvous no longer makes its store as TCPStore: update this file")
    static_tcp_rendezvous.TCPStore = dist.tcp_store
    run.main()


if __name__ == "__main__":
    main()

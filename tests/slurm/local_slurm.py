"""A real two-node Slurm cluster on this machine, for the SLURM tests (Debian's slurm-wlm, no systemd).

Two ``slurmd`` daemons on one host make a two-node cluster (nodes n1 and n2, distinct ports, spool and
pid files named after the node, ``SlurmdParameters=config_overrides``); everything listens on
127.0.0.1 only. There is no accounting database, so Snakemake must use ``--slurm-status-command
squeue``. The configuration has to live at /etc/slurm/slurm.conf: the SLURM executor's job step strips
SLURM_CONF from the environment of the commands it runs, so no other path reaches an inner ``srun``.

:class:`LocalSlurm` starts exactly the daemons it needs and stops exactly those (by PID) again; a
munged that already answers is reused and left running, a file already at /etc/slurm/slurm.conf is
backed up and put back. Stopping cancels every job and waits for the jobs to end, then kills whatever
the jobs left running (an orphaned job step carries the cluster's name in its environment, or works in
the state or the tests' folders; see tests/leftovers.py); :meth:`LocalSlurm.survivors` tells whether
anything survived. Anything that prevents a clean set-up (not root, apt failing, ports in use)
raises :class:`SlurmUnavailable`, which the fixture turns into a skip.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import leftovers

SLURM_CONF = Path("/etc/slurm/slurm.conf")
MUNGE_KEY = Path("/etc/munge/munge.key")
MUNGE_RUN = Path("/run/munge")
PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
PROGRAMS = {"slurmctld": "slurmctld", "slurmd": "slurmd", "sbatch": "slurm-client", "munged": "munge"}
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

CONTROLLER_PORT = 6817
NODE_PORTS = {"n1": 6818, "n2": 6828}
CPUS_PER_NODE = 2
MEMORY_PER_NODE_MB = 8000
PARTITION = "sietest"
CLUSTER_NAME = "sietest"
# Slurm puts the cluster's name in the environment of every process of a job (the SLURM executor's
# job step keeps it too): this is how processes of the test cluster's jobs are recognised.
JOB_MARKER = f"SLURM_CLUSTER_NAME={CLUSTER_NAME}"
ACTIVE_STATES = "PENDING,RUNNING,COMPLETING,SUSPENDED,CONFIGURING,REQUEUED,RESIZING,SIGNALING,STAGE_OUT"


class SlurmUnavailable(RuntimeError):
    """The local cluster cannot be set up here; the message says why (the tests skip with it)."""


def program(name: str) -> str | None:
    """Full path of a program, also searching the sbin folders a non-login root PATH may lack."""
    return shutil.which(name, path=f"{os.environ.get('PATH', '')}:{SYSTEM_PATH}")


def port_in_use(port: int) -> bool:
    """True when something already listens on (or holds) this TCP port on any local address."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def tail(path: Path, characters: int = 3000) -> str:
    """The end of a log file (or a note that it does not exist)."""
    if not path.exists():
        return f"({path} does not exist)"
    return path.read_text(errors="replace")[-characters:]


def slurm_conf_text(state: Path, hostname: str) -> str:
    """slurm.conf of the two-node test cluster, every file under ``state``."""
    nodes = "\n".join(
        f"NodeName={name} NodeHostname={hostname} NodeAddr=127.0.0.1 Port={port} CPUs={CPUS_PER_NODE} "
        f"Boards=1 SocketsPerBoard=1 CoresPerSocket={CPUS_PER_NODE} ThreadsPerCore=1 "
        f"RealMemory={MEMORY_PER_NODE_MB} State=UNKNOWN"
        for name, port in NODE_PORTS.items()
    )
    return f"""\
# Test cluster of tests/slurm (written by tests/slurm/local_slurm.py; removed at the end of the tests).
ClusterName={CLUSTER_NAME}
SlurmctldHost={hostname}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort={CONTROLLER_PORT}
SlurmdPort={NODE_PORTS["n1"]}
# loopback only
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
StateSaveLocation={state}/slurmctld
SlurmdSpoolDir={state}/slurmd-%n
SlurmctldPidFile={state}/slurmctld.pid
SlurmdPidFile={state}/slurmd-%n.pid
SlurmctldLogFile={state}/slurmctld.log
SlurmdLogFile={state}/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
# two slurmd on one host: node definitions (CPUs, memory) come from this file, not from the hardware
SlurmdParameters=config_overrides
# no systemd, no cgroup delegation
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# no slurmdbd: status queries go through squeue; finished jobs stay visible for MinJobAge seconds
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=300
ReturnToService=2
DefMemPerCPU=1000
MailProg=/bin/true
# impossible requests fail at submission instead of pending forever
EnforcePartLimits=ALL
JobRequeue=1
KillWait=10
{nodes}
PartitionName={PARTITION} Nodes={",".join(NODE_PORTS)} Default=YES MaxTime=INFINITE State=UP
"""


def install_packages() -> None:
    """apt-get install the Slurm and munge packages whose programs are missing (no recommends)."""
    missing = sorted({package for name, package in PROGRAMS.items() if program(name) is None})
    if not missing:
        return
    if program("apt-get") is None:
        raise SlurmUnavailable(
            f"Slurm is not installed ({', '.join(missing)} missing) and there is no apt-get"
        )
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "PATH": SYSTEM_PATH}
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
    result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=900)
    if result.returncode != 0:  # stale package lists: refresh once and try again
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=environment, timeout=600)
        result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=900)
    if result.returncode != 0:
        raise SlurmUnavailable(
            f"`{' '.join(command)}` failed ({result.returncode}): {(result.stderr or result.stdout)[-800:]}"
        )
    still_missing = [name for name in PROGRAMS if program(name) is None]
    if still_missing:
        raise SlurmUnavailable(
            f"installed {', '.join(PACKAGES)} but {', '.join(still_missing)} still missing"
        )


def munge_works() -> bool:
    """True when a munged answers on the default socket (a credential round trip succeeds)."""
    munge, unmunge = program("munge"), program("unmunge")
    if munge is None or unmunge is None:
        return False
    try:
        credential = subprocess.run([munge, "-n"], capture_output=True, timeout=10)
        if credential.returncode != 0:
            return False
        decoded = subprocess.run([unmunge], input=credential.stdout, capture_output=True, timeout=10)
    except subprocess.TimeoutExpired:
        return False
    return decoded.returncode == 0


def stop_process(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM one process we started, then SIGKILL it if it is still alive after ``timeout``."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


def processes_holding(folder: Path, name: str) -> list[int]:
    """PIDs of processes called ``name`` with a file under ``folder`` open (leftover job steps)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != name:
                continue
            targets = [os.readlink(descriptor) for descriptor in (entry / "fd").iterdir()]
        except OSError:
            continue
        if any(target.startswith(str(folder)) for target in targets):
            found.append(int(entry.name))
    return found


@dataclass
class LocalSlurm:
    """Lifecycle of the test cluster: :meth:`start` then, always, :meth:`stop`."""

    state: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="sie-slurm-")))
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    backup: Path | None = None
    wrote_conf: bool = False
    created_etc_slurm: bool = False
    # folders the tests' jobs work in (pytest's base temporary folder): a process there is theirs
    work_folders: tuple[Path, ...] = ()
    # processes of jobs still alive after the jobs ended, killed by stop()
    swept: list[leftovers.Process] = field(default_factory=list)

    partition: str = PARTITION
    nodes: tuple[str, ...] = tuple(NODE_PORTS)

    def start(self, timeout: float = 90) -> None:
        """Install what is missing, start munged (if needed), slurmctld and both slurmd; wait until idle."""
        if os.geteuid() != 0:
            raise SlurmUnavailable(
                "needs root: installs packages, writes /etc/slurm/slurm.conf, runs daemons"
            )
        busy = [port for port in (CONTROLLER_PORT, *NODE_PORTS.values()) if port_in_use(port)]
        if busy:
            raise SlurmUnavailable(
                f"TCP port(s) {busy} already in use (another Slurm cluster on this machine?); "
                "the test cluster needs them"
            )
        install_packages()
        self._start_munge()
        self._write_config()
        logs = self.state / "daemons"
        logs.mkdir()
        environment = {key: value for key, value in os.environ.items() if not key.startswith("SLURM")}
        self._launch("slurmctld", [program("slurmctld"), "-D", "-c", "-i"], logs, environment)
        for node in NODE_PORTS:
            self._launch(f"slurmd-{node}", [program("slurmd"), "-D", "-N", node], logs, environment)
        self._wait_until_idle(timeout)

    def _launch(self, name: str, command: list, logs: Path, environment: dict[str, str]) -> None:
        with open(logs / f"{name}.out", "w") as output:
            self.processes[name] = subprocess.Popen(
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=environment,
                start_new_session=True,
            )

    def _start_munge(self) -> None:
        if munge_works():
            return
        if not MUNGE_KEY.exists():
            result = subprocess.run([program("mungekey") or "mungekey", "--create"], capture_output=True)
            if result.returncode != 0:
                raise SlurmUnavailable(f"no {MUNGE_KEY} and mungekey failed: {result.stderr[-300:]!r}")
            shutil.chown(MUNGE_KEY, "munge", "munge")
        MUNGE_RUN.mkdir(parents=True, exist_ok=True)
        shutil.chown(MUNGE_RUN, "munge", "munge")
        command = [
            program("setpriv") or "setpriv",
            "--reuid=munge",
            "--regid=munge",
            "--init-groups",
            program("munged"),
            "--foreground",
            "--force",
        ]
        self._launch("munged", command, self.state, dict(os.environ))
        deadline = time.monotonic() + 20
        while not munge_works():
            if self.processes["munged"].poll() is not None or time.monotonic() > deadline:
                raise SlurmUnavailable(f"munged did not start: {tail(self.state / 'munged.out', 600)}")
            time.sleep(0.2)

    def _write_config(self) -> None:
        hostname = socket.gethostname().split(".")[0]
        text = slurm_conf_text(self.state, hostname)
        (self.state / "slurm.conf").write_text(text)
        if not SLURM_CONF.parent.exists():
            SLURM_CONF.parent.mkdir(parents=True)
            self.created_etc_slurm = True
        if SLURM_CONF.exists() or SLURM_CONF.is_symlink():
            self.backup = SLURM_CONF.with_name(f"slurm.conf.sie-tests-backup-{os.getpid()}")
            SLURM_CONF.rename(self.backup)
        SLURM_CONF.write_text(text)
        self.wrote_conf = True

    def _wait_until_idle(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited with {process.returncode} while starting:\n{self.daemon_logs()}"
                    )
            states = self.node_states()
            if len(states) == len(NODE_PORTS) and all(state == "idle" for state in states.values()):
                return
            time.sleep(0.5)
        raise RuntimeError(f"nodes not idle after {timeout:.0f} s (states {states}):\n{self.daemon_logs()}")

    def node_states(self) -> dict[str, str]:
        """{node: short state} as sinfo reports them ({} when slurmctld does not answer yet)."""
        result = subprocess.run(
            [program("sinfo") or "sinfo", "-h", "-N", "-o", "%N %t"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if result.returncode != 0:
            return {}
        return dict(line.split() for line in result.stdout.splitlines() if len(line.split()) == 2)

    def daemon_logs(self) -> str:
        """Tails of the daemons' logs, for failure messages."""
        names = ["slurmctld.log", *(f"slurmd-{node}.log" for node in NODE_PORTS)]
        return "\n".join(f"--- {name}\n{tail(self.state / name, 1500)}" for name in names)

    @property
    def started_daemons(self) -> bool:
        """True once this object started slurmctld (then the jobs on the cluster are the tests')."""
        return "slurmctld" in self.processes

    def stop(self) -> None:
        """Cancel every job and wait for them to end, stop exactly the daemons started here, kill what
        the jobs left running, restore /etc/slurm, remove the state."""
        daemon_children: set[int] = set()
        try:
            if self.started_daemons and self.processes["slurmctld"].poll() is None:
                self._cancel_all_jobs()
        finally:
            everything = leftovers.live_processes()
            for process in self.processes.values():  # slurmctld's slurmscriptd, for one
                daemon_children |= leftovers.descendants(process.pid, everything)
            for name in [name for name in self.processes if name.startswith("slurmd-")]:
                stop_process(self.processes[name])
            for pid in processes_holding(self.state, "slurmstepd"):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.stop_escaped_processes()
            for name in ("slurmctld", "munged"):
                if name in self.processes:
                    stop_process(self.processes[name])
            alive = [leftovers.read_process(pid) for pid in daemon_children]
            leftovers.kill(process for process in alive if process is not None)
            self._restore_config()
            shutil.rmtree(self.state, ignore_errors=True)

    def stop_escaped_processes(self, warn: bool = True) -> list[leftovers.Process]:
        """Kill the processes of jobs that outlived their job, and return them (with a warning naming
        them, unless ``warn`` is false: the caller expected them).

        proctrack/linuxproc finds a job's processes by walking the process tree from its slurmstepd,
        so one re-parented to PID 1 (double fork, dead parent step) survives scancel. Such a process
        still carries the cluster's name in its environment and still works in the job's folder. Only
        on a cluster started here: another session's cluster of the same name is not ours to touch.
        """
        if not self.started_daemons:
            return []
        swept = leftovers.sweep([self.state, *self.work_folders], [JOB_MARKER])
        self.swept.extend(swept)
        if swept and warn:
            warnings.warn(
                f"killed {len(swept)} process(es) of Slurm jobs that outlived their jobs:\n"
                + leftovers.describe(swept),
                stacklevel=2,
            )
        return swept

    def survivors(self) -> list[leftovers.Process]:
        """Processes of this cluster still alive (its daemons, its jobs'; none after a clean stop)."""
        if not self.started_daemons:
            return []
        alive = [process for process in self.processes.values() if process.poll() is None]
        found = leftovers.left_behind([self.state, *self.work_folders], [JOB_MARKER])
        daemons = [leftovers.read_process(process.pid) for process in alive]
        return [process for process in daemons if process is not None] + found

    def _cancel_all_jobs(self, timeout: float = 60) -> None:
        """scancel every job still active (their steps with them), then wait until none is."""
        jobs = self.active_jobs()
        if not jobs:
            return
        subprocess.run([program("scancel") or "scancel", *jobs], capture_output=True, timeout=30)
        deadline = time.monotonic() + timeout
        while self.active_jobs() and time.monotonic() < deadline:
            time.sleep(0.5)

    def active_jobs(self) -> list[str]:
        """Ids of the jobs pending, running or ending on the cluster ([] when it does not answer)."""
        squeue = program("squeue") or "squeue"
        try:
            listing = subprocess.run(
                [squeue, "-h", "-t", ACTIVE_STATES, "-o", "%i"], capture_output=True, text=True, timeout=30
            )
        except subprocess.TimeoutExpired:
            return []
        return listing.stdout.split() if listing.returncode == 0 else []

    def _restore_config(self) -> None:
        if self.wrote_conf:
            SLURM_CONF.unlink(missing_ok=True)
            self.wrote_conf = False
        if self.backup is not None:
            self.backup.rename(SLURM_CONF)
            self.backup = None
        if self.created_etc_slurm:
            with contextlib.suppress(OSError):
                SLURM_CONF.parent.rmdir()
            self.created_etc_slurm = False

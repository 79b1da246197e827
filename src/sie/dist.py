"""Everything distributed lives here: the differentiable all-gather of the loss terms
(docs/method.md#distributed), the launch environment (one process, torchrun, or one srun task per
GPU), process-group set-up, and batch normalisation over the global batch.

Launchers are recognised from the environment, nothing else:

- torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT;
- ``srun`` tasks see SLURM_PROCID, SLURM_STEP_NUM_TASKS (or SLURM_NTASKS), SLURM_LOCALID and
  SLURM_STEP_NODELIST/SLURM_JOB_NODELIST; the master is the step's first node (MASTER_ADDR overrides
  it), the port comes from MASTER_PORT or the job id;
- anything else is a single process.

Every rank meets in a TCPStore that rank 0 hosts (under torchrun: the one the torchrun agent hosts). A
TCPStore server listens on every interface whatever host name it is given (both of torch's backends
bind the wildcard address), so when the master address is a literal loopback address (a run on this
machine only: tests, a laptop) the server rank 0 hosts gets a socket bound to that address instead
(:func:`tcp_store`), and gloo is pointed at the loopback interface. torchrun's agent store is torch's
own and listens on every interface; tests/torchrun_local.py runs torchrun with its store made by
:func:`tcp_store` instead.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as torch_distributed
from torch import nn

from sie.devices import resolve_device


def is_distributed() -> bool:
    """True when torch.distributed is available and a process group is initialised."""
    return torch_distributed.is_available() and torch_distributed.is_initialized()


def world_size() -> int:
    """Number of processes in the default group (1 when not distributed)."""
    return torch_distributed.get_world_size() if is_distributed() else 1


def rank() -> int:
    """Rank of this process in the default group (0 when not distributed)."""
    return torch_distributed.get_rank() if is_distributed() else 0


class _GatherWithGrad(torch.autograd.Function):
    """All-gather along dim 0 whose backward sums the gradient over ranks and keeps the local slice.

    Every rank must contribute the same number of rows (DistributedSampler pads the dataset so that
    each rank gets equally many samples, including in the last batch).
    """

    @staticmethod
    def forward(context, tensor: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        context.local_rows = tensor.shape[0]
        context.rank = rank()
        gathered = [torch.empty_like(tensor) for _ in range(world_size())]
        torch_distributed.all_gather(gathered, tensor.contiguous())
        return torch.cat(gathered, dim=0)

    @staticmethod
    def backward(context, gradient: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        summed = gradient.contiguous().clone()
        torch_distributed.all_reduce(summed, op=torch_distributed.ReduceOp.SUM)
        start = context.rank * context.local_rows
        return summed[start : start + context.local_rows]


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` from every rank along dim 0, differentiably.

    Forward: ``cat([tensor_rank0, tensor_rank1, ...])``. Backward: the incoming gradient is summed over
    ranks (all-reduce) and each rank keeps its own slice; combined with DDP's gradient averaging this
    gives the exact gradient of a loss computed on the global batch. Identity in a single process.
    """
    if world_size() == 1:
        return tensor
    return _GatherWithGrad.apply(tensor)


# --------------------------------------------------------------------------------------------- launch


@dataclass(frozen=True)
class LaunchContext:
    """Where this process sits in the run: rank, world size, local rank and rendezvous address."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    master_address: str = "127.0.0.1"
    master_port: int = 29500
    launcher: str = "single"


def first_host(nodelist: str) -> str:
    """First host name of a Slurm node list ("gpu[03-05,9],cpu1" -> "gpu03")."""
    text = nodelist.strip()
    match = re.match(r"^([^,\[]+)(?:\[([^\]]+)\])?", text)
    if not match or not text:
        raise ValueError(f"cannot parse the Slurm node list {nodelist!r}")
    prefix, ranges = match.groups()
    if ranges is None:
        return prefix
    return prefix + ranges.split(",")[0].split("-")[0]


def launch_context(environment: Mapping[str, str] | None = None) -> LaunchContext:
    """The launch context from the environment (see the module docstring)."""
    env = os.environ if environment is None else environment
    if "RANK" in env and "WORLD_SIZE" in env:
        return LaunchContext(
            rank=int(env["RANK"]),
            world_size=int(env["WORLD_SIZE"]),
            local_rank=int(env.get("LOCAL_RANK", 0)),
            master_address=env.get("MASTER_ADDR", "127.0.0.1"),
            master_port=int(env.get("MASTER_PORT", 29500)),
            launcher="torchrun",
        )
    tasks = int(env.get("SLURM_STEP_NUM_TASKS", env.get("SLURM_NTASKS", "1")))
    inside_step = "SLURM_STEP_ID" in env or "SLURM_STEPID" in env
    if "SLURM_PROCID" in env and inside_step and tasks > 1:
        nodelist = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST") or "127.0.0.1"
        job = int(env.get("SLURM_JOB_ID", "0") or 0)
        return LaunchContext(
            rank=int(env["SLURM_PROCID"]),
            world_size=tasks,
            local_rank=int(env.get("SLURM_LOCALID", 0)),
            master_address=env.get("MASTER_ADDR") or first_host(nodelist),
            master_port=int(env.get("MASTER_PORT") or 20000 + job % 20000),
            launcher="slurm",
        )
    return LaunchContext()


def select_device(context: LaunchContext, requested: str = "auto") -> torch.device:
    """cuda:<local rank> when CUDA is available (or cuda:0 when each task sees one GPU), else the CPU."""
    return resolve_device(requested, context.local_rank)


def initialize(context: LaunchContext, device: torch.device, timeout_minutes: float = 30) -> None:
    """Join the process group (NCCL on GPUs, gloo on CPUs); nothing to do for a single process.

    The ranks meet in :func:`rendezvous_store` (what ``init_method="tcp://..."`` would build, except
    that a server on a loopback master address listens on that address only). With a loopback master
    every rank runs on this machine, so gloo's own listening sockets go on the loopback interface too
    (``GLOO_SOCKET_IFNAME``, unless already set; without it gloo binds the address the host name
    resolves to). NCCL's bootstrap sockets are left to NCCL's own settings (``NCCL_SOCKET_IFNAME``).
    """
    if context.world_size == 1:
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    elif is_loopback(context.master_address) and "GLOO_SOCKET_IFNAME" not in os.environ:
        interface = loopback_interface()
        if interface is not None:
            os.environ["GLOO_SOCKET_IFNAME"] = interface
    timeout = datetime.timedelta(minutes=timeout_minutes)
    store = rendezvous_store(context, timeout)
    torch_distributed.init_process_group(
        backend="nccl" if device.type == "cuda" else "gloo",
        # the same namespace as init_process_group gives the store of an init_method
        store=torch_distributed.PrefixStore("default_pg", store),
        rank=context.rank,
        world_size=context.world_size,
        timeout=timeout,
    )


def is_loopback(address: str) -> bool:
    """True for a literal loopback IP address (127.0.0.0/8, ::1).

    Host names are not resolved on purpose: on many clusters a node's own name resolves locally to
    127.0.1.1 while the other nodes reach it through DNS, and binding to what it resolves to here
    would lock them out.
    """
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def loopback_interface() -> str | None:
    """Name of the loopback network interface ("lo" on Linux), or None when there is none."""
    names = [name for _, name in socket.if_nameindex()]
    for name in names:
        try:
            flags = int(Path(f"/sys/class/net/{name}/flags").read_text(), 16)
        except (OSError, ValueError):
            continue
        if flags & 0x8:  # IFF_LOOPBACK
            return name
    return next((name for name in ("lo", "lo0") if name in names), None)


def bound_listener(address: str, port: int) -> tuple[int, int]:
    """A listening TCP socket bound to ``address`` and ``port`` (0: any free port).

    Returns (file descriptor, port). The caller owns the descriptor: a TCPStore given it as
    ``master_listen_fd`` takes it over and closes it with the store.
    """
    family = socket.AF_INET6 if ipaddress.ip_address(address.strip("[]")).version == 6 else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((address.strip("[]"), port))
        listener.listen(socket.SOMAXCONN)
    except OSError as error:
        listener.close()
        raise OSError(error.errno, f"cannot listen on {address}:{port}: {error.strerror}") from error
    bound_port = listener.getsockname()[1]
    return listener.detach(), bound_port


def tcp_store(
    host_name: str,
    port: int,
    world_size: int | None = None,
    is_master: bool = False,
    timeout: datetime.timedelta = datetime.timedelta(minutes=5),
    **options,
) -> torch_distributed.TCPStore:
    """``torch.distributed.TCPStore`` (same arguments), whose server on a loopback address listens on
    that address only (through a socket bound here, passed as ``master_listen_fd``); a server on any
    other address keeps torch's behaviour (every interface)."""
    if is_master and options.get("master_listen_fd") is None and is_loopback(host_name):
        options["master_listen_fd"], port = bound_listener(host_name, port)
    return torch_distributed.TCPStore(host_name, port, world_size, is_master, timeout, **options)


def rendezvous_store(context: LaunchContext, timeout: datetime.timedelta) -> torch_distributed.TCPStore:
    """The store the ranks meet in: a client of the torchrun agent's store when torchrun says its agent
    serves MASTER_ADDR:MASTER_PORT (TORCHELASTIC_USE_AGENT_STORE), else hosted by rank 0
    (:func:`tcp_store`); as torch's ``tcp://`` rendezvous does."""
    environment = os.environ
    agent_serves = (
        environment.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
        and environment.get("MASTER_ADDR") == context.master_address
        and environment.get("MASTER_PORT") == str(context.master_port)
    )
    return tcp_store(
        context.master_address,
        context.master_port,
        context.world_size,
        is_master=context.rank == 0 and not agent_serves,
        timeout=timeout,
    )


def shutdown() -> None:
    """Leave the process group, if any."""
    if is_distributed():
        torch_distributed.destroy_process_group()


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """Mean of ``tensor`` over ranks (a copy; the input is untouched). Identity in one process."""
    if world_size() == 1:
        return tensor
    result = tensor.detach().clone()
    torch_distributed.all_reduce(result, op=torch_distributed.ReduceOp.SUM)
    return result / world_size()


def all_reduce_max(tensor: torch.Tensor) -> torch.Tensor:
    """Element-wise maximum of ``tensor`` over ranks (a copy)."""
    if world_size() == 1:
        return tensor
    result = tensor.detach().clone()
    torch_distributed.all_reduce(result, op=torch_distributed.ReduceOp.MAX)
    return result


# ------------------------------------------------------------------------------- global batch norm


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks whose backward sums the incoming gradients over ranks too."""

    @staticmethod
    def forward(context, tensor: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        result = tensor.clone(memory_format=torch.contiguous_format)
        torch_distributed.all_reduce(result, op=torch_distributed.ReduceOp.SUM)
        return result

    @staticmethod
    def backward(context, gradient: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return _AllReduceSum.apply(gradient)


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch normalisation whose statistics cover the global batch of every rank, on any device.

    PyTorch's SyncBatchNorm only runs on GPUs; this one reduces the per-channel sums with a
    differentiable all-reduce, so CPU (gloo) runs normalise exactly like one process holding the whole
    batch. Used for multi-process CPU runs; GPU runs use torch.nn.SyncBatchNorm.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {input.dim()}-D")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not self.training or world_size() == 1:
            return super().forward(input)
        reduce_dims = [0, *range(2, input.dim())]
        local_count = input.numel() // input.shape[1]
        statistics = torch.cat(
            [
                input.sum(reduce_dims),
                input.square().sum(reduce_dims),
                torch.tensor([float(local_count)], device=input.device, dtype=input.dtype),
            ]
        )
        statistics = _AllReduceSum.apply(statistics)
        channels = input.shape[1]
        count = statistics[-1]
        mean = statistics[:channels] / count
        variance = statistics[channels : 2 * channels] / count - mean.square()
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                tracked = float(self.num_batches_tracked)
                momentum = self.momentum if self.momentum is not None else 1.0 / tracked
                unbiased = variance * count / (count - 1)
                self.running_mean.lerp_(mean.detach(), momentum)
                self.running_var.lerp_(unbiased.detach(), momentum)
        shape = [1, channels] + [1] * (input.dim() - 2)
        output = (input - mean.view(shape)) * torch.rsqrt(variance.view(shape) + self.eps)
        if self.affine:
            output = output * self.weight.view(shape) + self.bias.view(shape)
        return output


def convert_batch_norm(module: nn.Module, device: torch.device) -> nn.Module:
    """Make every BatchNorm normalise over the global batch when several processes train together."""
    if world_size() == 1:
        return module
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _to_global_batch_norm(module)


def _to_global_batch_norm(module: nn.Module) -> nn.Module:
    """Replace BatchNorm1d/2d layers by GlobalBatchNorm, keeping parameters and buffers."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, GlobalBatchNorm):
        replacement = GlobalBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
        )
        reference = next(module.parameters(), None)
        reference = reference if reference is not None else module.running_mean
        if reference is not None:
            replacement = replacement.to(device=reference.device, dtype=reference.dtype)
        replacement.load_state_dict(module.state_dict())
        replacement.train(module.training)
        return replacement
    for name, child in module.named_children():
        module.add_module(name, _to_global_batch_norm(child))
    return module

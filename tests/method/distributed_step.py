"""One training step (forward, backward) of each given method, in float64, on a fixed global batch.

``python distributed_step.py --methods SIE,VICReg --output results.pt`` under torchrun: every process
joins the process group through ``sie.dist`` (as ``sie pretrain`` does), takes its slice of the global
batch, and rank 0 saves the loss, every parameter's gradient and the batch-norm running statistics of
each method, with the TCP sockets each process (and the torchrun agent) listens on.
tests/method/test_distributed.py runs it as 2 gloo processes and compares with :func:`one_step` called
in a single process.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from equivalence import pre_norm_biases
from sie import dist
from sie.models.methods import ModelConfig, build_model

CONFIG = ModelConfig(arch="resnet9", width=4, mlp="16-16", equi=8, num_classes=3, equi_factor=0.45)
GLOBAL_BATCH = 8


def fixed_batch(latent_dim: int) -> tuple[torch.Tensor, ...]:
    """The global batch (two views, latent, labels) in float64, the same in every process."""
    generator = torch.Generator().manual_seed(1)
    first = torch.randn(GLOBAL_BATCH, 3, 32, 32, generator=generator, dtype=torch.float64)
    second = torch.randn(GLOBAL_BATCH, 3, 32, 32, generator=generator, dtype=torch.float64)
    latent = torch.randn(GLOBAL_BATCH, latent_dim, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, 3, (GLOBAL_BATCH,), generator=generator)
    return first, second, latent, labels


def model_for(method: str) -> nn.Module:
    """The method's model, initialised from seed 0, in float64."""
    torch.manual_seed(0)
    return build_model(method, CONFIG).double()


def gradients(model: nn.Module) -> dict[str, torch.Tensor]:
    """{parameter name: gradient} of the parameters that received one."""
    named = model.named_parameters()
    return {name: parameter.grad.clone() for name, parameter in named if parameter.grad is not None}


def one_step(method: str) -> dict[str, Any]:
    """Forward and backward of ``method`` on this process's slice of the global batch, with the
    names of the parameters whose gradient is zero by construction (``pre_norm_biases``).

    In a process group, batch norm covers the global batch and DDP averages the gradients, so every
    rank ends with the gradient of the global loss; alone, the process takes the whole batch.
    """
    model = dist.convert_batch_norm(model_for(method), torch.device("cpu"))
    trained = nn.parallel.DistributedDataParallel(model) if dist.world_size() > 1 else model
    rows = GLOBAL_BATCH // dist.world_size()
    local = slice(dist.rank() * rows, (dist.rank() + 1) * rows)
    batch = [tensor[local] for tensor in fixed_batch(model.spec.latent_dim)]
    output = trained(*batch)
    output.loss.backward()
    return {
        "loss": dist.all_reduce_mean(output.loss.detach()),
        "gradients": gradients(model),
        "running": {key: value.clone() for key, value in model.state_dict().items() if "running" in key},
        "structurally_zero": pre_norm_biases(model),
    }


def listeners() -> dict[str, Any]:
    """This process's listening TCP sockets and its parent's (under torchrun, the agent's)."""
    from torchrun_local import listening_addresses

    return {
        "rank": dist.rank(),
        "own": listening_addresses(os.getpid()),
        "parent": listening_addresses(os.getppid()),
    }


def main() -> None:
    """Join the process group, run every method's step, rank 0 saves the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", required=True, help="comma-separated method names")
    parser.add_argument("--output", required=True, type=Path)
    arguments = parser.parse_args()
    torch.set_num_threads(1)
    context = dist.launch_context()
    dist.initialize(context, torch.device("cpu"), timeout_minutes=5)
    try:
        methods = {method: one_step(method) for method in arguments.methods.split(",")}
        sockets: list[Any] = [None] * dist.world_size()
        torch.distributed.all_gather_object(sockets, listeners())
        if dist.rank() == 0:
            results = {
                "world_size": dist.world_size(),
                "master": [context.master_address, context.master_port],
                "listeners": sockets,
                "methods": methods,
            }
            torch.save(results, arguments.output)
        torch.distributed.barrier()
    finally:
        dist.shutdown()


if __name__ == "__main__":
    main()

"""Two gloo processes on CPU give the same loss and gradients as one process on the same global batch.

Covers everything that couples samples across ranks: gathered variance/covariance/NT-Xent terms, batch
norm over the global batch (GlobalBatchNorm), DDP's gradient averaging, and local MSE / probe terms.
"""

import os

import pytest
import torch
from torch import multiprocessing, nn

from sie import dist
from sie.models.methods import ModelConfig, build_model

CONFIG = ModelConfig(arch="resnet9", width=4, mlp="16-16", equi=8, num_classes=3, equi_factor=0.45)
GLOBAL_BATCH = 8


def fixed_batch(latent_dim: int):
    """A global batch in float64, so that the comparison is exact up to rounding."""
    generator = torch.Generator().manual_seed(1)
    first = torch.randn(GLOBAL_BATCH, 3, 32, 32, generator=generator, dtype=torch.float64)
    second = torch.randn(GLOBAL_BATCH, 3, 32, 32, generator=generator, dtype=torch.float64)
    latent = torch.randn(GLOBAL_BATCH, latent_dim, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, 3, (GLOBAL_BATCH,), generator=generator)
    return first, second, latent, labels


def model_for(method: str) -> nn.Module:
    torch.manual_seed(0)
    return build_model(method, CONFIG).double()


def gradients(model: nn.Module) -> dict[str, torch.Tensor]:
    named = model.named_parameters()
    return {name: parameter.grad.clone() for name, parameter in named if parameter.grad is not None}


def worker(rank: int, method: str, init_file: str, results: dict) -> None:
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        model = dist.convert_batch_norm(model_for(method), torch.device("cpu"))
        wrapped = nn.parallel.DistributedDataParallel(model)
        model_latent = model.spec.latent_dim
        local = slice(rank * GLOBAL_BATCH // 2, (rank + 1) * GLOBAL_BATCH // 2)
        batch = [tensor[local] for tensor in fixed_batch(model_latent)]
        output = wrapped(*batch)
        output.loss.backward()
        loss = dist.all_reduce_mean(output.loss.detach())
        if rank == 0:
            results["loss"] = loss
            results["gradients"] = gradients(model)
            results["state"] = {key: value.clone() for key, value in model.state_dict().items()}
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.parametrize("method", ["SIE", "SimCLRAugSelf", "VICRegEquiMod", "SimCLROnlyEquiRotColor"])
def test_two_processes_match_one(tmp_path, method):
    single = model_for(method)
    output = single(*fixed_batch(single.spec.latent_dim))
    output.loss.backward()
    expected = gradients(single)

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with multiprocessing.Manager() as manager:
        results = manager.dict()
        multiprocessing.spawn(worker, args=(method, str(tmp_path / "init"), results), nprocs=2)
        results = dict(results)
    torch.testing.assert_close(results["loss"], output.loss.detach(), rtol=1e-7, atol=1e-9)
    assert set(results["gradients"]) == set(expected)
    for name, gradient in expected.items():
        # The online probes compute their cross-entropy in float32; everything else runs in float64.
        tolerance = 1e-5 if name.startswith("evaluator.") else 1e-9
        torch.testing.assert_close(results["gradients"][name], gradient, rtol=tolerance, atol=1e-10, msg=name)
    # Running statistics of batch norm saw the same global batch.
    for key, value in single.state_dict().items():
        if "running" in key:
            torch.testing.assert_close(results["state"][key], value, rtol=1e-7, atol=1e-10, msg=key)

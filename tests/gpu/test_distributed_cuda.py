"""NCCL in a world of one process on one GPU: SyncBatchNorm equals BatchNorm, a DDP step a plain one.

NCCL refuses two ranks on one GPU, so one GPU can only hold a world of one. There
``sie.dist.convert_batch_norm`` leaves the model alone (one process: nothing to synchronise), and
``torch.nn.SyncBatchNorm`` itself falls back to plain batch norm. What a multi-GPU run executes (the
synchronised kernels: per-GPU statistics, an NCCL all-gather, the combined statistics, an NCCL all-reduce
of the gradient sums in backward) is reached by calling SyncBatchNorm's autograd function directly.
"""

import copy
import datetime

import pytest
import torch
from gpu_support import GPU_TESTS, needs_nccl, record
from torch import nn

from sie import dist
from sie.models.methods import ModelConfig, build_model

pytestmark = [*GPU_TESTS, needs_nccl]


@pytest.fixture(scope="module")
def nccl_world_of_one():
    """An NCCL process group of this process alone, met through a loopback store (sie.dist.tcp_store)."""
    timeout = datetime.timedelta(minutes=2)
    store = dist.tcp_store("127.0.0.1", 0, 1, is_master=True, timeout=timeout)
    torch.cuda.set_device(0)
    torch.distributed.init_process_group(
        "nccl",
        store=torch.distributed.PrefixStore("default_pg", store),
        rank=0,
        world_size=1,
        timeout=timeout,
    )
    yield torch.device("cuda", 0)
    torch.distributed.destroy_process_group()


def small_network() -> nn.Module:
    """Convolution, BatchNorm2d, pooling, linear, BatchNorm1d: both kinds of batch norm the models use."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(32, 16),
        nn.BatchNorm1d(16),
    )


def images(device: torch.device) -> torch.Tensor:
    return torch.randn(16, 3, 12, 12, generator=torch.Generator().manual_seed(1)).to(device)


def forward_backward(module: nn.Module, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Output and input gradient of one training-mode pass with the loss sum(output^2)."""
    inputs = inputs.clone().requires_grad_(True)
    output = module(inputs)
    output.square().sum().backward()
    return output.detach(), inputs.grad


def test_convert_batch_norm_keeps_plain_batch_norm_in_a_world_of_one(nccl_world_of_one):
    model = small_network().to(nccl_world_of_one)
    assert dist.is_distributed() and dist.world_size() == 1
    assert dist.convert_batch_norm(model, nccl_world_of_one) is model
    assert not any(isinstance(module, nn.SyncBatchNorm) for module in model.modules())


def test_sync_batch_norm_module_equals_batch_norm(nccl_world_of_one):
    plain = small_network().to(nccl_world_of_one).train()
    synced = nn.SyncBatchNorm.convert_sync_batchnorm(copy.deepcopy(plain)).train()
    assert sum(isinstance(module, nn.SyncBatchNorm) for module in synced.modules()) == 2
    inputs = images(nccl_world_of_one)
    for first, second in zip(forward_backward(plain, inputs), forward_backward(synced, inputs), strict=True):
        assert torch.equal(first, second)
    for (name, value), (_, synced_value) in zip(
        plain.state_dict().items(), synced.state_dict().items(), strict=True
    ):
        assert torch.equal(value, synced_value), name
    for parameter, synced_parameter in zip(plain.parameters(), synced.parameters(), strict=True):
        assert torch.equal(parameter.grad, synced_parameter.grad)
    plain.eval()
    synced.eval()
    with torch.no_grad():
        assert torch.equal(plain(inputs), synced(inputs))


def test_synchronised_kernels_with_nccl_equal_batch_norm(nccl_world_of_one):
    """SyncBatchNorm's multi-GPU path (NCCL all-gather of the statistics, all-reduce of the gradient sums)
    against F.batch_norm: different reductions (Welford statistics per block, then combined), so equal
    within float32 rounding, not bitwise."""
    sync_function = pytest.importorskip("torch.nn.modules._functions").SyncBatchNorm
    device = nccl_world_of_one
    inputs = images(device)[:, :, :6, :6].reshape(16, 3, 36).contiguous()
    weight = torch.linspace(0.5, 1.5, 3, device=device)
    bias = torch.linspace(-0.2, 0.2, 3, device=device)
    results = []
    for synchronised in (False, True):
        tensor = inputs.clone().requires_grad_(True)
        scale, shift = weight.clone().requires_grad_(True), bias.clone().requires_grad_(True)
        mean, variance = torch.zeros(3, device=device), torch.ones(3, device=device)
        if synchronised:
            group = torch.distributed.group.WORLD
            output = sync_function.apply(tensor, scale, shift, mean, variance, 1e-5, 0.1, group, 1)
        else:
            output = nn.functional.batch_norm(tensor, mean, variance, scale, shift, True, 0.1, 1e-5)
        (output.square() * torch.arange(36, device=device)).sum().backward()
        results.append([output, tensor.grad, scale.grad, shift.grad, mean, variance])
    names = ("output", "input gradient", "weight gradient", "bias gradient", "running mean", "running var")
    worst = {}
    for name, plain, synced in zip(names, *results, strict=True):
        worst[name] = float((plain - synced).abs().max() / plain.abs().max().clamp_min(1e-12))
        torch.testing.assert_close(synced, plain, rtol=1e-5, atol=1e-5, msg=name)
    record("sync_batch_norm", relative_max_differences=worst)


def test_ddp_step_with_nccl_equals_a_plain_step(nccl_world_of_one):
    device = nccl_world_of_one
    config = ModelConfig(arch="resnet9", width=8, mlp="64-64", equi=16, equi_factor=0.45, num_classes=3)
    torch.manual_seed(0)
    plain = build_model("SIE", config).to(device)
    wrapped = nn.parallel.DistributedDataParallel(
        nn.SyncBatchNorm.convert_sync_batchnorm(copy.deepcopy(plain)), device_ids=[device.index]
    )
    generator = torch.Generator().manual_seed(2)
    batch = [torch.randn(8, 3, 32, 32, generator=generator) for _ in range(2)]
    latent = torch.randn(8, 4, generator=generator)
    labels = torch.randint(0, 3, (8,), generator=generator)
    batch = [tensor.to(device) for tensor in (*batch, latent, labels)]
    losses = []
    for model in (plain, wrapped):
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        output = model(*batch)
        output.loss.backward()
        optimizer.step()
        losses.append(float(output.loss))
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)
    for (name, value), synced in zip(
        plain.state_dict().items(), wrapped.module.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(synced, value, rtol=1e-5, atol=1e-6, msg=name)

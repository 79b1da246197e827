"""Launch environment parsing and the global batch norm."""

import pytest
import torch
from torch import nn

from sie import dist


@pytest.mark.parametrize(
    ("nodelist", "first"),
    [
        ("gpu03", "gpu03"),
        ("gpu[03-05,9]", "gpu03"),
        ("node[7,2-3],other1", "node7"),
        ("a,b", "a"),
        ("n[001-128]", "n001"),
        ("127.0.0.1", "127.0.0.1"),
    ],
)
def test_first_host(nodelist, first):
    assert dist.first_host(nodelist) == first


def test_single_process_without_launcher():
    assert dist.launch_context({}) == dist.LaunchContext()
    # A batch script (no step) or a one-task step is a single process, whatever the allocation holds.
    assert dist.launch_context({"SLURM_PROCID": "0", "SLURM_NTASKS": "8"}).world_size == 1
    one_task = {"SLURM_PROCID": "0", "SLURM_STEP_ID": "0", "SLURM_STEP_NUM_TASKS": "1", "SLURM_NTASKS": "1"}
    assert dist.launch_context(one_task).launcher == "single"


def test_torchrun_environment():
    context = dist.launch_context(
        {"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "MASTER_ADDR": "host", "MASTER_PORT": "1234"}
    )
    assert context == dist.LaunchContext(3, 8, 1, "host", 1234, "torchrun")


def test_srun_task_environment():
    environment = {
        "SLURM_PROCID": "5",
        "SLURM_STEP_ID": "0",
        "SLURM_STEP_NUM_TASKS": "8",
        "SLURM_LOCALID": "1",
        "SLURM_STEP_NODELIST": "gpu[12-15]",
        "SLURM_JOB_ID": "123456",
    }
    context = dist.launch_context(environment)
    assert context == dist.LaunchContext(5, 8, 1, "gpu12", 20000 + 123456 % 20000, "slurm")
    environment["MASTER_ADDR"], environment["MASTER_PORT"] = "127.0.0.1", "4000"
    context = dist.launch_context(environment)
    assert (context.master_address, context.master_port) == ("127.0.0.1", 4000)


def test_global_batch_norm_is_plain_batch_norm_in_one_process():
    torch.manual_seed(0)
    reference = nn.BatchNorm2d(3)
    converted = dist._to_global_batch_norm(nn.Sequential(nn.BatchNorm2d(3)))[0]
    assert isinstance(converted, dist.GlobalBatchNorm)
    inputs = torch.randn(4, 3, 5, 5)
    torch.testing.assert_close(converted(inputs), reference(inputs))
    torch.testing.assert_close(converted.running_var, reference.running_var)

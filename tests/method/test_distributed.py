"""Two gloo processes under torchrun give the same loss and gradients as one process, in float64.

One forward/backward step on a fixed global batch (distributed_step.py), compared tightly: the loss,
every parameter's gradient (those zero by construction, biases right before a BatchNorm, are checked to
be ~0 in both runs instead) and the batch-norm running statistics. Covers everything that couples
samples across ranks: gathered variance/covariance/NT-Xent terms, batch norm over the global batch
(GlobalBatchNorm), DDP's gradient averaging, and local MSE / probe terms; and the launch itself:
``sie.dist.initialize`` under torchrun, every rendezvous socket on 127.0.0.1.
"""

import datetime
import os
import sys
from pathlib import Path

import pytest
import torch
from distributed_step import one_step

from sie import dist
from torchrun_local import (
    LOOPBACK,
    free_loopback_port,
    listening_addresses,
    local_environment,
    run_in_own_session,
    torchrun_command,
)

WORKER = Path(__file__).resolve().parent / "distributed_step.py"
METHODS = ["SIE", "SimCLRAugSelf", "VICRegEquiMod", "SimCLROnlyEquiRotColor"]
# A structurally zero gradient (see equivalence.pre_norm_biases) is float64 rounding noise: about
# 1e-16 of the largest gradient here. A real gradient is many orders above this bound.
STRUCTURALLY_ZERO = 1e-12


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory) -> dict:
    """One step of every method in METHODS as 2 gloo processes under torchrun (one launch for all)."""
    output = tmp_path_factory.mktemp("torchrun") / "results.pt"
    command = torchrun_command(
        2, free_loopback_port(), str(WORKER), "--methods", ",".join(METHODS), "--output", str(output)
    )
    result = run_in_own_session(command, timeout=600, environment=local_environment())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return torch.load(output, weights_only=True)


@pytest.mark.parametrize("method", METHODS)
def test_two_processes_match_one(two_processes, method, one_thread):
    expected = one_step(method)
    results = two_processes["methods"][method]
    assert two_processes["world_size"] == 2
    torch.testing.assert_close(results["loss"], expected["loss"], rtol=1e-7, atol=1e-9)
    assert set(results["gradients"]) == set(expected["gradients"])

    # Biases right before a BatchNorm have a zero gradient by construction: both runs must find ~0,
    # and they are left out of the comparison (noise against noise).
    zero = set(expected["structurally_zero"])
    assert zero and zero == set(results["structurally_zero"]) and zero <= set(expected["gradients"])
    for run in (expected, results):
        scale = max(gradient.abs().max() for gradient in run["gradients"].values())
        for name in zero:
            assert run["gradients"][name].abs().max() <= STRUCTURALLY_ZERO * scale, name

    for name, gradient in expected["gradients"].items():
        if name in zero:
            continue
        # The online probes compute their cross-entropy in float32; everything else runs in float64.
        tolerance = 1e-5 if name.startswith("evaluator.") else 1e-9
        torch.testing.assert_close(results["gradients"][name], gradient, rtol=tolerance, atol=1e-10, msg=name)
    # Running statistics of batch norm saw the same global batch.
    assert set(results["running"]) == set(expected["running"])
    for key, value in expected["running"].items():
        torch.testing.assert_close(results["running"][key], value, rtol=1e-7, atol=1e-10, msg=key)


def test_every_rendezvous_listener_is_on_loopback(two_processes):
    """The torchrun agent's store and each worker's gloo sockets listen on 127.0.0.1 only."""
    address, port = two_processes["master"]
    assert address == LOOPBACK
    ranks = two_processes["listeners"]
    assert sorted(entry["rank"] for entry in ranks) == [0, 1]
    agent = ranks[0]["parent"]
    assert (LOOPBACK, port) in agent, agent
    for entry in ranks:
        assert entry["own"], f"rank {entry['rank']}: gloo listens nowhere?"
        for listener in [*entry["own"], *entry["parent"]]:
            assert listener[0] == LOOPBACK, (entry["rank"], listener)


def test_a_loopback_store_server_listens_on_loopback_only():
    timeout = datetime.timedelta(seconds=60)
    server = dist.tcp_store(LOOPBACK, 0, None, is_master=True, timeout=timeout)
    try:
        mine = [listener for listener in listening_addresses(os.getpid()) if listener[1] == server.port]
        assert mine == [(LOOPBACK, server.port)]
        client = dist.tcp_store(LOOPBACK, server.port, None, is_master=False, timeout=timeout)
        client.set("key", "value")
        assert server.get("key") == b"value"
        del client
    finally:
        del server


def test_only_literal_loopback_addresses_count_as_loopback():
    for address in ("127.0.0.1", "127.0.1.1", "::1", "[::1]"):
        assert dist.is_loopback(address), address
    # Host names are never resolved (a node's own name may resolve to 127.0.1.1 locally only).
    for address in ("localhost", "gpu03", "192.0.2.2", "0.0.0.0", "::"):
        assert not dist.is_loopback(address), address


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="interface flags come from /sys")
def test_the_loopback_interface_is_found():
    assert dist.loopback_interface() == "lo"

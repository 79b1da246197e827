"""Fixtures of the SLURM tests: a real two-node Slurm cluster on this machine (see local_slurm.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from local_slurm import LocalSlurm, SlurmUnavailable

from leftovers import describe


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSlurm]:
    """A running two-node cluster (partition ``sietest``, nodes n1 and n2 with 2 CPUs each).

    Skips when not root, when the packages cannot be installed or when the Slurm ports are taken;
    fails when the daemons start but the nodes never become idle. Stops everything it started, the
    jobs' processes included, and fails (naming them) if any process of the cluster survives that.
    """
    cluster = LocalSlurm(work_folders=(tmp_path_factory.getbasetemp(),))
    try:
        cluster.start()
    except SlurmUnavailable as reason:
        cluster.stop()
        pytest.skip(f"no local Slurm cluster: {reason}")
    except BaseException:
        cluster.stop()
        raise
    try:
        yield cluster
    finally:
        cluster.stop()
        survivors = cluster.survivors()
        if survivors:
            pytest.fail(
                f"{len(survivors)} process(es) of the test cluster survived its stop:\n{describe(survivors)}"
            )

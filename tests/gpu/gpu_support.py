"""What the GPU tests share: the device they run on, the skip marker, and the record of measurements.

The tests run where CUDA is present and are skipped elsewhere. Two environment variables:

- ``SIE_GPU_TESTS_DEVICE=cpu`` runs them on the CPU instead (each comparison then compares the CPU
  with itself, and the NCCL tests still skip): a check of the tests themselves on a machine without a
  GPU, before the one short run on a GPU node;
- ``SIE_GPU_MEASUREMENTS=FILE`` appends what the tests measured (AMP loss differences, nvJPEG against
  libjpeg-turbo pixel differences, CUDA against CPU feature differences) to FILE as JSON lines;
  ``bench/gpu.py`` sets it and puts the lines in its results file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch

DEVICE_VARIABLE = "SIE_GPU_TESTS_DEVICE"
MEASUREMENTS_VARIABLE = "SIE_GPU_MEASUREMENTS"
ON_CPU = os.environ.get(DEVICE_VARIABLE) == "cpu"
SKIP_REASON = "needs a CUDA GPU (none here); run bench/gpu.py on a GPU node"

needs_cuda = pytest.mark.skipif(not (torch.cuda.is_available() or ON_CPU), reason=SKIP_REASON)
needs_nccl = pytest.mark.skipif(
    not (
        torch.cuda.is_available()
        and torch.distributed.is_available()
        and torch.distributed.is_nccl_available()
    ),
    reason="needs a CUDA GPU and NCCL (none here); run bench/gpu.py on a GPU node",
)
GPU_TESTS = [pytest.mark.gpu, needs_cuda]
"""The ``pytestmark`` of every GPU test module."""


def target_device() -> torch.device:
    """cuda:0, or the CPU when SIE_GPU_TESTS_DEVICE=cpu."""
    return torch.device("cpu") if ON_CPU else torch.device("cuda", 0)


def record(kind: str, **values: Any) -> None:
    """Append one measurement (a JSON object with ``kind``) to $SIE_GPU_MEASUREMENTS, if set."""
    path = os.environ.get(MEASUREMENTS_VARIABLE)
    if not path:
        return
    entry = {"kind": kind, "device": str(target_device()), **values}
    with Path(path).open("a", encoding="utf-8") as stream:
        stream.write(json.dumps(entry, sort_keys=True) + "\n")


def relative_difference(value: float, reference: float) -> float:
    """|value - reference| / max(|reference|, 1e-12)."""
    return abs(value - reference) / max(abs(reference), 1e-12)

"""What the parts of ``bench/gpu.py`` share: a part's result, its time budget, and the machine description.

Each part runs in its own process (see ``bench/gpu.py``) and writes its ``PartResult`` to a JSON file
after every measurement, so a part killed at its budget still reports what it had measured.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import torch

REPOSITORY = Path(__file__).resolve().parents[1]
Value = TypeVar("Value")


@dataclass
class PartResult:
    """Status ('ok', 'failed: ...' or 'skipped: ...'), figures, errors and notes of one part."""

    name: str
    status: str = "running"
    seconds: float = 0.0
    budget_seconds: float = 0.0
    figures: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return asdict(self)


@dataclass
class PartContext:
    """Where a part runs: the device, toy sizes or not, its deadline and its result file."""

    name: str
    device: torch.device
    quick: bool
    budget_seconds: float
    output: Path
    options: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    result: PartResult = field(init=False)

    def __post_init__(self) -> None:
        self.result = PartResult(self.name, budget_seconds=round(self.budget_seconds, 1))

    @property
    def cuda(self) -> bool:
        """True when the part measures on a CUDA device."""
        return self.device.type == "cuda"

    def remaining(self) -> float:
        """Seconds left of the part's budget."""
        return self.budget_seconds - (time.monotonic() - self.started)

    def save(self) -> None:
        """Write the result so far (atomically: a kill never leaves half a file)."""
        self.result.seconds = round(time.monotonic() - self.started, 2)
        temporary = self.output.with_suffix(".partial")
        temporary.write_text(json.dumps(self.result.as_dict(), indent=1, default=str))
        temporary.replace(self.output)

    def attempt(self, label: str, function: Callable[[], Value]) -> Value | None:
        """Run one measurement; an exception becomes an error line (the part goes on), None is returned."""
        try:
            value = function()
        except Exception as error:  # a measurement's failure is a result, not the end of the part
            lines = traceback.format_exception(error)
            self.result.errors.append(f"{label}: {type(error).__name__}: {error}".strip()[:2000])
            self.result.notes.append(f"{label} traceback (end): {''.join(lines)[-1500:]}")
            value = None
        self.save()
        return value

    def finish(self, skipped: str | None = None) -> PartResult:
        """Set the final status: failed when a measurement failed, else ``skipped: ...`` or ok."""
        if self.result.errors:
            self.result.status = (
                f"failed: {len(self.result.errors)} error(s); first: {self.result.errors[0][:300]}"
            )
        elif skipped:
            self.result.status = f"skipped: {skipped}"
        else:
            self.result.status = "ok"
        self.save()
        return self.result


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (timings on CUDA are asynchronous otherwise)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def version_of(package: str) -> str:
    """The installed version of ``package``, without importing it, or 'not installed'."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def command_output(command: list[str]) -> str | None:
    """The stripped standard output of a short command, or None when it cannot run."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=20, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip()


def describe_machine() -> dict[str, Any]:
    """GPU, driver, CUDA, cuDNN, NCCL, torch and the other versions that decide what a figure means."""
    gpu: dict[str, Any] = {"cuda_available": torch.cuda.is_available()}
    if torch.cuda.is_available():
        properties = torch.cuda.get_device_properties(0)
        gpu.update(
            name=properties.name,
            count=torch.cuda.device_count(),
            memory_gib=round(properties.total_memory / 2**30, 1),
            multiprocessors=properties.multi_processor_count,
            compute_capability=f"{properties.major}.{properties.minor}",
            bf16_supported=torch.cuda.is_bf16_supported(),
        )
    smi = command_output(
        ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"]
    )
    gpu["nvidia_smi"] = smi
    gpu["driver"] = smi.split(",")[1].strip() if smi and smi.count(",") >= 2 else None
    nccl = None
    if torch.cuda.is_available() and torch.distributed.is_nccl_available():
        version = torch.cuda.nccl.version()  # a tuple in recent torch, an int (e.g. 21803) in older ones
        nccl = ".".join(str(part) for part in version) if isinstance(version, tuple) else str(version)
    return {
        "gpu": gpu,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "nccl": nccl,
        "python": platform.python_version(),
        "packages": {
            name: version_of(name) for name in ("torchvision", "numpy", "bpy", "snakemake", "pytest")
        },
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "platform": platform.platform(),
        "git": command_output(["git", "-C", str(REPOSITORY), "rev-parse", "HEAD"])
        or "unknown (no .git here)",
    }

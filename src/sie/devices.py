"""Where torch computes: the device names a configuration or a command line may give, and what they
resolve to. Importing this module does not import torch (the configuration's checks use ``DEVICES``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda")
"""``auto``: the GPU when CUDA is available, else the CPU."""


def resolve_device(requested: str = "auto", local_rank: int | None = None) -> torch.device:
    """The torch device of ``requested`` (one of ``DEVICES``).

    ``cuda`` is ``cuda:<local_rank>`` for a distributed rank (``cuda:0`` when each task sees only one
    GPU), the current CUDA device when ``local_rank`` is None. Asking for ``cuda`` without CUDA is an
    error rather than a silent CPU run.
    """
    import torch

    if requested not in DEVICES:
        raise ValueError(f"device must be {', '.join(DEVICES[:-1])} or {DEVICES[-1]}, got {requested!r}")
    if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but CUDA is not available")
    if local_rank is None:
        return torch.device("cuda")
    return torch.device("cuda", local_rank if local_rank < torch.cuda.device_count() else 0)

"""Part "retrieval" of ``bench/gpu.py``: PRE's nearest-neighbour search at the full release's scale.

PRE train-train searches, for each of the 2,096,000 training views, the nearest of the 2,096,000
training embeddings (``sie.evaluate.retrieval.EmbeddingBank`` and ``nearest_neighbours``, the code
``sie evaluate`` runs, with its default chunks). The embeddings are synthetic unit vectors of the paper's
predictor width (SIE's equivariant embedding under configs/paper.yaml: 1024), each block drawn from its
own seeded generator on the device. The full bank is built; a share of the queries is timed (the cost is
linear in the queries with a resident bank) and extrapolated, in float32 and bfloat16; when the
budget leaves room, the whole bfloat16 search runs too. Also: how many neighbours bfloat16 changes.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from gpu_common import PartContext, PartResult, synchronize
from gpu_train import paper_model
from sie.evaluate import retrieval
from sie.models.methods import build_model

FULL_ROWS = 2_096_000
"""Training views of the release (41,920 objects x 50 views)."""
QUERY_CHUNK = 8192
BANK_CHUNK = 65536


class SyntheticUnitRows:
    """(rows, width) float32 unit vectors made on demand: block b of ``block`` rows comes from a generator
    seeded with (seed, b) on ``device``, so any slice is the same whoever asks and in whatever order."""

    def __init__(self, rows: int, width: int, seed: int, device: torch.device, block: int) -> None:
        self.shape = (rows, width)
        self.seed, self.device, self.block = seed, device, block

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: slice) -> np.ndarray:
        start, stop, step = rows.indices(self.shape[0])
        if step != 1:
            raise IndexError("only contiguous slices")
        pieces = []
        for index in range(start // self.block, (stop - 1) // self.block + 1 if stop > start else 0):
            generator = torch.Generator(device=self.device).manual_seed(self.seed * 1_000_003 + index)
            count = min(self.block, self.shape[0] - index * self.block)
            vectors = torch.randn(count, self.shape[1], device=self.device, generator=generator)
            vectors = torch.nn.functional.normalize(vectors, dim=1).cpu().numpy()
            first = max(start - index * self.block, 0)
            pieces.append(vectors[first : min(stop - index * self.block, count)])
        return np.concatenate(pieces) if pieces else np.zeros((0, self.shape[1]), dtype=np.float32)


def embedding_width() -> int:
    """Width of the embedding the SIE predictor acts on, for the paper's model."""
    model = build_model("SIE", paper_model())
    return model.embedding_dim - model.inv_embedding_dims


def timed_search(
    queries: SyntheticUnitRows, count: int, bank: retrieval.EmbeddingBank
) -> tuple[float, np.ndarray]:
    """Seconds of ``nearest_neighbours`` over the first ``count`` queries (after one warm-up chunk)."""
    warm = SyntheticUnitRows(min(count, QUERY_CHUNK), queries.shape[1], 99, queries.device, QUERY_CHUNK)
    retrieval.nearest_neighbours(warm, bank, query_chunk=QUERY_CHUNK)
    subset = SyntheticUnitRows(count, queries.shape[1], queries.seed, queries.device, queries.block)
    synchronize(bank.device)
    started = time.perf_counter()
    found = retrieval.nearest_neighbours(subset, bank, query_chunk=QUERY_CHUNK)
    synchronize(bank.device)
    return time.perf_counter() - started, found


def search(
    context: PartContext,
    device: torch.device,
    bank_rows: int,
    query_rows: int,
    width: int,
    dtype: torch.dtype,
) -> tuple[dict[str, Any], np.ndarray]:
    """Build the bank, time the search of ``query_rows`` queries; the figures and the neighbours found."""
    generator_device = device if device.type == "cuda" else torch.device("cpu")
    bank_vectors = SyntheticUnitRows(bank_rows, width, 0, generator_device, BANK_CHUNK)
    queries = SyntheticUnitRows(FULL_ROWS, width, 1, generator_device, QUERY_CHUNK)
    started = time.perf_counter()
    bank = retrieval.EmbeddingBank([bank_vectors], device=device, dtype=dtype, bank_chunk=BANK_CHUNK)
    build = time.perf_counter() - started
    seconds, found = timed_search(queries, query_rows, bank)
    per_query = seconds / query_rows
    row = {
        "device": device.type,
        "dtype": str(dtype).removeprefix("torch."),
        "bank_rows": bank_rows,
        "bank_resident": bank._resident is not None,
        "bank_build_seconds": round(build, 2),
        "queries_timed": query_rows,
        "seconds": round(seconds, 3),
        "queries_per_second": round(1 / per_query, 1),
        "tflops": round(2 * bank_rows * width / per_query / 1e12, 2),
        # linear in the queries (a resident bank) and in the bank's rows (every chunk is scored)
        "projected_full_seconds": round(per_query * FULL_ROWS * (FULL_ROWS / bank_rows), 1),
    }
    affordable = context.remaining() > 1.3 * per_query * FULL_ROWS + 20
    if bank_rows == FULL_ROWS and query_rows >= FULL_ROWS:
        row["full_seconds"] = row["seconds"]
    elif bank_rows == FULL_ROWS and affordable:
        full_seconds, _ = timed_search(queries, FULL_ROWS, bank)
        row["full_seconds"] = round(full_seconds, 1)
    del bank
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row, found


def run(context: PartContext) -> PartResult:
    """fp32 and bf16 searches on the device (and fp32 on the CPU for comparison), extrapolated."""
    figures = context.result.figures
    width = embedding_width()
    figures.update(width=width, full_rows=FULL_ROWS, query_chunk=QUERY_CHUNK, bank_chunk=BANK_CHUNK)
    plans: list[tuple[torch.device, int, int, torch.dtype]] = []
    if context.cuda and not context.quick:
        plans += [(context.device, FULL_ROWS, 8 * QUERY_CHUNK, torch.float32)]
        plans += [(context.device, FULL_ROWS, 16 * QUERY_CHUNK, torch.bfloat16)]
        plans += [(torch.device("cpu"), 262_144, 1024, torch.float32)]
    elif context.cuda:
        plans += [(context.device, 65_536, 4096, dtype) for dtype in (torch.float32, torch.bfloat16)]
        plans += [(torch.device("cpu"), 8192, 512, torch.float32)]
    else:
        size = (8192, 1024) if context.quick else (262_144, 2048)
        plans += [(context.device, *size, dtype) for dtype in (torch.float32, torch.bfloat16)]
    found: dict[str, np.ndarray] = {}
    for device, bank_rows, query_rows, dtype in plans:
        label = f"{device.type} {str(dtype).removeprefix('torch.')} bank {bank_rows:,}"
        outcome = context.attempt(
            label, lambda a=device, b=bank_rows, q=query_rows, d=dtype: search(context, a, b, q, width, d)
        )
        if outcome is not None:
            figures.setdefault("rows", []).append(outcome[0])
            found[f"{device.type} {outcome[0]['dtype']} {bank_rows}"] = outcome[1]
            context.save()
    agreement(figures, found)
    if not context.cuda:
        return context.finish(
            skipped="no CUDA (the same search ran on the CPU" + (" at toy size)" if context.quick else ")")
        )
    return context.finish()


def agreement(figures: dict[str, Any], found: dict[str, np.ndarray]) -> None:
    """Share of the queries whose bfloat16 neighbour is the float32 one (same device and bank)."""
    for key, rows in found.items():
        if "bfloat16" in key:
            reference = found.get(key.replace("bfloat16", "float32"))
            if reference is not None:
                common = min(len(rows), len(reference))
                figures.setdefault("bf16_same_neighbour_share", {})[key] = round(
                    float((rows[:common] == reference[:common]).mean()), 5
                )

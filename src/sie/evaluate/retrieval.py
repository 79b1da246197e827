"""Retrieval metrics of the learned predictor: PRE, MRR and H@k
(docs/evaluations.md#predictor-evaluation).

Queries are every view t of every object; the source is view 0 of the same object (t = source included);
the conditioning latent is the quaternion of R_s^-1 R_t (scipy order and sign, as in training) or, for
RotColor predictors, [quaternion, floor hue(t) - floor hue(s), spot hue(t) - spot hue(s)]. The prediction
P(e_s, latent) and every candidate are L2-normalised (eps 1e-8) unless ``normalize=False`` (the original's
``--no-norm``); the predictor sees the raw source embedding.

Ranks in MRR/H@k count ties PESSIMISTICALLY: the rank of the true view is the number of candidates
scoring at least as high as it (itself included). With distinct scores this equals the original's sorted
position; with ties (e.g. a collapsed model where every embedding is the same) it gives the worst rank
instead of rewarding the collapse.

The nearest-neighbour search of PRE is chunked over queries and over the bank (a running top-1, the first
index winning ties as in ``argmax``), so memory is bounded by ``query_chunk x bank_chunk`` scores even for
2.1 M x 2.1 M; the bank stays on the device if it fits ``max_resident_bytes``, otherwise it is streamed from
the (memory-mapped) arrays once per query chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as functional

from sie.data.latents import pair_latents
from sie.evaluate.metrics import absolute_quaternions, hit_rates, mean_reciprocal_rank, prediction_error_terms

HIT_KS = (1, 2, 5, 10)
NORMALISE_EPSILON = 1e-8

Predictor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
ProgressCallback = Callable[[int], object]


def normalise(vectors: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """Rows divided by max(L2 norm, 1e-8) when ``normalize``, else unchanged."""
    return functional.normalize(vectors, dim=1, eps=NORMALISE_EPSILON) if normalize else vectors


def predicted_embeddings(
    embeddings: np.ndarray,
    latents: np.ndarray,
    views: int,
    predict: Predictor,
    objects: range,
    *,
    latent: str = "rotation",
    normalize: bool = True,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Predictions for every view of ``objects`` (contiguous), each from view 0 of its object: (rows, D)."""
    rows = slice(objects.start * views, objects.stop * views)
    target_latents = np.asarray(latents[rows], dtype=np.float64)
    source_latents = np.repeat(target_latents[::views], views, axis=0)
    condition = torch.from_numpy(pair_latents(source_latents, target_latents, latent)).to(device)
    sources = torch.from_numpy(np.array(embeddings[rows.start : rows.stop : views], dtype=np.float32)).to(
        device
    )
    with torch.no_grad():
        prediction = predict(sources.repeat_interleave(views, dim=0), condition)
    return normalise(prediction.float(), normalize)


def _object_chunks(objects: int, views: int, query_chunk: int) -> Iterator[range]:
    step = max(1, query_chunk // views)
    for start in range(0, objects, step):
        yield range(start, min(start + step, objects))


def _object_count(embeddings: np.ndarray, latents: np.ndarray, views: int) -> int:
    rows = embeddings.shape[0]
    if views < 1 or rows % views or latents.shape[0] != rows:
        raise ValueError(
            f"{rows} embeddings / {latents.shape[0]} latents are not whole objects of {views} views"
        )
    return rows // views


def true_view_ranks(predictions: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """Pessimistic 1-based rank of candidate t for prediction t within each object.

    ``predictions`` and ``candidates`` are (objects, views, D); the score is the dot product.
    """
    scores = torch.bmm(predictions, candidates.transpose(1, 2))
    true_scores = torch.diagonal(scores, dim1=1, dim2=2).unsqueeze(2)
    return (scores >= true_scores).sum(dim=2)


def mrr_and_hits(
    embeddings: np.ndarray,
    latents: np.ndarray,
    views: int,
    predict: Predictor,
    *,
    latent: str = "rotation",
    normalize: bool = True,
    device: str | torch.device = "cpu",
    query_chunk: int = 16384,
    progress: ProgressCallback | None = None,
) -> dict[str, float]:
    """MRR and H@1, H@2, H@5, H@10 (k capped at ``views``) over the ``views`` views of each object."""
    objects = _object_count(embeddings, latents, views)
    ranks = np.empty(objects * views, dtype=np.int64)
    for chunk in _object_chunks(objects, views, query_chunk):
        rows = slice(chunk.start * views, chunk.stop * views)
        prediction = predicted_embeddings(
            embeddings, latents, views, predict, chunk, latent=latent, normalize=normalize, device=device
        )
        candidates = normalise(
            torch.from_numpy(np.array(embeddings[rows], dtype=np.float32)).to(device), normalize
        )
        shape = (len(chunk), views, -1)
        ranks[rows] = (
            true_view_ranks(prediction.reshape(shape), candidates.reshape(shape)).reshape(-1).cpu().numpy()
        )
        if progress is not None:
            progress(rows.stop - rows.start)
    return {"MRR": mean_reciprocal_rank(ranks), **hit_rates(ranks, HIT_KS, cap=views)}


class EmbeddingBank:
    """Normalised embeddings of one or more (memory-mapped) arrays, searched chunk by chunk."""

    def __init__(
        self,
        arrays: Sequence[np.ndarray],
        *,
        normalize: bool = True,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        bank_chunk: int = 65536,
        max_resident_bytes: int = 8 * 1024**3,
    ) -> None:
        self.arrays = list(arrays)
        if not self.arrays or len({array.shape[1] for array in self.arrays}) != 1:
            raise ValueError("the bank needs at least one array, all of the same width")
        self.offsets = np.cumsum([0] + [array.shape[0] for array in self.arrays])
        self.normalize, self.device, self.dtype, self.bank_chunk = (
            normalize,
            torch.device(device),
            dtype,
            bank_chunk,
        )
        size = int(self.offsets[-1]) * self.arrays[0].shape[1] * torch.finfo(dtype).bits // 8
        self._resident = list(self._load()) if size <= max_resident_bytes else None

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def _load(self) -> Iterator[tuple[int, torch.Tensor]]:
        for offset, array in zip(self.offsets, self.arrays, strict=False):
            for start in range(0, array.shape[0], self.bank_chunk):
                block = torch.from_numpy(np.array(array[start : start + self.bank_chunk], dtype=np.float32))
                yield int(offset) + start, normalise(block.to(self.device), self.normalize).to(self.dtype)

    def chunks(self) -> Iterator[tuple[int, torch.Tensor]]:
        """(first global row, normalised chunk on the device in ``dtype``) over the whole bank."""
        return iter(self._resident) if self._resident is not None else self._load()

    def nearest(self, queries: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Maximum dot product and its global row (first on ties) for each query row (already normalised)."""
        queries = queries.to(self.device, self.dtype)
        score_dtype = torch.float64 if self.dtype == torch.float64 else torch.float32
        best_scores = torch.full((queries.shape[0],), -torch.inf, dtype=score_dtype, device=self.device)
        best_rows = torch.zeros(queries.shape[0], dtype=torch.int64, device=self.device)
        for offset, chunk in self.chunks():
            scores, rows = _scores(queries, chunk).max(dim=1)
            better = scores > best_scores
            best_scores = torch.where(better, scores, best_scores)
            best_rows = torch.where(better, rows + offset, best_rows)
        return best_scores, best_rows

    def locate(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(array index, row within that array) of global bank rows."""
        which = np.searchsorted(self.offsets, rows, side="right") - 1
        return which, rows - self.offsets[which]


def _scores(queries: torch.Tensor, chunk: torch.Tensor) -> torch.Tensor:
    """Scores queries @ chunk^T; bfloat16 operands are multiplied with float32 accumulation and output."""
    if queries.dtype != torch.bfloat16:
        return queries @ chunk.T
    if queries.is_cuda:
        return torch.mm(queries, chunk.T, out_dtype=torch.float32)
    return queries.float() @ chunk.float().T


def nearest_neighbours(
    queries: np.ndarray | torch.Tensor,
    bank: EmbeddingBank,
    *,
    query_chunk: int = 8192,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Global bank row of the nearest neighbour (max dot product) of each query, normalised as the bank."""
    found = []
    for start in range(0, queries.shape[0], query_chunk):
        block = torch.as_tensor(np.array(queries[start : start + query_chunk], dtype=np.float32))
        found.append(bank.nearest(normalise(block.to(bank.device), bank.normalize))[1].cpu().numpy())
        if progress is not None:
            progress(len(block))
    return np.concatenate(found) if found else np.empty(0, dtype=np.int64)


def prediction_errors(
    embeddings: np.ndarray,
    latents: np.ndarray,
    views: int,
    predict: Predictor,
    bank: EmbeddingBank,
    bank_latents: Sequence[np.ndarray],
    *,
    latent: str = "rotation",
    query_chunk: int = 8192,
    progress: ProgressCallback | None = None,
) -> dict[str, float]:
    """PRE: mean of 1 - <q_abs(t), q_abs(neighbour)>^2 over every query view (docs/evaluations.md#pre).

    The neighbour is the bank row closest to the normalised prediction; ``bank_latents`` are the latents
    of the bank's arrays in the same order (e.g. [train latents, val latents] for val->all).
    """
    objects = _object_count(embeddings, latents, views)
    if [len(array) for array in bank_latents] != [array.shape[0] for array in bank.arrays]:
        raise ValueError("bank_latents must match the bank's arrays row for row")
    total = 0.0
    for chunk in _object_chunks(objects, views, query_chunk):
        prediction = predicted_embeddings(
            embeddings,
            latents,
            views,
            predict,
            chunk,
            latent=latent,
            normalize=bank.normalize,
            device=bank.device,
        )
        neighbours = bank.nearest(prediction)[1].cpu().numpy()
        which, local = bank.locate(neighbours)
        neighbour_latents = np.empty((len(neighbours), 3), dtype=np.float64)
        for index, array in enumerate(bank_latents):
            selected = which == index
            neighbour_latents[selected] = np.asarray(array[local[selected]])[:, :3]
        query_latents = np.asarray(latents[chunk.start * views : chunk.stop * views])
        terms = prediction_error_terms(
            absolute_quaternions(query_latents), absolute_quaternions(neighbour_latents)
        )
        total += float(terms.sum())
        if progress is not None:
            progress(len(neighbours))
    return {"PRE": total / (objects * views), "queries": float(objects * views)}

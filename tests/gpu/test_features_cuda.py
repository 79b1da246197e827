"""Feature extraction (``sie.evaluate.features``) and retrieval (``sie.evaluate.retrieval``) on CUDA give
the CPU's results within float tolerance.

Features: the frozen backbone in float32 on both devices, but cuDNN runs float32 convolutions in TF32 by
default (10-bit mantissa, relative rounding 2^-11 per product, float32 accumulation), so the CUDA
features differ from the CPU's by about 1e-3 relative: the test allows 1e-2 of each array's largest
value and 5e-3 relative in norm.

Retrieval: scores are dot products of unit vectors in float32 on both devices (bfloat16 operands with
float32 accumulation for the bfloat16 bank), in different summation orders, so scores differ by about
1e-6; a nearest neighbour (or a rank) may change only where two candidates score within ``TIE`` of each
other, and the metrics may change only by the share of such queries.
"""

import numpy as np
import pytest
import torch
from gpu_support import GPU_TESTS, record, target_device

from sie.evaluate import retrieval
from sie.evaluate.features import compute_features, load_split
from sie.models.files import load_pretrained
from sie.training.config import run_spec_from_dict
from sie.training.loop import pretrain

pytestmark = GPU_TESTS

TIE = 1e-4
MODEL = {"arch": "resnet9", "width": 8, "mlp": "32-32", "equi": 16, "equi_factor": 0.45}


@pytest.fixture(scope="module")
def pretrained(packed_dataset, tmp_path_factory):
    """model.pt of one epoch of SIE trained on the CPU."""
    folder = tmp_path_factory.mktemp("pretrained")
    training = {"epochs": 1, "batch_size": 4, "workers": 0, "device": "cpu", "deterministic": True}
    spec = run_spec_from_dict(
        {"variant": "gpu", "method": "SIE", "seed": 0, "model": MODEL, "training": training}
    )
    pretrain(spec, packed_dataset, folder / "out", folder / "checkpoint.pt", threads=1)
    return folder / "out" / "model.pt"


@pytest.fixture(scope="module")
def feature_stores(pretrained, packed_dataset, tmp_path_factory):
    """The feature store computed on the CPU and on the test device."""
    folder = tmp_path_factory.mktemp("features")
    stores = {}
    for device in ("cpu", str(target_device())):
        stores[device] = folder / device.replace(":", "")
        manifest = compute_features(pretrained, packed_dataset, stores[device], device=device, batch_size=8)
        assert manifest["device"] == device
    return stores


def test_cuda_features_equal_the_cpu_features(feature_stores):
    cpu, other = (feature_stores[name] for name in ("cpu", str(target_device())))
    for split in ("train", "val"):
        for name in ("representations", "embeddings"):
            reference, value = load_split(cpu, split, name), load_split(other, split, name)
            assert reference.shape == value.shape and reference.shape[0] > 0
            scale = float(np.abs(reference).max())
            largest = float(np.abs(value - reference).max())
            relative = float(np.linalg.norm(value - reference) / np.linalg.norm(reference))
            record(
                "features",
                split=split,
                array=name,
                largest_over_scale=largest / scale,
                relative_norm=relative,
            )
            assert largest <= 1e-2 * scale + 1e-6, f"{split} {name}: largest difference {largest:.3g}"
            assert relative <= 5e-3, f"{split} {name}: relative difference {relative:.3g}"


def near_ties(queries: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """Per query (float64 on the CPU): True where the best two candidates score within TIE."""
    scores = queries.double() @ candidates.double().T
    best = scores.topk(2, dim=1).values
    return (best[:, 0] - best[:, 1]) < TIE


def random_unit_rows(rows: int, width: int, seed: int) -> np.ndarray:
    generator = np.random.default_rng(seed)
    vectors = generator.standard_normal((rows, width)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_nearest_neighbours_on_cuda_equal_the_cpu_ones(dtype):
    """The PRE search on 20,000 candidates of the paper's width (1024): several bank chunks, a resident
    bank and a streamed one."""
    bank_rows, queries = random_unit_rows(20_000, 1024, 0), random_unit_rows(3_000, 1024, 1)
    found = {}
    for device in ("cpu", target_device()):
        for resident in (True, False):
            bank = retrieval.EmbeddingBank(
                [bank_rows[:12_000], bank_rows[12_000:]],
                device=device,
                dtype=dtype,
                bank_chunk=4096,
                max_resident_bytes=2**40 if resident else 0,
            )
            found[(str(device), resident)] = retrieval.nearest_neighbours(queries, bank, query_chunk=1024)
    rounded = torch.from_numpy(queries).to(dtype).float(), torch.from_numpy(bank_rows).to(dtype).float()
    ambiguous = near_ties(*rounded).numpy()
    reference = found[("cpu", True)]
    for key, rows in found.items():
        mismatched = rows != reference
        record("nearest_neighbours", dtype=str(dtype), variant=str(key), mismatched=int(mismatched.sum()))
        assert not (mismatched & ~ambiguous).any(), f"{key}: {int(mismatched.sum())} neighbours differ"


def rank_ties(predictions: torch.Tensor, candidates: torch.Tensor, views: int) -> torch.Tensor:
    """Per query (float64): True where another view of its object scores within TIE of the true view."""
    shape = (-1, views, predictions.shape[1])
    scores = torch.bmm(
        predictions.double().reshape(shape), candidates.double().reshape(shape).transpose(1, 2)
    )
    true = torch.diagonal(scores, dim1=1, dim2=2).unsqueeze(2)
    close = (scores - true).abs() < TIE
    return (close.sum(dim=2) > 1).reshape(-1)


def test_predictor_metrics_on_cuda_equal_the_cpu_ones(pretrained, feature_stores, packed_dataset):
    model, payload = load_pretrained(pretrained)
    store = feature_stores["cpu"]
    embeddings = {split: np.array(load_split(store, split, "embeddings")) for split in ("train", "val")}
    latents = {split: np.load(packed_dataset / f"all_latents_{split}.npy") for split in embeddings}
    views, latent = 3, payload["latent"]
    metrics = {}
    for device in ("cpu", target_device()):
        predictor = model.predictor.to(device).eval()
        bank = retrieval.EmbeddingBank([embeddings["train"], embeddings["val"]], device=device)
        errors = retrieval.prediction_errors(
            embeddings["val"],
            latents["val"],
            views,
            predictor,
            bank,
            [latents["train"], latents["val"]],
            latent=latent,
        )
        ranks = retrieval.mrr_and_hits(
            embeddings["train"], latents["train"], views, predictor, latent=latent, device=device
        )
        metrics[str(device)] = {**errors, **ranks}
    predictor = model.predictor.cpu()
    val_predictions, train_predictions = (
        retrieval.predicted_embeddings(
            embeddings[split],
            latents[split],
            views,
            predictor,
            range(len(latents[split]) // views),
            latent=latent,
        )
        for split in ("val", "train")
    )
    candidates = retrieval.normalise(
        torch.from_numpy(np.concatenate([embeddings["train"], embeddings["val"]]))
    )
    share = max(
        float(near_ties(val_predictions, candidates).double().mean()),
        float(
            rank_ties(train_predictions, retrieval.normalise(torch.from_numpy(embeddings["train"])), views)
            .double()
            .mean()
        ),
    )
    record("predictor_metrics", metrics=metrics, near_tie_share=share)
    reference = metrics["cpu"]
    for name, value in metrics[str(target_device())].items():
        assert abs(value - reference[name]) <= share + 1e-5, (
            f"{name}: {value} on CUDA, {reference[name]} on CPU"
        )

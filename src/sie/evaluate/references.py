"""Reference rows of the tables: what a number means on this data (docs/evaluations.md#reference-rows).

- ``oracle``: a feature store whose features are the view's true factors plus Gaussian noise (the class
  one-hot as the invariant part; the rotation matrix and the two hues as the equivariant part), run
  through the same probes as the methods: what the probes can reach on this data and these settings.
- ``chance``: metrics files computed without features: the most frequent training class (top-1/5), the
  training mean of each target component scored on the probes' own validation pairs (R², MSE), a
  random ranking of the views (MRR, H@k, exactly) and a random neighbour from the bank (PRE).
- ``untrained`` is a model (``sie.training.untrained``) that goes through the methods' own rules.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from sie.data.latents import FACTORS, HUE_FACTORS, rotation_matrix
from sie.data.store import dataset_layout
from sie.evaluate import probes
from sie.evaluate.features import FEATURES_FORMAT, features_file
from sie.evaluate.metrics import absolute_quaternions, global_r2_numpy, prediction_error_terms
from sie.evaluate.registry import CHANCE, ORACLE, PREDICTOR_EVALUATION, PREDICTOR_PART, RETRIEVAL_MODES
from sie.evaluate.retrieval import HIT_KS
from sie.io import atomic_path, read_json, write_json
from sie.paths import CARD_FILE, EVALUATION_FILE, MANIFEST_FILE, SPLITS, fill, labels_file, latents_file

ORACLE_NOISE = 0.05
"""Standard deviation of the Gaussian noise added to every oracle feature (hues have std 0.29, so the
colour probe's ceiling is about 1 - 2 x 0.05² / Var(hue difference) = 0.97)."""

ORACLE_CHUNK_ROWS = 65536
"""Views made and written at a time (the noise is drawn chunk after chunk from one generator)."""

HUE_COLUMNS = [FACTORS.index(name) for name in HUE_FACTORS]


def oracle_features(
    latents: np.ndarray, labels: np.ndarray, classes: int, generator: np.random.Generator
) -> np.ndarray:
    """(views, classes + 11) float32: [one-hot class | rotation matrix (9) | floor hue, spot hue] + noise."""
    one_hot = np.eye(classes)[np.asarray(labels, dtype=np.int64)]
    rotation = rotation_matrix(np.asarray(latents, dtype=np.float64)).reshape(len(latents), 9)
    clean = np.concatenate([one_hot, rotation, np.asarray(latents, dtype=np.float64)[:, HUE_COLUMNS]], axis=1)
    return (clean + generator.normal(0.0, ORACLE_NOISE, clean.shape)).astype(np.float32)


def write_oracle_store(dataset_dir: Path, output_dir: Path, variant: str, seed: int = 0) -> dict[str, Any]:
    """The oracle's feature store (the format of ``sie.evaluate.features``); returns its manifest."""
    started = time.perf_counter()
    _, views = dataset_layout(dataset_dir)
    classes = _class_count(dataset_dir)
    (output_dir / MANIFEST_FILE).unlink(missing_ok=True)
    generators = dict(zip(SPLITS, np.random.default_rng(seed).spawn(len(SPLITS)), strict=True))
    splits = {}
    for split in SPLITS:
        latents = np.load(dataset_dir / latents_file(split), mmap_mode="r")
        labels = np.load(dataset_dir / labels_file(split))
        with atomic_path(output_dir / features_file(split, "representations"), suffix=".npy") as path:
            features = np.lib.format.open_memmap(
                path, mode="w+", dtype=np.float32, shape=(len(latents), classes + 11)
            )
            for rows in probes.batch_slices(len(latents), ORACLE_CHUNK_ROWS):  # bounded memory at 2.6 M views
                owners = labels[np.arange(rows.start, rows.stop) // views]
                features[rows] = oracle_features(latents[rows], owners, classes, generators[split])
            features.flush()
            del features
        splits[split] = {"rows": len(latents), "outputs": ["representations"]}
    manifest = {
        "format": FEATURES_FORMAT,
        "model": None,
        "dataset": str(dataset_dir),
        "method": ORACLE,
        "reference": ORACLE,
        "latent": "rotation",
        "variant": variant,
        "seed": seed,
        "views_per_object": views,
        "noise": ORACLE_NOISE,
        "representation_dim": classes + 11,
        "inv_dims": classes,
        "has_predictor": False,
        "embedding_dim": None,
        "splits": splits,
        "seconds": round(time.perf_counter() - started, 2),
        "device": "cpu",
    }
    write_json(output_dir / MANIFEST_FILE, manifest)
    return manifest


def _class_count(dataset_dir: Path) -> int:
    from sie.data.layout import label_count

    return label_count(read_json(dataset_dir / CARD_FILE))


def classification_chance(train_labels: np.ndarray, val_labels: np.ndarray) -> dict[str, float]:
    """Top-1 / top-5 of always answering the most frequent training classes (ties: the lower label)."""
    labels, counts = np.unique(np.asarray(train_labels), return_counts=True)
    ranked = labels[np.lexsort((labels, -counts))]
    val = np.asarray(val_labels)
    return {"top1": float(np.mean(val == ranked[0])), "top5": float(np.mean(np.isin(val, ranked[:5])))}


def mean_predictor(
    train_latents: np.ndarray,
    val_latents: np.ndarray,
    views: int,
    targets,
    settings: probes.ProbeSettings,
) -> dict[str, float]:
    """R² and MSE of predicting the training mean of each target component, on the validation pairs the
    pair probes use (``probes.validation_pairs``). The mean is taken over ``val_pairs_per_object``
    seeded pairs of every training object."""
    generator = np.random.default_rng(np.random.SeedSequence(settings.seed).generate_state(4)[3])
    first, second = probes.object_pairs(
        len(train_latents) // views, views, settings.val_pairs_per_object, generator
    )
    train_targets = targets(train_latents[first], train_latents[second])
    val_first, val_second = probes.validation_pairs(len(val_latents) // views, views, settings)
    val_targets = np.asarray(targets(val_latents[val_first], val_latents[val_second]), dtype=np.float64)
    prediction = np.tile(np.asarray(train_targets, dtype=np.float64).mean(axis=0), (len(val_targets), 1))
    return {
        "r2": global_r2_numpy(prediction, val_targets),
        "mse": float(np.mean((prediction - val_targets) ** 2)),
    }


def ranking_chance(views: int) -> dict[str, float]:
    """MRR and H@k of a uniformly random ranking of ``views`` candidates (exact expectations)."""
    return {
        "MRR": float(np.mean(1.0 / np.arange(1, views + 1))),
        **{f"H@{k}": min(k, views) / views for k in HIT_KS},
    }


def random_neighbour_error(
    query_latents: np.ndarray, bank_latents: np.ndarray, generator: np.random.Generator
) -> float:
    """PRE when the retrieved neighbour is a uniformly random bank view."""
    picks = generator.integers(len(bank_latents), size=len(query_latents))
    terms = prediction_error_terms(
        absolute_quaternions(query_latents), absolute_quaternions(bank_latents[picks])
    )
    return float(terms.mean())


def chance_metrics(
    dataset_dir: Path, settings: probes.ProbeSettings, modes: tuple[str, ...] = RETRIEVAL_MODES, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Evaluation name -> metrics of the chance row (the same for every representation part)."""
    _, views = dataset_layout(dataset_dir)
    latents = {split: np.load(dataset_dir / latents_file(split)) for split in SPLITS}
    labels = {split: np.load(dataset_dir / labels_file(split)) for split in SPLITS}
    result = {
        "classification": classification_chance(labels["train"], np.repeat(labels["val"], views)),
        "rotation": mean_predictor(
            latents["train"], latents["val"], views, probes.rotation_targets, settings
        ),
        "color": mean_predictor(latents["train"], latents["val"], views, probes.color_targets, settings),
    }
    generator = np.random.default_rng(seed)
    predictor: dict[str, float] = {}
    for mode in modes:
        query, bank = mode.split("-")
        bank_latents = np.concatenate([latents[name] for name in (SPLITS if bank == "all" else [bank])])
        predictor[f"PRE/{mode}"] = random_neighbour_error(latents[query], bank_latents, generator)
        if bank == query:
            predictor |= {f"{name}/{mode}": value for name, value in ranking_chance(views).items()}
    result[PREDICTOR_EVALUATION] = predictor
    return result


def write_chance(
    dataset_dir: Path,
    output_dir: Path,
    variant: str,
    evaluations: list[str],
    parts: list[str],
    settings: probes.ProbeSettings,
    modes: tuple[str, ...] = RETRIEVAL_MODES,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """One metrics file per (evaluation, part) of the chance row, in the methods' format."""
    metrics = chance_metrics(dataset_dir, settings, modes, seed)
    records = []
    for evaluation in evaluations:
        for part in [PREDICTOR_PART] if evaluation == PREDICTOR_EVALUATION else parts:
            record = {
                "variant": variant,
                "method": CHANCE,
                "seed": seed,
                "evaluation": evaluation,
                "part": part,
                "applicable": True,
                "reference": CHANCE,
                "metrics": metrics[evaluation],
            }
            write_json(output_dir / fill(EVALUATION_FILE, evaluation=evaluation, part=part), record)
            records.append(record)
    return records

#!/usr/bin/env python
"""Benchmark the evaluation suite of one checkpoint against the original protocol.

- ours: one pass of the frozen backbone (eval-mode BatchNorm) over every view (``sie features``), then
  every probe trains on the stored features;
- original protocol (``bench/original_protocol.py``): every probe runs the frozen backbone on the images
  of every batch of every epoch, validating on one random view / pair per val object every epoch;
  timed lean (only the backbone forwards, the heads and validation) and as the original scripts run it
  (also a fresh DataLoader with worker processes for the train and val objects every epoch, model.pth
  and TensorBoard every epoch).

Same probes (classification, rotation, colour on every part the model has), heads, optimiser, batch
size and epochs. Times seed 0; then compares the metrics over ``--seeds`` probe seeds. Ours validates
rotation and colour on 10 fixed pairs per val object; the original on one random pair per object, and
R² on fewer pairs is lower on average, so the comparison uses ours validated on one pair per object too
("ours, 1 val pair/object"), against the original protocol with eval-mode BatchNorm (the features we
store: the protocols then differ only in feature reuse) and as shipped with train-mode BatchNorm
(docs/differences.md#probe-batchnorm). A metric is "within seed noise" when the means differ by at
most two standard errors of that difference. Usage::

    .venv/bin/python bench/evaluation.py --model results/pretrain/test/SIE/seed0/model.pt \\
        --dataset results/datasets/test [--epochs 300] [--seeds 5] [--threads 2] [--loader-workers 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from original_protocol import Protocol, run_original
from sie.evaluate.features import compute_features, read_manifest
from sie.evaluate.probes import PARTS, ProbeSettings
from sie.evaluate.run import PROBES, evaluate_probe, part_reason

LEAN, SCRIPTED = "original, lean", "original, as its scripts run it"
OURS, OURS_AS_ORIGINAL = "ours", "ours, 1 val pair/object"
ORIGINALS = ("original, eval-mode BN", "original, train-mode BN")
HEADLINE = {"classification": "top1", "rotation": "r2", "color": "r2"}

Metrics = dict[str, dict[str, float]]


def probe_all(features: Path, dataset: Path, settings: ProbeSettings, folder: Path) -> Metrics:
    """Every probe of every part the model has, on stored features; metrics by 'evaluation-part'."""
    manifest = read_manifest(features)
    metrics = {}
    for evaluation in PROBES:
        for part in PARTS:
            if part_reason(manifest, part) is None:
                output = folder / f"{evaluation}-{part}.json"
                record = evaluate_probe(features, dataset, evaluation, part, output, settings)
                metrics[f"{evaluation}-{part}"] = record["metrics"]
    return metrics


def run_ours(model: Path, dataset: Path, settings: ProbeSettings, folder: Path) -> tuple[float, Metrics]:
    """Features once (into ``folder``/features), then every probe on them; (seconds, metrics)."""
    started = time.perf_counter()
    compute_features(model, dataset, folder / "features", "cpu", 256)
    metrics = probe_all(folder / "features", dataset, settings, folder)
    return time.perf_counter() - started, metrics


def headline(metrics: Metrics, key: str) -> float:
    return metrics[key][HEADLINE[key.split("-")[0]]]


def within_noise(first: list[float], second: list[float]) -> tuple[float, float, bool]:
    """(difference of means, its standard error, |difference| <= 2 standard errors)."""
    difference = float(np.mean(first) - np.mean(second))
    error = math.sqrt(np.var(first, ddof=1) / len(first) + np.var(second, ddof=1) / len(second))
    return difference, error, abs(difference) <= 2 * error


def summary(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def compare(runs: dict[str, list[Metrics]]) -> list[dict]:
    """Per probe: headline metric of every protocol over the seeds and whether ours is within noise."""
    rows = []
    for key in runs[OURS][0]:
        values = {name: [headline(seed, key) for seed in seeds] for name, seeds in runs.items()}
        row = {"probe": key, "metric": HEADLINE[key.split("-")[0]], "values": values}
        if len(runs[OURS]) > 1:
            for reference in ORIGINALS:
                difference, error, within = within_noise(values[OURS_AS_ORIGINAL], values[reference])
                row[reference] = {"difference": difference, "standard_error": error, "within_noise": within}
        rows.append(row)
    return rows


def print_comparison(rows: list[dict]) -> None:
    names = list(rows[0]["values"])
    print(f"{'probe':<20} {'metric':<6} " + " ".join(f"{name:>26}" for name in names) + "  within noise")
    for row in rows:
        cells = " ".join(f"{summary(row['values'][name]):>26}" for name in names)
        flags = [
            f"{'yes' if row[name]['within_noise'] else 'NO'} ({row[name]['difference']:+.3f})"
            for name in ORIGINALS
            if name in row
        ]
        print(f"{row['probe']:<20} {row['metric']:<6} {cells}  {' / '.join(flags)}")


def measure(
    model: Path, dataset: Path, settings: ProbeSettings, seeds: int, workers: int
) -> tuple[dict[str, list[Metrics]], dict[str, float], bool]:
    """Metrics of every protocol for probe seeds 0..seeds-1, the wall times of seed 0, and whether the
    original as its scripts run it gave the lean run's metrics."""
    runs: dict[str, list[Metrics]] = {name: [] for name in (OURS, OURS_AS_ORIGINAL, *ORIGINALS)}
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="sie-bench-evaluation-") as temporary:
        folder = Path(temporary)
        features = folder / "features"
        for seed in range(seeds):
            seeded = dataclasses.replace(settings, seed=seed)
            if seed == 0:  # timed: the feature pass and the probes
                seconds[OURS], metrics = run_ours(model, dataset, seeded, folder)
            else:  # the features do not depend on the probe seed
                metrics = probe_all(features, dataset, seeded, folder)
            runs[OURS].append(metrics)
            one_pair = dataclasses.replace(seeded, val_pairs_per_object=1)
            runs[OURS_AS_ORIGINAL].append(probe_all(features, dataset, one_pair, folder))
            parts = [key.split("-")[1] for key in metrics if key.startswith("classification-")]
            for batchnorm in ("eval", "train"):
                elapsed, metrics = run_original(model, dataset, seeded, parts, Protocol(batchnorm=batchnorm))
                runs[f"original, {batchnorm}-mode BN"].append(metrics)
                if seed == 0 and batchnorm == "train":
                    seconds[LEAN] = elapsed
            print(f"seed {seed} done", file=sys.stderr, flush=True)
    first_seed = dataclasses.replace(settings, seed=0)
    scripted = Protocol(batchnorm="train", loader_workers=workers)
    seconds[SCRIPTED], metrics = run_original(model, dataset, first_seed, parts, scripted)
    return runs, seconds, metrics == runs["original, train-mode BN"][0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=5, help="probe seeds 0..N-1 for the metric comparison")
    parser.add_argument(
        "--loader-workers",
        type=int,
        default=None,
        help="DataLoader workers of the original as its scripts run it (theirs: 10; default: --threads)",
    )
    arguments = parser.parse_args()
    if arguments.seeds < 1:
        parser.error(f"--seeds must be at least 1, got {arguments.seeds}")
    torch.set_num_threads(arguments.threads)
    workers = arguments.threads if arguments.loader_workers is None else arguments.loader_workers
    settings = ProbeSettings(epochs=arguments.epochs, batch_size=arguments.batch_size, device="cpu")
    runs, seconds, same = measure(arguments.model, arguments.dataset, settings, arguments.seeds, workers)
    rows = compare(runs)
    print(
        f"model {arguments.model}, dataset {arguments.dataset}, {arguments.epochs} epochs, "
        f"batch {arguments.batch_size}, {arguments.threads} threads, {len(rows)} probes, "
        f"seeds 0-{arguments.seeds - 1}"
    )
    print_comparison(rows)
    ours, lean, scripted = (seconds[name] for name in (OURS, LEAN, SCRIPTED))
    print(
        f"wall time (seed 0): ours {ours:.1f} s; original protocol lean {lean:.1f} s ({lean / ours:.1f}x), "
        f"as its scripts run it ({workers} loader workers) {scripted:.1f} s "
        f"({scripted / ours:.1f}x); its metrics {'equal' if same else 'DIFFER from'} the lean run's"
    )
    print(json.dumps({"seconds": seconds, "loader_workers": workers, "comparison": rows, "runs": runs}))


if __name__ == "__main__":
    main()

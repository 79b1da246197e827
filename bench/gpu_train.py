"""Part "train" of ``bench/gpu.py``: training throughput of the paper's SIE model (bench/train.py's steps).

On CUDA: the largest batch (pairs) up to 512 that fits in fp32 (tried 512, 256, ... in fp32, the
variant that needs the most memory), then images/s in fp32, bf16, bf16 + channels-last, fp16 (+ the
gradient scaler) + channels-last, and bf16 + channels-last under ``torch.compile`` when the budget
leaves time for its compilation. On the CPU, the same steps at a small batch (on a CPU-only run: the
non-compiled variants at toy size, to execute every CPU path).
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import yaml

from gpu_common import REPOSITORY, PartContext, PartResult
from sie.models.methods import ModelConfig
from train import images_per_second

BENCH = Path(__file__).resolve().parent
PAPER_CONFIG = REPOSITORY / "configs" / "paper.yaml"
TRAINING_OBJECTS = 41_920
"""Training objects of the release's split (2,096,000 training views / 50 views)."""
PAPER_EPOCHS = 2000
COMPILE_SECONDS = 75
"""Budget left that a torch.compile measurement needs (compilation of forward and backward included)."""
VARIANTS = (  # precision, channels-last, torch.compile
    ("fp32", False, False),
    ("bf16", False, False),
    ("bf16", True, False),
    ("fp16", True, False),
    ("bf16", True, True),
)


def paper_model(path: Path = PAPER_CONFIG) -> ModelConfig:
    """The model of configs/paper.yaml (55 classes), read with a safe loader."""
    model = yaml.safe_load(path.read_text())["pretrain"]["model"]
    return ModelConfig(**{**model, "num_classes": 55})


def toy_model() -> ModelConfig:
    """A narrow ResNet-18 with small heads: the same code paths in a fraction of a second."""
    return ModelConfig(arch="resnet18", width=8, mlp="64-64", equi=16, equi_factor=0.45, num_classes=55)


def largest_batch(
    trial: Callable[[int], object], candidates: Sequence[int], out_of_memory: type[BaseException]
) -> tuple[int | None, list[dict[str, Any]]]:
    """The first candidate batch for which ``trial`` runs without ``out_of_memory``, and every trial."""
    trials: list[dict[str, Any]] = []
    for batch in candidates:
        failure = None
        try:
            trial(batch)
        except out_of_memory as error:
            failure = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        if failure is None:
            trials.append({"batch": batch, "fits": True})
            return batch, trials
        trials.append({"batch": batch, "fits": False, "error": failure})
        gc.collect()  # the failed trial's tensors, held by its traceback until here
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return None, trials


def measure_row(
    context: PartContext,
    config: ModelConfig,
    device: torch.device,
    size: int,
    batch: int,
    variant: tuple[str, bool, bool],
    steps: int,
    warmup: int,
) -> dict[str, Any] | None:
    """One variant's images/s, appended to the part's rows (an error is recorded, not raised)."""
    precision, channels_last, compiled = variant
    label = f"{device.type} {variant_label(precision, channels_last, compiled)}"

    def measure() -> dict[str, Any] | None:
        if compiled:
            rate = compiled_rate(context, config, size, batch, precision, channels_last, steps, warmup)
            if rate is None:
                return None
        else:
            rate = images_per_second(
                "SIE", config, size, batch, device, precision, channels_last, steps, warmup
            )
        row = {
            "device": device.type,
            "precision": precision,
            "channels_last": channels_last,
            "compiled": compiled,
            "batch": batch,
            "steps": steps,
            "images_per_second": round(rate, 1),
        }
        if device.type == "cuda" and not compiled:
            row["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
            torch.cuda.reset_peak_memory_stats(device)
        context.result.figures.setdefault("rows", []).append(row)
        return row

    row = context.attempt(label, measure)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


COMPILED_STEPS = """
import json, sys
import torch
from train import images_per_second
from sie.models.methods import ModelConfig
torch.backends.cudnn.benchmark = True
settings = json.loads(sys.argv[1])
config, device = ModelConfig(**settings.pop("config")), torch.device(settings.pop("device"))
print(json.dumps(images_per_second("SIE", config, device=device, compile_model=True, **settings)))
"""


def compiled_rate(
    context: PartContext,
    config: ModelConfig,
    size: int,
    batch: int,
    precision: str,
    channels_last: bool,
    steps: int,
    warmup: int,
) -> float | None:
    """images/s under torch.compile, measured in a child process: a compilation that outlasts the part's
    budget is stopped there and noted (None), and the figures measured before it stay."""
    settings = {
        "config": dataclasses.asdict(config),
        "device": str(context.device),
        "size": size,
        "batch": batch,
    }
    settings["precision"] = precision
    settings |= {"channels_last": channels_last, "steps": steps, "warmup": warmup}
    timeout = context.remaining() - 5
    command = [sys.executable, "-c", COMPILED_STEPS, json.dumps(settings)]
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join([str(BENCH), environment.get("PYTHONPATH", "")])
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment)
    except subprocess.TimeoutExpired:
        context.result.notes.append(f"torch.compile: compiling + {steps} steps took over {timeout:.0f} s")
        return None
    if result.returncode != 0:
        raise RuntimeError(f"compiled steps exited {result.returncode}: {result.stderr[-1500:]}")
    return float(result.stdout.strip().splitlines()[-1])


def run(context: PartContext) -> PartResult:
    """The GPU's eager variants, then the CPU comparison, then (time allowing) torch.compile: the
    compilation, the least predictable in time, comes last so it can cost no other figure."""
    figures = context.result.figures
    config = toy_model() if context.quick else paper_model()
    size = 32 if context.quick else 256
    figures["model"] = {"method": "SIE", "arch": config.arch, "width": config.width, "mlp": config.mlp}
    figures["image_size"] = size
    steps, warmup = (2, 1) if context.quick else (10, 3)
    batch = None
    if context.cuda:
        torch.backends.cudnn.benchmark = True
        candidates = (16, 8) if context.quick else (512, 256, 128, 64, 32)

        def trial(batch: int) -> None:
            images_per_second("SIE", config, size, batch, context.device, "fp32", False, 1, 1)

        batch, figures["batch_trials"] = largest_batch(trial, candidates, torch.cuda.OutOfMemoryError)
        context.save()
        if batch is None:
            context.result.errors.append(f"no batch of {candidates} fits in fp32")
            return context.finish()
        figures["batch"] = batch
        for variant in VARIANTS[:-1]:
            measure_row(context, config, context.device, size, batch, variant, steps, warmup)
    cpu_variants = VARIANTS[:1] if context.cuda or not context.quick else VARIANTS[:-1]
    cpu_batch, cpu_steps = (4, 1) if context.quick else (16, 2)
    for variant in cpu_variants:
        measure_row(context, config, torch.device("cpu"), size, cpu_batch, variant, cpu_steps, 1)
    if batch is not None:
        if context.remaining() >= COMPILE_SECONDS:
            measure_row(context, config, context.device, size, batch, VARIANTS[-1], steps, warmup)
        else:
            left = context.remaining()
            context.result.notes.append(
                f"torch.compile not measured: {left:.0f} s left, needs {COMPILE_SECONDS}"
            )
    best = summarise(figures)
    cpu_rows = [
        row for row in figures.get("rows", []) if row["device"] == "cpu" and row["precision"] == "fp32"
    ]
    if best is not None and cpu_rows:
        figures["best_gpu_over_cpu_fp32"] = round(
            best["images_per_second"] / cpu_rows[0]["images_per_second"], 1
        )
    if context.quick:
        context.result.notes.append("toy model and sizes (--quick): the code paths, not the paper's figures")
    else:
        figures["paper_pretraining_hours"] = paper_hours(figures.get("rows", []))
    if not context.cuda:
        cpu_note = "CPU steps measured" + (" at toy size" if context.quick else "")
        return context.finish(skipped=f"no CUDA ({cpu_note}; torch.compile is measured on CUDA only)")
    return context.finish()


def summarise(figures: dict[str, Any]) -> dict[str, Any] | None:
    """Speed-ups over fp32 on the GPU, whether compilation helps, and the best row."""
    rows = [row for row in figures.get("rows", []) if row["device"] == "cuda"]
    if not rows:
        return None
    reference = next((row for row in rows if row["precision"] == "fp32"), None)
    if reference:
        figures["speedup_over_fp32"] = {
            f"{row['precision']}{' channels-last' if row['channels_last'] else ''}"
            f"{' compiled' if row['compiled'] else ''}": round(
                row["images_per_second"] / reference["images_per_second"], 2
            )
            for row in rows
        }
    eager = next(
        (row for row in rows if row["precision"] == "bf16" and row["channels_last"] and not row["compiled"]),
        None,
    )
    compiled = next((row for row in rows if row["compiled"]), None)
    if eager and compiled:
        gain = compiled["images_per_second"] / eager["images_per_second"]
        figures["compile_gain"] = round(gain, 2)
        figures["compile_helps"] = gain > 1.05
    return max(rows, key=lambda row: row["images_per_second"])


def paper_hours(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Hours of the paper's pretraining (2000 epochs x 41,920 objects x 2 views) at each row's rate, on
    the one device measured."""
    images = PAPER_EPOCHS * TRAINING_OBJECTS * 2
    return {
        f"{row['device']} {row_label(row)}": round(images / row["images_per_second"] / 3600, 1)
        for row in rows
    }


def variant_label(precision: str, channels_last: bool, compiled: bool) -> str:
    """'bf16 channels-last compiled' and the like."""
    return f"{precision}{' channels-last' if channels_last else ''}{' compiled' if compiled else ''}"


def row_label(row: dict[str, Any]) -> str:
    """The variant label of a measured row."""
    return variant_label(row["precision"], row["channels_last"], row["compiled"])

"""Part "render" of ``bench/gpu.py``: Cycles on the GPU (``sie render --device gpu``: OptiX, else CUDA).

Renders procedural objects at the paper's settings (256 px, at most 100 samples, adaptive threshold 0.01,
denoising, 3 bounces: ``bench/render.py``'s PAPER_RENDER) and at the default config.yaml settings, one
shard each in a fresh process as the workflow runs it; the per-image time is the shard marker's render
time (start-up excluded, reported apart). The paper setting is compared with this project's CPU figure
(``bench/RESULTS.md``: 8.58 s per image on the 2-core VM) and projected to the full 3DIEBench (52,472
objects x 50 views) against the paper's ~500 GPU-hours (V100).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gpu_common import REPOSITORY, PartContext, PartResult
from render import PAPER_RENDER, TEST_RENDER

CPU_SECONDS_PER_IMAGE = 8.58
"""bench/RESULTS.md, rendering at the paper's settings on the project's 2-core VM."""
FULL_DATASET_IMAGES = 52_472 * 50
PAPER_GPU_HOURS = 500
CLASSES = ["chair", "mug", "airplane", "lamp"]


def default_settings() -> dict[str, Any]:
    """The render settings and image size of config.yaml's dataset variant (resolved with defaults)."""
    from sie.config import load_config_files, resolve_config  # here: the part skips cleanly without bpy

    config = resolve_config(load_config_files([str(REPOSITORY / "config.yaml")]))
    name, variant = next(iter(config["datasets"].items()))
    return {"variant": name, "image_size": variant["image_size"], "render": variant["render"]}


def render_shard(
    name: str,
    image_size: int,
    render: dict,
    classes: int,
    views: int,
    device: str,
    workdir: Path,
    timeout: float,
) -> dict[str, Any]:
    """Render one object of each of ``classes`` procedural classes, ``views`` views each, as one shard of
    ``sie render`` in a fresh process; the shard marker's figures."""
    from sie.data.shards import shard_marker

    spec = {
        "name": f"gpu-bench-{name}",
        "source": "procedural",
        "classes": CLASSES[:classes],
        "objects_per_class": 1,
        "views": views,
        "image_size": image_size,
        "chunk_size": classes,
        "render": render,
    }
    output = workdir / name
    command = [sys.executable, "-m", "sie.cli", "render", "--spec", json.dumps(spec), "--shard", "0"]
    command += ["--output", str(output), "--threads", str(os.cpu_count() or 1), "--device", device]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=max(timeout, 1), cwd=REPOSITORY)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(
            f"sie render exited {result.returncode}: {(result.stderr or result.stdout)[-1500:]}"
        )
    marker = json.loads(shard_marker(output, 0).read_text())
    seconds = marker["seconds_per_image"]
    return {
        "setting": name,
        "image_size": image_size,
        **{
            key: render[key]
            for key in ("samples", "noise_threshold", "denoise", "max_bounces")
            if key in render
        },
        "device": marker["device"],
        "images": marker["rendered_views"],
        "seconds_per_image": seconds,
        "images_per_second": round(1 / seconds, 2) if seconds else None,
        "startup_seconds": round(wall - marker["render_seconds"], 2),
        "wall_seconds": round(wall, 2),
    }


def projection(seconds_per_image: float) -> dict[str, float]:
    """The full 3DIEBench at this rate on one GPU, against the paper and this project's CPU figure."""
    hours = FULL_DATASET_IMAGES * seconds_per_image / 3600
    return {
        "full_dataset_images": FULL_DATASET_IMAGES,
        "gpu_hours": round(hours, 1),
        "paper_gpu_hours_v100": PAPER_GPU_HOURS,
        "hours_over_paper": round(hours / PAPER_GPU_HOURS, 3),
        "cpu_seconds_per_image_2_core_vm": CPU_SECONDS_PER_IMAGE,
        "speedup_over_2_core_vm": round(CPU_SECONDS_PER_IMAGE / seconds_per_image, 1),
    }


def run(context: PartContext) -> PartResult:
    """Render at the paper's and the default settings (toy settings on the CPU with --quick)."""
    figures = context.result.figures
    if importlib.util.find_spec("bpy") is None:
        return context.finish(
            skipped="bpy (Blender as a Python module, 800 MB, Python 3.11 only) is not importable here: "
            "run on a GPU node with the project's .venv (make setup)"
        )
    device = "gpu" if context.cuda else "cpu"
    if context.quick:
        settings = [("toy", 32, TEST_RENDER, 1, 2)]
    else:
        default = default_settings()
        figures["default_variant"] = default["variant"]
        settings = [
            ("paper", 256, PAPER_RENDER, 4, 3),
            ("default", default["image_size"], default["render"], 4, 10),
        ]
    with tempfile.TemporaryDirectory(prefix="sie-gpu-render-") as temporary:
        for name, size, render, classes, views in settings:
            row = context.attempt(
                f"render {name}",
                lambda n=name, s=size, r=render, c=classes, v=views: render_shard(
                    n, s, r, c, v, device, Path(temporary), context.remaining() - 5
                ),
            )
            if row:
                figures.setdefault("rows", []).append(row)
                if name == "paper" and row["seconds_per_image"]:
                    figures["paper_projection"] = projection(row["seconds_per_image"])
                context.save()
    if not context.cuda:
        return context.finish(
            skipped="no CUDA (Cycles rendered on the CPU" + (" at toy size)" if context.quick else ")")
        )
    used = {row["device"] for row in figures.get("rows", [])}
    if used and used <= {"cpu"}:
        context.result.errors.append("sie render --device gpu rendered on the CPU")
    return context.finish()

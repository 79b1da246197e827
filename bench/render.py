#!/usr/bin/env python
"""Benchmark the render stage: seconds per image, and overhead over a bare Cycles loop.

For each setting (the test configuration's and the paper's), render the same procedural objects:

- pipeline: ``sie render`` for one shard, in a fresh process, exactly as the workflow runs it
  (latents, model generation, OBJ import, atomic writes, metadata stripping, progress lines);
- bare: a fresh process that builds the same scene with plain bpy calls, imports the same OBJ files
  and renders the same number of views to JPEG, nothing else.

Both timings are wall-clock times of the whole process, start-up included. Usage::

    .venv/bin/python bench/render.py [--objects 10] [--views 20] [--paper-objects 1] [--paper-views 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BARE_LOOP = r"""
import math, sys, json
import bpy, mathutils
settings = json.loads(sys.argv[1])
bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
scene.render.engine = "CYCLES"
scene.cycles.device = "CPU"
scene.cycles.samples = settings["samples"]
scene.cycles.use_adaptive_sampling = settings["noise_threshold"] > 0
if settings["noise_threshold"] > 0:
    scene.cycles.adaptive_threshold = settings["noise_threshold"]
scene.cycles.use_denoising = settings["denoise"]
scene.cycles.max_bounces = settings["max_bounces"]
scene.render.threads_mode = "FIXED"
scene.render.threads = settings["threads"]
scene.render.use_persistent_data = True
scene.render.resolution_x = scene.render.resolution_y = settings["image_size"]
scene.view_settings.view_transform = "Standard"
scene.render.image_settings.file_format = "JPEG"
scene.world = bpy.data.worlds.new("World")
def aim(thing):
    thing.rotation_euler = (-mathutils.Vector(thing.location)).to_track_quat("-Z", "Y").to_euler()
camera = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
scene.collection.objects.link(camera)
camera.location = (0.0, 2.5 / math.sqrt(2), 2.5 / math.sqrt(2))
aim(camera)
scene.camera = camera
bpy.ops.mesh.primitive_plane_add(size=10000, location=(0, 0, -1))
floor = bpy.data.materials.new("Floor")
bpy.context.active_object.data.materials.append(floor)
floor_color = floor.node_tree.nodes["Principled BSDF"].inputs["Base Color"]
sun = bpy.data.lights.new("Sun", "SUN"); sun.energy = 1.5; sun.angle = math.pi / 2
scene.collection.objects.link(bpy.data.objects.new("Sun", sun))
spot_data = bpy.data.lights.new("Spot", "SPOT"); spot_data.energy = 500; spot_data.spot_size = math.pi / 8
spot = bpy.data.objects.new("Spot", spot_data); scene.collection.objects.link(spot)
import colorsys
for index, (path, latents) in enumerate(zip(settings["models"], settings["latents"])):
    before = set(bpy.data.objects)
    bpy.ops.wm.obj_import(filepath=path, forward_axis="NEGATIVE_Z", up_axis="Y")
    model = next(item for item in bpy.data.objects if item not in before)
    for view, (ax, ay, az, floor_hue, theta, phi, spot_hue) in enumerate(latents):
        model.rotation_euler = (ax, ay, az)
        floor_color.default_value = (*colorsys.hsv_to_rgb(floor_hue, 0.6, 0.6), 1.0)
        radius = 4 * math.sin(theta)
        spot.location = (radius * math.cos(phi), radius * math.sin(phi), 4 * math.cos(theta))
        aim(spot)
        spot_data.color = colorsys.hsv_to_rgb(spot_hue, 1.0, 0.8)
        scene.render.filepath = f"{settings['output']}/bare_{index}_{view}.jpg"
        bpy.ops.render.render(write_still=True)
    bpy.data.objects.remove(model, do_unlink=True)
"""

TEST_RENDER = {"samples": 4, "noise_threshold": 0, "denoise": False, "max_bounces": 2}
PAPER_RENDER = {"samples": 100, "noise_threshold": 0.01, "denoise": True, "max_bounces": 3}


def run_timed(command: list[str], environment: dict[str, str]) -> float:
    """Wall-clock seconds of a command (its output discarded); fail loudly on error."""
    started = time.perf_counter()
    result = subprocess.run(command, env=environment, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{command[:3]} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return time.perf_counter() - started


def measure(
    name: str, image_size: int, render: dict, objects: int, views: int, threads: int, workdir: Path
) -> dict:
    """Time the pipeline and the bare loop on the same objects, views and settings.

    Each is also run once with nothing to render (the pipeline finds every view done; the bare loop gets
    no views) to separate the fixed start-up cost from the cost per image.
    """
    spec = {
        "name": f"bench-{name}",
        "source": "procedural",
        "classes": ["chair", "mug", "airplane", "lamp"],
        "objects_per_class": objects,
        "views": views,
        "image_size": image_size,
        "chunk_size": 4 * objects,
        "render": render,
    }
    output = workdir / name
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = [
        "sie",
        "render",
        "--spec",
        json.dumps(spec),
        "--shard",
        "0",
        "--output",
        str(output),
        "--threads",
        str(threads),
    ]
    pipeline = run_timed(command, environment)
    pipeline_fixed = run_timed(command, environment)  # every view is done now: start-up and checks only
    images = 4 * objects * views
    models = sorted((output / "models").rglob("model_normalized.obj"))
    latents = [
        [
            np.load(
                output / "data" / path.parents[2].name / path.parents[1].name / f"latent_{view}.npy"
            ).tolist()
            for view in range(views)
        ]
        for path in models
    ]
    bare_output = workdir / f"{name}-bare"
    bare_output.mkdir()
    settings = {
        **render,
        "image_size": image_size,
        "threads": threads,
        "models": [str(path) for path in models],
        "latents": latents,
        "output": str(bare_output),
    }
    bare = run_timed([sys.executable, "-c", BARE_LOOP, json.dumps(settings)], environment)
    empty = {**settings, "models": [], "latents": []}
    bare_fixed = run_timed([sys.executable, "-c", BARE_LOOP, json.dumps(empty)], environment)
    return {
        "setting": name,
        "image_size": image_size,
        **render,
        "images": images,
        "pipeline_seconds_per_image": pipeline / images,
        "bare_seconds_per_image": bare / images,
        "overhead_percent": 100 * (pipeline / bare - 1),
        "pipeline_startup_seconds": pipeline_fixed,
        "bare_startup_seconds": bare_fixed,
        "per_image_overhead_percent": 100 * ((pipeline - pipeline_fixed) / (bare - bare_fixed) - 1),
    }


def main() -> None:
    """Run both settings and print a table (and JSON lines)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--objects", type=int, default=10, help="objects per class at the test setting (4 classes)"
    )
    parser.add_argument("--views", type=int, default=20, help="views per object at the test setting")
    parser.add_argument("--paper-objects", type=int, default=1, help="objects per class at the paper setting")
    parser.add_argument("--paper-views", type=int, default=2, help="views per object at the paper setting")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="sie-bench-render-"))
    try:
        rows = [
            measure("test", 32, TEST_RENDER, args.objects, args.views, args.threads, workdir),
            measure("paper", 256, PAPER_RENDER, args.paper_objects, args.paper_views, args.threads, workdir),
        ]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"{'setting':8} {'px':>4} {'spp':>4} {'images':>6} {'pipeline s/img':>15} {'bare s/img':>11} "
        f"{'overhead':>9} {'start-up s (pipeline/bare)':>27} {'per-image overhead':>19}"
    )
    for row in rows:
        startup = f"{row['pipeline_startup_seconds']:.2f} / {row['bare_startup_seconds']:.2f}"
        print(
            f"{row['setting']:8} {row['image_size']:>4} {row['samples']:>4} {row['images']:>6} "
            f"{row['pipeline_seconds_per_image']:>15.3f} {row['bare_seconds_per_image']:>11.3f} "
            f"{row['overhead_percent']:>8.1f}% {startup:>27} {row['per_image_overhead_percent']:>18.1f}%"
        )
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()

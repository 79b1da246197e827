"""Render 3DIEBench views with Blender's Cycles. This is the only module that imports bpy.

One call renders one shard (a chunk of objects) in one Blender process. Per view: the latent comes
from the view's own generator (``sie.data.latents``); the image is rendered to a temporary JPEG and
renamed into place, then the latent is written the same way. A view counts as done when both files
exist, so a killed render resumes at the first missing view and reproduces the same files.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bpy
import mathutils
import numpy as np

from sie.config import DatasetVariant
from sie.data import scene as scene_description
from sie.data.latents import sample_view_latent, view_generator
from sie.data.layout import image_path, latent_path, strip_jpeg_metadata, view_is_complete
from sie.data.objects import (
    ObjectRef,
    procedural_class_name,
    procedural_seed,
    shapenet_model_path,
    shard_objects,
    variant_objects,
)
from sie.data.shards import check_render_settings, data_root, models_root, shard_marker
from sie.io import atomic_path, write_json, write_npy
from sie.progress import Progress

GPU_BACKENDS = ("OPTIX", "CUDA", "HIP", "ONEAPI")
CYCLES_SEED_STREAM = 1


@dataclass
class Stage:
    """Handles on the Blender objects that change per view."""

    scene: Any
    floor_color: Any
    spot: Any
    device: str


def render_shard(
    variant: DatasetVariant, shard: int, output_dir: Path, threads: int, device: str = "cpu"
) -> dict:
    """Render every missing view of one shard and write its completion marker; returns the marker."""
    started = time.perf_counter()
    items = shard_objects(variant_objects(variant), variant.chunk_size, shard)
    models = {item: model_path(variant, output_dir, item) for item in items}
    check_render_settings(output_dir, variant)
    root = data_root(output_dir)
    remove_stale_temporaries(root, items)
    pending = {
        item: [v for v in range(variant.views) if not view_is_complete(root, item, v)] for item in items
    }
    total = sum(len(views) for views in pending.values())
    label = f"render {variant.name} shard {shard}"
    print(
        f"{label}: {len(items)} objects, {total} views to render, "
        f"{len(items) * variant.views - total} already done",
        file=sys.stderr,
        flush=True,
    )
    render_seconds = 0.0
    used_device = "none"
    if total:
        stage = build_stage(variant, threads, device)
        used_device = stage.device
        progress = Progress(label, total, unit="views")
        for item in items:
            if pending[item]:
                render_seconds += render_object(
                    stage, variant, root, item, models[item], pending[item], progress
                )
    report = {
        "variant": variant.name,
        "shard": shard,
        "objects": [item.key for item in items],
        "views": variant.views,
        "rendered_views": total,
        "skipped_views": len(items) * variant.views - total,
        "render_seconds": round(render_seconds, 3),
        "seconds_per_image": round(render_seconds / total, 4) if total else None,
        "wall_seconds": round(time.perf_counter() - started, 3),
        "threads": threads,
        "device": used_device,
        "blender": bpy.app.version_string,
    }
    write_json(shard_marker(output_dir, shard), report)
    return report


def remove_stale_temporaries(root: Path, items: Sequence[ObjectRef]) -> None:
    """Delete temporary files a killed render left in its objects' folders (never counted as views)."""
    for item in items:
        folder = root / item.synset / item.object_id
        if folder.is_dir():
            for leftover in folder.glob(".*.tmp*"):
                leftover.unlink(missing_ok=True)


def model_path(variant: DatasetVariant, output_dir: Path, item: ObjectRef) -> Path:
    """The OBJ model of an object: ShapeNet's file, or a procedural model written now (atomically)."""
    if variant.source == "shapenet":
        if not Path(variant.shapenet_root).expanduser().is_dir():
            raise FileNotFoundError(
                f"{variant.shapenet_root}: ShapeNet root not found (datasets.{variant.name}.shapenet_root)"
            )
        path = shapenet_model_path(variant.shapenet_root, item)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: ShapeNet model file missing for object {item.key}")
        return path
    if variant.source == "procedural":
        from sie.data.mesh import write_obj
        from sie.data.procedural import build_object

        path = shapenet_model_path(models_root(output_dir), item)  # procedural models in ShapeNet's layout
        mesh = build_object(procedural_class_name(item), procedural_seed(variant.seed, item))
        write_obj(mesh, path)
        return path
    raise ValueError(f"datasets.{variant.name}.source: '{variant.source}' datasets are not rendered")


def build_stage(variant: DatasetVariant, threads: int, device: str) -> Stage:
    """Reset Blender and build the fixed part of the scene: renderer, camera, floor, lights."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    used_device = configure_cycles(scene, variant, threads, device)
    add_camera(scene)
    floor_color = add_floor(scene)
    spot = add_lights(scene)
    world = bpy.data.worlds.new("World")
    scene.world = world
    return Stage(scene=scene, floor_color=floor_color, spot=spot, device=used_device)


def configure_cycles(scene: Any, variant: DatasetVariant, threads: int, device: str) -> str:
    """Cycles, samples, adaptive sampling, denoising, bounces, threads, colour management, JPEG output."""
    settings = variant.render
    scene.render.engine = "CYCLES"
    used_device = select_device(scene, device)
    scene.cycles.samples = settings.samples
    scene.cycles.use_adaptive_sampling = settings.noise_threshold > 0
    if settings.noise_threshold > 0:
        scene.cycles.adaptive_threshold = settings.noise_threshold
    scene.cycles.use_denoising = settings.denoise
    if settings.denoise:
        scene.cycles.denoiser = "OPENIMAGEDENOISE"
    scene.cycles.max_bounces = settings.max_bounces
    scene.render.use_persistent_data = True
    scene.render.threads_mode = "FIXED"
    scene.render.threads = max(1, threads)
    scene.render.resolution_x = scene.render.resolution_y = variant.image_size
    scene.render.resolution_percentage = 100
    scene.view_settings.view_transform = settings.view_transform
    scene.view_settings.look = "None"
    scene.render.image_settings.file_format = "JPEG"
    scene.render.image_settings.color_mode = "RGB"
    scene.render.image_settings.quality = settings.jpeg_quality
    disable_metadata(scene)
    return used_device


def disable_metadata(scene: Any) -> None:
    """Keep Blender's stamps (date, render time, file name...) out of the JPEGs: same view, same bytes."""
    for name in dir(scene.render):
        if name.startswith("use_stamp"):
            setattr(scene.render, name, False)


def select_device(scene: Any, device: str) -> str:
    """Use the CPU, or the first GPU backend that finds devices ('auto' falls back to the CPU)."""
    if device not in ("cpu", "gpu", "auto"):
        raise ValueError(f"render device must be cpu, gpu or auto, got {device!r}")
    if device != "cpu":
        preferences = bpy.context.preferences.addons["cycles"].preferences
        for backend in GPU_BACKENDS:
            try:
                preferences.compute_device_type = backend
            except TypeError:
                continue
            preferences.get_devices()
            gpus = [entry for entry in preferences.devices if entry.type == backend]
            if gpus:
                for entry in preferences.devices:
                    entry.use = entry.type == backend
                scene.cycles.device = "GPU"
                return backend.lower()
        if device == "gpu":
            raise RuntimeError(f"no GPU found for Cycles (tried {', '.join(GPU_BACKENDS)})")
    scene.cycles.device = "CPU"
    return "cpu"


def add_camera(scene: Any) -> None:
    """The fixed camera, looking at the origin (Blender's default lens)."""
    camera = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    scene.collection.objects.link(camera)
    camera.location = scene_description.camera_location()
    aim_at_origin(camera)
    scene.camera = camera


def add_floor(scene: Any) -> Any:
    """A large plane at z = -1; returns the colour input of its material."""
    size = scene_description.FLOOR_SIZE / 2
    mesh = bpy.data.meshes.new("Floor")
    mesh.from_pydata(
        [(-size, -size, 0), (size, -size, 0), (size, size, 0), (-size, size, 0)], [], [(0, 1, 2, 3)]
    )
    floor = bpy.data.objects.new("Floor", mesh)
    floor.location = (0.0, 0.0, scene_description.FLOOR_HEIGHT)
    scene.collection.objects.link(floor)
    material = bpy.data.materials.new("Floor")  # Blender 5 materials come with a Principled BSDF node tree
    floor.data.materials.append(material)
    return material.node_tree.nodes["Principled BSDF"].inputs["Base Color"]


def add_lights(scene: Any) -> Any:
    """A soft sun (default orientation) and the spot light; returns the spot object."""
    sun_data = bpy.data.lights.new("Sun", type="SUN")
    sun_data.energy = scene_description.SUN_ENERGY
    sun_data.angle = scene_description.SUN_ANGLE
    scene.collection.objects.link(bpy.data.objects.new("Sun", sun_data))
    spot_data = bpy.data.lights.new("Spot", type="SPOT")
    spot_data.energy = scene_description.SPOT_ENERGY
    spot_data.spot_size = scene_description.SPOT_CONE
    spot = bpy.data.objects.new("Spot", spot_data)
    scene.collection.objects.link(spot)
    return spot


def aim_at_origin(target: Any) -> None:
    """Point an object's -Z axis (cameras, lights) at the origin, +Y up."""
    direction = -mathutils.Vector(target.location)
    target.rotation_euler = direction.to_track_quat("-Z", "Y").to_euler()


def import_model(path: Path) -> Any:
    """Import an OBJ (ShapeNet axes: Y up, -Z forward), join its parts, centre its bounding box."""
    before = set(bpy.data.objects)
    with quiet_stdout():
        bpy.ops.wm.obj_import(filepath=str(path), forward_axis="NEGATIVE_Z", up_axis="Y")
    parts = [item for item in bpy.data.objects if item not in before and item.type == "MESH"]
    if not parts:
        raise ValueError(f"{path}: the OBJ file holds no mesh")
    model = parts[0]
    if len(parts) > 1:
        with bpy.context.temp_override(active_object=model, selected_editable_objects=parts):
            bpy.ops.object.join()
    model.data.transform(model.matrix_world)
    model.matrix_world = mathutils.Matrix.Identity(4)
    coordinates = np.empty(len(model.data.vertices) * 3)
    model.data.vertices.foreach_get("co", coordinates)
    coordinates = coordinates.reshape(-1, 3)
    centre = (coordinates.min(axis=0) + coordinates.max(axis=0)) / 2
    model.data.transform(mathutils.Matrix.Translation(-mathutils.Vector(centre)))
    model.rotation_mode = "XYZ"
    return model


def remove_model(model: Any) -> None:
    """Delete an imported model and the data blocks only it used."""
    bpy.data.objects.remove(model, do_unlink=True)
    bpy.data.orphans_purge(do_local_ids=True, do_linked_ids=True, do_recursive=True)


def render_object(
    stage: Stage,
    variant: DatasetVariant,
    root: Path,
    item: ObjectRef,
    model_file: Path,
    views: Sequence[int],
    progress: Progress,
) -> float:
    """Render the given views of one object; returns the seconds spent in Cycles."""
    model = import_model(model_file)
    seconds = 0.0
    try:
        for view in views:
            latent = sample_view_latent(variant.latents, variant.seed, item.key, view)
            cycles_seed = int(
                view_generator(variant.seed, item.key, view, CYCLES_SEED_STREAM).integers(2**31)
            )
            started = time.perf_counter()
            render_view(stage, model, latent, cycles_seed, image_path(root, item, view))
            seconds += time.perf_counter() - started
            write_npy(latent_path(root, item, view), latent)
            progress.advance(note=item.key)
    finally:
        remove_model(model)
    return seconds


def render_view(stage: Stage, model: Any, latent: np.ndarray, cycles_seed: int, destination: Path) -> None:
    """Set one view's rotation, floor and spot, render, and move the JPEG into place atomically."""
    view = scene_description.view_scene(latent)
    model.rotation_euler = view.rotation_euler
    stage.floor_color.default_value = (*view.floor_color, 1.0)
    stage.spot.location = view.spot_location
    aim_at_origin(stage.spot)
    stage.spot.data.color = view.spot_color
    stage.scene.cycles.seed = cycles_seed
    with atomic_path(destination, suffix=".jpg") as temporary:
        stage.scene.render.filepath = str(temporary)
        with quiet_stdout():
            bpy.ops.render.render(write_still=True)
        if not temporary.is_file() or temporary.stat().st_size == 0:
            raise RuntimeError(f"{destination}: Blender wrote no image")
        temporary.write_bytes(strip_jpeg_metadata(temporary.read_bytes()))


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Silence Blender's per-render chatter on file descriptor 1 (our progress goes to stderr)."""
    sys.stdout.flush()
    libc = ctypes.CDLL(None)
    saved = os.dup(1)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 1)
        try:
            yield
        finally:
            libc.fflush(None)
            os.dup2(saved, 1)
            os.close(saved)

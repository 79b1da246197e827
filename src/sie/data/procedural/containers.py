"""Turned containers: mug, bottle, bowl and vase (jar). Y up, front towards -Z, sizes in metres."""

from __future__ import annotations

import numpy as np

from sie.data.mesh import Material, Mesh, merge, transform
from sie.data.procedural import materials as palette
from sie.data.procedural.curves import bezier
from sie.data.procedural.primitives import cylinder, lathe, tube


def _rim(outer: tuple[float, float], thickness: float, count: int = 6) -> list[tuple[float, float]]:
    """Half circle over a wall top, from the outer wall to the inner wall (excluding both ends)."""
    center_radius, height = outer[0] - thickness / 2, outer[1]
    angles = np.linspace(0.0, np.pi, count + 2)[1:-1]
    return [(center_radius + thickness / 2 * np.cos(a), height + thickness / 2 * np.sin(a)) for a in angles]


def _hollow_profile(
    outer: np.ndarray, thickness: float, floor: float, materials: tuple[Material, Material]
) -> tuple[list, list]:
    """Closed lathe profile of a vessel whose outer wall is ``outer`` (bottom to rim) with a wall and floor.

    Returns the profile and one material per segment (outer material outside, inner material inside).
    """
    outside, inside = materials
    inner = outer[::-1].copy()
    inner[:, 0] -= thickness
    inner = inner[inner[:, 1] > floor + 1e-9]
    inner = np.vstack([inner, [max(inner[-1, 0] - thickness, 0.0), floor]])
    rim = _rim(tuple(outer[-1]), thickness)
    profile = [(0.0, 0.0), *map(tuple, outer), *rim, *map(tuple, inner), (0.0, floor)]
    outer_count = 1 + len(outer) + len(rim) // 2
    segment_materials = [outside] * outer_count + [inside] * (len(profile) - 1 - outer_count)
    return profile, segment_materials


def build_mug(rng: np.random.Generator) -> Mesh:
    """Ceramic mug: straight, tapered or barrel body with a C or D handle on the +X side."""
    radius = rng.uniform(0.036, 0.048)
    height = rng.uniform(0.075, 0.115)
    wall = rng.uniform(0.0035, 0.006)
    style = ("straight", "tapered", "barrel", "flared")[int(rng.integers(4))]
    heights = np.linspace(0.0, 1.0, 10)
    if style == "straight":
        radii = np.full_like(heights, radius)
    elif style == "tapered":
        radii = radius * (0.8 + 0.2 * heights)
    elif style == "flared":
        radii = radius * (1.0 - 0.15 * heights)
    else:
        radii = radius * (0.9 + 0.18 * np.sin(np.pi * heights))
    bevel = 0.004
    outer = np.column_stack([radii, heights * height])
    outer[0] = (radii[0] - bevel, 0.0)
    outer = np.vstack([outer[:1], [radii[0], bevel], outer[1:]])
    body_material = palette.ceramic(rng, "ceramic")
    inner_material = (
        body_material if rng.random() < 0.5 else palette.solid("ceramic_inner", (0.93, 0.92, 0.88), 0.15)
    )
    profile, segment_materials = _hollow_profile(
        outer, wall, rng.uniform(0.006, 0.01), (body_material, inner_material)
    )
    body = lathe(profile, segment_materials, segments=40)
    return merge([body, _mug_handle(rng, outer, wall, body_material)])


def _mug_handle(rng: np.random.Generator, outer: np.ndarray, wall: float, material: Material) -> Mesh:
    """A handle swept in the XY plane; both ends are buried in the wall."""
    height = outer[-1, 1]
    top = height * rng.uniform(0.72, 0.85)
    bottom = height * rng.uniform(0.18, 0.35)
    reach = rng.uniform(0.022, 0.036)
    start = (float(np.interp(top, outer[:, 1], outer[:, 0])) - wall / 2, top)
    end = (float(np.interp(bottom, outer[:, 1], outer[:, 0])) - wall / 2, bottom)
    outermost = max(start[0], end[0]) + reach
    if rng.random() < 0.5:  # D handle: horizontal stubs and a fairly straight outer side
        controls = [start, (outermost + reach * 0.3, top), (outermost + reach * 0.3, bottom), end]
    else:  # C handle: a rounder loop that rises above its top joint
        lift = (top - bottom) * rng.uniform(0.15, 0.35)
        controls = [start, (outermost, top + lift), (outermost, bottom - lift * 0.5), end]
    path = bezier(controls, 24)
    path = np.column_stack([path, np.zeros(len(path))])
    thickness = rng.uniform(0.0045, 0.0065)
    handle = tube(path, thickness, material, segments=12)
    flatten = rng.uniform(0.7, 1.0)
    return transform(handle, np.eye(3), scale=(1.0, 1.0, flatten))


def build_bottle(rng: np.random.Generator) -> Mesh:
    """Glass bottle: wine, beer, soda or liquor proportions, optional label, cap or cork."""
    style = ("wine", "beer", "soda", "liquor")[int(rng.integers(4))]
    radius = rng.uniform(0.03, 0.045)
    neck = radius * rng.uniform(0.3, 0.4)
    body_height, shoulder_height, neck_height = {
        "wine": (
            radius * rng.uniform(4.5, 5.5),
            radius * rng.uniform(1.0, 1.6),
            radius * rng.uniform(2.2, 2.8),
        ),
        "beer": (
            radius * rng.uniform(3.2, 3.8),
            radius * rng.uniform(1.8, 2.4),
            radius * rng.uniform(1.6, 2.2),
        ),
        "soda": (
            radius * rng.uniform(4.0, 5.0),
            radius * rng.uniform(0.8, 1.2),
            radius * rng.uniform(0.6, 1.0),
        ),
        "liquor": (
            radius * rng.uniform(2.2, 3.0),
            radius * rng.uniform(0.4, 0.8),
            radius * rng.uniform(1.0, 1.6),
        ),
    }[style]
    if style == "liquor":
        radius *= 1.3
    glass_material = palette.glass(rng, "glass")
    label_material = palette.solid("label", palette.BOOKS[int(rng.integers(len(palette.BOOKS)))], 0.6)
    closure = palette.metal(rng, "cap") if style != "wine" else palette.solid("cork", (0.55, 0.38, 0.22), 0.8)
    points: list[tuple[float, float]] = [(0.0, 0.0), (radius * 0.9, 0.0), (radius * 0.98, radius * 0.04)]
    points.append((radius, radius * 0.12))
    materials: list[Material] = [glass_material] * 3
    has_label = rng.random() < 0.75
    label_low, label_high = body_height * rng.uniform(0.25, 0.4), body_height * rng.uniform(0.65, 0.9)
    if has_label:
        points += [(radius, label_low), (radius, label_high)]
        materials += [glass_material, label_material]
    points.append((radius, body_height))
    materials.append(glass_material)
    for fraction in np.linspace(0.0, 1.0, 10)[1:]:
        blend = (1 - np.cos(np.pi * fraction)) / 2 if style != "beer" else fraction**0.7
        points.append((radius + (neck - radius) * blend, body_height + shoulder_height * fraction))
        materials.append(glass_material)
    top = body_height + shoulder_height + neck_height
    lip = neck * 1.18
    points += [(neck, top - neck * 0.6), (lip, top - neck * 0.5), (lip, top)]
    materials += [glass_material] * 3
    cap_height = neck * rng.uniform(0.8, 1.6)
    points += [(lip * 1.04, top), (lip * 1.04, top + cap_height), (0.0, top + cap_height)]
    materials += [closure] * 3
    return lathe(points, materials, segments=32)


def build_bowl(rng: np.random.Generator) -> Mesh:
    """Bowl: hemispherical, conical or flat-bottomed, ceramic, wood or metal, optional foot ring."""
    radius = rng.uniform(0.06, 0.12)
    depth = radius * rng.uniform(0.35, 0.65)
    base = radius * rng.uniform(0.3, 0.55)
    wall = radius * rng.uniform(0.03, 0.06)
    style = ("round", "conical", "flat")[int(rng.integers(3))]
    fraction = np.linspace(0.0, 1.0, 14)
    if style == "round":
        radii = base + (radius - base) * np.sin(fraction * np.pi / 2)
        heights = depth * (1 - np.cos(fraction * np.pi / 2))
    elif style == "conical":
        radii, heights = base + (radius - base) * fraction, depth * fraction
    else:
        radii = base + (radius - base) * np.sin(fraction * np.pi / 2) ** 0.35
        heights = depth * fraction**1.3
    outer = np.column_stack([radii, heights])
    kind = rng.random()
    if kind < 0.6:
        outside = palette.ceramic(rng, "ceramic")
        inside = outside if rng.random() < 0.5 else palette.solid("ceramic_inner", (0.94, 0.93, 0.9), 0.15)
    elif kind < 0.8:
        outside = inside = palette.wood(rng, "wood")
    else:
        outside = inside = palette.metal(rng, "metal")
    profile, segment_materials = _hollow_profile(outer, wall, wall * 1.2, (outside, inside))
    parts = [lathe(profile, segment_materials, segments=40)]
    if rng.random() < 0.5:
        foot_height = depth * rng.uniform(0.06, 0.12)
        foot = cylinder(base * rng.uniform(0.7, 0.95), foot_height + wall, outside, segments=40)
        parts = [transform(parts[0], np.eye(3), (0, foot_height, 0)), foot]
    return merge(parts)


def build_vase(rng: np.random.Generator) -> Mesh:
    """Vase or jar: a free-form turned silhouette (belly, neck, flared lip), painted bands, open top."""
    height = rng.uniform(0.2, 0.4)
    base = height * rng.uniform(0.12, 0.22)
    belly = height * rng.uniform(0.18, 0.35)
    neck = height * rng.uniform(0.07, 0.14)
    lip = neck * rng.uniform(1.0, 1.6)
    belly_height = height * rng.uniform(0.25, 0.6)
    neck_height = height * rng.uniform(0.7, 0.88)
    controls = [(base, 0.0), (belly * 1.3, belly_height * 0.9), (neck * 0.7, neck_height), (lip, height)]
    outer = bezier(controls, 24)
    outer = np.vstack([[base * 0.95, 0.0], outer[1:]])
    outer = np.vstack([outer[:1], [[base, height * 0.01]], outer[1:]])
    wall = min(neck * 0.25, height * 0.02)
    body = palette.ceramic(rng, "ceramic")
    band = palette.ceramic(rng, "band")
    if band.base_color == body.base_color:
        band = palette.solid("band", (0.1, 0.1, 0.1), 0.2)
    profile, segment_materials = _hollow_profile(outer, wall, height * rng.uniform(0.55, 0.8), (body, body))
    band_count = int(rng.integers(0, 3))
    for _ in range(band_count):
        low = rng.uniform(0.1, 0.8) * height
        high = low + height * rng.uniform(0.03, 0.1)
        for index in range(1 + len(outer)):
            middle = (profile[index][1] + profile[index + 1][1]) / 2
            if low <= middle <= high:
                segment_materials[index] = band
    return lathe(profile, segment_materials, segments=40)

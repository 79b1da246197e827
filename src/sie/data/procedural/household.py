"""Household objects: lamp, display (monitor) and guitar. Y up, front towards -Z, metres."""

from __future__ import annotations

import numpy as np

from sie.data.mesh import Material, Mesh, merge, rotation_between, rotation_matrix, transform
from sie.data.procedural import materials as palette
from sie.data.procedural.curves import bezier, ellipse, rounded_path
from sie.data.procedural.primitives import (
    bar,
    box,
    cushion,
    cylinder,
    ellipsoid,
    lathe,
    prism,
    rod,
    rounded_slab,
    tube,
)


def _shade(rng: np.random.Generator, size: float, outside: Material) -> Mesh:
    """Hollow cone or dome lamp shade, top at the origin, opening towards -Y, with a bulb inside."""
    inside = palette.solid("shade_inside", (0.92, 0.9, 0.85), 0.4)
    bulb = palette.solid("bulb", (1.0, 0.95, 0.75), 0.1)
    wall = size * 0.04
    depth = size * rng.uniform(0.6, 1.1)
    if rng.random() < 0.5:
        top = size * rng.uniform(0.2, 0.45)
        inner = [(0.0, -wall), (top - wall, -wall), (size - wall, -depth)]
        outer = [(size, -depth), (top, 0.0), (0.0, 0.0)]
    else:
        angles = np.linspace(0.0, np.pi / 2, 9)
        inner = [((size - wall) * np.cos(a), -depth + (depth - wall) * np.sin(a)) for a in angles[::-1]]
        outer = [(size * np.cos(a), -depth + depth * np.sin(a)) for a in angles]
    profile = inner + outer
    materials = [inside] * (len(inner) - 1) + [outside] * len(outer)
    shade = lathe(profile, materials, segments=32)
    light = ellipsoid((size * 0.22, size * 0.3, size * 0.22), bulb, segments=16)
    return merge([shade, transform(light, np.eye(3), (0, -depth * 0.55, 0))])


def _aimed(part: Mesh, direction, position) -> Mesh:
    """Turn a part whose opening points towards -Y so that it points along ``direction``, then move it."""
    return transform(part, rotation_between((0, -1, 0), direction), position)


def build_lamp(rng: np.random.Generator) -> Mesh:
    """Lamp: articulated desk lamp, gooseneck, arc floor or hanging-arm lamp; the head is off-axis."""
    style = palette.choose(rng, ("architect", "gooseneck", "arc", "swing"))
    body = palette.metal(rng, "body") if rng.random() < 0.5 else palette.painted(rng, "body", glossy=True)
    shade_material = body if rng.random() < 0.6 else palette.painted(rng, "shade")
    floor = style == "arc"
    base_radius = rng.uniform(0.14, 0.2) if floor else rng.uniform(0.06, 0.1)
    base_height = rng.uniform(0.02, 0.05)
    if rng.random() < 0.6:
        base = cylinder(
            base_radius, base_height, body, top_radius=base_radius * rng.uniform(0.8, 1.0), segments=32
        )
    else:
        base = rounded_slab(
            (base_radius * 2, base_height, base_radius * 1.6),
            base_radius * 0.3,
            body,
            (0, base_height / 2, 0),
        )
    parts = [base]
    rod_radius = rng.uniform(0.006, 0.011) * (2.0 if floor else 1.0)
    shade_size = rng.uniform(0.06, 0.1) * (2.2 if floor else 1.0)
    if style == "architect":
        elbow = np.array([0.0, base_height + rng.uniform(0.25, 0.4), rng.uniform(0.05, 0.15)])
        head = elbow + np.array((0.0, rng.uniform(-0.05, 0.15), -rng.uniform(0.25, 0.4)))
        for offset in (-0.012, 0.012):
            parts.append(
                rod((offset, base_height, 0), elbow + np.array((offset, 0, 0)), rod_radius * 0.6, body, 10)
            )
            parts.append(
                rod(
                    elbow + np.array((offset, 0, 0)),
                    head + np.array((offset, 0, 0)),
                    rod_radius * 0.6,
                    body,
                    10,
                )
            )
        parts.append(ellipsoid((0.02, 0.02, 0.02), body, 12))
        parts[-1] = transform(parts[-1], np.eye(3), elbow)
        aim = np.array([0.0, -1.0, -rng.uniform(0.2, 0.8)])
    elif style == "gooseneck":
        height = rng.uniform(0.18, 0.35)
        reach = rng.uniform(0.12, 0.25)
        controls = [
            (0, base_height, 0),
            (0, base_height + height, 0),
            (0, base_height + height * 1.3, -reach * 0.5),
            (0, base_height + height * 1.1, -reach),
        ]
        path = bezier(controls, 24)
        parts.append(tube(path, rod_radius, body, segments=12))
        head = path[-1]
        aim = np.array([0.0, -1.0, -rng.uniform(0.0, 0.5)])
    elif style == "arc":
        height = rng.uniform(1.3, 1.8)
        reach = rng.uniform(0.7, 1.2)
        controls = [
            (0, base_height, 0),
            (0, height * 1.05, 0),
            (0, height * 1.1, -reach * 0.8),
            (0, height * 0.85, -reach),
        ]
        path = bezier(controls, 32)
        parts.append(tube(path, rod_radius, body, segments=12))
        head = path[-1] - (0, 0.02, 0)
        aim = np.array([0.0, -1.0, 0.0])
    else:
        height = rng.uniform(0.3, 0.5)
        reach = rng.uniform(0.2, 0.35)
        corners = [
            (0, base_height, 0),
            (0, base_height + height, 0),
            (0, base_height + height, -reach),
            (0, base_height + height - 0.04, -reach),
        ]
        parts.append(tube(rounded_path(corners, 0.04), rod_radius, body, segments=12))
        head = np.array(corners[-1])
        aim = np.array([0.0, -1.0, -rng.uniform(0.0, 0.3)])
    parts.append(_aimed(_shade(rng, shade_size, shade_material), aim, head))
    lamp = merge(parts)
    return transform(lamp, rotation_matrix((0, 1, 0), rng.uniform(-0.3, 0.3)))


def build_display(rng: np.random.Generator) -> Mesh:
    """Computer monitor: 16:9, 16:10 or 21:9 panel, back housing, neck and a plate, disc or V foot."""
    aspect = (16 / 9, 16 / 10, 21 / 9)[int(rng.integers(3))]
    width = rng.uniform(0.45, 0.75) * (1.2 if aspect > 2 else 1.0)
    height = width / aspect
    bezel = rng.uniform(0.008, 0.025)
    thickness = rng.uniform(0.015, 0.03)
    case = (
        palette.solid("case", (0.05, 0.05, 0.055), 0.4) if rng.random() < 0.6 else palette.metal(rng, "case")
    )
    screen = palette.solid("screen", (0.01, 0.015, 0.03), 0.05)
    lift = rng.uniform(0.08, 0.18)
    center_y = lift + height / 2
    panel = cushion((width, height, thickness), min(0.01, thickness / 3), case, (0, center_y, 0))
    glass = box(
        (width - 2 * bezel, height - 2 * bezel, 0.004),
        screen,
        (0, center_y + bezel * 0.3, -thickness / 2 + 0.001),
    )
    housing_depth = rng.uniform(0.03, 0.07)
    housing = box(
        (width * rng.uniform(0.5, 0.75), height * rng.uniform(0.5, 0.75), housing_depth),
        case,
        (0, center_y, thickness / 2 + housing_depth / 2),
    )
    parts = [panel, glass, housing]
    neck_z = thickness / 2 + housing_depth + 0.01
    neck_width = rng.uniform(0.04, 0.09)
    lean = rng.uniform(0.0, 0.08)
    parts.append(box((neck_width, center_y - 0.005, 0.025), case, (0, (center_y + 0.005) / 2, neck_z + lean)))
    foot_style = palette.choose(rng, ("plate", "disc", "vee"))
    foot_depth = rng.uniform(0.16, 0.24)
    foot_center = neck_z - foot_depth / 2 + 0.03
    if foot_style == "plate":
        parts.append(
            rounded_slab(
                (width * rng.uniform(0.3, 0.5), 0.015, foot_depth), 0.03, case, (0, 0.0075, foot_center)
            )
        )
    elif foot_style == "disc":
        disc = transform(
            cylinder(1.0, 0.015, case, segments=40),
            np.eye(3),
            (0, 0, foot_center),
            (foot_depth * 0.6, 1.0, foot_depth * 0.5),
        )
        parts.append(disc)
    else:
        for side in (-1.0, 1.0):
            root = np.array([side * 0.025, 0.01, neck_z])
            tip = np.array([side * width * 0.3, 0.01, neck_z - foot_depth])
            parts.append(bar(root, tip, 0.03, 0.02, case))
    if rng.random() < 0.5:
        logo = palette.solid("logo", (0.7, 0.7, 0.72), 0.3, 1.0)
        parts.append(
            box((width * 0.06, bezel * 0.5, 0.003), logo, (0, lift + bezel / 2, -thickness / 2 - 0.001))
        )
    return merge(parts)


def _guitar_outline(rng: np.random.Generator, length: float, electric: bool) -> np.ndarray:
    """Counter-clockwise body outline in (x, y): a lower and an upper bout blended into a waist.

    Electric bodies get a cutaway on the treble (+X) side of the upper bout.
    """
    lower = length * rng.uniform(0.36, 0.41)
    upper = lower * rng.uniform(0.72, 0.85)
    split = rng.uniform(0.56, 0.62)
    heights = (1 - np.cos(np.linspace(0.0, np.pi, 49))) / 2
    lower_bout = lower * np.sqrt(np.clip(1 - ((heights - split / 2) / (split / 2)) ** 2, 0.0, None))
    top_center, top_half = (split * 0.8 + 1) / 2, (1 - split * 0.8) / 2
    upper_bout = upper * np.sqrt(np.clip(1 - ((heights - top_center) / top_half) ** 2, 0.0, None))
    half_width = np.maximum((lower_bout**4 + upper_bout**4) ** 0.25, 1e-4)
    right = np.column_stack([half_width, heights * length])
    left = np.column_stack([-half_width, heights * length])
    if electric:
        cut = np.clip((heights - split) / (1 - split), 0.0, 1.0)
        right[:, 0] *= 1 - 0.7 * np.sin(np.pi / 2 * cut)
    return np.vstack([right[:-1], left[::-1][:-1]])


def build_guitar(rng: np.random.Generator) -> Mesh:
    """Acoustic or electric guitar standing upright, face towards -Z; body shape, woods and headstock vary."""
    electric = rng.random() < 0.4
    body_length = rng.uniform(0.45, 0.52) if not electric else rng.uniform(0.38, 0.45)
    depth = rng.uniform(0.08, 0.11) if not electric else rng.uniform(0.035, 0.045)
    top = palette.wood(rng, "top") if not electric else palette.painted(rng, "top", glossy=True)
    neck_wood = palette.wood(rng, "neck")
    fretboard = palette.solid("fretboard", (0.12, 0.07, 0.04), 0.5)
    hardware = palette.solid("hardware", (0.8, 0.8, 0.8), 0.25, 1.0)
    outline = _guitar_outline(rng, body_length, electric)
    body = prism(outline, depth, top)
    parts = [body]
    neck_length = rng.uniform(0.42, 0.48)
    neck_width = rng.uniform(0.045, 0.055)
    neck_bottom = body_length * 0.85
    neck_top = body_length + neck_length
    parts.append(
        box(
            (neck_width, neck_top - neck_bottom, 0.025),
            neck_wood,
            (0, (neck_top + neck_bottom) / 2, -depth / 2 + 0.0125 - 0.005),
        )
    )
    board_bottom = body_length * (0.55 if electric else 0.72)
    parts.append(
        box(
            (neck_width, neck_top - board_bottom, 0.008),
            fretboard,
            (0, (neck_top + board_bottom) / 2, -depth / 2 - 0.009),
        )
    )
    head_length = rng.uniform(0.16, 0.2)
    head = rounded_slab((neck_width * rng.uniform(1.4, 1.9), 0.015, head_length), 0.015, neck_wood)
    tilt = rotation_matrix((1, 0, 0), -np.pi / 2 + rng.uniform(0.1, 0.25))
    parts.append(transform(head, tilt, (0, neck_top + head_length / 2 - 0.01, -depth / 2 + 0.01)))
    for index in range(6):
        side = -1.0 if index < 3 else 1.0
        y = neck_top + head_length * (0.25 + 0.22 * (index % 3))
        parts.append(
            rod(
                (side * neck_width * 0.5, y, -depth / 2 + 0.02),
                (side * neck_width * 1.2, y, -depth / 2 + 0.02),
                0.005,
                hardware,
                8,
            )
        )
    bridge_y = body_length * 0.22
    parts.append(
        box(
            (neck_width * 1.8, 0.02, 0.01),
            palette.solid("bridge", (0.08, 0.05, 0.03), 0.5),
            (0, bridge_y, -depth / 2 - 0.004),
        )
    )
    if electric:
        guard = palette.solid("guard", (0.95, 0.95, 0.92) if rng.random() < 0.5 else (0.05, 0.05, 0.05), 0.3)
        plate = prism(ellipse(body_length * 0.28, body_length * 0.32, 24), 0.003, guard)
        parts.append(
            transform(plate, np.eye(3), (body_length * 0.06, body_length * 0.42, -depth / 2 - 0.001))
        )
        for y in (0.33, 0.48):
            parts.append(
                box((neck_width * 1.4, 0.02, 0.008), hardware, (0, body_length * y, -depth / 2 - 0.005))
            )
    else:
        hole = palette.solid("sound_hole", (0.02, 0.015, 0.01), 0.9)
        radius = body_length * rng.uniform(0.08, 0.1)
        disc = cylinder(radius, 0.004, hole, segments=32)
        parts.append(
            transform(
                disc, rotation_between((0, 1, 0), (0, 0, -1)), (0, body_length * 0.6, -depth / 2 + 0.001)
            )
        )
    for index in range(6):
        x = (index - 2.5) * neck_width * 0.14
        parts.append(
            box(
                (0.0015, neck_top - bridge_y, 0.0015),
                hardware,
                (x, (neck_top + bridge_y) / 2, -depth / 2 - 0.015),
            )
        )
    return merge(parts)

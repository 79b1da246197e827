"""Seating: chair, bench and sofa. Y up, front (where one sits) towards -Z, back towards +Z, metres."""

from __future__ import annotations

import numpy as np

from sie.data.mesh import Material, Mesh, merge, rotation_matrix, transform
from sie.data.procedural import materials as palette
from sie.data.procedural.curves import rounded_path
from sie.data.procedural.furniture import leg
from sie.data.procedural.primitives import bar, box, cushion, cylinder, ellipsoid, rod, tube


def _tilted(part: Mesh, pivot: np.ndarray, angle: float) -> Mesh:
    """Rotate ``part`` about the X axis through ``pivot``; positive angles lean its top towards +Z."""
    pivot = np.asarray(pivot, dtype=np.float64)
    rotation = rotation_matrix((1, 0, 0), angle)
    moved = transform(part, np.eye(3), -pivot)
    return transform(moved, rotation, pivot)


def build_chair(rng: np.random.Generator) -> Mesh:
    """Chair: four-legged, sled or swivel office base; panel, slatted or railed backrest; optional arms."""
    base_style = palette.choose(rng, ("legs", "sled", "office"), (0.6, 0.15, 0.25))
    seat_height = rng.uniform(0.42, 0.48)
    width, depth = rng.uniform(0.4, 0.52), rng.uniform(0.4, 0.5)
    upholstered = base_style == "office" or rng.random() < 0.4
    seat_thickness = rng.uniform(0.05, 0.09) if upholstered else rng.uniform(0.025, 0.045)
    frame = (
        palette.wood(rng, "frame")
        if base_style == "legs" and rng.random() < 0.7
        else palette.metal(rng, "frame")
    )
    if base_style == "office":
        frame = (
            palette.solid("frame", (0.08, 0.08, 0.09), 0.4)
            if rng.random() < 0.6
            else palette.metal(rng, "frame")
        )
    cover = palette.fabric(rng, "seat") if upholstered else frame
    seat_center = (0, seat_height - seat_thickness / 2, 0)
    seat = cushion((width, seat_thickness, depth), seat_thickness * 0.3, cover, seat_center)
    parts = [seat]
    bottom = seat_height - seat_thickness
    if base_style == "legs":
        parts.append(_four_legs(rng, bottom, width, depth, frame))
    elif base_style == "sled":
        parts.append(_sled(rng, bottom, width, depth, frame))
    else:
        parts.append(_swivel_base(rng, bottom, frame))
    back_height = rng.uniform(0.3, 0.5)
    tilt = rng.uniform(0.05, 0.22)
    parts.append(
        _tilted(
            _backrest(rng, seat_height, back_height, width, depth, frame, cover),
            (0, seat_height, depth / 2),
            tilt,
        )
    )
    if rng.random() < (0.5 if base_style == "office" else 0.3):
        parts.append(_armrests(rng, seat_height, width, depth, frame))
    return merge(parts)


def _four_legs(
    rng: np.random.Generator, under: float, width: float, depth: float, material: Material
) -> Mesh:
    style = palette.choose(rng, ("square", "round", "tapered"))
    thickness = rng.uniform(0.025, 0.045)
    splay = rng.uniform(0.0, 0.05) if style != "square" else 0.0
    inset = thickness / 2 + 0.01
    parts = []
    for x in (-1, 1):
        for z in (-1, 1):
            top = np.array([x * (width / 2 - inset), under, z * (depth / 2 - inset)])
            bottom = top * (1 + splay * 2, 0, 1 + splay * 2)
            parts.append(leg(style, top, bottom, thickness, material))
    if rng.random() < 0.5:
        height = under * rng.uniform(0.2, 0.35)
        for z in (-1, 1):
            z_position = z * (depth / 2 - inset) * (1 + splay)
            parts.append(
                bar(
                    (-(width / 2 - inset), height, z_position),
                    ((width / 2 - inset), height, z_position),
                    thickness * 0.5,
                    thickness * 0.5,
                    material,
                )
            )
    return merge(parts)


def _sled(rng: np.random.Generator, under: float, width: float, depth: float, material: Material) -> Mesh:
    """Two bent-tube runners, one on each side."""
    radius = rng.uniform(0.009, 0.014)
    parts = []
    for x in (-1, 1):
        x_position = x * (width / 2 - 0.03)
        corners = [(x_position, under, -depth / 2 + 0.05), (x_position, radius, -depth / 2 - 0.02)]
        corners += [(x_position, radius, depth / 2), (x_position, under, depth / 2 - 0.03)]
        parts.append(tube(rounded_path(corners, 0.06), radius, material, segments=12))
    return merge(parts)


def _swivel_base(rng: np.random.Generator, under: float, material: Material) -> Mesh:
    """Office chair: gas column on a five-star base with casters."""
    column_radius = rng.uniform(0.02, 0.03)
    parts = [cylinder(column_radius, under - 0.08, material, segments=20)]
    parts[0] = transform(parts[0], np.eye(3), (0, 0.06, 0))
    parts.append(cylinder(0.05, 0.06, material, top_radius=0.04, segments=20))
    parts[-1] = transform(parts[-1], np.eye(3), (0, 0.065, 0))
    parts.append(box((0.16, 0.04, 0.2), material, (0, under - 0.02, 0)))
    arm = rng.uniform(0.26, 0.34)
    caster = palette.solid("caster", (0.05, 0.05, 0.05), 0.6)
    for index in range(5):
        angle = np.pi / 2 + index * 2 * np.pi / 5 + rng.uniform(-0.05, 0.05)
        tip = np.array([np.cos(angle) * arm, 0.07, np.sin(angle) * arm])
        parts.append(bar(tip * (0.04 / arm, 1.0, 0.04 / arm) + (0, 0.03, 0), tip, 0.04, 0.03, material))
        wheel = ellipsoid((0.025, 0.025, 0.015), caster, segments=12)
        parts.append(transform(wheel, rotation_matrix((0, 1, 0), angle), tip * (1, 0, 1) + (0, 0.026, 0)))
    return merge(parts)


def _backrest(
    rng: np.random.Generator,
    seat_height: float,
    height: float,
    width: float,
    depth: float,
    frame: Material,
    cover: Material,
) -> Mesh:
    """Upright backrest standing on the rear edge of the seat (before tilting)."""
    style = (
        "panel"
        if cover is not frame and rng.random() < 0.7
        else palette.choose(rng, ("panel", "slats", "rails"))
    )
    z = depth / 2 - 0.02
    post = rng.uniform(0.025, 0.04)
    top = seat_height + height
    if style == "panel":
        panel_thickness = rng.uniform(0.03, 0.07) if cover is not frame else rng.uniform(0.02, 0.03)
        panel_height = height * rng.uniform(0.6, 0.95)
        center = (0, top - panel_height / 2, z)
        parts = [
            cushion(
                (width * rng.uniform(0.85, 1.0), panel_height, panel_thickness),
                panel_thickness * 0.3,
                cover,
                center,
            )
        ]
        for x in (-1, 1) if panel_height < height * 0.9 else ():
            parts.append(
                box(
                    (post, height - 0.01, post),
                    frame,
                    (x * (width / 2 - 0.04), seat_height + height / 2 - 0.005, z + 0.01),
                )
            )
        return merge(parts)
    parts = [
        box(
            (post, height - 0.01, post),
            frame,
            (x * (width / 2 - post / 2), seat_height + height / 2 - 0.005, z),
        )
        for x in (-1, 1)
    ]
    rail_height = rng.uniform(0.04, 0.09)
    parts.append(box((width - post, rail_height, post * 0.8), frame, (0, top - rail_height / 2, z)))
    inner = width - 2 * post
    if style == "slats":
        count = int(rng.integers(2, 7))
        slat_width = inner / count * rng.uniform(0.25, 0.6)
        for x in np.linspace(-inner / 2, inner / 2, count + 2)[1:-1] if count > 1 else [0.0]:
            parts.append(
                box(
                    (slat_width, height - rail_height, post * 0.5),
                    frame,
                    (x, seat_height + (height - rail_height) / 2, z),
                )
            )
    else:
        count = int(rng.integers(2, 5))
        for y in np.linspace(seat_height + 0.05, top - rail_height, count + 1)[:-1]:
            parts.append(box((inner, rail_height * 0.6, post * 0.6), frame, (0, y + 0.05, z)))
    return merge(parts)


def _armrests(
    rng: np.random.Generator, seat_height: float, width: float, depth: float, material: Material
) -> Mesh:
    height = seat_height + rng.uniform(0.18, 0.25)
    parts = []
    for x in (-1, 1):
        x_position = x * (width / 2 + 0.02)
        parts.append(box((0.05, 0.03, depth * 0.85), material, (x_position, height, 0.0)))
        parts.append(
            box(
                (0.03, height - seat_height + 0.04, 0.03),
                material,
                (x_position, (height + seat_height) / 2 - 0.03, -depth * 0.3),
            )
        )
    return merge(parts)


def build_bench(rng: np.random.Generator) -> Mesh:
    """Bench: slatted or board seat on legs, side frames or slabs; optional backrest (+Z) and arms."""
    length = rng.uniform(1.0, 2.0)
    depth = rng.uniform(0.32, 0.5)
    seat_height = rng.uniform(0.4, 0.48)
    slat_material = palette.wood(rng, "slats") if rng.random() < 0.8 else palette.painted(rng, "slats")
    support_style = palette.choose(rng, ("legs", "frames", "slabs"))
    support = palette.metal(rng, "support") if support_style == "frames" else slat_material
    if support_style == "slabs" and rng.random() < 0.5:
        support = palette.solid("support", tuple(rng.uniform(0.55, 0.7) * np.ones(3)), 0.9)
    thickness = rng.uniform(0.03, 0.05)
    parts = []
    slats = int(rng.integers(1, 7))
    gap = 0.012 if slats > 1 else 0.0
    slat_depth = (depth - gap * (slats - 1)) / slats
    for index in range(slats):
        z = -depth / 2 + slat_depth / 2 + index * (slat_depth + gap)
        parts.append(box((length, thickness, slat_depth), slat_material, (0, seat_height - thickness / 2, z)))
    under = seat_height - thickness
    support_count = 2 if length < 1.6 or rng.random() < 0.5 else 3
    inset = rng.uniform(0.05, 0.2)
    positions = np.linspace(-length / 2 + inset, length / 2 - inset, support_count)
    for x in positions:
        parts.append(_bench_support(support_style, x, under, depth, support))
    if rng.random() < 0.5:
        parts.append(_bench_back(rng, positions, seat_height, length, depth, slat_material, support))
    return merge(parts)


def _bench_support(style: str, x: float, under: float, depth: float, material: Material) -> Mesh:
    if style == "slabs":
        return box((0.06, under, depth * 0.9), material, (x, under / 2, 0))
    if style == "legs":
        return merge(
            [box((0.05, under, 0.05), material, (x, under / 2, z * (depth / 2 - 0.05))) for z in (-1, 1)]
            + [box((0.04, 0.05, depth - 0.1), material, (x, under * 0.25, 0))]
        )
    path = rounded_path(
        [
            (x, under, -depth / 2 + 0.03),
            (x, 0.015, -depth / 2 - 0.02),
            (x, 0.015, depth / 2 + 0.02),
            (x, under, depth / 2 - 0.03),
        ],
        0.05,
    )
    return merge(
        [
            tube(path, 0.015, material, segments=10),
            box((0.03, 0.03, depth * 0.95), material, (x, under - 0.015, 0)),
        ]
    )


def _bench_back(
    rng, positions, seat_height: float, length: float, depth: float, slats: Material, support: Material
) -> Mesh:
    height = rng.uniform(0.3, 0.45)
    lean = rng.uniform(0.1, 0.25)
    parts = [
        box((0.05, height + 0.05, 0.04), support, (x, seat_height + height / 2 - 0.05, depth / 2 + 0.02))
        for x in positions
    ]
    rails = int(rng.integers(1, 4))
    rail_height = (height - 0.05) / rails - 0.02
    for index in range(rails):
        y = seat_height + 0.08 + index * (rail_height + 0.02) + rail_height / 2
        parts.append(box((length, rail_height, 0.025), slats, (0, y, depth / 2 + 0.05)))
    back = _tilted(merge(parts), (0, seat_height, depth / 2), lean)
    if rng.random() < 0.5:
        arms = []
        for x in (-1, 1):
            x_position = x * (length / 2 - 0.03)
            arms.append(box((0.05, 0.03, depth * 0.9), support, (x_position, seat_height + 0.22, 0)))
            arms.append(box((0.04, 0.24, 0.04), support, (x_position, seat_height + 0.1, -depth * 0.35)))
        back = merge([back, *arms])
    return back


def build_sofa(rng: np.random.Generator) -> Mesh:
    """Sofa: 1-4 seat and back cushions, box or rolled arms (or none), short legs, optional chaise."""
    seats = int(rng.integers(1, 5))
    seat_width = rng.uniform(0.55, 0.7)
    depth = rng.uniform(0.8, 1.0)
    arm_style = palette.choose(rng, ("box", "rolled", "none"), (0.45, 0.35, 0.2))
    arm_width = 0.0 if arm_style == "none" else rng.uniform(0.12, 0.25)
    width = seats * seat_width + 2 * arm_width
    leg_height = rng.uniform(0.04, 0.15)
    seat_height = rng.uniform(0.4, 0.46)
    cushion_thickness = rng.uniform(0.1, 0.16)
    back_height = rng.uniform(0.75, 0.95)
    upholstery = palette.fabric(rng, "fabric")
    cushions = upholstery if rng.random() < 0.7 else palette.fabric(rng, "cushion")
    legs = palette.wood(rng, "legs") if rng.random() < 0.6 else palette.metal(rng, "legs")
    deck = seat_height - cushion_thickness
    back_depth = rng.uniform(0.15, 0.22)
    # Inset by a few millimetres so that no two faces coincide (coplanar overlaps render as dark speckles).
    inner_width = width - 2 * arm_width + (0.01 if arm_width else -0.04)
    parts = [box((inner_width, deck - leg_height, depth - 0.01), upholstery, (0, (deck + leg_height) / 2, 0))]
    back_center = (0, (back_height + deck - 0.02) / 2, depth / 2 - back_depth / 2 - 0.005)
    back_size = (inner_width - 0.01, back_height - deck + 0.02, back_depth - 0.01)
    parts.append(box(back_size, upholstery, back_center))
    inner = seats * seat_width
    cushion_depth = depth - back_depth - 0.02
    for index in range(seats):
        x = -inner / 2 + seat_width * (index + 0.5)
        parts.append(
            cushion(
                (seat_width - 0.01, cushion_thickness, cushion_depth),
                0.04,
                cushions,
                (x, deck + cushion_thickness / 2, -depth / 2 + cushion_depth / 2),
            )
        )
        back_cushion = cushion(
            (seat_width - 0.01, back_height - seat_height, 0.15),
            0.05,
            cushions,
            (x, (back_height + seat_height) / 2, depth / 2 - back_depth - 0.06),
        )
        parts.append(_tilted(back_cushion, (x, seat_height, depth / 2 - back_depth), 0.12))
    if arm_style != "none":
        arm_height = rng.uniform(0.55, 0.68)
        for x in (-1, 1):
            center_x = x * (width / 2 - arm_width / 2)
            if arm_style == "box":
                parts.append(
                    cushion(
                        (arm_width, arm_height - leg_height + 0.01, depth),
                        0.03,
                        upholstery,
                        (center_x, (arm_height + leg_height - 0.01) / 2, 0),
                    )
                )
            else:
                parts.append(
                    box(
                        (arm_width * 0.9, arm_height - leg_height - arm_width / 2 + 0.01, depth),
                        upholstery,
                        (center_x, (arm_height + leg_height - arm_width / 2 - 0.01) / 2, 0),
                    )
                )
                roll = rod(
                    (center_x, arm_height - arm_width / 2, -depth / 2 - 0.01),
                    (center_x, arm_height - arm_width / 2, depth / 2 + 0.01),
                    arm_width / 2,
                    upholstery,
                    segments=24,
                )
                parts.append(roll)
    corners = [(x * (width / 2 - 0.05), z * (depth / 2 - 0.05)) for x in (-1, 1) for z in (-1, 1)]
    if rng.random() < 0.35 and seats >= 2:
        side = 1.0 if rng.random() < 0.5 else -1.0
        extension = seat_width * rng.uniform(0.9, 1.2)
        parts += _chaise(
            side,
            extension,
            width,
            depth,
            seat_width,
            arm_width,
            leg_height,
            deck,
            cushion_thickness,
            upholstery,
            cushions,
        )
        front = -depth / 2 - extension + 0.05
        corners += [
            (side * (width / 2 - 0.05), front),
            (side * (width / 2 - arm_width - seat_width + 0.05), front),
        ]
    for x, z in corners:
        parts.append(leg("tapered", (x, leg_height, z), (x, 0.0, z), 0.04, legs))
    return merge(parts)


def _chaise(
    side, extension, width, depth, seat_width, arm_width, leg_height, deck, thickness, upholstery, cushions
) -> list:
    """An extension that sticks out towards the front on one side, making an L-shaped sofa."""
    x = side * (width / 2 - arm_width - seat_width / 2)
    z = -depth / 2 - extension / 2
    base_width = seat_width + arm_width - 0.02
    base = box(
        (base_width, deck - leg_height, extension + 0.005),
        upholstery,
        (x + side * (arm_width / 2 - 0.01), (deck + leg_height) / 2, z + 0.0025),
    )
    top = cushion((seat_width - 0.01, thickness, extension), 0.04, cushions, (x, deck + thickness / 2, z))
    return [base, top]

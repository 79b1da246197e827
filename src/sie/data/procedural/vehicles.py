"""Vehicles: car and airplane. Y up, front (bonnet, nose) towards -Z, metres."""

from __future__ import annotations

import numpy as np

from sie.data.mesh import Material, Mesh, merge, rotation_between, rotation_matrix, transform
from sie.data.procedural import materials as palette
from sie.data.procedural.curves import airfoil
from sie.data.procedural.primitives import bar, box, ellipsoid, lathe, loft, prism

# Turns a prism built in the (z, y) side plane (extruded along local Z) into a body along world Z.
_SIDE_PLANE = rotation_matrix((0, 1, 0), -np.pi / 2)
# Turns a lathe around +Y into one around -Z (so the top of the profile points forwards).
_FORWARD = rotation_between((0, 1, 0), (0, 0, -1))

_CAR_SHAPES = {  # length, beltline, roof height, wheel radius, ground clearance (all in metres)
    "sedan": ((4.4, 4.9), (0.88, 0.98), (1.38, 1.48), (0.31, 0.34), (0.14, 0.17)),
    "hatchback": ((3.8, 4.3), (0.88, 0.98), (1.42, 1.52), (0.30, 0.33), (0.14, 0.17)),
    "suv": ((4.4, 4.9), (1.05, 1.15), (1.68, 1.82), (0.36, 0.40), (0.2, 0.26)),
    "pickup": ((5.0, 5.6), (1.1, 1.2), (1.75, 1.88), (0.37, 0.41), (0.22, 0.28)),
    "coupe": ((4.2, 4.6), (0.82, 0.9), (1.22, 1.32), (0.31, 0.34), (0.12, 0.14)),
}


def _side_prism(points: list, width: float, material: Material, side_materials=None) -> Mesh:
    shape = prism(np.asarray(points), width, material, side_materials)
    return transform(shape, _SIDE_PLANE)


def build_car(rng: np.random.Generator) -> Mesh:
    """Car: sedan, hatchback, SUV, pickup or coupe; paint colour, wheel size and spoke count vary."""
    style = palette.choose(rng, tuple(_CAR_SHAPES))
    length, belt, roof, wheel, clearance = (rng.uniform(*bounds) for bounds in _CAR_SHAPES[style])
    width = rng.uniform(1.72, 1.9)
    paint = palette.painted(rng, "paint", glossy=True)
    glass = palette.solid("window", (0.04, 0.05, 0.07), 0.05)
    front_axle = -length / 2 + length * rng.uniform(0.17, 0.21)
    rear_axle = length / 2 - length * rng.uniform(0.19, 0.24)
    arch_top = 2 * wheel + 0.05
    hood_front = min(belt - 0.03, arch_top + rng.uniform(0.1, 0.18))
    windshield_base = front_axle + length * rng.uniform(0.12, 0.2)
    body_points = _lower_body(
        length, belt, hood_front, clearance, wheel, (front_axle, rear_axle), windshield_base
    )
    parts = [_side_prism(body_points, width, paint)]
    cabin_end = {"sedan": 0.78, "hatchback": 0.96, "suv": 0.97, "pickup": 0.6, "coupe": 0.82}[style]
    rear_base = -length / 2 + length * cabin_end
    roof_front = windshield_base + (roof - belt) * rng.uniform(1.1, 1.5)
    rear_slope = {"sedan": 1.2, "hatchback": 0.35, "suv": 0.12, "pickup": 0.08, "coupe": 1.8}[style]
    roof_rear = rear_base - (roof - belt) * rear_slope * rng.uniform(0.9, 1.1)
    cabin_width = width - rng.uniform(0.1, 0.16)
    cabin = [(windshield_base, belt - 0.01), (rear_base, belt - 0.01), (roof_rear, roof), (roof_front, roof)]
    parts.append(_side_prism(cabin, cabin_width, glass))
    parts += _cabin_frame(cabin, cabin_width, paint)
    if style == "pickup":
        parts += _pickup_bed(rear_base, length, belt, width, paint)
    parts += _car_details(rng, length, width, belt, hood_front, clearance, paint)
    spokes = int(rng.integers(4, 8))
    for axle in (front_axle, rear_axle):
        for side in (-1.0, 1.0):
            parts.append(_wheel(wheel, spokes, side, (side * (width / 2 - 0.12), wheel, axle)))
    return merge(parts)


def _lower_body(length, belt, hood_front, clearance, wheel, axles, windshield_base) -> list:
    """Side outline (z, y) of the body below the windows, with wheel arches, counter-clockwise."""
    half = length / 2
    points = [(-half + 0.12, clearance)]
    arch = wheel + 0.05
    for axle in axles:
        start = np.arcsin((clearance - wheel) / arch)
        for angle in np.linspace(np.pi - start, start, 12):
            points.append((axle + arch * np.cos(angle), wheel + arch * np.sin(angle)))
    points += [(half - 0.12, clearance), (half, clearance + 0.12), (half, belt - 0.08), (half - 0.1, belt)]
    points += [(windshield_base, belt), (windshield_base - 0.25, belt - 0.03)]
    points += [
        (-half + 0.35, hood_front + 0.02),
        (-half + 0.05, hood_front - 0.06),
        (-half, clearance + 0.15),
    ]
    return points


def _cabin_frame(cabin: list, width: float, paint: Material) -> list:
    """Roof panel and A, B and C pillars around the glass cabin."""
    (front_base, base), (rear_base, _), (roof_rear, roof), (roof_front, _) = cabin
    parts = [
        box(
            (width + 0.02, 0.05, roof_rear - roof_front + 0.06),
            paint,
            (0, roof - 0.015, (roof_rear + roof_front) / 2),
        )
    ]
    middle_low = (front_base + rear_base) / 2
    middle_high = (roof_front + roof_rear) / 2
    for side in (-1.0, 1.0):
        x = side * (width / 2 + 0.005)
        parts.append(bar((x, base, front_base + 0.04), (x, roof, roof_front + 0.03), 0.08, 0.02, paint))
        parts.append(bar((x, base, rear_base - 0.05), (x, roof, roof_rear - 0.04), 0.14, 0.02, paint))
        parts.append(bar((x, base, middle_low), (x, roof, middle_high), 0.08, 0.02, paint))
    return parts


def _pickup_bed(cabin_end: float, length: float, belt: float, width: float, paint: Material) -> list:
    """Open cargo bed: dark floor and raised painted walls behind the cab."""
    floor = palette.solid("bed_liner", (0.06, 0.06, 0.06), 0.8)
    bed_length = length / 2 - cabin_end - 0.08
    center = cabin_end + 0.05 + bed_length / 2
    floor_start, floor_end = cabin_end + 0.09, length / 2 - 0.11
    parts = [
        box(
            (width - 0.12, 0.01, floor_end - floor_start),
            floor,
            (0, belt + 0.005, (floor_start + floor_end) / 2),
        )
    ]
    for side in (-1.0, 1.0):
        parts.append(box((0.06, 0.3, bed_length), paint, (side * (width / 2 - 0.03), belt + 0.15, center)))
    parts.append(box((width - 0.12, 0.3, 0.06), paint, (0, belt + 0.15, length / 2 - 0.08)))
    parts.append(box((width - 0.12, 0.3, 0.06), paint, (0, belt + 0.15, cabin_end + 0.06)))
    return parts


def _car_details(rng, length, width, belt, hood_front, clearance, paint) -> list:
    """Headlights, grille and bumper at the front; red tail lights and a bumper at the back; mirrors."""
    headlight = palette.solid("headlight", (0.95, 0.93, 0.8), 0.1)
    taillight = palette.solid("taillight", (0.75, 0.03, 0.03), 0.2)
    trim = palette.solid("trim", (0.08, 0.08, 0.09), 0.6) if rng.random() < 0.6 else paint
    half = length / 2
    front_height = hood_front - 0.12
    parts = []
    for side in (-1.0, 1.0):
        x = side * (width / 2 - 0.22)
        parts.append(box((0.3, 0.09, 0.06), headlight, (x, front_height, -half + 0.035)))
        parts.append(box((0.25, 0.1, 0.06), taillight, (x, belt - 0.16, half + 0.005)))
        parts.append(
            box((0.05, 0.1, 0.16), paint, (side * (width / 2 + 0.02), belt + 0.08, -half + length * 0.33))
        )
    parts.append(box((width * 0.4, 0.14, 0.04), trim, (0, front_height - 0.04, -half + 0.025)))
    parts.append(box((width + 0.02, 0.16, 0.12), trim, (0, clearance + 0.13, -half + 0.05)))
    parts.append(box((width + 0.02, 0.16, 0.12), trim, (0, clearance + 0.16, half - 0.04)))
    return parts


def _wheel(radius: float, spokes: int, side: float, center) -> Mesh:
    """Tyre with a rim and 4-7 spokes on the outer face; ``side`` is +1 for the right (+X) side."""
    rubber = palette.solid("tyre", (0.03, 0.03, 0.03), 0.9)
    rim = palette.solid("rim", (0.7, 0.7, 0.72), 0.3, 1.0)
    hub = palette.solid("hub", (0.12, 0.12, 0.13), 0.5)
    width = radius * 0.65
    inner = radius * 0.62
    bead = radius * 0.12
    profile = [
        (0, -width / 2 + 0.03),
        (inner, -width / 2 + 0.03),
        (inner, -width / 2),
        (radius - bead, -width / 2),
    ]
    profile += [
        (radius, -width / 2 + bead),
        (radius, width / 2 - bead),
        (radius - bead, width / 2),
        (inner, width / 2),
    ]
    profile += [(inner, width / 2 - 0.03), (0, width / 2 - 0.03)]
    materials = [hub, rim, rubber, rubber, rubber, rubber, rubber, rim, hub]
    parts = [lathe(profile, materials, segments=32)]
    for index in range(spokes):
        angle = index * 2 * np.pi / spokes
        direction = np.array([np.cos(angle), 0.0, np.sin(angle)])
        parts.append(
            bar(
                direction * 0.055 + (0, width / 2 - 0.03, 0),
                direction * (inner - 0.005) + (0, width / 2 - 0.03, 0),
                0.045,
                0.04,
                rim,
            )
        )
    parts.append(
        lathe(
            [
                (0, width / 2 - 0.04),
                (0.07, width / 2 - 0.04),
                (0.06, width / 2 + 0.01),
                (0, width / 2 + 0.01),
            ],
            rim,
            16,
        )
    )
    wheel = merge(parts)
    return transform(wheel, rotation_between((0, 1, 0), (side, 0, 0)), center)


def _fuselage(length: float, radius: float, nose: float, tail: float, skin: Material) -> Mesh:
    """Round fuselage along -Z (nose forwards): a tapered tail cone, a straight cabin and a blunt nose."""
    profile = [(0.0, 0.0), (radius * 0.12, 0.0)]
    for fraction in np.linspace(0.0, 1.0, 9)[1:]:
        profile.append((radius * (0.12 + 0.88 * np.sin(fraction * np.pi / 2) ** 0.8), tail * fraction))
    for angle in np.linspace(0.0, np.pi / 2, 10)[:-1]:
        profile.append((radius * np.cos(angle), length - nose + nose * np.sin(angle)))
    profile.append((0.0, length))
    body = lathe(profile, skin, segments=32)
    return transform(body, _FORWARD, (0, 0, length / 2))


def _lifting_surface(root, tip, root_chord, tip_chord, thickness, material, vertical=False) -> Mesh:
    """A wing, stabiliser or fin lofted from a symmetric airfoil; chords run along +Z."""
    outline = airfoil(16, thickness)
    sections = []
    for origin, chord in ((root, root_chord), (tip, tip_chord)):
        along = np.column_stack([np.zeros(len(outline)), np.zeros(len(outline)), outline[:, 0] * chord])
        across = outline[:, 1] * chord
        offset = (
            np.column_stack([across, np.zeros_like(across), np.zeros_like(across)])
            if vertical
            else np.column_stack([np.zeros_like(across), across, np.zeros_like(across)])
        )
        sections.append(np.asarray(origin) + along + offset)
    return loft(np.asarray(sections), material)


def build_airplane(rng: np.random.Generator) -> Mesh:
    """Airplane: airliner (2 or 4 wing engines), business jet (rear engines, T-tail) or propeller plane."""
    style = palette.choose(rng, ("airliner", "business", "propeller"), (0.5, 0.25, 0.25))
    length = rng.uniform(30.0, 60.0) if style == "airliner" else rng.uniform(12.0, 25.0)
    radius = length * (rng.uniform(0.045, 0.06) if style == "airliner" else rng.uniform(0.055, 0.075))
    skin = palette.solid(
        "skin", tuple(np.clip(rng.uniform(0.82, 0.97) * np.ones(3) + rng.uniform(-0.03, 0.03, 3), 0, 1)), 0.35
    )
    if style == "propeller" and rng.random() < 0.6:
        skin = palette.painted(rng, "skin", glossy=True)
    livery = palette.painted(rng, "livery", glossy=True)
    wing_material = palette.solid("wing", (0.6, 0.62, 0.66), 0.35, 0.3)
    nose = radius * rng.uniform(1.3, 2.2)
    parts = [_fuselage(length, radius, nose, length * rng.uniform(0.2, 0.3), skin)]
    window = palette.solid("cockpit", (0.05, 0.06, 0.09), 0.05)
    cockpit = ellipsoid((radius * 0.7, radius * 0.35, nose * 0.35), window, segments=16)
    parts.append(transform(cockpit, np.eye(3), (0, radius * 0.55, -length / 2 + nose * 0.55)))
    sweep = np.radians(rng.uniform(25, 38)) if style != "propeller" else np.radians(rng.uniform(0, 6))
    span = length * (rng.uniform(0.85, 1.1) if style != "propeller" else rng.uniform(1.1, 1.4))
    root_chord = length * rng.uniform(0.14, 0.2)
    tip_chord = root_chord * rng.uniform(0.25, 0.45)
    wing_z = -length / 2 + length * rng.uniform(0.38, 0.48)
    high_wing = style == "propeller" and rng.random() < 0.5
    wing_y = radius * (0.75 if high_wing else -0.55)
    dihedral = np.radians(rng.uniform(2, 6)) if not high_wing else 0.0
    tips = []
    for side in (-1.0, 1.0):
        tip = np.array(
            [side * span / 2, wing_y + span / 2 * np.tan(dihedral), wing_z + span / 2 * np.tan(sweep)]
        )
        tips.append(tip)
        parts.append(_lifting_surface((0, wing_y, wing_z), tip, root_chord, tip_chord, 0.12, wing_material))
    parts += _tail(rng, style, length, radius, skin, livery, wing_material)
    if style == "airliner":
        parts += _wing_engines(rng, tips, wing_y, wing_z, root_chord, radius, skin)
    elif style == "business":
        parts += _rear_engines(length, radius, skin)
    else:
        parts += _propeller(rng, length, radius, livery)
    return merge(parts)


def _tail(rng, style, length, radius, skin, livery, wing_material) -> list:
    """Vertical fin and horizontal stabilisers (on top of the fin for a T-tail)."""
    fin_height = radius * rng.uniform(2.2, 3.2)
    fin_chord = length * rng.uniform(0.13, 0.18)
    fin_sweep = np.radians(rng.uniform(30, 50))
    fin_root = np.array([0.0, radius * 0.6, length / 2 - fin_chord - length * 0.015])
    fin_tip = fin_root + np.array((0, fin_height, fin_height * np.tan(fin_sweep)))
    parts = [_lifting_surface(fin_root, fin_tip, fin_chord, fin_chord * 0.55, 0.1, livery, vertical=True)]
    t_tail = style == "business" or rng.random() < 0.15
    chord = fin_chord * (0.55 if t_tail else 0.8)
    span = length * rng.uniform(0.3, 0.4)
    root = (
        fin_tip - (0, 0.05, 0)
        if t_tail
        else np.array([0.0, radius * 0.1, length / 2 - chord - length * 0.03])
    )
    for side in (-1.0, 1.0):
        tip = root + np.array((side * span / 2, span * 0.05, span / 2 * np.tan(np.radians(30))))
        parts.append(_lifting_surface(root, tip, chord, chord * 0.45, 0.1, wing_material))
    return parts


def _nacelle(engine_radius: float, engine_length: float, skin: Material) -> Mesh:
    """Jet engine pod along -Z, with a dark intake face at the front."""
    intake = palette.solid("intake", (0.05, 0.05, 0.06), 0.6)
    profile = [(0.0, 0.0), (engine_radius * 0.55, 0.0), (engine_radius * 0.8, engine_length * 0.3)]
    profile += [
        (engine_radius, engine_length * 0.7),
        (engine_radius * 0.97, engine_length),
        (engine_radius * 0.85, engine_length),
    ]
    profile += [(engine_radius * 0.85, engine_length * 0.97), (0.0, engine_length * 0.97)]
    materials = [intake] + [skin] * 5 + [intake]
    return transform(lathe(profile, materials, segments=24), _FORWARD)


def _wing_engines(rng, tips, wing_y, wing_z, root_chord, radius, skin) -> list:
    count = 2 if rng.random() < 0.7 else 4
    engine_radius = radius * rng.uniform(0.45, 0.6)
    engine_length = engine_radius * rng.uniform(3.0, 4.0)
    fractions = (0.33,) if count == 2 else (0.28, 0.55)
    parts = []
    for tip in tips:
        for fraction in fractions:
            anchor = np.array([0, wing_y, wing_z]) + fraction * (tip - np.array([0, wing_y, wing_z]))
            center = anchor + np.array((0, -engine_radius * 1.2, -engine_length * 0.35))
            parts.append(
                transform(
                    _nacelle(engine_radius, engine_length, skin),
                    np.eye(3),
                    center + np.array((0, 0, engine_length / 2)),
                )
            )
            parts.append(
                box(
                    (engine_radius * 0.25, engine_radius * 1.2, engine_length * 0.6),
                    skin,
                    anchor + np.array((0, -engine_radius * 0.5, root_chord * 0.1)),
                )
            )
    return parts


def _rear_engines(length, radius, skin) -> list:
    engine_radius, engine_length = radius * 0.45, radius * 2.2
    parts = []
    for side in (-1.0, 1.0):
        center = np.array([side * radius * 1.65, radius * 0.35, length * 0.25])
        parts.append(
            transform(
                _nacelle(engine_radius, engine_length, skin),
                np.eye(3),
                center + np.array((0, 0, engine_length / 2)),
            )
        )
        parts.append(box((radius * 0.8, radius * 0.15, engine_length * 0.6), skin, center * (0.6, 1, 1)))
    return parts


def _propeller(rng, length, radius, livery) -> list:
    """Nose spinner with 2-4 blades."""
    spinner = lathe([(0, 0), (radius * 0.45, 0), (radius * 0.3, radius * 0.5), (0, radius * 0.8)], livery, 20)
    parts = [transform(spinner, _FORWARD, (0, 0, -length / 2 + radius * 0.1))]
    blade = palette.solid("blade", (0.1, 0.1, 0.1), 0.5)
    count = int(rng.integers(2, 5))
    hub = np.array([0, 0, -length / 2 - radius * 0.2])
    for index in range(count):
        angle = index * 2 * np.pi / count + rng.uniform(0, 0.3)
        direction = np.array([np.cos(angle), np.sin(angle), 0.0])
        parts.append(
            bar(
                hub + direction * radius * 0.3,
                hub + direction * radius * 2.2,
                radius * 0.25,
                radius * 0.05,
                blade,
            )
        )
    return parts

"""Case and table furniture: table, bookshelf and bed. Y up, front towards -Z, sizes in metres."""

from __future__ import annotations

import numpy as np

from sie.data.mesh import Material, Mesh, merge, rotation_matrix, transform
from sie.data.procedural import materials as palette
from sie.data.procedural.primitives import bar, box, cushion, cylinder, ellipsoid, rounded_slab, tube


def leg(style: str, top: np.ndarray, bottom: np.ndarray, thickness: float, material: Material) -> Mesh:
    """A furniture leg from ``top`` to ``bottom``: "square", "round" or "tapered" (round, thinner foot)."""
    top, bottom = np.asarray(top, dtype=np.float64), np.asarray(bottom, dtype=np.float64)
    if style == "square":
        return bar(top, bottom, thickness, thickness, material)
    foot = thickness / 2 * (0.55 if style == "tapered" else 1.0)
    return tube(np.asarray([top, bottom]), [thickness / 2, foot], material, segments=16)


def _top_material(rng: np.random.Generator) -> Material:
    kind = rng.random()
    if kind < 0.6:
        return palette.wood(rng, "top")
    if kind < 0.85:
        return palette.painted(rng, "top")
    return palette.solid("top", tuple(rng.uniform(0.82, 0.92) * np.ones(3)), 0.2)


def build_table(rng: np.random.Generator) -> Mesh:
    """Table: rectangular, square, round or oval top; four or three legs, a pedestal or trestles."""
    shape = palette.choose(rng, ("rectangle", "square", "round", "oval"), (0.4, 0.15, 0.3, 0.15))
    height = rng.uniform(0.68, 0.78)
    thickness = rng.uniform(0.022, 0.05)
    width, depth = {
        "rectangle": (rng.uniform(1.0, 1.8), rng.uniform(0.6, 0.95)),
        "square": (size := rng.uniform(0.7, 1.0), size),
        "round": (size := rng.uniform(0.7, 1.2), size),
        "oval": (rng.uniform(1.2, 1.8), rng.uniform(0.7, 1.0)),
    }[shape]
    top_material = _top_material(rng)
    base_material = top_material if rng.random() < 0.5 else palette.metal(rng, "base")
    if base_material is not top_material and rng.random() < 0.4:
        base_material = palette.painted(rng, "base")
    if shape in ("round", "oval"):
        top = cylinder(0.5, thickness, top_material, segments=48)
        top = transform(top, np.eye(3), (0, height - thickness, 0), (width, 1.0, depth))
    else:
        corner = rng.uniform(0.0, 0.08)
        top = rounded_slab((width, thickness, depth), corner, top_material, (0, height - thickness / 2, 0))
    styles = {"round": ("pedestal", "three", "four"), "oval": ("pedestal", "four")}
    base_style = palette.choose(rng, styles.get(shape, ("four", "four", "trestle")))
    under = height - thickness
    if base_style == "pedestal":
        base = _pedestal(rng, under, min(width, depth), base_material)
    elif base_style == "trestle":
        base = _trestles(rng, under, width, depth, base_material)
    else:
        base = _legged_base(rng, shape, base_style, under, width, depth, base_material)
    return merge([top, base])


def _legged_base(
    rng: np.random.Generator,
    shape: str,
    style: str,
    under: float,
    width: float,
    depth: float,
    material: Material,
) -> Mesh:
    """Legs (with an optional apron and lower shelf) under a top whose underside is at ``under``."""
    leg_style = palette.choose(rng, ("square", "round", "tapered"))
    thickness = rng.uniform(0.035, 0.07)
    splay = rng.uniform(0.0, 0.12) if leg_style != "square" else 0.0
    if shape in ("round", "oval"):
        count = 3 if style == "three" else 4
        angles = np.pi / 2 + np.arange(count) * 2 * np.pi / count + (np.pi / 4 if count == 4 else 0.0)
        reach = 0.5 - thickness / min(width, depth) - rng.uniform(0.05, 0.12)
        anchors = np.column_stack([np.cos(angles) * width * reach, np.sin(angles) * depth * reach])
    else:
        inset = rng.uniform(0.02, 0.1) + thickness / 2
        half_x, half_z = width / 2 - inset, depth / 2 - inset
        anchors = np.array([[-half_x, -half_z], [half_x, -half_z], [half_x, half_z], [-half_x, half_z]])
    parts = []
    for x, z in anchors:
        top = np.array([x, under, z])
        bottom = np.array([x * (1 + splay * 2 / max(width, 0.5)), 0.0, z * (1 + splay * 2 / max(depth, 0.5))])
        parts.append(leg(leg_style, top, bottom, thickness, material))
    if shape not in ("round", "oval") and rng.random() < 0.6:
        apron = rng.uniform(0.05, 0.1)
        half_x, half_z = anchors[2]
        # 1 mm below the top and butted between each other, so that no faces coincide.
        level = under - apron / 2 - 0.001
        rail = thickness * 0.6
        parts.append(box((2 * half_x, apron, rail), material, (0, level, -half_z)))
        parts.append(box((2 * half_x, apron, rail), material, (0, level, half_z)))
        parts.append(box((rail, apron, 2 * half_z - rail), material, (-half_x, level, 0)))
        parts.append(box((rail, apron, 2 * half_z - rail), material, (half_x, level, 0)))
        if splay == 0.0 and rng.random() < 0.3:
            shelf_height = rng.uniform(0.12, 0.25)
            parts.append(box((2 * half_x, 0.02, 2 * half_z), material, (0, shelf_height, 0)))
    return merge(parts)


def _pedestal(rng: np.random.Generator, under: float, size: float, material: Material) -> Mesh:
    """A central column on a round foot or on radiating feet."""
    column = cylinder(rng.uniform(0.03, 0.07), under - 0.025, material, top_radius=rng.uniform(0.03, 0.07))
    column = transform(column, np.eye(3), (0, 0.01, 0))
    plate = cylinder(size * 0.2, 0.02, material, segments=32)
    plate = transform(plate, np.eye(3), (0, under - 0.02, 0))
    if rng.random() < 0.5:
        foot = cylinder(size * rng.uniform(0.25, 0.35), rng.uniform(0.02, 0.05), material, segments=40)
        return merge([column, plate, foot])
    feet = []
    count = int(rng.integers(3, 5))
    for index in range(count):
        angle = index * 2 * np.pi / count + np.pi / 2
        tip = np.array([np.cos(angle), 0.0, np.sin(angle)]) * size * rng.uniform(0.3, 0.38)
        start = tip * 0.03 / np.linalg.norm(tip) + np.array((0, 0.12, 0))
        feet.append(bar(start, tip + np.array((0, 0.02, 0)), 0.04, 0.04, material))
    return merge([column, plate, *feet])


def _trestles(rng: np.random.Generator, under: float, width: float, depth: float, material: Material) -> Mesh:
    """Two trestle supports (post, foot, cleat) joined by a stretcher."""
    parts = []
    post = rng.uniform(0.05, 0.1)
    x_position = width / 2 - rng.uniform(0.12, 0.25)
    for sign in (-1.0, 1.0):
        x = sign * x_position
        parts.append(box((post, under - 0.055, post * 1.6), material, (x, 0.03 + (under - 0.055) / 2, 0)))
        parts.append(box((post * 1.2, 0.06, depth * 0.8), material, (x, 0.03, 0)))
        parts.append(box((post * 1.2, 0.05, depth * 0.75), material, (x, under - 0.025, 0)))
    parts.append(box((2 * x_position, 0.07, 0.04), material, (0, under * rng.uniform(0.3, 0.6), 0)))
    return merge(parts)


def build_bookshelf(rng: np.random.Generator) -> Mesh:
    """Bookcase: back panel, crown and plinth, 2-6 shelves of books, sometimes cabinet doors."""
    width = rng.uniform(0.6, 1.2)
    height = rng.uniform(0.8, 2.0)
    depth = rng.uniform(0.25, 0.38)
    board = rng.uniform(0.015, 0.028)
    plinth = rng.uniform(0.04, 0.1)
    case = palette.wood(rng, "case") if rng.random() < 0.75 else palette.painted(rng, "case")
    inner_width = width - 2 * board
    overhang = rng.uniform(0.005, 0.03)
    crown = board * rng.uniform(1.2, 2.0)
    parts = [
        box((board, height - crown, depth), case, (-(width - board) / 2, (height - crown) / 2, 0)),
        box((board, height - crown, depth), case, ((width - board) / 2, (height - crown) / 2, 0)),
        box((width + 2 * overhang, crown, depth + overhang), case, (0, height - crown / 2, -overhang / 2)),
        box((inner_width, board, depth - board * 0.5), case, (0, plinth + board / 2, -board * 0.25)),
        box(
            (inner_width, height - crown - plinth, board * 0.5),
            case,
            (0, (height - crown + plinth) / 2, (depth - board * 0.5) / 2),
        ),
        box((inner_width, plinth, board), case, (0, plinth / 2, -depth / 2 + board * 1.5)),
    ]
    compartments = int(np.clip(round(rng.uniform(0.8, 1.3) * (height - plinth) / 0.33), 2, 6))
    pitch = (height - crown - plinth - board) / compartments
    book_colors = [palette.book(rng, f"book_{index}") for index in range(int(rng.integers(3, 7)))]
    doors = compartments >= 3 and rng.random() < 0.4
    for index in range(compartments):
        floor = plinth + board + index * pitch
        if index > 0:
            parts.append(
                box((inner_width, board, depth - board * 0.5), case, (0, floor - board / 2, -board * 0.25))
            )
        if index == 0 and doors:
            parts += _cabinet_doors(rng, floor, pitch - board, inner_width, depth, case)
        elif rng.random() < 0.9:
            parts += _books(rng, floor, pitch - board, inner_width, depth, book_colors)
    return merge(parts)


def _cabinet_doors(
    rng: np.random.Generator, floor: float, clearance: float, width: float, depth: float, case: Material
) -> list:
    """Two doors closing the lowest compartment, each with a small metal knob."""
    knob = palette.metal(rng, "knob")
    height = clearance + 0.005
    door_width = width / 2 - 0.003
    parts = []
    for side in (-1.0, 1.0):
        center_x = side * (door_width / 2 + 0.002)
        parts.append(
            box((door_width, height, 0.018), case, (center_x, floor + height / 2, -depth / 2 - 0.009))
        )
        knob_position = (side * 0.04, floor + height * 0.7, -depth / 2 - 0.025)
        parts.append(transform(ellipsoid((0.012, 0.012, 0.012), knob, segments=12), np.eye(3), knob_position))
    return parts


def _books(
    rng: np.random.Generator, floor: float, clearance: float, width: float, depth: float, colors
) -> list:
    """Books standing on a shelf from one side (sometimes a lying stack at the end)."""
    books = []
    x = -width / 2 + rng.uniform(0.0, 0.05)
    end = x + width * rng.uniform(0.45, 0.98)
    stack_at_end = rng.random() < 0.3
    while True:
        thickness = rng.uniform(0.015, 0.05)
        if x + thickness > end:
            break
        book_height = min(clearance * rng.uniform(0.6, 0.92), 0.4)
        book_depth = min(depth * rng.uniform(0.55, 0.85), book_height * 0.85)
        color = colors[int(rng.integers(len(colors)))]
        books.append(
            box(
                (thickness, book_height, book_depth),
                color,
                (x + thickness / 2, floor + book_height / 2, -depth / 2 + book_depth / 2 + 0.01),
            )
        )
        x += thickness + rng.uniform(0.0, 0.004)
    if stack_at_end and x < width / 2 - 0.2:
        level = floor
        for _ in range(int(rng.integers(2, 6))):
            thickness = rng.uniform(0.02, 0.04)
            size = rng.uniform(0.14, 0.2)
            color = colors[int(rng.integers(len(colors)))]
            center = (x + 0.03 + size / 2, level + thickness / 2, -depth / 2 + size * 0.65 / 2 + 0.02)
            if level + thickness < floor + clearance:
                books.append(box((size, thickness, size * 0.65), color, center))
            level += thickness
    return books


def build_bed(rng: np.random.Generator) -> Mesh:
    """Bed: frame, mattress, headboard at the back (+Z), optional footboard, pillows and a blanket."""
    width = rng.uniform(0.9, 1.0) if rng.random() < 0.35 else rng.uniform(1.4, 1.8)
    length = rng.uniform(1.95, 2.1)
    frame_top = rng.uniform(0.25, 0.38)
    mattress = rng.uniform(0.15, 0.25)
    leg_height = rng.uniform(0.05, 0.15)
    frame_material = palette.wood(rng, "frame") if rng.random() < 0.7 else palette.fabric(rng, "frame")
    sheet = palette.solid("sheet", tuple(rng.uniform(0.85, 0.95) * np.ones(3)), 0.9)
    blanket_material = palette.fabric(rng, "blanket")
    frame_width, frame_length = width + 0.06, length + 0.06
    parts = [
        box(
            (frame_width, frame_top - leg_height, frame_length),
            frame_material,
            (0, (frame_top + leg_height) / 2, 0),
        )
    ]
    for x in (-1, 1):
        for z in (-1, 1):
            parts.append(
                box(
                    (0.06, leg_height, 0.06),
                    frame_material,
                    (x * (frame_width / 2 - 0.04), leg_height / 2, z * (frame_length / 2 - 0.04)),
                )
            )
    parts.append(cushion((width, mattress, length), 0.04, sheet, (0, frame_top + mattress / 2, 0)))
    head_height = rng.uniform(0.8, 1.25)
    head_style = palette.choose(rng, ("panel", "cushion", "slats"))
    head_z = frame_length / 2 + 0.03
    if head_style == "panel":
        parts.append(
            box((frame_width + 0.04, head_height, 0.05), frame_material, (0, head_height / 2, head_z))
        )
    elif head_style == "cushion":
        padded = palette.fabric(rng, "headboard")
        parts.append(
            box((frame_width, head_height * 0.5, 0.05), frame_material, (0, head_height * 0.25, head_z))
        )
        parts.append(
            cushion(
                (frame_width - 0.02, head_height * 0.55, 0.1),
                0.04,
                padded,
                (0, head_height * 0.7, head_z - 0.02),
            )
        )
    else:
        for x in (-1, 1):
            parts.append(
                box((0.07, head_height, 0.07), frame_material, (x * frame_width / 2, head_height / 2, head_z))
            )
        parts.append(box((frame_width, 0.08, 0.05), frame_material, (0, head_height - 0.06, head_z)))
        slats = int(rng.integers(4, 10))
        for x in np.linspace(-frame_width / 2, frame_width / 2, slats + 2)[1:-1]:
            parts.append(
                box(
                    (0.04, head_height - frame_top, 0.03),
                    frame_material,
                    (x, (head_height + frame_top) / 2, head_z),
                )
            )
    if rng.random() < 0.45:
        foot_height = frame_top + rng.uniform(0.1, 0.3)
        parts.append(
            box((frame_width + 0.04, foot_height, 0.05), frame_material, (0, foot_height / 2, -head_z))
        )
    surface = frame_top + mattress
    pillow_count = 1 if width < 1.2 else int(rng.integers(1, 3))
    pillow_width = width * 0.85 / pillow_count
    for index in range(pillow_count):
        x = -width / 2 + width * 0.075 + pillow_width * (index + 0.5)
        pillow = ellipsoid((pillow_width * 0.48, 0.07, 0.22), sheet, segments=24)
        tilt = rotation_matrix((1, 0, 0), -0.25)
        parts.append(transform(pillow, tilt, (x, surface + 0.06, length / 2 - 0.28)))
    cover = length * rng.uniform(0.55, 0.75)
    parts.append(
        cushion(
            (width + 0.04, 0.04, cover),
            0.02,
            blanket_material,
            (0, surface + 0.01, -length / 2 + cover / 2 - 0.02),
        )
    )
    parts.append(
        box(
            (width + 0.03, mattress + 0.02, 0.03),
            blanket_material,
            (0, surface - mattress / 2, -length / 2 - 0.02),
        )
    )
    for side in (-1.0, 1.0):
        drape = (0.03, mattress * 0.8, cover - 0.01)
        parts.append(
            box(
                drape,
                blanket_material,
                (side * (width / 2 + 0.015), surface - mattress * 0.4, -length / 2 + cover / 2 - 0.02),
            )
        )
    return merge(parts)

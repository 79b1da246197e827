"""Closed, outward-facing primitive meshes: boxes, prisms, surfaces of revolution, tubes and ellipsoids.

Every builder returns a watertight surface (counter-clockwise triangles seen from outside) with
per-vertex normals; vertices are duplicated where the surface has a hard edge.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sie.data.mesh import Material, Mesh, face_normals, merge, rotation_between, transform, vertex_normals
from sie.data.procedural.curves import ROUND_SEGMENTS, polygon_area, rounded_rectangle, triangulate_polygon

TAU = 2.0 * np.pi
SMOOTH_ANGLE_DEGREES = 35.0


def _single_material(vertices, normals, faces, material: Material) -> Mesh:
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    return Mesh(vertices, normals, faces, np.zeros(len(faces), dtype=np.int64), [material])


def _as_materials(materials: Material | Sequence[Material], count: int) -> list[Material]:
    if isinstance(materials, Material):
        return [materials] * count
    materials = list(materials)
    if len(materials) != count:
        raise ValueError(f"{len(materials)} materials given for {count} parts")
    return materials


def box(size: Sequence[float], material: Material, center: Sequence[float] = (0.0, 0.0, 0.0)) -> Mesh:
    """Axis-aligned box of extents ``size`` centred at ``center`` (flat-shaded, 12 triangles)."""
    half = np.asarray(size, dtype=np.float64) / 2.0
    vertices, normals, faces = [], [], []
    for axis in range(3):
        for sign in (-1.0, 1.0):
            normal = np.zeros(3)
            normal[axis] = sign
            first, second = np.eye(3)[(axis + 1) % 3], np.eye(3)[(axis + 2) % 3]
            if sign < 0:
                first, second = second, first
            start = len(vertices)
            for u, v in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
                vertices.append(normal * half + u * first * half + v * second * half)
                normals.append(normal)
            faces += [[start, start + 1, start + 2], [start, start + 2, start + 3]]
    return _single_material(np.asarray(vertices) + np.asarray(center), normals, faces, material)


def _strip_normals(points: np.ndarray, closed: bool, smooth_degrees: float) -> list[tuple]:
    """For each polyline segment: (start, end, start normal, end normal) with outward 2-D normals.

    The outward side is on the right of the direction of travel. Normals are averaged across a
    joint whose turning angle is below ``smooth_degrees``; otherwise the joint is a hard edge.
    """
    count = len(points)
    segment_count = count if closed else count - 1
    directions = [points[(index + 1) % count] - points[index] for index in range(segment_count)]
    normals = [np.array([d[1], -d[0]]) / np.linalg.norm(d) for d in directions]
    limit = np.cos(np.radians(smooth_degrees))

    def joint(first: int, second: int, fallback: np.ndarray) -> np.ndarray:
        if np.dot(normals[first], normals[second]) >= limit:
            average = normals[first] + normals[second]
            return average / np.linalg.norm(average)
        return fallback

    segments = []
    for index in range(segment_count):
        before, after = index - 1, index + 1
        has_before = closed or before >= 0
        has_after = closed or after < segment_count
        start = joint(before % segment_count, index, normals[index]) if has_before else normals[index]
        end = joint(index, after % segment_count, normals[index]) if has_after else normals[index]
        segments.append((points[index], points[(index + 1) % count], start, end))
    return segments


def prism(
    polygon: np.ndarray,
    depth: float,
    material: Material,
    side_materials: Sequence[Material] | None = None,
    smooth_degrees: float = SMOOTH_ANGLE_DEGREES,
) -> Mesh:
    """Extrude a simple 2-D polygon (in the XY plane) along Z from ``-depth / 2`` to ``+depth / 2``.

    ``material`` is used for the two caps; ``side_materials`` (one per polygon edge) for the walls.
    """
    polygon = np.asarray(polygon, dtype=np.float64)
    if polygon_area(polygon) < 0:
        polygon = polygon[::-1]
        if side_materials is not None:
            side_materials = [*list(side_materials)[-2::-1], list(side_materials)[-1]]
    walls = _as_materials(material if side_materials is None else side_materials, len(polygon))
    half = depth / 2.0
    triangles = triangulate_polygon(polygon)
    count = len(polygon)
    parts = []
    for z, sign in ((half, 1.0), (-half, -1.0)):
        vertices = np.column_stack([polygon, np.full(count, z)])
        faces = triangles if sign > 0 else triangles[:, ::-1]
        parts.append(_single_material(vertices, np.tile([0.0, 0.0, sign], (count, 1)), faces, material))
    for wall_material, (start, end, start_normal, end_normal) in zip(
        walls, _strip_normals(polygon, True, smooth_degrees), strict=True
    ):
        vertices = [[*start, -half], [*end, -half], [*end, half], [*start, half]]
        normals = [[*start_normal, 0], [*end_normal, 0], [*end_normal, 0], [*start_normal, 0]]
        parts.append(_single_material(vertices, normals, [[0, 1, 2], [0, 2, 3]], wall_material))
    return merge(parts)


def _ring_band_faces(segments: int, first_ring: int, second_ring: int, skip: str | None) -> list[list[int]]:
    """Triangles between two rings of ``segments`` vertices; ``skip`` drops a degenerate triangle."""
    faces = []
    for index in range(segments):
        a = first_ring + index
        b = first_ring + (index + 1) % segments
        c = second_ring + index
        d = second_ring + (index + 1) % segments
        if skip != "first":
            faces.append([a, c, b])
        if skip != "second":
            faces.append([b, c, d])
    return faces


def lathe(
    profile: np.ndarray,
    materials: Material | Sequence[Material],
    segments: int = ROUND_SEGMENTS,
    smooth_degrees: float = SMOOTH_ANGLE_DEGREES,
) -> Mesh:
    """Surface of revolution about +Y of a 2-D ``profile`` of (radius, height) points.

    The profile runs from the axis at the bottom to the axis at the top, counter-clockwise in the
    (radius, height) plane (the solid lies on its left), e.g. a cylinder is (0,0) (r,0) (r,h) (0,h).
    ``materials`` is one material or one per profile segment.
    """
    profile = np.asarray(profile, dtype=np.float64)
    keep = np.concatenate([[True], np.linalg.norm(np.diff(profile, axis=0), axis=1) > 1e-12])
    segment_materials = _as_materials(materials, len(profile) - 1)
    segment_materials = [m for m, kept in zip(segment_materials, keep[1:], strict=True) if kept]
    profile = profile[keep]
    if profile[0, 0] > 1e-12 or profile[-1, 0] > 1e-12 or np.any(profile[:, 0] < 0):
        raise ValueError("a lathe profile must start and end on the axis and keep radius >= 0")
    profile[[0, -1], 0] = 0.0
    angles = np.arange(segments) * TAU / segments
    cosine, sine = np.cos(angles), np.sin(angles)
    parts = []
    for material, (start, end, start_normal, end_normal) in zip(
        segment_materials, _strip_normals(profile, False, smooth_degrees), strict=True
    ):
        vertices, normals = [], []
        for (radius, height), (normal_radius, normal_height) in ((start, start_normal), (end, end_normal)):
            if radius == 0.0:
                normal_radius, normal_height = 0.0, float(np.sign(normal_height))
            vertices.append(np.column_stack([radius * cosine, np.full(segments, height), radius * sine]))
            normals.append(
                np.column_stack(
                    [normal_radius * cosine, np.full(segments, normal_height), normal_radius * sine]
                )
            )
        skip = "first" if start[0] == 0.0 else "second" if end[0] == 0.0 else None
        faces = _ring_band_faces(segments, 0, segments, skip)
        parts.append(_single_material(np.concatenate(vertices), np.concatenate(normals), faces, material))
    return merge(parts)


def cylinder(
    radius: float,
    height: float,
    material: Material,
    top_radius: float | None = None,
    segments: int = ROUND_SEGMENTS,
) -> Mesh:
    """Closed cylinder (or frustum when ``top_radius`` differs) along +Y, base centred at the origin."""
    top = radius if top_radius is None else top_radius
    return lathe([(0, 0), (radius, 0), (top, height), (0, height)], material, segments)


def ellipsoid(radii: Sequence[float], material: Material, segments: int = ROUND_SEGMENTS) -> Mesh:
    """Ellipsoid with semi-axes ``radii`` centred at the origin."""
    angles = np.linspace(-np.pi / 2, np.pi / 2, segments // 2 + 1)
    profile = np.column_stack([np.cos(angles), np.sin(angles)])
    sphere = lathe(profile, material, segments, smooth_degrees=60.0)
    return transform(sphere, np.eye(3), scale=np.asarray(radii, dtype=np.float64))


def _parallel_transport_frames(points: np.ndarray, closed: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tangents, normals and binormals (binormal = normal x tangent) along a polyline."""
    count = len(points)
    if closed:
        forward = np.roll(points, -1, axis=0) - points
        backward = points - np.roll(points, 1, axis=0)
    else:
        forward = np.diff(points, axis=0, append=points[-1:] * 2 - points[-2:-1])
        backward = np.diff(points, axis=0, prepend=points[:1] * 2 - points[1:2])
    forward /= np.linalg.norm(forward, axis=1, keepdims=True)
    backward /= np.linalg.norm(backward, axis=1, keepdims=True)
    tangents = forward + backward
    tangents /= np.linalg.norm(tangents, axis=1, keepdims=True)
    helper = np.eye(3)[np.argmin(np.abs(tangents[0]))]
    normal = np.cross(tangents[0], helper)
    normals = np.empty((count, 3))
    normals[0] = normal / np.linalg.norm(normal)
    for index in range(1, count):
        normals[index] = rotation_between(tangents[index - 1], tangents[index]) @ normals[index - 1]
    binormals = np.cross(normals, tangents)
    return tangents, normals, binormals


def tube(
    path: np.ndarray,
    radius: float | Sequence[float],
    material: Material,
    segments: int = 16,
    closed: bool = False,
) -> Mesh:
    """A round tube swept along a 3-D polyline (radius per point or constant), capped unless ``closed``."""
    path = np.asarray(path, dtype=np.float64)
    radii = np.broadcast_to(np.asarray(radius, dtype=np.float64), (len(path),))
    tangents, normals, binormals = _parallel_transport_frames(path, closed)
    angles = np.arange(segments) * TAU / segments
    directions = (
        np.cos(angles)[None, :, None] * normals[:, None, :]
        + np.sin(angles)[None, :, None] * binormals[:, None, :]
    )
    rings = path[:, None, :] + radii[:, None, None] * directions
    faces = []
    ring_count = len(path) if closed else len(path) - 1
    for index in range(ring_count):
        following = (index + 1) % len(path)
        faces += _ring_band_faces(segments, index * segments, following * segments, None)
    parts = [_single_material(rings.reshape(-1, 3), directions.reshape(-1, 3), faces, material)]
    if not closed:
        for end, sign in ((0, -1.0), (len(path) - 1, 1.0)):
            vertices = np.vstack([path[end], rings[end]])
            normal = np.tile(sign * tangents[end], (segments + 1, 1))
            fan = [[0, 1 + index, 1 + (index + 1) % segments] for index in range(segments)]
            fan = np.asarray(fan)[:, ::-1] if sign > 0 else fan
            parts.append(_single_material(vertices, normal, fan, material))
    return merge(parts)


def rod(
    start: Sequence[float], end: Sequence[float], radius: float, material: Material, segments: int = 16
) -> Mesh:
    """A capped cylinder between two 3-D points."""
    return tube(np.asarray([start, end], dtype=np.float64), radius, material, segments)


def bar(
    start: Sequence[float], end: Sequence[float], width: float, thickness: float, material: Material
) -> Mesh:
    """A rectangular beam between two 3-D points.

    ``width`` runs horizontally, perpendicular to the beam (along X for a vertical beam), ``thickness``
    along the third direction.
    """
    start, end = np.asarray(start, dtype=np.float64), np.asarray(end, dtype=np.float64)
    length = float(np.linalg.norm(end - start))
    along = (end - start) / length
    across = np.cross(along, (0.0, 1.0, 0.0))
    across = across / np.linalg.norm(across) if np.linalg.norm(across) > 1e-9 else np.array([1.0, 0.0, 0.0])
    rotation = np.column_stack([across, along, np.cross(across, along)])
    return transform(box((width, length, thickness), material), rotation, (start + end) / 2)


def torus_arc(
    major_radius: float,
    minor_radius: float,
    material: Material,
    start_angle: float = 0.0,
    end_angle: float = TAU,
    segments: int = ROUND_SEGMENTS,
    tube_segments: int = 16,
) -> Mesh:
    """A torus (or an arc of one, capped) in the XY plane centred at the origin; angles from +X towards +Y."""
    closed = abs(end_angle - start_angle) >= TAU - 1e-9
    count = segments if closed else max(2, int(np.ceil(segments * abs(end_angle - start_angle) / TAU)) + 1)
    angles = start_angle + np.arange(count) * (end_angle - start_angle) / (count if closed else count - 1)
    path = np.column_stack([major_radius * np.cos(angles), major_radius * np.sin(angles), np.zeros(count)])
    return tube(path, minor_radius, material, tube_segments, closed)


def rounded_slab(
    size: Sequence[float], radius: float, material: Material, center: Sequence[float] = (0.0, 0.0, 0.0)
) -> Mesh:
    """A box of ``size`` whose four vertical (Y) edges are rounded with ``radius``."""
    width, height, depth = size
    outline = rounded_rectangle(width, depth, radius)
    slab = prism(outline, height, material)
    return transform(slab, rotation_between((0, 0, 1), (0, 1, 0)), center)


def cushion(
    size: Sequence[float], radius: float, material: Material, center: Sequence[float] = (0.0, 0.0, 0.0)
) -> Mesh:
    """A box of ``size`` whose four edges parallel to X are rounded (a seat or back cushion)."""
    width, height, depth = size
    outline = rounded_rectangle(depth, height, radius)
    slab = prism(outline, width, material)
    return transform(slab, rotation_between((0, 0, 1), (1, 0, 0)), center)


def loft(sections: np.ndarray, material: Material) -> Mesh:
    """Skin consecutive closed 3-D cross-sections (K, N, 3) with N points each, and cap both ends.

    Each section must be a planar simple polygon; side normals are smoothed around the section.
    """
    sections = np.asarray(sections, dtype=np.float64)
    section_count, point_count = sections.shape[:2]
    vertices = sections.reshape(-1, 3)
    faces = []
    for index in range(section_count - 1):
        faces += _ring_band_faces(point_count, index * point_count, (index + 1) * point_count, None)
    faces = np.asarray(faces, dtype=np.int64)
    centroids = sections.mean(axis=1)
    band = faces[:, 0] // point_count
    axis_points = (
        centroids[np.minimum(band, section_count - 2)] + centroids[np.minimum(band, section_count - 2) + 1]
    ) / 2
    outwardness = np.einsum(
        "ij,ij->", face_normals(vertices, faces), vertices[faces].mean(axis=1) - axis_points
    )
    if outwardness < 0:
        faces = faces[:, ::-1]
    parts = [_single_material(vertices, vertex_normals(vertices, faces), faces, material)]
    for end in (0, section_count - 1):
        outline = sections[end]
        center = outline.mean(axis=0)
        first = outline[0] - center
        normal = np.cross(outline[1] - center, outline[2] - center)
        for offset in range(3, point_count):
            if np.linalg.norm(normal) > 1e-12:
                break
            normal = np.cross(outline[offset - 1] - center, outline[offset] - center)
        axis_u = first / np.linalg.norm(first)
        axis_v = np.cross(normal / np.linalg.norm(normal), axis_u)
        flat = np.column_stack([(outline - center) @ axis_u, (outline - center) @ axis_v])
        order = np.arange(point_count) if polygon_area(flat) > 0 else np.arange(point_count)[::-1]
        cap_faces = order[triangulate_polygon(flat[order])]
        cap_normal = np.tile(face_normals(outline, cap_faces[:1])[0], (point_count, 1))
        cap = Mesh(
            outline,
            cap_normal / np.linalg.norm(cap_normal[0]),
            cap_faces,
            np.zeros(len(cap_faces)),
            [material],
        )
        parts.append(cap)
    # Caps face away from the neighbouring section.
    for position, (end, neighbour) in enumerate(((0, 1), (section_count - 1, section_count - 2))):
        cap = parts[1 + position]
        direction = sections[end].mean(axis=0) - sections[neighbour].mean(axis=0)
        if np.dot(cap.normals[0], direction) < 0:
            parts[1 + position] = Mesh(
                cap.vertices, -cap.normals, cap.faces[:, ::-1], cap.face_materials, cap.materials
            )
    return merge(parts)

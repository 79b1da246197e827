"""2-D outlines and 3-D curves used by the procedural primitives: polygons, Bezier curves, airfoils."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ROUND_SEGMENTS = 32


def polygon_area(points: np.ndarray) -> float:
    """Signed area of a 2-D polygon (positive when counter-clockwise)."""
    x, y = np.asarray(points, dtype=np.float64).T
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def triangulate_polygon(points: np.ndarray) -> np.ndarray:
    """Ear-clipping triangulation of a simple counter-clockwise 2-D polygon; returns (n - 2, 3) indices."""
    points = np.asarray(points, dtype=np.float64)
    remaining = list(range(len(points)))
    triangles = []
    while len(remaining) > 3:
        for position in range(len(remaining)):
            previous = remaining[position - 1]
            current = remaining[position]
            following = remaining[(position + 1) % len(remaining)]
            if _is_ear(points, remaining, previous, current, following):
                triangles.append([previous, current, following])
                remaining.pop(position)
                break
        else:
            raise ValueError("polygon is not simple or not counter-clockwise")
    triangles.append(remaining)
    return np.asarray(triangles, dtype=np.int64)


def _cross_2d(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    return float((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))


def _is_ear(points: np.ndarray, remaining: list[int], previous: int, current: int, following: int) -> bool:
    a, b, c = points[previous], points[current], points[following]
    if _cross_2d(a, b, c) <= 1e-15:
        return False
    for other in remaining:
        if other in (previous, current, following):
            continue
        p = points[other]
        if _cross_2d(a, b, p) >= 0 and _cross_2d(b, c, p) >= 0 and _cross_2d(c, a, p) >= 0:
            return False
    return True


def rounded_rectangle(width: float, height: float, radius: float, corner_segments: int = 6) -> np.ndarray:
    """Counter-clockwise 2-D outline of a rectangle centred at the origin with rounded corners."""
    radius = min(radius, width / 2 * 0.999, height / 2 * 0.999)
    if radius <= 0:
        return np.array(
            [
                [-width / 2, -height / 2],
                [width / 2, -height / 2],
                [width / 2, height / 2],
                [-width / 2, height / 2],
            ]
        )
    points = []
    corners = [(width / 2 - radius, -height / 2 + radius), (width / 2 - radius, height / 2 - radius)]
    corners += [(-width / 2 + radius, height / 2 - radius), (-width / 2 + radius, -height / 2 + radius)]
    for quadrant, (x, y) in enumerate(corners):
        angles = -np.pi / 2 + quadrant * np.pi / 2 + np.linspace(0, np.pi / 2, corner_segments + 1)
        points += [(x + radius * np.cos(angle), y + radius * np.sin(angle)) for angle in angles]
    return np.asarray(points)


def ellipse(width: float, height: float, segments: int = ROUND_SEGMENTS) -> np.ndarray:
    """Counter-clockwise 2-D outline of an ellipse with the given full extents."""
    angles = np.arange(segments) * 2.0 * np.pi / segments
    return np.column_stack([width / 2 * np.cos(angles), height / 2 * np.sin(angles)])


def bezier(control_points: Sequence[Sequence[float]], count: int) -> np.ndarray:
    """``count`` points on the Bezier curve of ``control_points`` (any dimension), endpoints included."""
    controls = np.asarray(control_points, dtype=np.float64)
    parameters = np.linspace(0.0, 1.0, count)[:, None]
    degree = len(controls) - 1
    binomial = [
        float(np.prod(range(degree - k + 1, degree + 1)) / np.prod(range(1, k + 1)))
        for k in range(degree + 1)
    ]
    basis = [binomial[k] * parameters**k * (1 - parameters) ** (degree - k) for k in range(degree + 1)]
    return sum(weight * control for weight, control in zip(basis, controls, strict=True))


def rounded_path(points: Sequence[Sequence[float]], radius: float, corner_count: int = 6) -> np.ndarray:
    """A 3-D polyline whose interior corners are replaced by quadratic Bezier fillets of about ``radius``."""
    points = np.asarray(points, dtype=np.float64)
    result = [points[0]]
    for index in range(1, len(points) - 1):
        corner = points[index]
        before, after = points[index - 1] - corner, points[index + 1] - corner
        cut = min(radius, np.linalg.norm(before) / 2, np.linalg.norm(after) / 2)
        entry = corner + before / np.linalg.norm(before) * cut
        leave = corner + after / np.linalg.norm(after) * cut
        result.extend(bezier([entry, corner, leave], corner_count))
    result.append(points[-1])
    return np.asarray(result)


def airfoil(point_count: int = 16, thickness_ratio: float = 0.12) -> np.ndarray:
    """Closed symmetric NACA-00xx outline in (chord, thickness) units from the leading edge (0) to 1.

    The trailing edge keeps its small NACA thickness, so it has an upper and a lower point.
    """
    half = point_count // 2
    chord = (1 - np.cos(np.linspace(0, np.pi, half + 1))) / 2
    coefficients = (0.2969, -0.126, -0.3516, 0.2843, -0.1015)
    thickness = (
        5
        * thickness_ratio
        * (
            coefficients[0] * np.sqrt(chord)
            + coefficients[1] * chord
            + coefficients[2] * chord**2
            + coefficients[3] * chord**3
            + coefficients[4] * chord**4
        )
    )
    upper = np.column_stack([chord, thickness])
    lower = np.column_stack([chord, -thickness])[::-1][:-1]
    return np.vstack([upper, lower])

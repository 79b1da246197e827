"""Latent factors of a view: sampling from per-view generators, the rotation maths, and the latent
contract every other module derives from (factor order, hue columns, pair latent kinds and sizes, the
rotation and colour targets of a pair of views).

A view's latent is 7 float64 numbers in the release's order: the X, Y, Z angles of an extrinsic
'xyz' Euler rotation (Blender's "XYZ" mode; scipy's ``from_euler("xyz")``), the floor hue, the spot
light's polar angle theta and azimuth phi, and the spot light's hue.

Every view draws from its own generator seeded by (dataset seed, object key, view index), so a view's
latent does not depend on how objects are sharded, in which order they are rendered, or whether a
render resumed. All seven values are always drawn, in the original generator's order (floor hue,
theta, phi, spot hue, then the three angles); a frozen factor replaces its draw afterwards, so
freezing one factor leaves the others unchanged.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

FACTORS = ("angle_x", "angle_y", "angle_z", "floor_hue", "spot_theta", "spot_phi", "spot_hue")
"""Storage order of the latent vector (the release's ``latent_<v>.npy``)."""

SAMPLING_ORDER = ("floor_hue", "spot_theta", "spot_phi", "spot_hue", "angle_x", "angle_y", "angle_z")
"""Order in which a view's generator draws the factors (the original renderer's order)."""

PAPER_RANGES: dict[str, tuple[float, float]] = {
    "angle_x": (-math.pi / 2, math.pi / 2),
    "angle_y": (-math.pi / 2, math.pi / 2),
    "angle_z": (-math.pi / 2, math.pi / 2),
    "floor_hue": (0.0, 1.0),
    "spot_theta": (0.0, math.pi / 4),
    "spot_phi": (0.0, 2 * math.pi),
    "spot_hue": (0.0, 1.0),
}

FACTOR_LIMITS: dict[str, tuple[float, float]] = {
    "angle_x": (-math.pi, math.pi),
    "angle_y": (-math.pi, math.pi),
    "angle_z": (-math.pi, math.pi),
    "floor_hue": (0.0, 1.0),
    "spot_theta": (0.0, math.pi / 2),
    "spot_phi": (-2 * math.pi, 2 * math.pi),
    "spot_hue": (0.0, 1.0),
}
"""Physically meaningful bounds: hues are fractions of the colour wheel, the spot stays above the floor."""

LATENT_SIZE = len(FACTORS)

QUATERNION_SIZE = 4
"""The rotation from one view to another: a quaternion (x, y, z, w; scipy's order and sign)."""

HUE_FACTORS = ("floor_hue", "spot_hue")
"""The colour factors: their changes are the colour targets (colour probe, RotColor latents)."""

HUE_COLUMNS = tuple(FACTORS.index(factor) for factor in HUE_FACTORS)
"""Columns of the colour factors in the latent vector (3 and 6)."""

PAIR_LATENT_SIZES = {"rotation": QUATERNION_SIZE, "rotcolor": QUATERNION_SIZE + len(HUE_FACTORS)}
"""Latent kind of a method -> size of its pair latent z: the relative quaternion, then for ``rotcolor``
the two hue differences (:func:`pair_latents`)."""

COLOUR_LATENTS = frozenset(kind for kind, size in PAIR_LATENT_SIZES.items() if size > QUATERNION_SIZE)
"""Latent kinds that condition on colour changes (they need varying hues)."""


@dataclass(frozen=True)
class LatentSpace:
    """Uniform ranges of the seven factors; a factor with low == high is frozen at that value."""

    ranges: tuple[tuple[float, float], ...]

    @classmethod
    def from_ranges(cls, ranges: Mapping[str, tuple[float, float]]) -> LatentSpace:
        """Build from a mapping factor name -> (low, high); missing factors take the paper's range."""
        unknown = sorted(set(ranges) - set(FACTORS))
        if unknown:
            raise ValueError(f"unknown latent factor(s) {unknown}; known: {list(FACTORS)}")
        bounds = []
        for factor in FACTORS:
            low, high = (float(value) for value in ranges.get(factor, PAPER_RANGES[factor]))
            limit_low, limit_high = FACTOR_LIMITS[factor]
            if not limit_low <= low <= high <= limit_high:
                raise ValueError(
                    f"latent factor '{factor}': range [{low:.6g}, {high:.6g}] must satisfy "
                    f"{limit_low:.6g} <= low <= high <= {limit_high:.6g}"
                )
            bounds.append((low, high))
        return cls(tuple(bounds))

    @classmethod
    def paper(cls) -> LatentSpace:
        """The ranges of 3DIEBench."""
        return cls.from_ranges(PAPER_RANGES)

    def frozen_factors(self) -> tuple[str, ...]:
        """Names of the factors that do not vary."""
        return tuple(name for name, (low, high) in zip(FACTORS, self.ranges, strict=True) if low == high)

    def as_dict(self) -> dict[str, list[float]]:
        """Factor name -> [low, high], for JSON."""
        return {name: [low, high] for name, (low, high) in zip(FACTORS, self.ranges, strict=True)}


def view_generator(dataset_seed: int, object_key: str, view: int, *stream: int) -> np.random.Generator:
    """The generator of one view, seeded by (dataset seed, object key, view index[, stream]).

    ``object_key`` is "<synset>/<object id>"; it enters the seed through SHA-256, so the seed does not
    depend on Python's per-process string hashing. Latents use the plain view generator; other
    per-view draws (the renderer's noise seed) pass an extra ``stream`` number to stay independent.
    """
    digest = hashlib.sha256(object_key.encode("utf-8")).digest()
    words = np.frombuffer(digest, dtype="<u4").tolist()
    entropy = [int(dataset_seed), *words, int(view), *(int(number) for number in stream)]
    return np.random.default_rng(np.random.SeedSequence(entropy))


def sample_view_latent(space: LatentSpace, dataset_seed: int, object_key: str, view: int) -> np.ndarray:
    """The latent (7 float64, storage order) of one view."""
    generator = view_generator(dataset_seed, object_key, view)
    draws = generator.random(LATENT_SIZE)
    latent = np.empty(LATENT_SIZE, dtype=np.float64)
    for draw, factor in zip(draws, SAMPLING_ORDER, strict=True):
        index = FACTORS.index(factor)
        low, high = space.ranges[index]
        latent[index] = low if low == high else low + (high - low) * draw
    return latent


def rotation_matrix(latent: np.ndarray) -> np.ndarray:
    """3x3 matrix of the object rotation R = Rz(gamma) Ry(beta) Rx(alpha) (extrinsic 'xyz')."""
    return Rotation.from_euler("xyz", np.asarray(latent)[..., :3]).as_matrix()


def relative_quaternion(latent_first: np.ndarray, latent_second: np.ndarray) -> np.ndarray:
    """Quaternion (x, y, z, w; scipy's order and sign) of R1^-1 R2, the target of the pair datasets."""
    first = Rotation.from_euler("xyz", np.asarray(latent_first)[..., :3])
    second = Rotation.from_euler("xyz", np.asarray(latent_second)[..., :3])
    return (first.inv() * second).as_quat()


def hue_differences(latent_first: np.ndarray, latent_second: np.ndarray) -> np.ndarray:
    """[floor hue(2) - floor hue(1), spot hue(2) - spot hue(1)] (not wrapped) of n pairs, (n, 2) float64."""
    columns = list(HUE_COLUMNS)
    return np.asarray(latent_second)[:, columns] - np.asarray(latent_first)[:, columns]


def pair_latents(first: np.ndarray, second: np.ndarray, latent_kind: str) -> np.ndarray:
    """Float32 pair latents (n, size) of n pairs of 7-value view latents (n, 7).

    ``rotation``: quaternion (x, y, z, w; scipy's order and sign) of R1^-1 R2. ``rotcolor``: that
    quaternion, then floor-hue and spot-hue differences (second minus first, not wrapped).
    """
    if latent_kind not in PAIR_LATENT_SIZES:
        raise ValueError(f"unknown latent kind {latent_kind!r}; known: {sorted(PAIR_LATENT_SIZES)}")
    quaternion = relative_quaternion(first, second).reshape(-1, QUATERNION_SIZE)
    if latent_kind not in COLOUR_LATENTS:
        return quaternion.astype(np.float32)
    return np.concatenate([quaternion, hue_differences(first, second)], axis=1).astype(np.float32)

"""The 3DIEBench scene, described in plain Python (no bpy): constants and per-view parameters.

The renderer (``sie.data.render``) turns these numbers into Blender objects; keeping them here makes
the scene testable without Blender.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np

CAMERA_DISTANCE = 2.5
CAMERA_POLAR = math.pi / 4
CAMERA_AZIMUTH = math.pi / 2
FLOOR_HEIGHT = -1.0
FLOOR_SIZE = 10_000.0
FLOOR_SATURATION = 0.6
FLOOR_VALUE = 0.6
SUN_ENERGY = 1.5
SUN_ANGLE = math.pi / 2
SPOT_ENERGY = 500.0
SPOT_CONE = math.pi / 8
SPOT_DISTANCE = 4.0
SPOT_SATURATION = 1.0
SPOT_VALUE = 0.8


@dataclass(frozen=True)
class ViewScene:
    """What changes between two views: object rotation, floor colour, spot position and colour."""

    rotation_euler: tuple[float, float, float]
    floor_color: tuple[float, float, float]
    spot_location: tuple[float, float, float]
    spot_color: tuple[float, float, float]


def spherical_to_cartesian(radius: float, polar: float, azimuth: float) -> tuple[float, float, float]:
    """Point at distance ``radius`` from the origin, ``polar`` from +Z and ``azimuth`` from +X."""
    return (
        radius * math.sin(polar) * math.cos(azimuth),
        radius * math.sin(polar) * math.sin(azimuth),
        radius * math.cos(polar),
    )


def camera_location() -> tuple[float, float, float]:
    """The fixed camera position; it looks at the origin."""
    return spherical_to_cartesian(CAMERA_DISTANCE, CAMERA_POLAR, CAMERA_AZIMUTH)


def view_scene(latent: np.ndarray) -> ViewScene:
    """Scene parameters of one view from its 7-value latent (storage order of ``sie.data.latents``)."""
    angle_x, angle_y, angle_z, floor_hue, spot_theta, spot_phi, spot_hue = (float(v) for v in latent)
    return ViewScene(
        rotation_euler=(angle_x, angle_y, angle_z),
        floor_color=colorsys.hsv_to_rgb(floor_hue, FLOOR_SATURATION, FLOOR_VALUE),
        spot_location=spherical_to_cartesian(SPOT_DISTANCE, spot_theta, spot_phi),
        spot_color=colorsys.hsv_to_rgb(spot_hue, SPOT_SATURATION, SPOT_VALUE),
    )

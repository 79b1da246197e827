"""The bpy-free scene description."""

import colorsys
import math

import numpy as np
import pytest

from sie.data.scene import camera_location, spherical_to_cartesian, view_scene


def test_camera_sits_at_distance_2_5_and_polar_angle_pi_over_4():
    location = np.array(camera_location())
    assert np.linalg.norm(location) == pytest.approx(2.5)
    assert math.acos(location[2] / 2.5) == pytest.approx(math.pi / 4)
    np.testing.assert_allclose(location, [0.0, 2.5 / math.sqrt(2), 2.5 / math.sqrt(2)], atol=1e-12)


def test_view_scene_maps_latent_to_colours_and_spot_position():
    latent = np.array([0.1, 0.2, 0.3, 0.0, math.pi / 6, math.pi / 3, 1 / 3])
    view = view_scene(latent)
    assert view.rotation_euler == pytest.approx((0.1, 0.2, 0.3))
    assert view.floor_color == pytest.approx((0.6, 0.24, 0.24))  # HSV(0, 0.6, 0.6): red
    assert view.spot_color == pytest.approx(colorsys.hsv_to_rgb(1 / 3, 1.0, 0.8))  # pure green at 0.8
    assert view.spot_color == pytest.approx((0.0, 0.8, 0.0))
    spot = np.array(view.spot_location)
    assert np.linalg.norm(spot) == pytest.approx(4.0)
    assert spot == pytest.approx([4 * 0.5 * 0.5, 4 * 0.5 * math.sqrt(3) / 2, 4 * math.sqrt(3) / 2])


def test_spherical_coordinates_of_the_poles():
    assert spherical_to_cartesian(2.0, 0.0, 1.0) == pytest.approx((0.0, 0.0, 2.0))
    assert spherical_to_cartesian(1.0, math.pi / 2, 0.0) == pytest.approx((1.0, 0.0, 0.0))

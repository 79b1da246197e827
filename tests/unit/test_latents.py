"""Latent sampling and rotation conventions, against independent computations."""

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from sie.data.latents import (
    FACTORS,
    PAPER_RANGES,
    LatentSpace,
    relative_quaternion,
    rotation_matrix,
    sample_view_latent,
    view_generator,
)


def elementary(axis: str, angle: float) -> np.ndarray:
    """Rotation matrix about one coordinate axis, written out by hand."""
    c, s = math.cos(angle), math.sin(angle)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def test_rotation_is_extrinsic_xyz_like_blender():
    latent = np.array([0.3, -1.1, 0.7, 0, 0, 0, 0])
    expected = elementary("z", 0.7) @ elementary("y", -1.1) @ elementary("x", 0.3)
    np.testing.assert_allclose(rotation_matrix(latent), expected, atol=1e-12)


def test_relative_quaternion_is_body_frame_r1_inverse_r2():
    first = np.array([0.2, 0.4, -0.5, 0, 0, 0, 0])
    second = np.array([-1.0, 0.1, 1.2, 0, 0, 0, 0])
    quaternion = relative_quaternion(first, second)
    expected = rotation_matrix(first).T @ rotation_matrix(second)
    np.testing.assert_allclose(Rotation.from_quat(quaternion).as_matrix(), expected, atol=1e-12)
    np.testing.assert_allclose(
        rotation_matrix(first) @ Rotation.from_quat(quaternion).as_matrix(),
        rotation_matrix(second),
        atol=1e-12,
    )


def test_sampling_is_deterministic_per_view_and_in_range():
    space = LatentSpace.paper()
    first = sample_view_latent(space, 0, "03797390/mug_0001", 3)
    again = sample_view_latent(space, 0, "03797390/mug_0001", 3)
    assert first.dtype == np.float64 and first.shape == (7,)
    assert first.tobytes() == again.tobytes()
    assert not np.array_equal(first, sample_view_latent(space, 0, "03797390/mug_0001", 4))
    assert not np.array_equal(first, sample_view_latent(space, 1, "03797390/mug_0001", 3))
    assert not np.array_equal(first, sample_view_latent(space, 0, "03797390/mug_0002", 3))
    latents = np.stack(
        [sample_view_latent(space, 0, f"a/{index}", view) for index in range(50) for view in range(20)]
    )
    for column, factor in enumerate(FACTORS):
        low, high = PAPER_RANGES[factor]
        assert latents[:, column].min() >= low and latents[:, column].max() <= high
        assert latents[:, column].max() - latents[:, column].min() > 0.9 * (high - low)


def test_sampling_order_and_formula_match_the_original_generator():
    space = LatentSpace.paper()
    draws = view_generator(7, "x/y", 2).random(7)
    latent = sample_view_latent(space, 7, "x/y", 2)
    # Original order of draws: floor hue, spot theta, spot phi, spot hue, then the X, Y, Z angles.
    assert latent[3] == pytest.approx(draws[0])
    assert latent[4] == pytest.approx(draws[1] * math.pi / 4)
    assert latent[5] == pytest.approx(draws[2] * 2 * math.pi)
    assert latent[6] == pytest.approx(draws[3])
    np.testing.assert_allclose(latent[:3], -math.pi / 2 + math.pi * draws[4:7])


def test_freezing_a_factor_leaves_the_others_unchanged():
    free = sample_view_latent(LatentSpace.paper(), 0, "a/b", 5)
    frozen_space = LatentSpace.from_ranges({"floor_hue": (0.25, 0.25), "spot_hue": (0.5, 0.5)})
    frozen = sample_view_latent(frozen_space, 0, "a/b", 5)
    assert frozen[3] == 0.25 and frozen[6] == 0.5
    np.testing.assert_array_equal(np.delete(free, [3, 6]), np.delete(frozen, [3, 6]))
    assert frozen_space.frozen_factors() == ("floor_hue", "spot_hue")


def test_other_streams_of_a_view_are_independent_of_its_latent():
    base = view_generator(0, "a/b", 1).integers(2**31)
    other = view_generator(0, "a/b", 1, 1).integers(2**31)
    assert base != other


@pytest.mark.parametrize(
    ("factor", "bounds"),
    [
        ("floor_hue", (-0.1, 0.5)),
        ("spot_theta", (0.0, 2.0)),
        ("angle_x", (1.0, 0.5)),
        ("angle_y", (-4.0, 0.0)),
    ],
)
def test_out_of_range_factors_are_rejected(factor, bounds):
    with pytest.raises(ValueError, match=factor):
        LatentSpace.from_ranges({factor: bounds})


def test_unknown_factor_is_rejected():
    with pytest.raises(ValueError, match="unknown latent factor"):
        LatentSpace.from_ranges({"rotation": (0, 1)})

"""Tests for sie.data.mesh: the mesh container, its geometry helpers and the OBJ/MTL writer and reader."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pytest

from sie.data import mesh as mesh_module
from sie.data.mesh import (
    Material,
    Mesh,
    bounding_box,
    merge,
    normalize,
    read_obj,
    rotation_between,
    rotation_matrix,
    transform,
    vertex_normals,
    write_obj,
)

RED = Material("red", (1.0, 0.0, 0.0), roughness=0.25, metallic=0.0)
STEEL = Material("steel", (0.6, 0.6, 0.62), roughness=0.3, metallic=1.0)


def cube(size: tuple[float, float, float], center: tuple[float, float, float], material: Material) -> Mesh:
    """A flat-shaded box written out by hand (independent of the procedural primitives)."""
    half = np.asarray(size) / 2
    corners = np.array(list(itertools.product((-1, 1), repeat=3)), dtype=float) * half + center
    # Quads of corner indices (bit 2 = x, bit 1 = y, bit 0 = z), counter-clockwise seen from outside.
    quads = {
        (-1, 0, 0): (0, 1, 3, 2),
        (1, 0, 0): (4, 6, 7, 5),
        (0, -1, 0): (0, 4, 5, 1),
        (0, 1, 0): (2, 3, 7, 6),
        (0, 0, -1): (0, 2, 6, 4),
        (0, 0, 1): (1, 5, 7, 3),
    }
    vertices, normals, faces = [], [], []
    for normal, quad in quads.items():
        start = len(vertices)
        vertices += [corners[index] for index in quad]
        normals += [normal] * 4
        faces += [[start, start + 1, start + 2], [start, start + 2, start + 3]]
    return Mesh(np.array(vertices), np.array(normals, dtype=float), np.array(faces), np.zeros(12), [material])


def signed_volume(mesh: Mesh) -> float:
    corners = mesh.vertices[mesh.faces]
    return float(np.einsum("ij,ij->i", corners[:, 0], np.cross(corners[:, 1], corners[:, 2])).sum() / 6)


def edge_lengths(mesh: Mesh) -> np.ndarray:
    corners = mesh.vertices[mesh.faces]
    return np.linalg.norm(corners - np.roll(corners, 1, axis=1), axis=2)


def test_material_validation() -> None:
    with pytest.raises(ValueError, match="name"):
        Material("Bad Name", (0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="base_color"):
        Material("ok", (1.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="roughness"):
        Material("ok", (0.5, 0.5, 0.5), roughness=2.0)
    assert Material("ok", (np.float64(0.5), 0.5, 0.5)).base_color == (0.5, 0.5, 0.5)


def test_mesh_validation() -> None:
    good = cube((1, 1, 1), (0, 0, 0), RED)
    with pytest.raises(ValueError, match="out of range"):
        Mesh(good.vertices, good.normals, good.faces + 100, good.face_materials, good.materials)
    with pytest.raises(ValueError, match="material index"):
        Mesh(good.vertices, good.normals, good.faces, good.face_materials + 1, good.materials)
    with pytest.raises(ValueError, match="duplicate"):
        Mesh(good.vertices, good.normals, good.faces, good.face_materials, [RED, RED])


def test_hand_made_cube_is_consistent() -> None:
    box = cube((2, 3, 4), (1, 2, 3), RED)
    assert signed_volume(box) == pytest.approx(24.0)
    recomputed = vertex_normals(box.vertices, box.faces)
    np.testing.assert_allclose(recomputed, box.normals, atol=1e-12)


def test_bounding_box_of_known_box() -> None:
    low, high = bounding_box(cube((2, 4, 6), (1, -1, 0.5), RED))
    np.testing.assert_allclose(low, [0, -3, -2.5])
    np.testing.assert_allclose(high, [2, 1, 3.5])


def test_merge_concatenates_and_shares_materials_by_name() -> None:
    first = cube((1, 1, 1), (0, 0, 0), RED)
    second = cube((1, 1, 1), (5, 0, 0), STEEL)
    third = cube((1, 1, 1), (0, 5, 0), Material("red", (1.0, 0.0, 0.0), roughness=0.25))
    merged = merge([first, second, third])
    assert len(merged.vertices) == 72 and len(merged.faces) == 36
    assert [material.name for material in merged.materials] == ["red", "steel"]
    np.testing.assert_array_equal(merged.face_materials, [0] * 12 + [1] * 12 + [0] * 12)
    # Faces of the second part must point at the second part's vertices.
    np.testing.assert_array_equal(merged.faces[12:24], first.faces + 24)
    np.testing.assert_allclose(merged.vertices[merged.faces[12:24]].mean(axis=(0, 1)), [5, 0, 0])
    assert signed_volume(merged) == pytest.approx(3.0)


def test_merge_rejects_conflicting_materials() -> None:
    other_red = Material("red", (0.9, 0.0, 0.0))
    with pytest.raises(ValueError, match="red"):
        merge([cube((1, 1, 1), (0, 0, 0), RED), cube((1, 1, 1), (0, 0, 0), other_red)])


def test_merge_of_nothing_is_empty() -> None:
    empty = merge([])
    assert empty.vertices.shape == (0, 3) and empty.faces.shape == (0, 3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rotation_preserves_lengths_volume_and_unit_normals(seed: int) -> None:
    rng = np.random.default_rng(seed)
    box = cube(tuple(rng.uniform(0.5, 2.0, 3)), tuple(rng.normal(size=3)), RED)
    rotation = rotation_matrix(rng.normal(size=3), rng.uniform(0, 2 * np.pi))
    moved = transform(box, rotation, translation=rng.normal(size=3))
    np.testing.assert_allclose(edge_lengths(moved), edge_lengths(box), atol=1e-12)
    assert signed_volume(moved) == pytest.approx(signed_volume(box))
    np.testing.assert_allclose(np.linalg.norm(moved.normals, axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(moved.normals, box.normals @ rotation.T, atol=1e-12)


def test_transform_scales_then_rotates_then_translates() -> None:
    box = cube((2, 2, 2), (0, 0, 0), RED)
    quarter_turn = rotation_matrix((0, 0, 1), np.pi / 2)  # x -> y
    moved = transform(box, quarter_turn, translation=(10, 0, 0), scale=(2.0, 1.0, 1.0))
    low, high = bounding_box(moved)
    np.testing.assert_allclose(low, [9, -2, -1], atol=1e-12)
    np.testing.assert_allclose(high, [11, 2, 1], atol=1e-12)
    # Non-uniform scaling keeps normals perpendicular to the faces and unit length.
    np.testing.assert_allclose(np.linalg.norm(moved.normals, axis=1), 1.0)
    assert signed_volume(moved) == pytest.approx(16.0)


def test_transform_rejects_reflections_and_bad_scales() -> None:
    box = cube((1, 1, 1), (0, 0, 0), RED)
    with pytest.raises(ValueError, match="reflection"):
        transform(box, np.diag([1.0, 1.0, -1.0]))
    with pytest.raises(ValueError, match="orthonormal"):
        transform(box, np.diag([2.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="positive"):
        transform(box, np.eye(3), scale=-1.0)


def test_rotation_helpers() -> None:
    np.testing.assert_allclose(rotation_matrix((0, 0, 1), np.pi / 2) @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    for source, target in [((0, 1, 0), (0, 0, -1)), ((1, 0, 0), (-1, 0, 0)), ((0, 1, 0), (0, 1, 0))]:
        rotation = rotation_between(source, target)
        np.testing.assert_allclose(rotation @ source, target, atol=1e-12)
        np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(rotation) == pytest.approx(1.0)


def test_normalize_follows_shapenet_convention() -> None:
    box = cube((3, 4, 12), (7, -2, 5), RED)  # diagonal 13
    normalized = normalize(box)
    low, high = bounding_box(normalized)
    np.testing.assert_allclose((low + high) / 2, 0.0, atol=1e-12)
    assert np.linalg.norm(high - low) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(high, np.array([3, 4, 12]) / 26, atol=1e-12)
    with pytest.raises(ValueError, match="degenerate"):
        normalize(Mesh(np.zeros((3, 3)), np.tile([0, 0, 1.0], (3, 1)), [[0, 1, 2]], [0], [RED]))


def two_material_mesh() -> Mesh:
    rotation = rotation_matrix((1, 2, 3), 0.7)
    first = transform(cube((1, 2, 3), (0, 0, 0), RED), rotation, (0.1, -0.2, 0.3))
    second = cube((0.5, 0.5, 0.5), (2, 1, 0), STEEL)
    merged = merge([first, second, cube((0.2, 0.2, 0.2), (-2, 0, 0), RED)])
    return merged


def test_write_read_round_trip(tmp_path: Path) -> None:
    original = two_material_mesh()
    path = tmp_path / "model_normalized.obj"
    write_obj(original, path)
    loaded = read_obj(path)
    # The writer groups faces by material (stable), so compare against that order.
    order = np.argsort(original.face_materials, kind="stable")
    np.testing.assert_allclose(
        loaded.vertices[loaded.faces], original.vertices[original.faces[order]], atol=5e-7
    )
    np.testing.assert_allclose(
        loaded.normals[loaded.faces], original.normals[original.faces[order]], atol=5e-7
    )
    np.testing.assert_array_equal(loaded.face_materials, original.face_materials[order])
    assert [m.name for m in loaded.materials] == [m.name for m in original.materials]
    for read, written in zip(loaded.materials, original.materials, strict=True):
        np.testing.assert_allclose(read.base_color, written.base_color, atol=5e-7)
        assert read.roughness == pytest.approx(written.roughness, abs=5e-7)
        assert read.metallic == pytest.approx(written.metallic, abs=5e-7)


def test_written_text_format(tmp_path: Path) -> None:
    path = tmp_path / "model_normalized.obj"
    write_obj(two_material_mesh(), path)
    lines = path.read_text().splitlines()
    assert "mtllib model_normalized.mtl" in lines
    assert [line for line in lines if line.startswith("usemtl")] == ["usemtl red", "usemtl steel"]
    assert all(len(line.split()) == 4 for line in lines if line.startswith(("v ", "vn ", "f ")))
    face = next(line for line in lines if line.startswith("f "))
    assert all(token.split("//")[0] == token.split("//")[1] for token in face.split()[1:])
    assert not any("-0.000000" in line for line in lines)
    mtl = (tmp_path / "model_normalized.mtl").read_text()
    assert "newmtl steel" in mtl and "Pm 1.000000" in mtl and "Pr 0.300000" in mtl and "d 1.000000" in mtl


def test_same_mesh_gives_identical_bytes(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    write_obj(two_material_mesh(), first / "model.obj")
    write_obj(two_material_mesh(), second / "model.obj")
    assert (first / "model.obj").read_bytes() == (second / "model.obj").read_bytes()
    assert (first / "model.mtl").read_bytes() == (second / "model.mtl").read_bytes()
    shifted = transform(two_material_mesh(), np.eye(3), (1e-3, 0, 0))
    write_obj(shifted, second / "model.obj")
    assert (first / "model.obj").read_bytes() != (second / "model.obj").read_bytes()


def test_writer_leaves_no_temporary_files(tmp_path: Path) -> None:
    write_obj(two_material_mesh(), tmp_path / "model.obj")
    write_obj(two_material_mesh(), tmp_path / "model.obj")  # overwriting works too
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model.mtl", "model.obj"]
    assert oct((tmp_path / "model.obj").stat().st_mode & 0o777) == oct(0o644)


@pytest.mark.parametrize("failing", ["replace"])
def test_failed_write_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    real = getattr(os, failing)
    calls = []

    def broken(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:  # the second file: the MTL is already complete, the OBJ is not
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(os, failing, broken)
    with pytest.raises(OSError, match="disk full"):
        write_obj(two_material_mesh(), tmp_path / "model.obj")
    monkeypatch.undo()
    leftovers = sorted(path.name for path in tmp_path.iterdir())
    assert "model.obj" not in leftovers
    assert not [name for name in leftovers if name.endswith(".tmp")]


def test_failed_write_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "model.obj"
    write_obj(two_material_mesh(), path)
    before = path.read_bytes()

    def broken_faces(mesh: Mesh) -> str:
        raise RuntimeError("formatting failed")

    monkeypatch.setattr(mesh_module, "_format_faces", broken_faces)
    with pytest.raises(RuntimeError):
        write_obj(cube((1, 1, 1), (0, 0, 0), STEEL), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.mtl", "model.obj"]


def test_reader_accepts_other_face_forms(tmp_path: Path) -> None:
    (tmp_path / "quad.mtl").write_text("newmtl red\nKd 1 0 0\nNs 250\n")
    (tmp_path / "quad.obj").write_text(
        "mtllib quad.mtl\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvn 0 0 1\n"
        "usemtl red\nf 1/1/1 2/2/1 3/3/1 4/4/1\n"
    )
    quad = read_obj(tmp_path / "quad.obj")
    assert quad.faces.shape == (2, 3)
    np.testing.assert_allclose(quad.normals, [[0, 0, 1]] * 4)
    assert quad.materials[0].roughness == pytest.approx(0.5)
    (tmp_path / "plain.obj").write_text("mtllib quad.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nusemtl red\nf 1 2 3\n")
    np.testing.assert_allclose(read_obj(tmp_path / "plain.obj").normals, [[0, 0, 1]] * 3)
    (tmp_path / "bad.obj").write_text("mtllib quad.mtl\nv 0 0 0\nvn 0 0 1\nusemtl blue\nf 1//1 1//1 1//1\n")
    with pytest.raises(ValueError, match="blue"):
        read_obj(tmp_path / "bad.obj")

"""Triangle meshes with materials, a few geometry helpers and a deterministic Wavefront OBJ/MTL writer.

The writer produces files that Blender's OBJ importer reads like ShapeNetCore v2 ``model_normalized.obj``
files: ``v``/``vn`` records, ``f a//a b//b c//c`` triangles grouped by ``usemtl`` and an MTL file with
``Kd`` (base colour), ``Ns``/``Pr`` (roughness) and ``Pm`` (metallic).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sie.io import atomic_open

_MATERIAL_NAME = re.compile(r"[a-z0-9_]+")
_FLOAT_DIGITS = 6


@dataclass(frozen=True)
class Material:
    """A PBR material: base colour, roughness and metallic, each in [0, 1]."""

    name: str
    base_color: tuple[float, float, float]
    roughness: float = 0.5
    metallic: float = 0.0

    def __post_init__(self) -> None:
        if not _MATERIAL_NAME.fullmatch(self.name):
            raise ValueError(f"material name {self.name!r} must match [a-z0-9_]+")
        color = tuple(float(channel) for channel in self.base_color)
        if len(color) != 3 or not all(0.0 <= channel <= 1.0 for channel in color):
            raise ValueError(
                f"material {self.name!r}: base_color {self.base_color!r} must be 3 values in [0, 1]"
            )
        for label in ("roughness", "metallic"):
            value = float(getattr(self, label))
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"material {self.name!r}: {label}={value} must be in [0, 1]")
            object.__setattr__(self, label, value)
        object.__setattr__(self, "base_color", color)


@dataclass
class Mesh:
    """Indexed triangle mesh with per-vertex normals and one material per face."""

    vertices: np.ndarray
    normals: np.ndarray
    faces: np.ndarray
    face_materials: np.ndarray
    materials: list[Material]

    def __post_init__(self) -> None:
        self.vertices = np.asarray(self.vertices, dtype=np.float64).reshape(-1, 3)
        self.normals = np.asarray(self.normals, dtype=np.float64).reshape(-1, 3)
        self.faces = np.asarray(self.faces, dtype=np.int64).reshape(-1, 3)
        self.face_materials = np.asarray(self.face_materials, dtype=np.int64).reshape(-1)
        self.materials = list(self.materials)
        if len(self.normals) != len(self.vertices):
            raise ValueError(f"{len(self.normals)} normals for {len(self.vertices)} vertices")
        if len(self.face_materials) != len(self.faces):
            raise ValueError(f"{len(self.face_materials)} face materials for {len(self.faces)} faces")
        if self.faces.size and (self.faces.min() < 0 or self.faces.max() >= len(self.vertices)):
            raise ValueError("face index out of range")
        if self.face_materials.size and (
            self.face_materials.min() < 0 or self.face_materials.max() >= len(self.materials)
        ):
            raise ValueError("face material index out of range")
        names = [material.name for material in self.materials]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate material names in {names}")


def merge(meshes: Sequence[Mesh]) -> Mesh:
    """Concatenate meshes; materials with the same name become one (they must then be identical)."""
    materials: list[Material] = []
    index_by_name: dict[str, int] = {}
    vertices, normals, faces, face_materials = [], [], [], []
    offset = 0
    for mesh in meshes:
        remap = np.empty(len(mesh.materials), dtype=np.int64)
        for position, material in enumerate(mesh.materials):
            if material.name not in index_by_name:
                index_by_name[material.name] = len(materials)
                materials.append(material)
            elif materials[index_by_name[material.name]] != material:
                raise ValueError(f"two different materials are named {material.name!r}")
            remap[position] = index_by_name[material.name]
        vertices.append(mesh.vertices)
        normals.append(mesh.normals)
        faces.append(mesh.faces + offset)
        face_materials.append(remap[mesh.face_materials])
        offset += len(mesh.vertices)
    if not vertices:
        return Mesh(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0), [])
    arrays = [np.concatenate(parts) for parts in (vertices, normals, faces, face_materials)]
    return Mesh(*arrays, materials)


def transform(
    mesh: Mesh,
    rotation: np.ndarray,
    translation: Sequence[float] | np.ndarray = (0.0, 0.0, 0.0),
    scale: float | Sequence[float] | np.ndarray = 1.0,
) -> Mesh:
    """Scale (uniform or per axis, positive), then rotate, then translate; normals follow correctly."""
    rotation = np.asarray(rotation, dtype=np.float64)
    if rotation.shape != (3, 3) or not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-9):
        raise ValueError("rotation must be an orthonormal 3x3 matrix")
    if np.linalg.det(rotation) < 0:
        raise ValueError("rotation must not be a reflection (it would flip the winding)")
    scale_vector = np.broadcast_to(np.asarray(scale, dtype=np.float64), (3,))
    if np.any(scale_vector <= 0):
        raise ValueError(f"scale {scale!r} must be positive")
    vertices = (mesh.vertices * scale_vector) @ rotation.T + np.asarray(translation, dtype=np.float64)
    normals = (mesh.normals / scale_vector) @ rotation.T
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    return Mesh(vertices, normals, mesh.faces.copy(), mesh.face_materials.copy(), list(mesh.materials))


def bounding_box(mesh: Mesh) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned bounding box (minimum corner, maximum corner)."""
    return mesh.vertices.min(axis=0), mesh.vertices.max(axis=0)


def normalize(mesh: Mesh) -> Mesh:
    """ShapeNetCore v2 convention: bounding box centred at the origin with a diagonal of length 1."""
    low, high = bounding_box(mesh)
    diagonal = float(np.linalg.norm(high - low))
    if not diagonal > 0:
        raise ValueError("cannot normalise a mesh with an empty or degenerate bounding box")
    return transform(mesh, np.eye(3), -(low + high) / (2 * diagonal), 1.0 / diagonal)


def rotation_matrix(axis: Sequence[float] | np.ndarray, angle: float) -> np.ndarray:
    """Right-handed rotation by ``angle`` radians about ``axis`` (Rodrigues' formula)."""
    unit = np.asarray(axis, dtype=np.float64)
    unit = unit / np.linalg.norm(unit)
    cross = np.array([[0, -unit[2], unit[1]], [unit[2], 0, -unit[0]], [-unit[1], unit[0], 0]])
    return np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross


def rotation_between(
    source: Sequence[float] | np.ndarray, target: Sequence[float] | np.ndarray
) -> np.ndarray:
    """The smallest rotation that turns direction ``source`` into direction ``target``."""
    source = np.asarray(source, dtype=np.float64) / np.linalg.norm(source)
    target = np.asarray(target, dtype=np.float64) / np.linalg.norm(target)
    axis = np.cross(source, target)
    sine, cosine = np.linalg.norm(axis), float(np.dot(source, target))
    if sine < 1e-12:
        if cosine > 0:
            return np.eye(3)
        helper = np.eye(3)[np.argmin(np.abs(source))]
        return rotation_matrix(np.cross(source, helper), np.pi)
    return rotation_matrix(axis, float(np.arctan2(sine, cosine)))


def face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unnormalised face normals (length = twice the triangle area), following the CCW winding."""
    corners = vertices[faces]
    return np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted smooth per-vertex normals (unit length; +Y for vertices used by no face)."""
    accumulated = np.zeros_like(vertices, dtype=np.float64)
    weighted = face_normals(vertices, faces)
    for corner in range(3):
        np.add.at(accumulated, faces[:, corner], weighted)
    length = np.linalg.norm(accumulated, axis=1, keepdims=True)
    fallback = np.tile([0.0, 1.0, 0.0], (len(vertices), 1))
    return np.where(length > 1e-300, accumulated / np.maximum(length, 1e-300), fallback)


def _format_rows(prefix: str, values: np.ndarray) -> str:
    """Rows like ``v 0.100000 -0.250000 1.000000`` with negative zeros removed."""
    cleaned = np.round(values, _FLOAT_DIGITS) + 0.0
    row = f"{prefix} %.{_FLOAT_DIGITS}f %.{_FLOAT_DIGITS}f %.{_FLOAT_DIGITS}f\n"
    return "".join(row % tuple(item) for item in cleaned.tolist())


def _format_faces(mesh: Mesh) -> str:
    """``usemtl`` groups in material order, faces in their original order within a group (1-based)."""
    order = np.argsort(mesh.face_materials, kind="stable")
    lines = []
    current = -1
    for face_index in order.tolist():
        material_index = int(mesh.face_materials[face_index])
        if material_index != current:
            lines.append(f"usemtl {mesh.materials[material_index].name}\n")
            current = material_index
        a, b, c = (mesh.faces[face_index] + 1).tolist()
        lines.append(f"f {a}//{a} {b}//{b} {c}//{c}\n")
    return "".join(lines)


def _format_mtl(materials: Sequence[Material]) -> str:
    """MTL text: Kd colour, Ns and Pr for roughness, Pm for metallic, opaque."""
    digits = _FLOAT_DIGITS
    blocks = []
    for material in materials:
        red, green, blue = material.base_color
        exponent = 1000.0 * (1.0 - material.roughness) ** 2
        blocks.append(
            f"newmtl {material.name}\n"
            f"Kd {red:.{digits}f} {green:.{digits}f} {blue:.{digits}f}\n"
            f"Ks 0.500000 0.500000 0.500000\n"
            f"Ns {exponent:.{digits}f}\n"
            f"Pr {material.roughness:.{digits}f}\n"
            f"Pm {material.metallic:.{digits}f}\n"
            "d 1.000000\n"
            "illum 2\n\n"
        )
    return "# sie procedural materials\n\n" + "".join(blocks)


def write_obj(mesh: Mesh, obj_path: Path) -> None:
    """Write ``obj_path`` and its ``.mtl`` sibling atomically; the same mesh always gives the same bytes."""
    obj_path = Path(obj_path)
    mtl_path = obj_path.with_suffix(".mtl")
    obj_text = (
        "# sie procedural mesh\n"
        f"mtllib {mtl_path.name}\n"
        + _format_rows("v", mesh.vertices)
        + _format_rows("vn", mesh.normals)
        + _format_faces(mesh)
    )
    mtl_text = _format_mtl(mesh.materials)
    # The MTL goes first, so an OBJ on disk always has its complete MTL beside it.
    for path, text in ((mtl_path, mtl_text), (obj_path, obj_text)):
        with atomic_open(path, "w") as stream:
            stream.write(text)


def _read_mtl(mtl_path: Path) -> list[Material]:
    """Read ``newmtl``, ``Kd``, ``Pr`` (or ``Ns``) and ``Pm`` records."""
    fields: list[dict] = []
    for line in mtl_path.read_text(encoding="ascii").splitlines():
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if parts[0] == "newmtl":
            fields.append({"name": parts[1], "base_color": (0.8, 0.8, 0.8)})
        elif parts[0] == "Kd":
            fields[-1]["base_color"] = tuple(float(value) for value in parts[1:4])
        elif parts[0] == "Pr":
            fields[-1]["roughness"] = float(parts[1])
        elif parts[0] == "Ns":
            fields[-1].setdefault("roughness", 1.0 - np.sqrt(min(float(parts[1]), 1000.0) / 1000.0))
        elif parts[0] == "Pm":
            fields[-1]["metallic"] = float(parts[1])
    return [Material(**entry) for entry in fields]


def read_obj(obj_path: Path) -> Mesh:
    """Minimal OBJ reader (``v``, ``vn``, ``f`` with ``a//n``, ``a/t/n`` or ``a``, ``usemtl``, ``mtllib``).

    Polygons are fan-triangulated; each distinct (position, normal) pair becomes one vertex; without
    ``vn`` records the normals are computed from the faces.
    """
    obj_path = Path(obj_path)
    positions, normals_in, corners, face_material_names = [], [], [], []
    materials: list[Material] = []
    current_material: str | None = None
    for line in obj_path.read_text(encoding="ascii").splitlines():
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if parts[0] == "v":
            positions.append([float(value) for value in parts[1:4]])
        elif parts[0] == "vn":
            normals_in.append([float(value) for value in parts[1:4]])
        elif parts[0] == "mtllib":
            materials.extend(_read_mtl(obj_path.parent / " ".join(parts[1:])))
        elif parts[0] == "usemtl":
            current_material = parts[1]
        elif parts[0] == "f":
            if current_material is None:
                raise ValueError(f"{obj_path}: face before any usemtl")
            polygon = []
            for token in parts[1:]:
                pieces = token.split("/")
                normal = int(pieces[2]) if len(pieces) == 3 and pieces[2] else int(pieces[0])
                polygon.append((int(pieces[0]) - 1, normal - 1))
            for index in range(1, len(polygon) - 1):
                corners.append((polygon[0], polygon[index], polygon[index + 1]))
                face_material_names.append(current_material)
    pair_index: dict[tuple[int, int], int] = {}
    faces = [[pair_index.setdefault(pair, len(pair_index)) for pair in triangle] for triangle in corners]
    pairs = list(pair_index)
    position_array = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    normal_array = np.asarray(normals_in, dtype=np.float64).reshape(-1, 3)
    material_index = {material.name: index for index, material in enumerate(materials)}
    unknown = sorted(set(face_material_names) - set(material_index))
    if unknown:
        raise ValueError(f"{obj_path}: materials {unknown} are not defined in its MTL file")
    vertices = position_array[[position for position, _ in pairs]].reshape(-1, 3)
    face_array = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    if len(normal_array):
        normals = normal_array[[normal for _, normal in pairs]].reshape(-1, 3)
    else:  # no vn records: smooth normals from the faces
        normals = vertex_normals(vertices, face_array)
    face_material_indices = np.asarray([material_index[name] for name in face_material_names], dtype=np.int64)
    return Mesh(vertices, normals, face_array, face_material_indices, materials)

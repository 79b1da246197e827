"""Built-in procedural object classes that stand in for ShapeNetCore v2 models.

Each class builds a deterministic, seed-dependent mesh (Y up, front towards -Z) from pure numpy; the
registry maps a class name to its ShapeNetCore v2 synset id so that the generated files can be laid out
like ShapeNet (``<synset>/<id>/models/model_normalized.obj``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sie.data.mesh import Mesh, normalize
from sie.data.procedural.containers import build_bottle, build_bowl, build_mug, build_vase
from sie.data.procedural.furniture import build_bed, build_bookshelf, build_table
from sie.data.procedural.household import build_display, build_guitar, build_lamp
from sie.data.procedural.seating import build_bench, build_chair, build_sofa
from sie.data.procedural.vehicles import build_airplane, build_car


@dataclass(frozen=True)
class ProceduralClass:
    """One object class: its name, ShapeNetCore v2 synset, symmetry and mesh builder."""

    name: str
    synset: str
    symmetric: bool
    build: Callable[[np.random.Generator], Mesh]


_DEFINITIONS = [
    ProceduralClass("airplane", "02691156", False, build_airplane),
    ProceduralClass("bed", "02818832", False, build_bed),
    ProceduralClass("bench", "02828884", False, build_bench),
    ProceduralClass("bookshelf", "02871439", False, build_bookshelf),
    ProceduralClass("bottle", "02876657", True, build_bottle),
    ProceduralClass("bowl", "02880940", True, build_bowl),
    ProceduralClass("car", "02958343", False, build_car),
    ProceduralClass("chair", "03001627", False, build_chair),
    ProceduralClass("display", "03211117", False, build_display),
    ProceduralClass("guitar", "03467517", False, build_guitar),
    ProceduralClass("lamp", "03636649", False, build_lamp),
    ProceduralClass("mug", "03797390", False, build_mug),
    ProceduralClass("sofa", "04256520", False, build_sofa),
    ProceduralClass("table", "04379243", False, build_table),
    # ShapeNetCore v2 has no vase class; "jar" (03593526) is the closest and holds many vases.
    ProceduralClass("vase", "03593526", True, build_vase),
]

CLASSES: dict[str, ProceduralClass] = {
    definition.name: definition for definition in sorted(_DEFINITIONS, key=lambda d: d.name)
}


def build_object(class_name: str, seed: int) -> Mesh:
    """Build instance ``seed`` of ``class_name``, normalised like ShapeNetCore v2 (unit bbox diagonal)."""
    if class_name not in CLASSES:
        raise ValueError(f"unknown procedural class {class_name!r}; known classes: {', '.join(CLASSES)}")
    return normalize(CLASSES[class_name].build(np.random.default_rng(seed)))

"""Colour palettes for procedural objects: each helper draws one plausible material from the generator."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sie.data.mesh import Material

WOODS = [(0.55, 0.35, 0.18), (0.72, 0.52, 0.30), (0.36, 0.20, 0.10), (0.83, 0.68, 0.47), (0.22, 0.12, 0.06)]
METALS = [(0.80, 0.80, 0.82), (0.55, 0.56, 0.58), (0.80, 0.62, 0.30), (0.15, 0.15, 0.16), (0.72, 0.45, 0.30)]
PAINTS = [
    (0.70, 0.08, 0.07),
    (0.08, 0.22, 0.55),
    (0.10, 0.45, 0.20),
    (0.90, 0.75, 0.10),
    (0.92, 0.92, 0.90),
    (0.06, 0.06, 0.07),
    (0.50, 0.52, 0.55),
    (0.85, 0.35, 0.08),
    (0.40, 0.10, 0.45),
    (0.10, 0.55, 0.60),
]
FABRICS = [
    (0.45, 0.45, 0.48),
    (0.20, 0.25, 0.40),
    (0.55, 0.15, 0.12),
    (0.75, 0.68, 0.55),
    (0.25, 0.40, 0.28),
    (0.12, 0.12, 0.13),
    (0.62, 0.50, 0.40),
    (0.70, 0.55, 0.20),
]
CERAMICS = [
    (0.93, 0.92, 0.88),
    (0.15, 0.30, 0.60),
    (0.80, 0.25, 0.18),
    (0.20, 0.50, 0.40),
    (0.95, 0.80, 0.30),
    (0.10, 0.10, 0.11),
    (0.60, 0.75, 0.85),
    (0.85, 0.55, 0.60),
]
GLASSES = [(0.10, 0.35, 0.12), (0.35, 0.18, 0.05), (0.55, 0.75, 0.70), (0.12, 0.25, 0.50), (0.70, 0.80, 0.78)]
BOOKS = [
    (0.60, 0.10, 0.10),
    (0.10, 0.20, 0.45),
    (0.15, 0.40, 0.20),
    (0.85, 0.75, 0.55),
    (0.90, 0.55, 0.10),
    (0.25, 0.25, 0.28),
    (0.50, 0.30, 0.55),
    (0.90, 0.90, 0.85),
    (0.20, 0.55, 0.65),
]


def choose(rng: np.random.Generator, options: Sequence[str], weights: Sequence[float] | None = None) -> str:
    """One of ``options`` (uniformly, or with the given relative weights)."""
    probabilities = None if weights is None else np.asarray(weights) / np.sum(weights)
    return options[int(rng.choice(len(options), p=probabilities))]


def _jitter(
    rng: np.random.Generator, color: Sequence[float], amount: float = 0.08
) -> tuple[float, float, float]:
    scale = rng.uniform(1.0 - amount, 1.0 + amount)
    shifted = np.asarray(color) * scale + rng.uniform(-amount / 3, amount / 3, 3)
    return tuple(float(channel) for channel in np.clip(shifted, 0.0, 1.0))


def _pick(rng: np.random.Generator, palette: Sequence[Sequence[float]]) -> Sequence[float]:
    return palette[int(rng.integers(len(palette)))]


def wood(rng: np.random.Generator, name: str = "wood") -> Material:
    """Varnished or raw wood."""
    return Material(name, _jitter(rng, _pick(rng, WOODS)), float(rng.uniform(0.35, 0.7)), 0.0)


def metal(rng: np.random.Generator, name: str = "metal") -> Material:
    """Steel, aluminium, brass, black steel or copper."""
    return Material(name, _jitter(rng, _pick(rng, METALS), 0.04), float(rng.uniform(0.2, 0.45)), 1.0)


def painted(rng: np.random.Generator, name: str = "paint", glossy: bool = False) -> Material:
    """Painted (or plastic) surface in a saturated or neutral colour."""
    roughness = rng.uniform(0.15, 0.3) if glossy else rng.uniform(0.35, 0.6)
    return Material(name, _jitter(rng, _pick(rng, PAINTS)), float(roughness), 0.0)


def fabric(rng: np.random.Generator, name: str = "fabric") -> Material:
    """Upholstery fabric or leather-like cover."""
    return Material(name, _jitter(rng, _pick(rng, FABRICS)), float(rng.uniform(0.75, 0.95)), 0.0)


def ceramic(rng: np.random.Generator, name: str = "ceramic") -> Material:
    """Glazed ceramic."""
    return Material(name, _jitter(rng, _pick(rng, CERAMICS), 0.05), float(rng.uniform(0.1, 0.25)), 0.0)


def glass(rng: np.random.Generator, name: str = "glass") -> Material:
    """Opaque stand-in for coloured glass: dark-ish, very smooth."""
    return Material(name, _jitter(rng, _pick(rng, GLASSES), 0.05), float(rng.uniform(0.03, 0.1)), 0.0)


def book(rng: np.random.Generator, name: str) -> Material:
    """A book cover colour."""
    return Material(name, _jitter(rng, _pick(rng, BOOKS), 0.15), float(rng.uniform(0.4, 0.8)), 0.0)


def solid(name: str, color: Sequence[float], roughness: float = 0.5, metallic: float = 0.0) -> Material:
    """A fixed material (rubber, dark glass, bulbs ...)."""
    return Material(name, tuple(float(channel) for channel in color), roughness, metallic)

"""Image-level summaries of a dataset: per-channel statistics and a grid of sample views."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from sie.data.layout import image_path
from sie.data.objects import ObjectRef

LABEL_WIDTH = 110


def load_rgb(path: Path) -> np.ndarray:
    """Decode an image fully as uint8 RGB (H, W, 3); a corrupt file raises an error naming it."""
    try:
        with Image.open(path) as image:
            image.load()
            return np.asarray(image.convert("RGB"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: image file missing") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ValueError(f"{path}: corrupt image ({error})") from None


def channel_statistics(
    root: Path, objects: Sequence[ObjectRef], views: int, sample_size: int, seed: int
) -> dict[str, object]:
    """Per-channel mean and standard deviation (pixel values in [0, 1]) over a seeded sample of views.

    The sample is drawn without replacement from every (object, view) of ``objects`` with
    ``np.random.default_rng(seed)``; it covers every view when ``sample_size`` is large enough.
    """
    total = len(objects) * views
    if total == 0:
        raise ValueError("no images to compute statistics on (empty training split)")
    count = min(sample_size, total)
    chosen = np.sort(np.random.default_rng(seed).choice(total, size=count, replace=False))
    sums = np.zeros(3)
    squares = np.zeros(3)
    pixels = 0
    for flat in chosen:
        item, view = objects[flat // views], int(flat % views)
        image = load_rgb(image_path(root, item, view)).reshape(-1, 3).astype(np.float64) / 255.0
        sums += image.sum(axis=0)
        squares += np.square(image).sum(axis=0)
        pixels += image.shape[0]
    mean = sums / pixels
    std = np.sqrt(np.maximum(squares / pixels - np.square(mean), 0.0))
    return {"mean": mean.round(6).tolist(), "std": std.round(6).tolist(), "images": int(count)}


def sample_grid(
    root: Path,
    objects_by_class: Mapping[str, Sequence[ObjectRef]],
    names: Mapping[str, str],
    views: int,
    columns: int = 8,
    cell: int = 96,
) -> Image.Image:
    """One row per class: ``columns`` views cycling through the class's objects and view indices."""
    rows = list(objects_by_class.items())
    grid = Image.new("RGB", (LABEL_WIDTH + columns * cell, len(rows) * cell), "white")
    draw = ImageDraw.Draw(grid)
    for row, (synset, members) in enumerate(rows):
        draw.text((6, row * cell + cell // 2 - 12), f"{names.get(synset, synset)}\n{synset}", fill="black")
        for column in range(columns):
            item = members[column % len(members)]
            view = column % views
            image = Image.fromarray(load_rgb(image_path(root, item, view))).resize(
                (cell, cell), Image.BILINEAR
            )
            grid.paste(image, (LABEL_WIDTH + column * cell, row * cell))
    return grid

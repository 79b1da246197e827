"""Test support shared by several test folders: stand-ins for external data, Snakemake output parsing."""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from sie.data.latents import LatentSpace, sample_view_latent

# Objects per class in the release's split files (train, val), docs/dataset.md#classes.
PAPER_SPLIT = {
    "02691156": (3241, 804), "02747177": (272, 71), "02773838": (65, 18), "02801938": (88, 25),
    "02808440": (667, 189), "02818832": (197, 36), "02828884": (1452, 361), "02843684": (51, 22),
    "02871439": (354, 98), "02876657": (413, 85), "02880940": (145, 41), "02924116": (731, 208),
    "02933112": (1254, 317), "02942699": (95, 18), "02946921": (83, 25), "02954340": (44, 12),
    "02958343": (2788, 726), "02992529": (676, 155), "03001627": (5398, 1380), "03046257": (512, 139),
    "03085013": (49, 16), "03207941": (79, 14), "03211117": (889, 204), "03261776": (58, 15),
    "03325088": (581, 163), "03337140": (235, 63), "03467517": (632, 165), "03513137": (121, 41),
    "03593526": (479, 117), "03624134": (333, 91), "03636649": (1887, 431), "03642806": (363, 97),
    "03691459": (1274, 323), "03710193": (75, 19), "03759954": (55, 12), "03761084": (119, 33),
    "03790512": (270, 67), "03797390": (171, 43), "03928116": (188, 51), "03938244": (80, 16),
    "03948459": (239, 68), "03991062": (489, 113), "04004475": (126, 40), "04074963": (54, 12),
    "04090263": (1919, 454), "04099429": (67, 18), "04225987": (128, 24), "04256520": (2538, 635),
    "04330267": (186, 32), "04379243": (6748, 1688), "04401088": (861, 228), "04460130": (114, 19),
    "04468005": (316, 73), "04530566": (1540, 399), "04554684": (131, 38),
}  # fmt: skip


def write_paper_inputs(folder: Path) -> dict[str, str]:
    """A stand-in for ShapeNetCore v2 (an empty folder) and the release's split files (52,472 objects);
    returns the environment variables configs/paper.yaml reads."""
    shapenet = folder / "ShapeNetCore.v2"
    shapenet.mkdir(parents=True)
    splits = folder / "splits"
    splits.mkdir()
    for position, name in enumerate(("train", "val")):
        paths = [
            f"/{synset}/{synset}x{index:05d}/"
            for synset, counts in PAPER_SPLIT.items()
            for index in range(sum(counts[:position]), sum(counts[: position + 1]))
        ]
        np.save(splits / f"{name}_images.npy", np.array(paths))
    return {"SHAPENET_ROOT": str(shapenet), "SIE_SPLITS": str(splits)}


def job_counts(output: str) -> dict[str, int]:
    """Parse the 'Job stats' table of a Snakemake dry run into {rule: count}."""
    counts: dict[str, int] = {}
    lines = output.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("Job stats"))
    for line in lines[start + 3 :]:
        fields = line.split()
        if len(fields) != 2 or not fields[1].isdigit():
            break
        counts[fields[0]] = int(fields[1])
    return counts


def write_release_folder(
    root: Path,
    synsets: Sequence[str],
    objects_per_class: int,
    views: int,
    size: int | tuple[int, int],
    latents: LatentSpace | None = None,
) -> Path:
    """A small dataset in the release layout without Blender: per class a base colour plus noise, as
    JPEGs of ``size`` pixels (square, or (height, width)), and each view's latent from the paper's
    sampler. Returns ``root``."""
    generator = np.random.default_rng(0)
    space = latents or LatentSpace.paper()
    height, width = (size, size) if isinstance(size, int) else size
    for synset in synsets:
        base = generator.integers(0, 256, size=3)
        for index in range(objects_per_class):
            object_dir = root / synset / f"object{index}"
            object_dir.mkdir(parents=True)
            for view in range(views):
                noise = generator.integers(-40, 40, size=(height, width, 3))
                pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(object_dir / f"image_{view}.jpg", quality=95)
                np.save(
                    object_dir / f"latent_{view}.npy", sample_view_latent(space, 0, f"{synset}/{index}", view)
                )
    return root


TEST_SYNSETS = ("02691156", "03001627", "03797390")
"""The classes of the small packed datasets the training and GPU tests make (airplane, chair, mug)."""


def packed_release_dataset(
    folder: Path,
    latents: LatentSpace,
    size: int = 32,
    views: int = 3,
    images: str = "auto",
    name: str = "tiny",
) -> Path:
    """Write, index and pack 3 classes x 4 objects x ``views`` views of ``size`` px JPEGs (no Blender)."""
    from sie.config import dataset_variant, resolve_config
    from sie.data.index import build_index
    from sie.data.store import write_store

    root = write_release_folder(folder / "release", TEST_SYNSETS, 4, views, size, latents)
    spec = {
        "source": "prerendered",
        "root": str(root),
        "views": views,
        "image_size": size,
        "split": {"val_fraction": 0.2},
    }
    variant = dataset_variant(name, resolve_config({"datasets": {name: spec}})["datasets"][name])
    output = folder / "dataset"
    build_index(variant, output)
    write_store(output, images=images)
    return output

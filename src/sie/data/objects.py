"""Which objects a dataset variant holds, where their models are, and how they are sharded.

Object sources:
- ``procedural``: built-in classes (``sie.data.procedural``); instance ``i`` of class ``c`` is the object
  ``<synset of c>/<c>_<i:04d>`` and its shape comes from a seed derived from (dataset seed, object key).
- ``shapenet``: an object list in the release's format over a ShapeNetCore v2 tree.
- ``prerendered``: the objects found in a folder in the release layout (or listed by its split files).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sie.config import DatasetVariant

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

SHAPENET_NAMES = {
    "02691156": "airplane", "02747177": "ashcan", "02773838": "bag", "02801938": "basket",
    "02808440": "bathtub", "02818832": "bed", "02828884": "bench", "02843684": "birdhouse",
    "02871439": "bookshelf", "02876657": "bottle", "02880940": "bowl", "02924116": "bus",
    "02933112": "cabinet", "02942699": "camera", "02946921": "can", "02954340": "cap",
    "02958343": "car", "02992529": "cellphone", "03001627": "chair", "03046257": "clock",
    "03085013": "keyboard", "03207941": "dishwasher", "03211117": "display", "03261776": "earphone",
    "03325088": "faucet", "03337140": "file cabinet", "03467517": "guitar", "03513137": "helmet",
    "03593526": "jar", "03624134": "knife", "03636649": "lamp", "03642806": "laptop",
    "03691459": "loudspeaker", "03710193": "mailbox", "03759954": "microphone", "03761084": "microwave",
    "03790512": "motorbike", "03797390": "mug", "03928116": "piano", "03938244": "pillow",
    "03948459": "pistol", "03991062": "pot", "04004475": "printer", "04074963": "remote",
    "04090263": "rifle", "04099429": "rocket", "04225987": "skateboard", "04256520": "sofa",
    "04330267": "stove", "04379243": "table", "04401088": "telephone", "04460130": "tower",
    "04468005": "train", "04530566": "vessel", "04554684": "washer",
}  # fmt: skip
"""ShapeNetCore v2 synset -> class name (informational: labels come from the sorted synset ids)."""


@dataclass(frozen=True, order=True)
class ObjectRef:
    """One object of a dataset: its class folder (synset) and its id."""

    synset: str
    object_id: str

    @property
    def key(self) -> str:
        """ "<synset>/<object id>", the object's folder relative to the dataset root."""
        return f"{self.synset}/{self.object_id}"

    @property
    def release_path(self) -> str:
        """The release's path string "/<synset>/<object id>/" (train_images.npy entries)."""
        return f"/{self.synset}/{self.object_id}/"


def make_object(synset: str, object_id: str, origin: str) -> ObjectRef:
    """An ObjectRef after checking both names are plain folder names; ``origin`` names the source."""
    for value in (synset, object_id):
        if not _NAME.match(value):
            raise ValueError(
                f"{origin}: {value!r} is not a valid synset or object id (letters, digits, _ . -)"
            )
    return ObjectRef(synset, object_id)


def parse_release_path(entry: str, origin: str) -> ObjectRef:
    """ObjectRef from a release path "/<synset>/<object>/" (slashes optional)."""
    parts = [part for part in str(entry).strip().split("/") if part]
    if len(parts) != 2:
        raise ValueError(f"{origin}: {entry!r} is not of the form /<synset>/<object id>/")
    return make_object(parts[0], parts[1], origin)


def read_object_list(path: str | Path) -> list[ObjectRef]:
    """Read an object list: .npy of (synset, id) pairs or of release paths, or a text file.

    Text files hold one object per line as "synset/id", "synset id" or "synset,id"; blank lines and
    lines starting with '#' are ignored.
    """
    list_path = Path(path).expanduser()
    if not list_path.is_file():
        raise FileNotFoundError(f"{list_path}: object list not found")
    if list_path.suffix == ".npy":
        return _read_npy_object_list(list_path)
    objects = []
    for number, line in enumerate(list_path.read_text().splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        fields = re.split(r"[\s,/]+", text.strip("/"))
        if len(fields) != 2:
            raise ValueError(f"{list_path}:{number}: expected 'synset/id', got {text!r}")
        objects.append(make_object(fields[0], fields[1], f"{list_path}:{number}"))
    return objects


def _read_npy_object_list(path: Path) -> list[ObjectRef]:
    """Parse a .npy object list of shape (N, 2) pairs or (N,) release paths."""
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise ValueError(f"{path}: not a readable .npy object list ({error})") from None
    if array.dtype.kind not in "US":
        raise ValueError(f"{path}: expected strings, found dtype {array.dtype}")
    array = array.astype(str)
    if array.ndim == 2 and array.shape[1] == 2:
        return [make_object(synset, obj, f"{path} row {row}") for row, (synset, obj) in enumerate(array)]
    if array.ndim == 1:
        return [parse_release_path(entry, f"{path} row {row}") for row, entry in enumerate(array)]
    raise ValueError(f"{path}: expected shape (N, 2) or (N,), found {array.shape}")


def check_unique(objects: Sequence[ObjectRef], origin: str) -> None:
    """Raise if an object appears twice."""
    seen: set[ObjectRef] = set()
    for item in objects:
        if item in seen:
            raise ValueError(f"{origin}: object {item.key} is listed more than once")
        seen.add(item)


def procedural_objects(classes: Iterable[str], objects_per_class: int) -> list[ObjectRef]:
    """The objects of a procedural variant, class by class in the given order."""
    from sie.data.procedural import CLASSES

    objects = []
    for name in classes:
        if name not in CLASSES:
            raise ValueError(f"unknown procedural class {name!r}; known: {', '.join(CLASSES)}")
        synset = CLASSES[name].synset
        objects.extend(ObjectRef(synset, f"{name}_{index:04d}") for index in range(objects_per_class))
    return objects


def procedural_class_name(item: ObjectRef) -> str:
    """The class name encoded in a procedural object id ("mug_0003" -> "mug")."""
    return item.object_id.rsplit("_", 1)[0]


def procedural_seed(dataset_seed: int, item: ObjectRef) -> int:
    """Seed of a procedural object's shape: variants with the same seed share their objects."""
    digest = hashlib.sha256(f"{dataset_seed}/{item.key}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def prerendered_objects(root: str | Path) -> list[ObjectRef]:
    """Objects of a folder in the release layout: every <synset>/<object>/ folder, sorted."""
    root_path = Path(root).expanduser()
    if not root_path.is_dir():
        raise FileNotFoundError(f"{root_path}: prerendered dataset root not found")
    objects = [
        make_object(synset_dir.name, object_dir.name, str(object_dir))
        for synset_dir in sorted(root_path.iterdir())
        if synset_dir.is_dir() and not synset_dir.name.startswith(".")
        for object_dir in sorted(synset_dir.iterdir())
        if object_dir.is_dir()
    ]
    if not objects:
        raise ValueError(f"{root_path}: no <synset>/<object>/ folders found")
    return objects


def variant_objects(variant: DatasetVariant) -> list[ObjectRef]:
    """Every object of a dataset variant, in a deterministic order."""
    if variant.source == "procedural":
        from sie.data.procedural import CLASSES

        classes = variant.classes if variant.classes is not None else tuple(CLASSES)
        objects = procedural_objects(classes, variant.objects_per_class)
    elif variant.source == "shapenet":
        objects = [item for path in variant.object_list for item in read_object_list(path)]
        check_unique(objects, ", ".join(variant.object_list))
    elif variant.source == "prerendered":
        split = variant.split
        if split.train_images and split.val_images:
            objects = [
                item for path in (split.train_images, split.val_images) for item in read_object_list(path)
            ]
            check_unique(objects, f"{split.train_images}, {split.val_images}")
        else:
            objects = prerendered_objects(variant.root)
    else:
        raise ValueError(
            f"unknown object source {variant.source!r}; known: procedural, shapenet, prerendered"
        )
    return objects


def shapenet_model_path(shapenet_root: str | Path, item: ObjectRef) -> Path:
    """Path of a ShapeNetCore v2 model: <root>/<synset>/<id>/models/model_normalized.obj."""
    return Path(shapenet_root).expanduser() / item.synset / item.object_id / "models" / "model_normalized.obj"


def shard_count(object_count: int, chunk_size: int) -> int:
    """Number of render shards of ``chunk_size`` objects."""
    return math.ceil(object_count / chunk_size)


def shard_objects(objects: Sequence[ObjectRef], chunk_size: int, shard: int) -> list[ObjectRef]:
    """The objects rendered by shard ``shard`` (0-based)."""
    count = shard_count(len(objects), chunk_size)
    if not 0 <= shard < count:
        raise ValueError(f"shard {shard} out of range: this variant has {count} shard(s)")
    return list(objects[shard * chunk_size : (shard + 1) * chunk_size])


def class_names(synsets: Iterable[str], source: str) -> dict[str, str]:
    """Human-readable class names of synsets (procedural names, ShapeNet names, or the synset)."""
    if source == "procedural":
        from sie.data.procedural import CLASSES

        by_synset = {entry.synset: name for name, entry in CLASSES.items()}
        return {synset: by_synset.get(synset, synset) for synset in synsets}
    return {synset: SHAPENET_NAMES.get(synset, synset) for synset in synsets}

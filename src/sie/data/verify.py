"""``sie verify``: check a variant folder's view files against its index, and prepare their repair.

What is checked (every view the index lists: ``all_objects.npy`` x views, image and latent file):

- by default, that each file exists with the size ``sie index`` recorded in ``checksums.npy`` (one
  ``stat`` per file: a minute for the paper's 5.2 million files), and that the index's own files exist;
- with ``--checksums``, also each file's SHA-256 (reads every byte);
- with ``--decode``, each view as ``sie index`` checks it (strict JPEG decode, latent parsed). This needs
  no index: for a rendered variant the views are those of its completed render shards, so it is how
  the damage a failed ``sie index`` reports is repaired.

Repair (``--repair``) of a rendered variant deletes each damaged view (its image and its latent), the
completion markers of the render shards that list its object (``shards/NNNN.json``) and the index's
``card.json``. ``snakemake datasets`` then re-runs the index and, for its missing inputs, those shards,
which render only the missing views (render resumes per view, and a view's bytes depend only on its
seed). The card has to go too: Snakemake 9 does not look at the inputs of a job whose outputs exist, so
with the card in place it would answer "Nothing to be done" with markers missing. A ``prerendered``
variant cannot be rendered: its files are restored from the release (with ``--repair`` only the card
of a damaged index is deleted).
"""

from __future__ import annotations

import contextlib
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np

from sie.data.integrity import (
    KINDS,
    content_problem,
    read_checksums,
    repair_advice,
    size_problem,
)
from sie.data.jpeg import StrictDecoder
from sie.data.layout import check_jpeg_data, image_path, latent_path, parse_latent, read_view_file
from sie.data.objects import ObjectRef, make_object, parse_release_path
from sie.data.shards import data_root, render_settings_path, shard_markers
from sie.io import read_json
from sie.paths import CARD_FILE, CHECKSUMS_FILE, OBJECTS_FILE
from sie.progress import Progress

MAX_LISTED = 10


@dataclass(frozen=True)
class Damage:
    """One damaged or missing file: a view's image or latent (``view`` set), or an index file."""

    path: Path
    problem: str
    item: ObjectRef | None = None
    view: int | None = None


@dataclass
class Report:
    """The outcome of checking one variant folder."""

    dataset_dir: Path
    source: str
    root: Path
    options: str
    views: int = 0
    damage: list[Damage] = field(default_factory=list)

    @property
    def damaged_views(self) -> list[tuple[ObjectRef, int]]:
        """(object, view) of every damaged view, sorted."""
        return sorted({(entry.item, entry.view) for entry in self.damage if entry.item is not None})

    @property
    def index_damaged(self) -> bool:
        """Whether files of the index itself are missing or unreadable."""
        return any(entry.item is None for entry in self.damage)


@dataclass(frozen=True)
class Target:
    """What to check: the views' root, their objects and views, the index's checksum rows if any."""

    source: str
    root: Path
    objects: list[tuple[ObjectRef, int]]
    checksums: np.ndarray | None
    index_damage: list[Damage]


def verify_dataset(dataset_dir: Path, checksums: bool = False, decode: bool = False) -> Report:
    """Check the view files of a variant folder (see the module docstring); returns what is damaged."""
    dataset_dir = Path(dataset_dir)
    target = find_target(dataset_dir, decode)
    options = (" --checksums" if checksums else "") + (" --decode" if decode else "")
    report = Report(dataset_dir, target.source, target.root, options, damage=list(target.index_damage))
    with StrictDecoder() if decode else contextlib.nullcontext() as decoder:
        progress = Progress(f"verify {dataset_dir}", len(target.objects), unit="objects", interval=10.0)
        for object_index, (item, views) in enumerate(target.objects):
            for view in range(views):
                entry = None
                if target.checksums is not None and object_index < len(target.checksums):
                    entry = target.checksums[object_index, view]
                report.damage += check_view_files(target.root, item, view, entry, checksums, decode, decoder)
                report.views += 1
            progress.advance()
    return report


def check_view_files(
    root: Path,
    item: ObjectRef,
    view: int,
    entry: np.void | None,
    checksums: bool,
    decode: bool,
    decoder: StrictDecoder | None,
) -> list[Damage]:
    """The damage of one view's image and latent files (``entry``: their row of the checksum table)."""
    damage = []
    for kind, path in zip(KINDS, (image_path(root, item, view), latent_path(root, item, view)), strict=True):
        try:
            problem = file_problem(path, kind, entry, checksums, decode, decoder)
        except FileNotFoundError:
            problem = "missing"
        if problem:
            damage.append(Damage(path, problem, item, view))
    return damage


def file_problem(
    path: Path, kind: str, entry: np.void | None, checksums: bool, decode: bool, decoder: StrictDecoder | None
) -> str | None:
    """What is wrong with one view file, or None (FileNotFoundError when it is missing)."""
    if not (checksums or decode):
        size = path.stat().st_size
        return size_problem(entry, kind, size) if entry is not None else None
    data = read_view_file(path, kind)
    if checksums and entry is not None:
        problem = content_problem(entry, kind, data)
        if problem:
            return problem
    if decode and decoder is not None:
        try:
            if kind == "image":
                check_jpeg_data(data, path, decoder)
            else:
                parse_latent(data, path)
        except ValueError as error:
            return str(error).removeprefix(f"{path}: ")
    return None


def find_target(dataset_dir: Path, decode: bool) -> Target:
    """The views to check: the index's (card, objects, checksums), and with ``decode`` those of the
    completed render shards too (the only ones before a first successful index)."""
    card_path = dataset_dir / CARD_FILE
    markers = shard_markers(dataset_dir)
    if not card_path.is_file():
        if decode and markers:
            settings_path = render_settings_path(dataset_dir)
            source = (
                read_json(settings_path).get("source", "rendered") if settings_path.is_file() else "rendered"
            )
            return Target(source, data_root(dataset_dir), marker_objects(markers), None, [])
        hint = " (or check its rendered views before indexing with --decode)" if markers else ""
        raise FileNotFoundError(
            f"{card_path}: not indexed yet; run `snakemake datasets` (or `sie index`) first{hint}"
        )
    card = read_json(card_path)
    views = int(card["counts"]["views_per_object"])
    index_damage = [
        Damage(dataset_dir / name, "missing (an index file)")
        for name in card.get("files", [])
        if not (dataset_dir / name).is_file()
    ]
    objects = index_objects(dataset_dir)
    table = None
    if objects is not None:
        try:
            table = read_checksums(dataset_dir, len(objects), views)
        except (FileNotFoundError, ValueError) as error:
            path = dataset_dir / CHECKSUMS_FILE
            if not any(entry.path == path for entry in index_damage):
                index_damage.append(Damage(path, str(error).split("; ")[0].removeprefix(f"{path}: ")))
    listed = [(item, views) for item in objects or []]
    if decode and markers:
        known = {item for item, _ in listed}
        listed += [(item, count) for item, count in marker_objects(markers) if item not in known]
    # A rendered variant's views are in its own data/ folder, wherever the command runs from (the
    # card's root may be relative to the folder the index ran in); a prerendered one's where the card says.
    root = data_root(dataset_dir) if card["source"] != "prerendered" else Path(card["root"])
    return Target(card["source"], root, listed, table, index_damage)


def index_objects(dataset_dir: Path) -> list[ObjectRef] | None:
    """The objects of ``all_objects.npy`` in order, None when it is missing or unreadable."""
    path = dataset_dir / OBJECTS_FILE
    try:
        listed = np.load(path, allow_pickle=False).astype(str).tolist()
        return [make_object(synset, object_id, str(path)) for synset, object_id in listed]
    except (OSError, ValueError):
        return None


def marker_objects(markers: Sequence[Path]) -> list[tuple[ObjectRef, int]]:
    """(object, views) of every object listed by readable render shard markers."""
    objects = []
    for marker in markers:
        try:
            report = read_json(marker)
            objects += [
                (parse_release_path(key, str(marker)), int(report["views"])) for key in report["objects"]
            ]
        except (ValueError, KeyError, TypeError):
            continue
    return objects


def describe(report: Report) -> str:
    """The report as text: counts, the first damaged files, and exactly how to repair them."""
    if not report.damage:
        checks = ["sizes"] + ["checksums"] * ("--checksums" in report.options)
        checks += ["strict decoding"] * ("--decode" in report.options)
        return f"{report.dataset_dir}: all {report.views} views are sound ({', '.join(checks)} checked)"
    kinds = Counter(
        "missing"
        if entry.problem.startswith("missing")
        else "of another size"
        if "indexed with" in entry.problem
        else "with another checksum"
        if "SHA-256" in entry.problem
        else "corrupt"
        for entry in report.damage
    )
    counts = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
    lines = [
        f"{report.dataset_dir}: {len(report.damage)} damaged file(s) ({counts}) in "
        f"{len(report.damaged_views)} of {report.views} views"
        + (" and the index" if report.index_damaged else "")
        + ":"
    ]
    lines += [f"  {entry.path}: {entry.problem}" for entry in report.damage[:MAX_LISTED]]
    if len(report.damage) > MAX_LISTED:
        lines.append(f"  ... and {len(report.damage) - MAX_LISTED} more")
    lines.append(f"To repair: {advice(report)}")
    return "\n".join(lines)


def advice(report: Report) -> str:
    """The repair of a damaged report, by source and by what is damaged."""
    # The repair re-checks with checksums (or decoding): it also finds files changed in place.
    options = report.options if "--decode" in report.options else " --checksums"
    if report.damaged_views:
        return repair_advice(report.dataset_dir, report.source, options)
    return (
        f"re-index: `sie verify --dataset {report.dataset_dir}{options} --repair` deletes "
        f"{report.dataset_dir / CARD_FILE}, then `snakemake datasets` indexes the dataset again"
    )


def repair_dataset(report: Report) -> str:
    """Delete the damaged views of a rendered variant, their shards' markers and the index's card;
    returns what was done and the command that finishes the repair."""
    views = report.damaged_views
    if views and report.source == "prerendered":
        raise ValueError(
            f"{report.dataset_dir}: a prerendered dataset is not rendered here; {advice(report)}"
        )
    removed = 0
    for item, view in views:
        for path in (image_path(report.root, item, view), latent_path(report.root, item, view)):
            if path.exists():
                path.unlink()
                removed += 1
    keys = {item.key for item, _ in views}
    markers = []
    for marker in shard_markers(report.dataset_dir) if keys else []:
        try:
            listed = set(read_json(marker).get("objects", []))
        except ValueError:
            listed = keys  # unreadable: re-running a shard renders only its missing views
        if keys & listed:
            marker.unlink()
            markers.append(marker.name)
    card = report.dataset_dir / CARD_FILE
    removed_card = card.is_file()
    card.unlink(missing_ok=True)  # else Snakemake sees the index complete and never looks at the markers
    done = [f"deleted {removed} file(s) of {len(views)} damaged view(s)"] if views else []
    if markers:
        done.append(f"the markers of shard(s) {', '.join(markers)}")
    if removed_card:
        done.append(str(card))
    return (
        f"{report.dataset_dir}: "
        + (", ".join(done) or "nothing to delete")
        + "; now run `snakemake datasets` to render "
        + ("those views again and " if views else "")
        + "re-index"
    )


def verify_command(
    datasets: Sequence[Path],
    checksums: bool = False,
    decode: bool = False,
    repair: bool = False,
    output: TextIO | None = None,
    errors: TextIO | None = None,
) -> int:
    """``sie verify``: check (and with ``repair`` prepare the repair of) each variant folder.

    Returns the exit status: 0 when every folder is sound (or was prepared for repair), 1 otherwise.
    """
    output = output or sys.stdout
    errors = errors or sys.stderr
    status = 0
    for dataset in datasets:
        try:
            report = verify_dataset(dataset, checksums, decode)
            if not report.damage:
                print(describe(report), file=output)
                continue
            print(describe(report), file=errors)
            if repair:
                print(repair_dataset(report), file=output)
            else:
                status = 1
        except (FileNotFoundError, ValueError) as error:
            print(f"sie verify: error: {error}", file=errors)
            status = 1
    return status

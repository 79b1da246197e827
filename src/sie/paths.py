"""Every file name and path template of the workflow, written once (standard library only, no torch).

Two kinds of names live here:

- **File names inside a folder** (``*_FILE``, ``*_FOLDER``): the release's files in a dataset variant's
  folder (the 3DIEBench layout, docs/dataset.md#layout), its render outputs and packed store, and the
  outputs of one pretraining run, one feature pass and one evaluation. The modules that write and read
  those files import the names from here; a name with ``{split}`` or ``{view}`` is filled by the small
  functions below (:func:`images_file`, :func:`view_image_file`, ...).
- **Path templates under results/** (``*_DIR``, ``*_PATH``, ``*_LOG``): Snakemake patterns whose
  ``{wildcards}`` (``{variant}``, ``{shard}``, ``{method}``, ``{seed}``, ``{evaluation}``, ``{part}``,
  ``{table}``) are the rules' wildcards. The rules declare them as outputs (the next rules read them as
  ``rules.<name>.output``); :mod:`sie.workflow` fills them with structured values through :func:`fill`.
  Nothing parses a path back into its values.

The templates are built from the file names, so ``results/datasets/{variant}/card.json`` is the variant
folder template joined with :data:`CARD_FILE`: changing a name here changes both the files the package
writes and the paths the workflow expects.
"""

from __future__ import annotations

import re

SPLITS = ("train", "val")
"""The dataset splits, in the order the index writes them."""

# --- A dataset root in the release layout: <root>/<synset>/<object id>/<view files> ---------------------
VIEW_IMAGE_FILE = "image_{view}.jpg"
VIEW_LATENT_FILE = "latent_{view}.npy"

# --- The release files of an indexed variant folder (`sie index`) -------------------------------------
IMAGES_FILE = "{split}_images.npy"
"""A split's objects: unicode "/synset/object/" strings (the release's split files)."""
LABELS_FILE = "{split}_labels.npy"
"""A split's labels: int64, row for row with :data:`IMAGES_FILE`."""
LATENTS_FILE = "all_latents_{split}.npy"
"""A split's latents: (objects x views, 7) float64, object-major, views in order."""
OBJECTS_FILE = "all_objects.npy"
"""Every object of the variant: (objects, 2) strings (synset, object id), the checksum table's rows."""
STATISTICS_FILE = "statistics.json"
SAMPLES_FILE = "samples.png"
CHECKSUMS_FILE = "checksums.npy"
CARD_FILE = "card.json"
"""The dataset card, written last by the index: its presence marks the index complete."""

# --- Render outputs of a rendered variant folder (`sie render`) ---------------------------------------
DATA_FOLDER = "data"
"""The dataset root (release layout) of a rendered variant."""
MODELS_FOLDER = "models"
"""Procedural OBJ models of a rendered variant, in the ShapeNetCore v2 layout."""
SHARDS_FOLDER = "shards"
SHARD_MARKER_FILE = "{shard}.json"
"""A render shard's completion marker; ``{shard}`` is :func:`shard_name` of its number."""
RENDER_SETTINGS_FILE = "render_settings.json"
"""What every stored view of a variant was rendered with."""

# --- The packed store of a variant folder (`sie pack`) ------------------------------------------------
STORE_FOLDER = "store"
MANIFEST_FILE = "manifest.json"
"""The manifest of a packed store or a feature store, written last: its presence marks it complete."""
STORE_PIXELS_FILE = "{split}.pixels.npy"
STORE_JPEGS_FILE = "{split}.jpegs"
STORE_OFFSETS_FILE = "{split}_offsets.npy"

# --- One pretraining run (`sie pretrain`), its feature pass and its evaluations -----------------------
MODEL_FILE = "model.pt"
BACKBONE_FILE = "backbone.pt"
RUN_CONFIG_FILE = "config.json"
SUMMARY_FILE = "summary.json"
"""Written last by a pretraining run: its presence marks the run complete."""
METRICS_LOG_FILE = "metrics.jsonl"
"""JSON lines of the logged scalars, one object per logged step, in every run's output folder."""
CHECKPOINT_FILE = "checkpoint.pt"
FEATURES_ARRAY_FILE = "{split}_{output}.npy"
"""A feature store's array: ``{output}`` is ``representations`` or ``embeddings``."""
EVALUATION_FILE = "{evaluation}-{part}.json"
"""The metrics file of one evaluation on one part of the representation (predictor: part ``equi``)."""
TABLE_FILE = "{table}.{extension}"
"""One format of a table: ``{extension}`` is csv (tidy rows), tex, md or html."""

# --- Path templates of the workflow (relative to Snakemake's working directory) -----------------------
RESULTS_DIR = "results"
DATASET_DIR = f"{RESULTS_DIR}/datasets/{{variant}}"
SHARD_MARKER_PATH = f"{DATASET_DIR}/{SHARDS_FOLDER}/{SHARD_MARKER_FILE}"
CARD_PATH = f"{DATASET_DIR}/{CARD_FILE}"
STATISTICS_PATH = f"{DATASET_DIR}/{STATISTICS_FILE}"
SAMPLES_PATH = f"{DATASET_DIR}/{SAMPLES_FILE}"
STORE_MANIFEST_PATH = f"{DATASET_DIR}/{STORE_FOLDER}/{MANIFEST_FILE}"

RUN = "{variant}/{method}/seed{seed}"
"""The part of a run's paths that names it: dataset variant, method, seed."""
PRETRAIN_DIR = f"{RESULTS_DIR}/pretrain/{RUN}"
MODEL_PATH = f"{PRETRAIN_DIR}/{MODEL_FILE}"
BACKBONE_PATH = f"{PRETRAIN_DIR}/{BACKBONE_FILE}"
RUN_CONFIG_PATH = f"{PRETRAIN_DIR}/{RUN_CONFIG_FILE}"
SUMMARY_PATH = f"{PRETRAIN_DIR}/{SUMMARY_FILE}"
CHECKPOINT_PATH = f"{RESULTS_DIR}/checkpoints/{RUN}/{CHECKPOINT_FILE}"
"""A run's resumable checkpoint: outside its declared outputs, which Snakemake deletes when a job fails."""
FEATURES_DIR = f"{RESULTS_DIR}/features/{RUN}"
FEATURES_MANIFEST_PATH = f"{FEATURES_DIR}/{MANIFEST_FILE}"
EVALUATIONS_DIR = f"{RESULTS_DIR}/evaluations/{RUN}"
EVALUATION_PATH = f"{EVALUATIONS_DIR}/{EVALUATION_FILE}"
TABLES_DIR = f"{RESULTS_DIR}/tables"
TABLE_PATH = f"{TABLES_DIR}/{TABLE_FILE}"
FIGURES_DIR = f"{RESULTS_DIR}/figures"
TRAINING_FIGURE_PATH = f"{FIGURES_DIR}/training_{{variant}}.png"
RETRIEVAL_FIGURE_PATH = f"{FIGURES_DIR}/retrieval_{{variant}}_{{method}}_seed{{seed}}.png"

LOGS_DIR = f"{RESULTS_DIR}/logs"
RENDER_LOG = f"{LOGS_DIR}/render/{{variant}}/{{shard}}.log"
INDEX_LOG = f"{LOGS_DIR}/index/{{variant}}.log"
VERIFY_LOG = f"{LOGS_DIR}/verify.log"
PACK_LOG = f"{LOGS_DIR}/pack/{{variant}}.log"
PRETRAIN_LOG = f"{LOGS_DIR}/pretrain/{RUN}.log"
FEATURES_LOG = f"{LOGS_DIR}/features/{RUN}.log"
PROBES_LOG = f"{LOGS_DIR}/evaluate/{RUN}/probes.log"
PREDICTOR_LOG = f"{LOGS_DIR}/evaluate/{RUN}/predictor.log"
TABLE_LOG = f"{LOGS_DIR}/tables/{{table}}.log"
TRAINING_FIGURE_LOG = f"{LOGS_DIR}/figures/training_{{variant}}.log"
RETRIEVAL_FIGURE_LOG = f"{LOGS_DIR}/figures/retrieval_{{variant}}_{{method}}_seed{{seed}}.log"

_FIELD = re.compile(r"\{([A-Za-z_]+)\}")


def fill(template: str, **values: object) -> str:
    """``template`` with every ``{name}`` replaced by ``values[name]``; a name without a value is an error
    (a path never keeps a wildcard by accident)."""
    missing = sorted(set(_FIELD.findall(template)) - set(values))
    if missing:
        raise KeyError(f"{template}: no value for {', '.join(missing)}")
    return partial(template, **values)


def partial(template: str, **values: object) -> str:
    """``template`` with the given ``{name}`` fields filled and the others kept (still wildcards)."""
    return _FIELD.sub(lambda match: str(values.get(match[1], match[0])), template)


def images_file(split: str) -> str:
    """``<split>_images.npy``."""
    return fill(IMAGES_FILE, split=split)


def labels_file(split: str) -> str:
    """``<split>_labels.npy``."""
    return fill(LABELS_FILE, split=split)


def latents_file(split: str) -> str:
    """``all_latents_<split>.npy``."""
    return fill(LATENTS_FILE, split=split)


def view_image_file(view: int) -> str:
    """``image_<view>.jpg``."""
    return fill(VIEW_IMAGE_FILE, view=view)


def view_latent_file(view: int) -> str:
    """``latent_<view>.npy``."""
    return fill(VIEW_LATENT_FILE, view=view)


def table_file(table: str, extension: str) -> str:
    """``<table>.<extension>``."""
    return fill(TABLE_FILE, table=table, extension=extension)


def shard_name(shard: int) -> str:
    """A render shard's name, its number on four digits ("0007"): its marker and its wildcard."""
    return f"{int(shard):04d}"


SPLIT_FILES = (
    tuple(name for split in SPLITS for name in (images_file(split), labels_file(split)))
    + tuple(latents_file(split) for split in SPLITS)
    + (OBJECTS_FILE,)
)
"""The release-format files the index writes besides statistics, samples, checksums and the card."""
INDEX_FILES = tuple(sorted((*SPLIT_FILES, STATISTICS_FILE, SAMPLES_FILE, CHECKSUMS_FILE)))
"""Every file of an indexed variant folder that the card lists (and ``sie verify`` checks exist)."""

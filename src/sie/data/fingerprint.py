"""The content fingerprint of an indexed dataset: what a pretraining run's result depends on.

It hashes the files that decide what a run sees: the training split's objects, labels and latents,
the per-channel statistics used for normalisation, and the per-view sizes and checksums the index
records for every view (``sie.data.integrity``), so a re-rendered or replaced image or latent changes
it; not timings, paths or render reports. (The checksums cover the validation views too, so changing
those also counts as another dataset: stricter than needed, never wrong.) Hashing these files takes
well under a second even for the full 3DIEBench (its checksums file is 125 MB).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from sie.paths import CHECKSUMS_FILE, STATISTICS_FILE, images_file, labels_file, latents_file

CONTENT_FILES = (
    images_file("train"),
    labels_file("train"),
    latents_file("train"),
    STATISTICS_FILE,
    CHECKSUMS_FILE,
)
"""Files of an indexed variant folder that a training run's result depends on (when present)."""


def dataset_fingerprint(dataset_dir: Path) -> str:
    """sha256 (hex, 16 characters) over the content files of ``dataset_dir`` that exist."""
    digest = hashlib.sha256()
    for name in CONTENT_FILES:
        path = Path(dataset_dir) / name
        if path.exists():
            file_digest = hashlib.sha256()
            with open(path, "rb") as stream:
                for block in iter(lambda: stream.read(1 << 20), b""):
                    file_digest.update(block)
            digest.update(name.encode() + b"\0" + file_digest.digest())
    return digest.hexdigest()[:16]

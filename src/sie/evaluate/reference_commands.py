"""``sie reference ROW``: build one reference row of the tables from the command's arguments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sie.config import ConfigError
from sie.evaluate.registry import CHANCE, ORACLE, UNTRAINED
from sie.io import read_json, read_json_argument
from sie.paths import CARD_FILE


def run_reference(row: str, dataset_dir: Path, output: Path, spec_text: str, seed: int) -> dict[str, Any]:
    """Write the ``row`` reference (untrained model.pt, oracle feature store or chance metrics files)."""
    if not (dataset_dir / CARD_FILE).is_file():
        raise ConfigError(f"--dataset {dataset_dir}: no card.json (not an indexed dataset: run `sie index`)")
    variant = read_json(dataset_dir / CARD_FILE)["variant"]
    if row == UNTRAINED:
        from sie.training.config import run_spec_from_text
        from sie.training.untrained import write_untrained

        return write_untrained(run_spec_from_text(spec_text), dataset_dir, output)
    if row == ORACLE:
        from sie.evaluate.references import write_oracle_store

        manifest = write_oracle_store(dataset_dir, output, variant, seed)
        return {key: manifest[key] for key in ("method", "representation_dim", "inv_dims", "noise")}
    if row == CHANCE:
        return _chance(dataset_dir, output, variant, read_json_argument(spec_text), seed)
    raise ConfigError(f"unknown reference row {row!r}")


def _chance(dataset_dir: Path, output: Path, variant: str, spec: dict[str, Any], seed: int) -> dict[str, Any]:
    from sie.evaluate.probes import ProbeSettings
    from sie.evaluate.references import write_chance
    from sie.evaluate.registry import EVALUATIONS, PARTS, RETRIEVAL_MODES

    settings = ProbeSettings(**spec.get("probe", {}))
    modes = tuple(spec.get("retrieval", {}).get("modes", RETRIEVAL_MODES))
    evaluations = list(spec.get("evaluations", EVALUATIONS))
    records = write_chance(
        dataset_dir, output, variant, evaluations, list(spec.get("parts", PARTS)), settings, modes, seed
    )
    return {"files": len(records), "evaluations": evaluations}

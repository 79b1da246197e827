"""Tables from metrics files: tidy rows, seed statistics, bold best, dashes, golden LaTeX, compilation."""

import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from sie.tables import (
    MAIN,
    MRR,
    build_table,
    escape_latex,
    latex_table,
    markdown_table,
    tidy_records,
    write_tables,
)

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def write_record(
    folder: Path, method: str, seed: int, evaluation: str, part: str, metrics: dict | None, reason: str = ""
) -> Path:
    record = {"variant": "mini", "method": method, "seed": seed, "evaluation": evaluation, "part": part}
    record.update(
        {"applicable": True, "metrics": metrics}
        if metrics is not None
        else {"applicable": False, "reason": reason}
    )
    path = folder / method / f"seed{seed}" / f"{evaluation}-{part}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


@pytest.fixture
def metrics_files(tmp_path) -> list[Path]:
    """A fixed metrics table: an invariant, an equivariant and two SIE methods; SIE with two seeds."""
    files = []
    values = {
        "VICReg": (0.62, 0.21, 0.05),
        "SimCLRAugSelf": (0.58, 0.45, 0.31),
        "SIE": (0.60, 0.52, 0.40),
        "SIEOnlyEqui": (0.40, 0.55, 0.35),
    }
    for method, (top1, rotation, color) in values.items():
        for seed in (0, 1) if method == "SIE" else (0,):
            shift = 0.02 * seed
            for part, factor in (("inv", 1.0), ("equi", 0.5), ("all", 1.05)):
                missing = (method in ("VICReg", "SimCLRAugSelf") and part == "equi") or (
                    method == "SIEOnlyEqui" and part == "inv"
                )
                for evaluation, value, keys in (
                    ("classification", top1, ("top1", "top5", "loss")),
                    ("rotation", rotation, ("r2", "mse")),
                    ("color", color, ("r2", "mse")),
                ):
                    metrics = (
                        None
                        if missing
                        else {key: (value * factor + shift if key in ("top1", "r2") else 0.5) for key in keys}
                    )
                    files.append(
                        write_record(
                            tmp_path,
                            method,
                            seed,
                            evaluation,
                            part,
                            metrics,
                            reason=f"{method} has no {part} part",
                        )
                    )
            has_predictor = method.startswith("SIE")
            predictor = (
                {
                    "MRR/val-val": 0.7 - shift,
                    "H@1/val-val": 0.5,
                    "H@5/val-val": 0.9 + shift,
                    "PRE/val-val": 0.2 + shift,
                    "PRE/train-train": 0.1,
                }
                if has_predictor
                else None
            )
            files.append(
                write_record(
                    tmp_path,
                    method,
                    seed,
                    "predictor",
                    "equi",
                    predictor,
                    reason=f"{method} has no transformation-conditioned predictor",
                )
            )
            health = {
                "error/true/val": 0.2 + shift,
                "error/shuffled/val": 0.5,
                "error/identity/val": 0.4,
                "ratio/true-shuffled/val": (0.2 + shift) / 0.5,
                "ratio/true-identity/val": (0.2 + shift) / 0.4,
            }
            files.append(
                write_record(
                    tmp_path, method, seed, "health", "equi", health if has_predictor else None, "none"
                )
            )
    return files + reference_files(tmp_path)


def reference_files(folder: Path) -> list[Path]:
    """Reference rows: an untrained model better than every method on colour (never bold), the oracle
    (probes only) and chance (every evaluation, the predictor without health)."""
    files = []
    for part in ("inv", "equi", "all"):
        for method, top1, rotation, color in (("untrained", 0.1, 0.2, 0.9), ("oracle", 1.0, 0.99, 0.97)):
            for evaluation, metrics in (
                ("classification", {"top1": top1}),
                ("rotation", {"r2": rotation}),
                ("color", {"r2": color}),
            ):
                files.append(write_record(folder, method, 0, evaluation, part, metrics))
        for evaluation, metrics in (
            ("classification", {"top1": 0.1}),
            ("rotation", {"r2": 0.25}),
            ("color", {"r2": 0.0}),
        ):
            files.append(write_record(folder, "chance", 0, evaluation, part, metrics))
    files.append(
        write_record(
            folder,
            "untrained",
            0,
            "predictor",
            "equi",
            {"MRR/val-val": 0.9, "H@1/val-val": 0.1, "H@5/val-val": 0.6, "PRE/val-val": 0.6},
        )
    )
    files.append(
        write_record(
            folder, "untrained", 0, "health", "equi", {"error/true/val": 0.9, "error/shuffled/val": 0.9}
        )
    )
    files.append(
        write_record(
            folder,
            "chance",
            0,
            "predictor",
            "equi",
            {"MRR/val-val": 0.52, "H@1/val-val": 0.25, "H@5/val-val": 1.0, "PRE/val-val": 0.75},
        )
    )
    return files


def test_tidy_rows_one_per_metric_and_empty_for_not_applicable(metrics_files):
    tidy = tidy_records(metrics_files)
    assert list(tidy.columns) == [
        "variant",
        "method",
        "group",
        "seed",
        "evaluation",
        "part",
        "metric",
        "value",
    ]
    vicreg_equi = tidy[
        (tidy["method"] == "VICReg") & (tidy["part"] == "equi") & (tidy["evaluation"] == "rotation")
    ]
    assert len(vicreg_equi) == 1 and math.isnan(vicreg_equi["value"].iloc[0])
    sie = tidy[(tidy["method"] == "SIE") & (tidy["evaluation"] == "classification")]
    assert len(sie) == 2 * 3 * 3  # seeds x parts x (top1, top5, loss)
    assert set(tidy["group"]) == {"invariant", "equivariant", "sie", "reference"}


def test_seed_mean_and_standard_deviation(metrics_files):
    table = build_table(tidy_records(metrics_files), MAIN)
    sie = table[table["method"] == "SIE"].iloc[0]
    assert sie["0 mean"] == pytest.approx(100 * (0.60 + 0.62) / 2)  # classification inv, in %
    assert sie["0 std"] == pytest.approx(100 * 0.02 / math.sqrt(2))
    assert math.isnan(table[table["method"] == "VICReg"].iloc[0]["0 std"])
    assert list(table["method"]) == [
        "VICReg",
        "SimCLRAugSelf",
        "SIE",
        "SIEOnlyEqui",
        "untrained",
        "oracle",
        "chance",
    ]


def test_mrr_table_lists_only_methods_with_a_predictor(metrics_files):
    table = build_table(tidy_records(metrics_files), MRR)
    assert list(table["method"]) == ["SIE", "SIEOnlyEqui", "untrained", "chance"]


def test_reference_rows_come_last_in_italics_and_are_never_bold(metrics_files):
    tidy = tidy_records(metrics_files)
    table = build_table(tidy, MAIN)
    markdown = markdown_table(table, MAIN)
    untrained = next(line for line in markdown.splitlines() if "untrained SIE" in line)
    assert "*0.90*" in untrained and "**" not in untrained  # best colour value, but a reference
    assert "| *oracle: true factors + noise* |" in markdown
    sie = next(line for line in markdown.splitlines() if "| SIE |" in line)
    assert "**" in sie  # the best method's colour is bold even though a reference row is higher
    mrr = markdown_table(build_table(tidy, MRR), MRR)
    assert "**0.70**" in mrr  # SIE's MRR is the best method's, though the untrained row scores 0.9
    latex = latex_table(table, MAIN)
    assert "\\emph{Reference rows (not ranked)}" in latex and "\\emph{0.90}" in latex


def test_latex_matches_the_golden_files(metrics_files):
    """SIE_UPDATE_GOLDEN=1 rewrites the golden files (then read them: they are the specification)."""
    tidy = tidy_records(metrics_files)
    for spec in (MAIN, MRR):
        produced = latex_table(build_table(tidy, spec), spec)
        if os.environ.get("SIE_UPDATE_GOLDEN"):
            (GOLDEN / f"{spec.name}.tex").write_text(produced)
        assert produced == (GOLDEN / f"{spec.name}.tex").read_text(), spec.name


def test_escape_latex():
    assert escape_latex("a_b&c%d#e$f{g}h\\") == "a\\_b\\&c\\%d\\#e\\$f\\{g\\}h\\textbackslash{}"


def test_write_tables_files(metrics_files, tmp_path):
    write_tables(metrics_files, tmp_path / "tables", ["main", "mrr"])
    for name in ("main", "mrr"):
        for extension in ("csv", "tex", "md", "html"):
            assert (tmp_path / "tables" / f"{name}.{extension}").is_file()
    assert "| mini | SIE and ablations | SIE |" in (tmp_path / "tables" / "mrr.md").read_text()


def test_latex_compiles_in_a_minimal_document(metrics_files, tmp_path):
    engine = shutil.which("pdflatex")
    if engine is None:
        pytest.skip("pdflatex not installed (Debian: texlive-latex-base texlive-latex-recommended)")
    body = "\n".join(f"\\input{{{GOLDEN / f'{name}.tex'}}}\n\\bigskip\n" for name in ("main", "mrr"))
    document = tmp_path / "tables.tex"
    document.write_text(
        "\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage[margin=1cm,landscape]"
        "{geometry}\n\\begin{document}\n" + body + "\\end{document}\n"
    )
    result = subprocess.run(
        [engine, "-interaction=nonstopmode", "-halt-on-error", document.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-2000:]
    assert (tmp_path / "tables.pdf").stat().st_size > 1000

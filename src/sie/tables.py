"""The paper's tables from the evaluation metrics files: tidy CSV, LaTeX (booktabs) and Markdown.

``tidy_records`` flattens every metrics JSON into rows (variant, method, group, seed, evaluation, part,
metric, value); evaluations that do not apply keep a row with an empty value. ``build_table`` turns the
tidy rows into one of the paper's tables (mean over seeds, and the standard deviation when there are
several), and ``latex_table`` / ``markdown_table`` format it: best value per column in bold (per
dataset variant), not-applicable cells as a dash. The reference rows (untrained model, oracle, chance:
``sie.evaluate.registry.REFERENCES``) come last in their own block, in italics, and are never bold.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sie.evaluate.registry import CHANCE, ORACLE, PARTS, REFERENCES, UNTRAINED, UNTRAINED_SHAPE

if TYPE_CHECKING:  # pandas is imported where tables are built: the specifications (TABLES) stay cheap
    import pandas as pd

GROUPS = {
    "invariant": "Invariant methods",
    "equivariant": "Equivariant methods",
    "sie": "SIE and ablations",
    "reference": "Reference rows (not ranked)",
}
REFERENCE_LABELS = {
    UNTRAINED: f"untrained {UNTRAINED_SHAPE}",
    ORACLE: "oracle: true factors + noise",
    CHANCE: "chance (no features)",
}
"""How the tables name the reference rows (docs/evaluations.md#reference-rows)."""
PART_HEADERS = dict(zip(PARTS, ("Inv.", "Equi.", "All"), strict=True))
"""Column header of each representation part (``sie.evaluate.registry.PARTS``)."""


@dataclass(frozen=True)
class Column:
    """One value column: which metric it shows, how it is formatted and which way is better."""

    evaluation: str
    metric: str
    part: str
    header: str
    scale: float = 1.0
    digits: int = 2
    higher_is_better: bool = True
    ranked: bool = True
    """False for diagnostics with no better direction (the predictor health columns): never bold."""


@dataclass(frozen=True)
class TableSpec:
    """A table: its columns, the groups of headers over them, and which methods it lists."""

    name: str
    columns: tuple[Column, ...]
    header_groups: tuple[tuple[str, int], ...]
    predictor_only: bool = False


MAIN = TableSpec(
    name="main",
    columns=tuple(
        Column(evaluation, metric, part, PART_HEADERS[part], scale, digits)
        for evaluation, metric, scale, digits in (
            ("classification", "top1", 100.0, 1),
            ("rotation", "r2", 1.0, 2),
            ("color", "r2", 1.0, 2),
        )
        for part in PARTS
    ),
    header_groups=(("Classification (top-1, \\%)", 3), ("Rotation ($R^2$)", 3), ("Colour ($R^2$)", 3)),
)
MRR = TableSpec(
    name="mrr",
    columns=(
        Column("predictor", "MRR/val-val", "equi", "MRR"),
        Column("predictor", "H@1/val-val", "equi", "H@1"),
        Column("predictor", "H@5/val-val", "equi", "H@5"),
        Column("predictor", "PRE/val-val", "equi", "PRE", digits=3, higher_is_better=False),
        Column("health", "error/true/val", "equi", "err. true", digits=3, ranked=False),
        Column("health", "error/shuffled/val", "equi", "err. shuffled", digits=3, ranked=False),
        Column("health", "error/identity/val", "equi", "err. identity", digits=3, ranked=False),
        Column("health", "ratio/true-shuffled/val", "equi", "true/shuffled", ranked=False),
        Column("health", "ratio/true-identity/val", "equi", "true/identity", ranked=False),
    ),
    header_groups=(("Predictor, validation views", 4), ("Predictor health, validation pairs", 5)),
    predictor_only=True,
)
TABLES = {spec.name: spec for spec in (MAIN, MRR)}
TIDY_COLUMNS = ["variant", "method", "group", "seed", "evaluation", "part", "metric", "value"]


def method_group(method: str) -> str:
    """The paper's grouping: invariant methods, equivariant methods, SIE and its ablations; the
    reference rows form their own group."""
    from sie.models.registry import method_info

    if method in REFERENCES:
        return "reference"
    spec = method_info(method)
    if method.startswith("SIE"):
        return "sie"
    return "invariant" if spec.layout == "invariant" and not spec.augself else "equivariant"


def tidy_records(paths: Iterable[Path]) -> pd.DataFrame:
    """One row per (variant, method, seed, evaluation, part, metric) of the metrics files."""
    import pandas as pd

    rows = []
    for path in paths:
        record = json.loads(Path(path).read_text())
        base = {key: record[key] for key in ("variant", "method", "seed", "evaluation", "part")}
        base["group"] = method_group(record["method"])
        if not record["applicable"]:
            rows.append({**base, "metric": "", "value": math.nan})
            continue
        rows.extend(
            {**base, "metric": metric, "value": float(value)} for metric, value in record["metrics"].items()
        )
    frame = pd.DataFrame(rows, columns=TIDY_COLUMNS)
    return frame.sort_values(
        ["variant", "method", "seed", "evaluation", "part", "metric"], kind="stable", ignore_index=True
    )


def method_order(methods: Iterable[str]) -> list[str]:
    """Methods in registry order (the paper's order within each group), then the reference rows."""
    from sie.models.registry import METHODS

    present = set(methods)
    return [name for name in [*METHODS, *REFERENCES] if name in present]


def row_has_predictor(method: str) -> bool:
    """Whether the row has predictor metrics: methods with a predictor, the untrained reference (SIE's
    shape) and chance (a random ranking); the oracle has none."""
    from sie.models.registry import METHODS

    if method in REFERENCES:
        return method != ORACLE and (method == CHANCE or METHODS[UNTRAINED_SHAPE].has_predictor)
    return METHODS[method].has_predictor


def row_label(method: str) -> str:
    """The row's name in a table: the method's, or the reference row's label."""
    return REFERENCE_LABELS.get(method, method)


def build_table(tidy: pd.DataFrame, spec: TableSpec) -> pd.DataFrame:
    """Rows (variant, group, method) x the spec's columns, with ``<header> mean`` / ``<header> std``.

    Means and standard deviations are over seeds (std is NaN with one seed); a cell of an evaluation
    that does not apply is NaN. ``predictor_only`` tables keep only methods with a predictor.
    """
    rows = []
    for (variant, method), frame in tidy.groupby(["variant", "method"], sort=False):
        if spec.predictor_only and frame.loc[frame["evaluation"] == "predictor", "value"].isna().all():
            continue  # no predictor evaluation, or one that does not apply
        row = {
            "variant": variant,
            "group": frame["group"].iloc[0],
            "method": method,
            "seeds": frame["seed"].nunique(),
        }
        for index, column in enumerate(spec.columns):
            selected = (
                frame[
                    (frame["evaluation"] == column.evaluation)
                    & (frame["part"] == column.part)
                    & (frame["metric"] == column.metric)
                ]["value"].dropna()
                * column.scale
            )
            row[f"{index} mean"] = selected.mean() if len(selected) else math.nan
            row[f"{index} std"] = selected.std(ddof=1) if len(selected) > 1 else math.nan
        rows.append(row)
    import pandas as pd

    table = pd.DataFrame(rows)
    if table.empty:
        return table
    order = {method: position for position, method in enumerate(method_order(table["method"]))}
    table["_group"] = table["group"].map(list(GROUPS).index)
    table["_method"] = table["method"].map(order)
    return table.sort_values(["variant", "_group", "_method"], ignore_index=True).drop(
        columns=["_group", "_method"]
    )


def best_rows(table: pd.DataFrame, spec: TableSpec) -> dict[int, set[int]]:
    """Column index -> row indices holding the best mean of that column within their variant."""
    best: dict[int, set[int]] = {index: set() for index in range(len(spec.columns))}
    for _, frame in table[table["group"] != "reference"].groupby("variant", sort=False):
        for index, column in enumerate(spec.columns):
            values = frame[f"{index} mean"].dropna()
            if len(values) and column.ranked:
                target = values.max() if column.higher_is_better else values.min()
                best[index].update(values.index[values == target].tolist())
    return best


def cell(table: pd.DataFrame, row: int, index: int, column: Column, bold: bool, latex: bool) -> str:
    """One formatted cell: mean (± std with several seeds), bold when best, a dash when not applicable."""
    import pandas as pd

    mean, std = table.at[row, f"{index} mean"], table.at[row, f"{index} std"]
    if pd.isna(mean):
        return "--" if latex else "–"
    text = f"{mean:.{column.digits}f}"
    if not pd.isna(std):
        text += f" $\\pm$ {std:.{column.digits}f}" if latex else f" ± {std:.{column.digits}f}"
    if bold:
        return f"\\textbf{{{text}}}" if latex else f"**{text}**"
    return text


def latex_table(table: pd.DataFrame, spec: TableSpec) -> str:
    """A booktabs tabular: header groups, group rows in italics, best value per column in bold."""
    count = len(spec.columns)
    best = best_rows(table, spec)
    lines = [f"\\begin{{tabular}}{{ll{'r' * count}}}", "\\toprule"]
    groups, rules, start = [], [], 3
    for title, width in spec.header_groups:
        groups.append(f"\\multicolumn{{{width}}}{{c}}{{{title}}}")
        rules.append(f"\\cmidrule(lr){{{start}-{start + width - 1}}}")
        start += width
    lines += [" & & " + " & ".join(groups) + " \\\\", "".join(rules)]
    lines.append("Dataset & Method & " + " & ".join(column.header for column in spec.columns) + " \\\\")
    lines.append("\\midrule")
    current = None
    for row in table.index:
        group = (table.at[row, "variant"], table.at[row, "group"])
        if group != current:
            if current is not None:
                lines.append("\\addlinespace")
            lines.append(f"\\multicolumn{{{count + 2}}}{{l}}{{\\emph{{{GROUPS[group[1]]}}}}} \\\\")
            current = group
        cells = row_cells(table, spec, row, best, latex=True)
        variant = escape_latex(str(table.at[row, "variant"]))
        lines.append(
            f"{variant} & {italic(escape_latex(row_label(table.at[row, 'method'])), table, row, 'latex')} & "
            + " & ".join(cells)
            + " \\\\"
        )
    lines += ["\\bottomrule", "\\end{tabular}", ""]
    return "\n".join(lines)


def markdown_table(table: pd.DataFrame, spec: TableSpec) -> str:
    """The same table in Markdown (for the README and the report)."""
    best = best_rows(table, spec)
    lines = [
        "| Dataset | Group | Method | " + " | ".join(_plain_headers(spec)) + " |",
        "|---|---|---|" + "---:|" * len(spec.columns),
    ]
    for row in table.index:
        cells = row_cells(table, spec, row, best, latex=False)
        lines.append(
            f"| {table.at[row, 'variant']} | {GROUPS[table.at[row, 'group']]} | "
            f"{italic(row_label(table.at[row, 'method']), table, row, 'markdown')} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines) + "\n"


def html_table(table: pd.DataFrame, spec: TableSpec) -> str:
    """The same table as an HTML fragment (for the Snakemake report)."""
    import html

    best = best_rows(table, spec)
    headers = ["Dataset", "Group", "Method", *_plain_headers(spec)]
    lines = ["<table>", "<tr>" + "".join(f"<th>{html.escape(header)}</th>" for header in headers) + "</tr>"]
    for row in table.index:
        cells = [
            italic(f"<b>{text}</b>" if row in best[index] else text, table, row, "html")
            for index, text in enumerate(row_cells(table, spec, row, None, latex=False, styled=False))
        ]
        names = [
            str(table.at[row, "variant"]),
            GROUPS[table.at[row, "group"]],
            row_label(table.at[row, "method"]),
        ]
        lines.append(
            "<tr>"
            + "".join(f"<td>{italic(html.escape(text), table, row, 'html')}</td>" for text in names)
            + "".join(f"<td align='right'>{text}</td>" for text in cells)
            + "</tr>"
        )
    lines.append("</table>")
    return "\n".join(lines) + "\n"


def row_cells(
    table: pd.DataFrame,
    spec: TableSpec,
    row: int,
    best: dict[int, set[int]] | None,
    latex: bool,
    styled: bool = True,
) -> list[str]:
    """The formatted value cells of one row; with ``best``, the best of each column in bold; a
    reference row's cells in italics (unless ``styled`` is False)."""
    cells = [
        cell(table, row, index, column, best is not None and row in best[index], latex)
        for index, column in enumerate(spec.columns)
    ]
    return [italic(text, table, row, "latex" if latex else "markdown") for text in cells] if styled else cells


def italic(text: str, table: pd.DataFrame, row: int, style: str) -> str:
    """``text`` in italics when the row is a reference row (``style``: latex, markdown or html)."""
    if table.at[row, "group"] != "reference" or text in ("", "--", "–"):
        return text
    return {"latex": f"\\emph{{{text}}}", "markdown": f"*{text}*", "html": f"<i>{text}</i>"}[style]


def _plain_headers(spec: TableSpec) -> list[str]:
    """The "<group title> <column header>" of every column, without LaTeX markup."""
    titles = []
    for title, width in spec.header_groups:
        plain = title.replace("$R^2$", "R²").replace("\\%", "%")
        titles += [plain] * width
    return [f"{title} {column.header}" for title, column in zip(titles, spec.columns, strict=True)]


def escape_latex(text: str) -> str:
    """Escape the characters LaTeX treats specially in plain text."""
    special = {character: f"\\{character}" for character in "&%$#_{}"}
    special["\\"] = "\\textbackslash{}"
    return "".join(special.get(character, character) for character in text)


def write_tables(
    metrics_files: Sequence[Path], output_dir: Path, names: Sequence[str]
) -> dict[str, pd.DataFrame]:
    """Write ``<name>.csv`` (tidy rows of the table's evaluations), ``.tex``, ``.md`` and ``.html``."""
    from sie.io import atomic_open
    from sie.paths import table_file

    tidy = tidy_records(metrics_files)
    tables = {}
    for name in names:
        spec = TABLES[name]
        evaluations = {column.evaluation for column in spec.columns}
        rows = tidy[tidy["evaluation"].isin(evaluations)]
        table = build_table(rows, spec)
        with atomic_open(output_dir / table_file(name, "csv")) as stream:
            rows.to_csv(stream, index=False, float_format="%.6g")
        with atomic_open(output_dir / table_file(name, "tex")) as stream:
            stream.write(latex_table(table, spec))
        with atomic_open(output_dir / table_file(name, "md")) as stream:
            stream.write(markdown_table(table, spec))
        with atomic_open(output_dir / table_file(name, "html")) as stream:
            stream.write(html_table(table, spec))
        tables[name] = table
    return tables

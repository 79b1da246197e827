"""The results file of ``bench/gpu.py``: JSON (everything) and Markdown (for people), after every part."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_results(results: dict[str, Any], path: Path) -> Path:
    """Write ``path`` (JSON) and ``path`` with the suffix .md (Markdown); returns the Markdown path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".partial")
    temporary.write_text(json.dumps(results, indent=1, default=str))
    temporary.replace(path)
    markdown = path.with_suffix(".md")
    markdown.write_text(render_markdown(results))
    return markdown


def headline(name: str, figures: dict[str, Any]) -> str:
    """The one or two figures of a part that go into the summary table."""
    if name == "tests" and "counts" in figures:
        counts = figures["counts"]
        failed = counts["failures"] + counts["errors"]
        return f"{counts['passed']} passed, {failed} failed, {counts['skipped']} skipped"
    if name == "train" and figures.get("rows"):
        best = max(figures["rows"], key=lambda row: row["images_per_second"])
        text = f"best {best['images_per_second']:,} images/s ({best['device']} {best['precision']}"
        text += f", batch {best['batch']})"
        if "compile_gain" in figures:
            text += f"; compile x{figures['compile_gain']}"
        return text
    if name == "loader" and figures.get("pairs_per_second"):
        return ", ".join(f"{key}: {value:,} pairs/s" for key, value in figures["pairs_per_second"].items())
    if name == "render" and figures.get("rows"):
        text = "; ".join(
            f"{row['setting']} {row['seconds_per_image']} s/image on {row['device']}"
            for row in figures["rows"]
        )
        if "paper_projection" in figures:
            text += f"; full 3DIEBench {figures['paper_projection']['gpu_hours']:,} GPU-hours"
        return text
    if name == "retrieval" and figures.get("rows"):
        texts = []
        for row in figures["rows"]:
            seconds = row.get("full_seconds", row["projected_full_seconds"])
            projected = "" if "full_seconds" in row else " (projected)"
            texts.append(f"{row['device']} {row['dtype']}: full PRE search {seconds:,} s{projected}")
        return "; ".join(texts)
    if name == "rotation" and figures.get("rotation_r2"):
        return "; ".join(f"{key}: {value}" for key, value in figures["rotation_r2"].items())
    return ""


def table(rows: list[dict[str, Any]]) -> list[str]:
    """A Markdown table of dicts (columns: every key, in first-seen order)."""
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(str(row.get(column, "")) for column in columns) + " |")
    return lines


def render_markdown(results: dict[str, Any]) -> str:
    """The Markdown form of the results."""
    machine = results.get("machine", {})
    gpu = machine.get("gpu", {})
    lines = [
        f"# {results.get('title', 'GPU measurements')}",
        "",
        f"Started {results.get('started')}, {results.get('seconds', '?')} s in all (budget "
        f"{results.get('settings', {}).get('total_budget_seconds')} s); command: `{results.get('command')}`.",
        "",
        "| GPU | driver | memory | torch | CUDA | cuDNN | NCCL | torchvision | numpy | Python | bpy | CPUs |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        "| "
        + " | ".join(
            str(value)
            for value in (
                gpu.get("name", "none (no CUDA)"),
                gpu.get("driver"),
                f"{gpu.get('memory_gib', '-')} GiB",
                machine.get("torch"),
                machine.get("cuda"),
                machine.get("cudnn"),
                machine.get("nccl"),
                machine.get("packages", {}).get("torchvision"),
                machine.get("packages", {}).get("numpy"),
                machine.get("python"),
                machine.get("packages", {}).get("bpy"),
                machine.get("cpu_count"),
            )
        )
        + " |",
        "",
        "| part | status | seconds (budget) | figures |",
        "|---|---|---:|---|",
    ]
    parts = results.get("parts", {})
    for name, part in parts.items():
        status = part["status"].replace("|", "/").replace("\n", " ")
        figures = headline(name, part.get("figures", {})).replace("|", "/")
        lines.append(
            f"| {name} | {status} | {part.get('seconds')} ({part.get('budget_seconds')}) | {figures} |"
        )
    for name, part in parts.items():
        lines += ["", f"## {name}", "", f"Status: {part['status']}"]
        for error in part.get("errors", []):
            lines.append(f"- error: {error}")
        for note in part.get("notes", []):
            if "traceback" not in note:
                lines.append(f"- note: {note}")
        figures = dict(part.get("figures", {}))
        for key in ("rows", "batch_trials"):
            if isinstance(figures.get(key), list) and figures[key]:
                lines += ["", *table(figures.pop(key))]
        figures.pop("measurements", None)  # in the JSON file; its summary stays
        if figures:
            lines += ["", "```json", json.dumps(figures, indent=1, default=str)[:6000], "```"]
    return "\n".join(lines) + "\n"

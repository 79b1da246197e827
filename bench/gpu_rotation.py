"""Part "rotation" of ``bench/gpu.py``: SIE and VICReg pretrained by the workflow on rotation-gpu.yaml.

With the configuration (configs/rotation-gpu.yaml by default), Snakemake builds, for SIE and VICReg
(first seed, every pretrained variant): the rotation probe of every part, SIE's predictor evaluation and both
training summaries; the part then reports the rotation R² per part and SIE's predictor health. When it
does not exist, the part says so ("skipped: ... not present"), which is not a failure. ``--quick`` stops
after the dry run (the DAG and its job counts). A DAG that would render with Blender where bpy cannot be
imported is skipped with that reason (render the dataset elsewhere and bring results/datasets/<variant>).

Predictor health of SIE is the workflow's own (docs/evaluations.md#predictor-health): from
``health-equi.json``, the prediction errors with the true latent, a shuffled latent and no predictor, their
ratios and the verdict of its rule; next to them PRE and MRR against chance (a random ranking of V views,
H_V / V).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from gpu_common import REPOSITORY, PartContext, PartResult
from sie.config import load_config_files, resolve_config
from sie.workflow import pretrain_runs

DEFAULT_CONFIG = REPOSITORY / "configs" / "rotation-gpu.yaml"
METHODS = ("SIE", "VICReg")


def targets(config: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Per run 'variant/method/seed': the files to build, by name (rotation-<part>, predictor, summary)."""
    parts = config.get("evaluate", {}).get("parts", ["inv", "equi", "all"])
    chosen: dict[str, dict[str, str]] = {}
    for variant, method, seed in pretrain_runs(config):
        if method not in METHODS or any(key.startswith(f"{variant}/{method}/") for key in chosen):
            continue
        evaluations = f"results/evaluations/{variant}/{method}/seed{seed}"
        files = {f"rotation-{part}": f"{evaluations}/rotation-{part}.json" for part in parts}
        files["summary"] = f"results/pretrain/{variant}/{method}/seed{seed}/summary.json"
        if method == "SIE":
            files["predictor"] = f"{evaluations}/predictor-equi.json"
            files["health"] = f"{evaluations}/health-equi.json"
        chosen[f"{variant}/{method}/seed{seed}"] = files
    return chosen


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON file's content, or None when it is missing."""
    return json.loads(path.read_text()) if path.is_file() else None


def rotation_r2(files: dict[str, str], root: Path) -> dict[str, float | str]:
    """Validation R² of the rotation probe per part ('not applicable: ...' where it does not apply)."""
    values: dict[str, float | str] = {}
    for name, path in files.items():
        if name.startswith("rotation-"):
            record = read_json(root / path) or {}
            part = name.removeprefix("rotation-")
            if record.get("applicable") is False:
                values[part] = f"not applicable: {record.get('reason', '')}"
            else:
                value = record.get("metrics", {}).get("r2", "missing")
                values[part] = round(value, 4) if isinstance(value, float) else value
    return values


def predictor_health(files: dict[str, str], root: Path, views: int) -> dict[str, Any]:
    """SIE's predictor health (validation pairs), PRE and MRR against chance, and a verdict."""
    health_metrics = (read_json(root / files.get("health", "")) or {}).get("metrics", {})
    metrics = (read_json(root / files["predictor"]) or {}).get("metrics", {})
    chance = sum(1 / rank for rank in range(1, views + 1)) / views if views else None
    health: dict[str, Any] = {
        **{name: value for name, value in health_metrics.items() if name.endswith("/val")},
        **{name: value for name, value in metrics.items() if name.split("/")[0] in ("PRE", "MRR", "H@1")},
        "mrr_chance": round(chance, 4) if chance else None,
    }
    verdict = health_metrics.get("uses_latent/val")
    if verdict is None:
        health["verdict"] = "unknown (no health-equi.json)"
    elif verdict:
        health["verdict"] = (
            "healthy: the predictor uses the transformation (true <= 0.9 x shuffled, < identity)"
        )
    else:
        health["verdict"] = "unhealthy: the predictor does not use the transformation"
    return health


def snakemake(
    arguments: list[str], timeout: float, environment: dict[str, str]
) -> subprocess.CompletedProcess:
    """``python -m snakemake`` in the repository with ``arguments``."""
    command = [sys.executable, "-m", "snakemake", *arguments]
    return subprocess.run(
        command, cwd=REPOSITORY, capture_output=True, text=True, timeout=max(timeout, 1), env=environment
    )


def job_counts(output: str) -> dict[str, int]:
    """{rule: count} from the 'Job stats' table of a Snakemake run (empty when there is none)."""
    lines = output.splitlines()
    start = next((index for index, line in enumerate(lines) if line.startswith("Job stats")), None)
    counts: dict[str, int] = {}
    for line in lines[start + 3 :] if start is not None else []:
        fields = line.split()
        if len(fields) != 2 or not fields[1].isdigit():
            break
        counts[fields[0]] = int(fields[1])
    return counts


def command_environment(folder: Path) -> dict[str, str]:
    """The environment of the workflow's jobs: an ``sie`` command on PATH even without the package installed
    (a GPU node's own Python with PYTHONPATH=src)."""
    environment = dict(os.environ)
    if shutil.which("sie") is None:
        shim = folder / "sie"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m sie.cli "$@"\n')
        shim.chmod(0o755)
        environment["PATH"] = f"{folder}{os.pathsep}{environment.get('PATH', '')}"
    source = str(REPOSITORY / "src")
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [source, environment.get("PYTHONPATH")]))
    return environment


def run(context: PartContext) -> PartResult:
    """Dry run, then (unless --quick) the real run, then the R² and predictor health."""
    path = Path(context.options.get("rotation_config") or DEFAULT_CONFIG)
    figures = context.result.figures
    if not path.is_file():
        shown = path.relative_to(REPOSITORY) if path.is_relative_to(REPOSITORY) else path
        return context.finish(skipped=f"{shown} not present")
    if importlib.util.find_spec("snakemake") is None:
        return context.finish(
            skipped="snakemake is not installed here (bench/gpu.sh prepare --with-snakemake)"
        )
    config = resolve_config(load_config_files([str(path)]))
    runs = targets(config)
    figures["runs"] = list(runs)
    if not runs:
        context.result.errors.append(f"{path.name} pretrains neither {' nor '.join(METHODS)}")
        return context.finish()
    files = [file for run_files in runs.values() for file in run_files.values()]
    with tempfile.TemporaryDirectory(prefix="sie-gpu-rotation-") as temporary:
        environment = command_environment(Path(temporary))
        # --rerun-triggers takes several values: it goes before the other options, never before targets
        base = ["--rerun-triggers", "mtime", "--configfile", str(path), "--cores", str(os.cpu_count() or 1)]
        dry = snakemake([*base, "--dry-run", *files], context.remaining() - 5, environment)
        counts = job_counts(dry.stdout + dry.stderr)
        figures["dry_run_jobs"] = counts
        context.save()
        if dry.returncode != 0:
            context.result.errors.append(f"snakemake --dry-run exited {dry.returncode}: {dry.stderr[-1500:]}")
            return context.finish()
        renders = sum(count for rule, count in counts.items() if rule.startswith("render"))
        if renders and importlib.util.find_spec("bpy") is None:
            return context.finish(skipped=f"the DAG renders {renders} shard(s) with Blender; no bpy here")
        if context.quick:
            return context.finish(skipped=f"--quick: dry run only ({counts.get('total', 0)} jobs)")
        real = snakemake([*base, *files], context.remaining() - 5, environment)
        figures["run_tail"] = (real.stdout + real.stderr)[-3000:]
        if real.returncode != 0:
            context.result.errors.append(f"snakemake exited {real.returncode} (see run_tail)")
    views_by_variant = {name: variant.get("views", 0) for name, variant in config["datasets"].items()}
    for key, run_files in runs.items():
        variant, method, _ = key.split("/")
        figures.setdefault("rotation_r2", {})[f"{variant}/{method}"] = rotation_r2(run_files, REPOSITORY)
        if method == "SIE":
            figures["sie_predictor_health"] = predictor_health(
                run_files, REPOSITORY, views_by_variant.get(variant, 0)
            )
    print(
        json.dumps(
            {
                "rotation_r2": figures["rotation_r2"],
                "sie_predictor_health": figures.get("sie_predictor_health"),
            },
            indent=1,
        )
    )
    return context.finish()

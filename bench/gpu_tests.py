"""Part "tests" of ``bench/gpu.py``: ``pytest -m gpu tests/gpu`` with the tests' measurements collected.

The tests (AMP for every method, SyncBatchNorm and DDP over NCCL, a checkpoint-resume cycle, features
and retrieval against the CPU, nvJPEG against libjpeg-turbo) skip without CUDA; the part then reports
"skipped: no CUDA" with the number of tests collected. What they measured (``SIE_GPU_MEASUREMENTS``,
see tests/gpu/gpu_support.py) is kept in the figures, summarised per kind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

from gpu_common import REPOSITORY, PartContext, PartResult

MEASUREMENTS_VARIABLE = "SIE_GPU_MEASUREMENTS"
DEVICE_VARIABLE = "SIE_GPU_TESTS_DEVICE"


def junit_counts(path: Path) -> tuple[dict[str, int], list[dict[str, str]]]:
    """Counts (tests, failures, errors, skipped, passed) and the failing tests of a JUnit XML report."""
    root = ElementTree.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {
        key: sum(int(suite.get(key, 0)) for suite in suites)
        for key in ("tests", "failures", "errors", "skipped")
    }
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    failing = []
    for case in root.iter("testcase"):
        for outcome in ("failure", "error"):
            element = case.find(outcome)
            if element is not None:
                message = (element.get("message") or element.text or "").strip().splitlines()
                failing.append(
                    {
                        "test": f"{case.get('classname')}::{case.get('name')}",
                        "outcome": outcome,
                        "message": " ".join(message[:3])[:500],
                    }
                )
    return counts, failing


def summarise_measurements(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures a reader looks for first: worst AMP differences, JPEG differences, feature differences."""
    summary: dict[str, Any] = {}
    amp = [entry for entry in entries if entry["kind"] == "amp"]
    for precision in sorted({entry["precision"] for entry in amp}):
        chosen = [entry for entry in amp if entry["precision"] == precision]
        worst = max(chosen, key=lambda entry: max(entry["relative_differences"]))
        summary[f"amp_{precision}"] = {
            "largest_relative_difference": max(worst["relative_differences"]),
            "method": worst["method"],
            "tolerance": worst["tolerance"],
            "most_skipped_steps": max(entry["skipped_steps"] for entry in chosen),
        }
    jpeg = [entry for entry in entries if entry["kind"] == "jpeg"]
    if jpeg:
        summary["jpeg"] = jpeg
    features = [entry for entry in entries if entry["kind"] == "features"]
    if features:
        summary["features_largest_relative_norm"] = max(entry["relative_norm"] for entry in features)
    for kind in ("resume", "sync_batch_norm", "predictor_metrics"):
        chosen = [entry for entry in entries if entry["kind"] == kind]
        if chosen:
            summary[kind] = chosen
    return summary


def run(context: PartContext) -> PartResult:
    """Run the GPU tests in a child pytest; counts, failures and measurements."""
    figures = context.result.figures
    with tempfile.TemporaryDirectory(prefix="sie-gpu-tests-") as temporary:
        junit, measurements = Path(temporary) / "junit.xml", Path(temporary) / "measurements.jsonl"
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-m",
            "gpu",
            "tests/gpu",
            "-q",
            "-rfEs",
            "-p",
            "no:cacheprovider",
        ]
        command.append(f"--junitxml={junit}")
        environment = {**os.environ, MEASUREMENTS_VARIABLE: str(measurements)}
        environment.pop(DEVICE_VARIABLE, None)  # the real device, never the CPU stand-in
        try:
            completed = subprocess.run(
                command,
                cwd=REPOSITORY,
                env=environment,
                capture_output=True,
                text=True,
                timeout=max(context.remaining() - 5, 1),
            )
            figures["pytest_exit_code"] = completed.returncode
            figures["pytest_tail"] = (completed.stdout + completed.stderr)[-2500:]
        except subprocess.TimeoutExpired as error:
            context.result.errors.append(f"pytest ran past the part's budget ({error.timeout:.0f} s)")
        if junit.is_file():
            figures["counts"], figures["failing"] = junit_counts(junit)
        if measurements.is_file():
            entries = [json.loads(line) for line in measurements.read_text().splitlines() if line.strip()]
            figures["measurements"] = entries
            figures["summary"] = summarise_measurements(entries)
    counts = figures.get("counts")
    if counts is None:
        context.result.errors.append("pytest wrote no report (see pytest_tail)")
        return context.finish()
    if counts["failures"] or counts["errors"]:
        context.result.errors.append(
            f"{counts['failures'] + counts['errors']} of {counts['tests']} GPU tests failed"
        )
        return context.finish()
    if counts["tests"] == 0:
        context.result.errors.append("no GPU test was collected")
        return context.finish()
    if counts["passed"] == 0:
        return context.finish(skipped=f"no CUDA ({counts['tests']} GPU tests collected, all skipped)")
    return context.finish()

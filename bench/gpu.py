#!/usr/bin/env python
"""Every GPU code path of the project executed and measured on one GPU, by one script.

Parts (names or letters for ``--parts``; each runs in its own process under its own time budget, so a
part that fails, crashes or runs out of time leaves the others their figures):

  a tests      pytest -m gpu tests/gpu: AMP (bf16, fp16 + loss scaling) for every method, SyncBatchNorm
               and DDP over NCCL, a checkpoint-resume cycle, features and retrieval against the CPU,
               nvJPEG against libjpeg-turbo
  b train      images/s of the paper's model (ResNet-18, 256 px, largest batch up to 512) in fp32, bf16,
               bf16 + channels-last, fp16, torch.compile, against the CPU
  c loader     view pairs/s with CPU JPEG decoding against batched GPU decoding, 256 px
  d render     Cycles s/image on the GPU at the paper's and the default settings, full-dataset projection
  e retrieval  PRE's nearest-neighbour search at 2,096,000 x 2,096,000 (paper width), float32 and bfloat16
  f rotation   SIE and VICReg through the workflow on configs/rotation-gpu.yaml, when that file exists

The whole run is held to ``--total-budget`` seconds (default 480: 8 minutes on one H200). Results go to
``--output`` FILE (JSON, self-describing: machine, versions, per part status, figures and errors) and the
same name with ``.md`` (Markdown), rewritten after every part. Usage::

    .venv/bin/python bench/gpu.py --output results/gpu/gpu.json               # a GPU node, all parts
    .venv/bin/python bench/gpu.py --parts train,e --output results/gpu/rerun.json  # rerun two parts
    .venv/bin/python bench/gpu.py --device cpu --quick --output /tmp/gpu.json  # every CPU path, toy sizes

Exit status 0 when no part failed (skipped parts are not failures), 1 otherwise.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPOSITORY = BENCH.parent
for folder in (BENCH, REPOSITORY / "src"):  # run with any Python (e.g. a GPU node's own, no install)
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))


@dataclass(frozen=True)
class Part:
    """One part: its letter, module (``bench/<module>.py`` with ``run(context)``) and budgets in seconds."""

    letter: str
    module: str
    budget: float
    quick_budget: float


PARTS = {  # the budgets add up to more than the total: parts that skip (no bpy, no config) take seconds
    "tests": Part("a", "gpu_tests", 90, 40),
    "train": Part("b", "gpu_train", 130, 40),
    "loader": Part("c", "gpu_loader", 45, 30),
    "render": Part("d", "gpu_render", 60, 40),
    "retrieval": Part("e", "gpu_retrieval", 90, 25),
    "rotation": Part("f", "gpu_rotation", 90, 30),
}
GRACE_SECONDS = 15
"""A part's process is killed this long after its budget (its start-up and the last measurement)."""
MINIMUM_SECONDS = 20
"""A part is not started with less than this left of the total budget."""


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    """The command line (``--worker`` and ``--part-output`` are internal: one part in this process)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="where to measure")
    parser.add_argument("--quick", action="store_true", help="toy sizes: the code paths, in seconds")
    parser.add_argument("--parts", default="all", help="comma-separated names or letters (default all)")
    parser.add_argument("--output", type=Path, default=REPOSITORY / "results" / "gpu" / "gpu.json")
    parser.add_argument("--total-budget", type=float, default=480.0, help="seconds for the whole run")
    parser.add_argument(
        "--budget", action="append", default=[], metavar="PART=SECONDS", help="override a part's budget"
    )
    parser.add_argument("--rotation-config", type=Path, default=REPOSITORY / "configs" / "rotation-gpu.yaml")
    parser.add_argument("--worker", choices=list(PARTS), help=argparse.SUPPRESS)
    parser.add_argument("--part-output", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--part-budget", type=float, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def selected_parts(text: str) -> list[str]:
    """Part names from 'all' or a comma-separated list of names and letters (in the parts' order)."""
    if text.strip() == "all":
        return list(PARTS)
    letters = {part.letter: name for name, part in PARTS.items()}
    chosen = set()
    for item in (piece.strip() for piece in text.split(",") if piece.strip()):
        name = letters.get(item, item)
        if name not in PARTS:
            raise SystemExit(
                f"unknown part {item!r}; known: {', '.join(f'{p.letter}/{n}' for n, p in PARTS.items())}"
            )
        chosen.add(name)
    return [name for name in PARTS if name in chosen]


def budgets(arguments: argparse.Namespace) -> dict[str, float]:
    """Each part's budget in seconds (quick or full, then the --budget overrides)."""
    values = {name: part.quick_budget if arguments.quick else part.budget for name, part in PARTS.items()}
    for item in arguments.budget:
        name, _, seconds = item.partition("=")
        if name not in values or not seconds:
            raise SystemExit(f"--budget {item!r}: expected PART=SECONDS with PART one of {', '.join(PARTS)}")
        values[name] = float(seconds)
    return values


def run_worker(arguments: argparse.Namespace) -> int:
    """Run one part in this process and write its result to --part-output."""
    import torch

    from gpu_common import PartContext

    device = (
        torch.device("cuda", 0)
        if arguments.device == "cuda" and torch.cuda.is_available()
        else torch.device("cpu")
    )
    context = PartContext(
        arguments.worker,
        device,
        arguments.quick,
        arguments.part_budget,
        arguments.part_output,
        {"rotation_config": arguments.rotation_config},
    )
    context.save()
    try:
        importlib.import_module(PARTS[arguments.worker].module).run(context)
    except Exception as error:  # the part's own failure: recorded, the orchestrator goes on
        context.result.errors.append(f"part {arguments.worker}: {type(error).__name__}: {error}"[:2000])
        context.result.notes.append(f"traceback (end): {traceback.format_exc()[-1500:]}")
        context.finish()
    return 0


def stop_process_group(process: subprocess.Popen) -> None:
    """SIGTERM the part's process group, then SIGKILL what is left after 5 s."""
    for number, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, number)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_part(name: str, budget: float, arguments: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """One part in a child process (its own session, killed GRACE_SECONDS after its budget)."""
    import json

    output, log = folder / f"{name}.json", folder / f"{name}.log"
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--device", arguments.device]
    command += [
        "--part-output",
        str(output),
        "--part-budget",
        str(budget),
        "--rotation-config",
        str(arguments.rotation_config),
    ]
    command += ["--quick"] if arguments.quick else []
    environment = dict(os.environ)
    if arguments.device == "cpu":
        environment["CUDA_VISIBLE_DEVICES"] = ""  # a CPU run is one wherever it runs
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPOSITORY / "src"), environment.get("PYTHONPATH")])
    )
    started = time.monotonic()
    with log.open("w") as stream:
        process = subprocess.Popen(
            command,
            cwd=REPOSITORY,
            env=environment,
            stdout=stream,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            exit_code = process.wait(timeout=budget + GRACE_SECONDS)
            timed_out = False
        except subprocess.TimeoutExpired:
            stop_process_group(process)
            exit_code, timed_out = process.returncode, True
    result = (
        json.loads(output.read_text())
        if output.is_file()
        else {"name": name, "figures": {}, "errors": [], "notes": []}
    )
    result["seconds"] = round(time.monotonic() - started, 1)
    result["budget_seconds"] = budget
    tail = log.read_text(errors="replace")[-2500:]
    if timed_out:
        result["errors"].append(f"ran past its budget of {budget:.0f} s (+{GRACE_SECONDS} s) and was stopped")
        result["status"] = f"failed: ran past its budget of {budget:.0f} s; figures up to then kept"
    elif exit_code != 0 or result.get("status", "running") == "running":
        result["errors"].append(f"the part's process exited with status {exit_code}")
        result["status"] = f"failed: the part's process exited with status {exit_code} (crash?)"
    if result["status"].startswith("failed"):
        result["notes"].append(f"output tail: {tail}")
    return result


def orchestrate(arguments: argparse.Namespace) -> int:
    """Run the selected parts within the total budget, writing the results after each."""
    from gpu_common import describe_machine
    from gpu_report import write_results

    names, allowed = selected_parts(arguments.parts), budgets(arguments)
    started = time.monotonic()
    results: dict[str, Any] = {
        "title": "GPU measurements (bench/gpu.py)",
        "format": 1,
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "settings": {
            "device": arguments.device,
            "quick": arguments.quick,
            "parts": names,
            "budgets_seconds": {name: allowed[name] for name in names},
            "total_budget_seconds": arguments.total_budget,
        },
        "machine": describe_machine(),
        "parts": {},
    }
    if arguments.device == "cuda" and not results["machine"]["gpu"]["cuda_available"]:
        results["settings"]["note"] = (
            "--device cuda asked, but CUDA is not available: every part measures the CPU"
        )
    print(f"bench/gpu.py: parts {', '.join(names)}; results in {arguments.output}", flush=True)
    with tempfile.TemporaryDirectory(prefix="sie-gpu-bench-") as temporary:
        for name in names:
            left = arguments.total_budget - (time.monotonic() - started)
            left -= GRACE_SECONDS  # a part may be stopped that long after its budget
            if left < min(allowed[name], MINIMUM_SECONDS):
                result = {
                    "name": name,
                    "status": f"skipped: total budget exhausted ({left:.0f} s left)",
                    "figures": {},
                }
            else:
                result = run_part(name, min(allowed[name], left), arguments, Path(temporary))
            results["parts"][name] = result
            results["seconds"] = round(time.monotonic() - started, 1)
            markdown = write_results(results, arguments.output)
            print(f"  {name:<10} {result['status'][:150]}  ({result.get('seconds', 0)} s)", flush=True)
    print(f"bench/gpu.py: {results['seconds']} s; {arguments.output} and {markdown}", flush=True)
    return 1 if any(part["status"].startswith("failed") for part in results["parts"].values()) else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: the orchestrator, or one part (--worker)."""
    arguments = parse_arguments(argv)
    return run_worker(arguments) if arguments.worker else orchestrate(arguments)


if __name__ == "__main__":
    sys.exit(main())

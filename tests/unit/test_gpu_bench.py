"""bench/gpu.py without a GPU: the quick CPU run end to end (every part reports a status, every
CPU-possible path ran at toy size), and the pieces of its parts that need no run at all."""

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

# bench/ is not a package: its scripts import each other by file name. bench/gpu.py is loaded under
# another name, since tests/gpu/ (a test folder) can already be imported as `gpu` in the full suite.
_GPU_SPEC = importlib.util.spec_from_file_location("bench_gpu", BENCH / "gpu.py")
gpu = sys.modules["bench_gpu"] = importlib.util.module_from_spec(_GPU_SPEC)
_GPU_SPEC.loader.exec_module(gpu)
from gpu_common import PartContext  # noqa: E402
from gpu_report import render_markdown  # noqa: E402
from gpu_retrieval import SyntheticUnitRows  # noqa: E402
from gpu_rotation import job_counts, predictor_health, rotation_r2, targets  # noqa: E402
from gpu_train import largest_batch  # noqa: E402

PART_NAMES = ["tests", "train", "loader", "render", "retrieval", "rotation"]


@pytest.mark.slow
def test_quick_cpu_run_reports_every_part_and_runs_every_cpu_path(tmp_path):
    output = tmp_path / "gpu.json"
    command = [sys.executable, str(BENCH / "gpu.py"), "--device", "cpu", "--quick", "--output", str(output)]
    command += ["--rotation-config", str(tmp_path / "rotation-gpu.yaml")]  # absent: the part says so
    started = time.monotonic()
    completed = subprocess.run(command, capture_output=True, text=True, timeout=240)
    seconds = time.monotonic() - started
    results = json.loads(output.read_text())
    parts = results["parts"]
    statuses = {name: part["status"] for name, part in parts.items()}
    assert completed.returncode == 0, f"{statuses}\n{completed.stdout[-3000:]}{completed.stderr[-3000:]}"
    assert list(parts) == PART_NAMES
    assert all(status.startswith(("ok", "skipped: ")) for status in statuses.values()), statuses
    for name in ("tests", "train", "loader", "render", "retrieval"):
        assert statuses[name].startswith("skipped: no CUDA"), statuses[name]
    assert statuses["rotation"] == f"skipped: {tmp_path / 'rotation-gpu.yaml'} not present"
    machine = results["machine"]
    assert {"gpu", "torch", "cuda", "cudnn", "python", "packages", "cpu_count"} <= set(machine)
    assert machine["gpu"]["cuda_available"] is False

    counts = parts["tests"]["figures"]["counts"]
    assert counts["tests"] >= 40 and counts["skipped"] == counts["tests"]
    train = parts["train"]["figures"]["rows"]
    assert {(row["precision"], row["channels_last"]) for row in train} == {
        ("fp32", False),
        ("bf16", False),
        ("bf16", True),
        ("fp16", True),
    }
    assert all(row["device"] == "cpu" and row["images_per_second"] > 0 for row in train)
    loader = parts["loader"]["figures"]
    assert set(loader["pairs_per_second"]) == {"decode_in_cpu_workers", "batched_decode_on_cpu"}
    assert loader["pixel_difference"]["largest"] == 0, "the same decoder on the same bytes"
    assert loader["decode_only"]["cpu_batched_images_per_second"] > 0
    render = parts["render"]["figures"]
    assert [row["device"] for row in render["rows"]] == ["cpu"] and render["rows"][0]["images"] == 2
    retrieval = parts["retrieval"]["figures"]
    assert retrieval["width"] == 1024 and retrieval["full_rows"] == 2_096_000
    assert [row["dtype"] for row in retrieval["rows"]] == ["float32", "bfloat16"]
    assert all(row["projected_full_seconds"] > 0 for row in retrieval["rows"])

    markdown = output.with_suffix(".md").read_text()
    assert all(f"## {name}" in markdown for name in PART_NAMES)
    print(f"bench/gpu.py --device cpu --quick: {seconds:.1f} s")


def test_parts_are_chosen_by_name_or_letter():
    assert gpu.selected_parts("all") == PART_NAMES
    assert gpu.selected_parts("e, train,a") == ["tests", "train", "retrieval"]
    with pytest.raises(SystemExit, match="unknown part 'x'"):
        gpu.selected_parts("x")


def test_budget_overrides():
    arguments = gpu.parse_arguments(["--quick", "--budget", "train=12.5"])
    values = gpu.budgets(arguments)
    assert values["train"] == 12.5 and values["tests"] == gpu.PARTS["tests"].quick_budget
    with pytest.raises(SystemExit, match="PART=SECONDS"):
        gpu.budgets(gpu.parse_arguments(["--budget", "nothing"]))


class FakeOutOfMemory(Exception):
    pass


def test_largest_batch_steps_down_after_out_of_memory():
    def trial(batch):
        if batch > 128:
            raise FakeOutOfMemory(f"{batch} does not fit")

    batch, trials = largest_batch(trial, (512, 256, 128, 64), FakeOutOfMemory)
    assert batch == 128
    assert [entry["fits"] for entry in trials] == [False, False, True]
    assert largest_batch(lambda batch: trial(1024), (512,), FakeOutOfMemory)[0] is None


def test_a_failed_measurement_is_recorded_and_the_part_goes_on(tmp_path):
    context = PartContext("train", torch.device("cpu"), True, 10, tmp_path / "part.json")
    assert context.attempt("first", lambda: 1 / 0) is None
    assert context.attempt("second", lambda: 42) == 42
    result = context.finish(skipped="no CUDA")
    assert result.status.startswith("failed: 1 error(s); first: first: ZeroDivisionError")
    assert json.loads((tmp_path / "part.json").read_text())["status"] == result.status


def test_synthetic_unit_rows_are_the_same_whatever_the_slices():
    rows = SyntheticUnitRows(1000, 16, 3, torch.device("cpu"), block=128)
    whole = rows[0:1000]
    assert whole.shape == (1000, 16) and np.allclose(np.linalg.norm(whole, axis=1), 1, atol=1e-6)
    assert np.array_equal(rows[100:300], whole[100:300]) and np.array_equal(rows[990:1200], whole[990:])
    assert rows[5:5].shape == (0, 16)
    assert not np.array_equal(SyntheticUnitRows(1000, 16, 4, torch.device("cpu"), 128)[0:10], whole[:10])


def test_rotation_hook_targets_and_its_reading_of_the_outputs(tmp_path):
    config = {
        "pretrain": {"datasets": ["rot"], "methods": ["SIE", "SimCLR", "VICReg"], "seeds": [3, 4]},
        "evaluate": {"parts": ["inv", "equi"]},
    }
    runs = targets(config)
    assert list(runs) == ["rot/SIE/seed3", "rot/VICReg/seed3"]
    sie = runs["rot/SIE/seed3"]
    assert sie["predictor"] == "results/evaluations/rot/SIE/seed3/predictor-equi.json"
    assert "predictor" not in runs["rot/VICReg/seed3"]
    files = {
        sie["rotation-inv"]: {"applicable": True, "metrics": {"r2": 0.61, "mse": 0.1}},
        sie["rotation-equi"]: {"applicable": True, "metrics": {"r2": 0.72}},
        sie["summary"]: {"final": {"loss/equivariance": 0.3}},
        sie["predictor"]: {"metrics": {"PRE/train-train": 0.2, "MRR/train-train": 0.4, "H@5/val-val": 0.9}},
        sie["health"]: {"metrics": {"error/true/val": 0.1, "uses_latent/val": 1.0, "uses_latent/train": 1.0}},
    }
    for path, content in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(json.dumps(content))
    assert rotation_r2(sie, tmp_path) == {"inv": 0.61, "equi": 0.72}
    health = predictor_health(sie, tmp_path, views=4)
    assert health["verdict"].startswith("healthy") and health["PRE/train-train"] == 0.2
    assert health["error/true/val"] == 0.1 and "uses_latent/train" not in health
    chance = (1 + 1 / 2 + 1 / 3 + 1 / 4) / 4  # MRR of a random ranking of 4 views
    assert "H@5/val-val" not in health and health["mrr_chance"] == pytest.approx(chance, abs=1e-4)
    missing = predictor_health(runs["rot/VICReg/seed3"] | {"predictor": "none"}, tmp_path, 4)
    assert missing["verdict"].startswith("unknown")
    text = "Job stats:\njob      count\n-----  -------\nrender       2\npretrain     1\ntotal        3\n\n"
    assert job_counts(text) == {"render": 2, "pretrain": 1, "total": 3}


def test_markdown_names_every_part_with_its_status():
    results = {
        "started": "now",
        "machine": {"gpu": {"name": "H200", "driver": "580"}, "packages": {}},
        "parts": {
            "train": {
                "status": "ok",
                "seconds": 3,
                "figures": {
                    "rows": [
                        {
                            "device": "cuda",
                            "precision": "bf16",
                            "channels_last": True,
                            "compiled": False,
                            "batch": 512,
                        }
                        | {"images_per_second": 4000.0}
                    ]
                },
            },
            "render": {"status": "skipped: bpy is not importable here", "figures": {}},
        },
    }
    markdown = render_markdown(results)
    assert "| H200 | 580 |" in markdown and "| train | ok | 3 (None) | best 4,000.0 images/s" in markdown
    assert "## render" in markdown and "Status: skipped: bpy is not importable here" in markdown

"""Pretraining runs on a tiny dataset: outputs, logs, resume after SIGKILL, and every bad input."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from runs import TINY_MODEL, TINY_TRAINING, tiny_spec
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from equivalence import assert_checkpoints_agree, assert_losses_agree
from sie.config import ConfigError
from sie.models.backbone import build_backbone
from sie.models.methods import ModelConfig, build_model
from sie.training import checkpoint
from sie.training.config import run_spec_from_dict
from sie.training.loop import NonFiniteLossError, pretrain
from torchrun_local import free_loopback_port, local_environment, run_in_own_session, torchrun_command

pytestmark = pytest.mark.slow


def run(spec, dataset, folder):
    return pretrain(spec, dataset, folder / "out", folder / "checkpoint" / "checkpoint.pt", threads=1)


def test_outputs_logs_and_tensorboard(tiny_dataset, tmp_path):
    spec = tiny_spec("SIE")
    summary = run(spec, tiny_dataset, tmp_path)
    output = tmp_path / "out"
    assert summary["steps"] == 2 * (9 // 2) and summary["method"] == "SIE"
    model = checkpoint.load(output / "model.pt")
    assert model["method"] == "SIE" and model["inv_dims"] == 32 - 8 and model["representation_dim"] == 32
    backbone, _ = build_backbone("resnet9", 4)
    checkpoint.load_state_strict(backbone, checkpoint.load(output / "backbone.pt"), "backbone.pt")
    assert json.loads((output / "config.json").read_text())["spec"]["method"] == "SIE"
    lines = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == list(range(1, 9))
    events = EventAccumulator(str(output / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    for term in (
        "invariance",
        "equivariance",
        "variance",
        "covariance",
        "predictor_variance",
        "ssl",
        "probe",
    ):
        assert f"loss/{term}" in tags
    assert "probe/representations/top1" in tags and "probe/representations-equi/r2" in tags
    assert {"train/lr", "train/images_per_second"} <= tags


def test_rerun_after_completion_only_rewrites_outputs(tiny_dataset, tmp_path):
    run(tiny_spec("VICReg", epochs=1), tiny_dataset, tmp_path)
    first = checkpoint.load(tmp_path / "out" / "model.pt")["state_dict"]
    run(tiny_spec("VICReg", epochs=1), tiny_dataset, tmp_path)
    second = checkpoint.load(tmp_path / "out" / "model.pt")["state_dict"]
    assert all(torch.equal(first[key], second[key]) for key in first)


def cli(spec, dataset, folder):
    return [
        sys.executable,
        "-m",
        "sie.cli",
        "pretrain",
        "--spec",
        json.dumps(spec.as_dict()),
        "--dataset",
        str(dataset),
        "--output",
        str(folder / "out"),
        "--checkpoint",
        str(folder / "checkpoint.pt"),
        "--threads",
        "1",
    ]


def final_state(folder: Path) -> dict[str, torch.Tensor]:
    return checkpoint.load(folder / "out" / "model.pt")["state_dict"]


def test_sigkill_mid_epoch_then_restart_ends_with_the_same_weights(tiny_dataset, tmp_path):
    spec = tiny_spec("SIE", epochs=4)  # 4 steps per epoch, a checkpoint after every step
    reference = tmp_path / "reference"
    subprocess.run(cli(spec, tiny_dataset, reference), check=True, capture_output=True)
    killed = tmp_path / "killed"
    process = subprocess.Popen(
        cli(spec, tiny_dataset, killed),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline and process.poll() is None, (
            "no mid-epoch checkpoint before the end"
        )
        path = killed / "checkpoint.pt"
        if path.exists():
            position = checkpoint.load(path)["position"]
            if position["step_in_epoch"] > 0 and position["epoch"] >= 1:
                break
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (killed / "out" / "model.pt").exists()
    resumed = subprocess.run(cli(spec, tiny_dataset, killed), check=True, capture_output=True, text=True)
    assert "resumed from" in resumed.stderr and "of the epoch" in resumed.stderr
    reference_state, resumed_state = final_state(reference), final_state(killed)
    assert reference_state.keys() == resumed_state.keys()
    for key, value in reference_state.items():
        assert torch.equal(value, resumed_state[key]), key
    steps = [json.loads(line)["step"] for line in (killed / "out" / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 17)), "the log reads as one uninterrupted run"


def test_stop_signal_saves_a_checkpoint_and_exits_143(tiny_dataset, tmp_path):
    spec = tiny_spec("SimCLR", epochs=200, checkpoint_minutes=60)
    process = subprocess.Popen(
        cli(spec, tiny_dataset, tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while not (tmp_path / "out" / "metrics.jsonl").exists():
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    process.send_signal(signal.SIGUSR1)
    _, errors = process.communicate(timeout=120)
    assert process.returncode == 143, errors
    assert "stopped by signal 10" in errors
    position = checkpoint.load(tmp_path / "checkpoint.pt")["position"]
    assert position["global_step"] >= 1


def records(folder: Path) -> list[dict]:
    """The records of a run's metrics.jsonl."""
    return [json.loads(line) for line in (folder / "out" / "metrics.jsonl").read_text().splitlines()]


def test_torchrun_two_processes_match_one_process(tiny_dataset, tmp_path):
    """`sie pretrain` under torchrun (2 gloo processes, rendezvous on 127.0.0.1) matches 1 process.

    With ``lr: 0``, so that what is compared is well defined in float32 (tests/equivalence.py says
    why and how closely): every step's losses over 2 epochs, the weights, and Adam's running mean of
    the gradients. Exact gradients of one step are compared in float64 in tests/method.
    """
    spec = tiny_spec("SIE", epochs=2, batch_size=4, lr=0.0)
    single, double = tmp_path / "single", tmp_path / "double"
    alone = run_in_own_session(cli(spec, tiny_dataset, single), timeout=600)
    assert alone.returncode == 0, alone.stderr[-3000:]
    program = cli(spec, tiny_dataset, double)[3:]  # the arguments after `python -m sie.cli`
    command = torchrun_command(2, free_loopback_port(), "-m", "sie.cli", *program)
    result = run_in_own_session(command, timeout=600, environment=local_environment())
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((double / "out" / "config.json").read_text())["world_size"] == 2
    one, two = records(single), records(double)
    assert [record["step"] for record in one] == [1, 2, 3, 4]
    assert {"loss/ssl", "loss/invariance", "loss/equivariance", "loss/probe"} <= set(one[0])
    assert_losses_agree(one, two)
    model = build_model("SIE", ModelConfig(**TINY_MODEL, num_classes=3))
    assert_checkpoints_agree(
        checkpoint.load(single / "checkpoint.pt"), checkpoint.load(double / "checkpoint.pt"), model
    )


def test_unknown_method_is_named():
    with pytest.raises(ValueError, match="unknown method 'SIEv2'"):
        run_spec_from_dict(
            {"variant": "tiny", "method": "SIEv2", "seed": 0, "model": TINY_MODEL, "training": TINY_TRAINING}
        )
    with pytest.raises(ConfigError, match=r"model: unknown key\(s\) \['mpl'\]"):
        run_spec_from_dict(
            {
                "variant": "tiny",
                "method": "SIE",
                "seed": 0,
                "model": {"mpl": "8-8"},
                "training": TINY_TRAINING,
            }
        )


def test_colour_method_on_rotation_only_dataset_is_refused(rotation_only_dataset, tmp_path):
    with pytest.raises(
        ValueError, match="SIERotColor conditions on colour changes, but floor_hue, spot_hue never"
    ):
        run(tiny_spec("SIERotColor"), rotation_only_dataset, tmp_path)
    assert not (tmp_path / "out").exists()


def test_batch_not_divisible_by_world_size(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(ValueError, match="batch_size 2 is not divisible by the world size 3"):
        run(tiny_spec("SIE"), tiny_dataset, tmp_path)


def test_checkpoint_of_another_run_is_put_aside_not_resumed(tiny_dataset, tmp_path, capsys):
    run(tiny_spec("SIE", epochs=1), tiny_dataset, tmp_path)
    capsys.readouterr()
    summary = run(tiny_spec("VICReg", epochs=1), tiny_dataset, tmp_path)
    assert summary["method"] == "VICReg" and summary["steps"] == 4
    assert "method: checkpoint 'SIE', now 'VICReg'" in capsys.readouterr().err
    wider = run_spec_from_dict(
        {
            "variant": "tiny",
            "method": "SIE",
            "seed": 0,
            "model": {**TINY_MODEL, "mlp": "24-24"},
            "training": {**TINY_TRAINING, "epochs": 1},
        }
    )
    run(wider, tiny_dataset, tmp_path)
    assert "model.mlp: checkpoint '16-16', now '24-24'" in capsys.readouterr().err
    assert len(list((tmp_path / "checkpoint" / "superseded").glob("*.pt"))) == 2


def test_mis_shaped_weights_are_named(tmp_path):
    small, _ = build_backbone("resnet9", 4)
    large, _ = build_backbone("resnet9", 8)
    with pytest.raises(ValueError, match=r"weights\.pt: weights do not fit this model \(shape mismatch"):
        checkpoint.load_state_strict(large, small.state_dict(), "weights.pt")
    deeper, _ = build_backbone("resnet18", 4)
    with pytest.raises(ValueError, match=r"\(missing: layer1\.1\.bn1\.bias, .* \(\+43 more\)\)"):
        checkpoint.load_state_strict(deeper, small.state_dict(), "weights.pt")
    with pytest.raises(ValueError, match=r"\(unexpected: layer1\.1\.bn1\.bias"):
        checkpoint.load_state_strict(small, deeper.state_dict(), "weights.pt")


def test_non_finite_loss_stops_with_step_and_terms(tiny_dataset, tmp_path, monkeypatch):
    from sie.models import losses

    monkeypatch.setattr(losses, "covariance_loss", lambda embeddings: embeddings.sum() * float("nan"))
    with pytest.raises(
        NonFiniteLossError, match=r"non-finite loss at step 1 \(epoch 1\) of VICReg: .*covariance=nan"
    ):
        run(tiny_spec("VICReg"), tiny_dataset, tmp_path)
    assert not (tmp_path / "out" / "model.pt").exists()


def test_dataset_without_store_says_how_to_pack(tiny_dataset, tmp_path):
    unpacked = tmp_path / "unpacked"
    shutil.copytree(tiny_dataset, unpacked, ignore=shutil.ignore_patterns("store"))
    with pytest.raises((FileNotFoundError, ValueError), match="sie pack"):
        run(tiny_spec("SIE"), unpacked, tmp_path)

"""One checkpoint-resume cycle of ``sie.training.loop.pretrain`` on CUDA under mixed precision.

A run of 1 epoch extended to 2 (the constant schedule lets it resume: ``sie.training.resume``) must end
where a run of 2 epochs straight ends: the CUDA random state, the gradient scaler (fp16) and the
optimiser come back from the checkpoint. Training is deterministic (``training.deterministic``, cuBLAS
workspace fixed in conftest.py), so two straight runs agree bitwise and the resumed one must too; should
two straight runs differ on some GPU (an operation without a deterministic CUDA kernel), the resumed run
may differ from the straight one by at most ten times as much.
"""

import pytest
import torch
from gpu_support import GPU_TESTS, record, target_device

from sie.training import checkpoint
from sie.training.config import run_spec_from_dict
from sie.training.loop import pretrain

pytestmark = GPU_TESTS

MODEL = {"arch": "resnet9", "width": 4, "mlp": "16-16", "equi": 8, "equi_factor": 0.45}


def spec(epochs: int, amp: str, channels_last: bool):
    """A tiny SIE run on the test device: batch 2 of the 9 training objects, 4 steps per epoch."""
    training = {
        "epochs": epochs,
        "batch_size": 2,
        "workers": 0,
        "checkpoint_minutes": 0,
        "log_every_steps": 1,
        "deterministic": True,
        "device": target_device().type,
        "amp": amp,
        "channels_last": channels_last,
    }
    return run_spec_from_dict(
        {"variant": "gpu", "method": "SIE", "seed": 0, "model": MODEL, "training": training}
    )


def run(run_spec, dataset, folder):
    return pretrain(run_spec, dataset, folder / "out", folder / "checkpoint" / "checkpoint.pt", threads=1)


def weights(folder) -> dict[str, torch.Tensor]:
    return checkpoint.load(folder / "out" / "model.pt")["state_dict"]


def largest_difference(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> float:
    assert first.keys() == second.keys()
    return max(float((first[key].double() - second[key].double()).abs().max()) for key in first)


@pytest.mark.parametrize(("amp", "channels_last"), [("fp16", False), ("bf16", True)])
def test_resumed_run_ends_where_the_straight_run_ends(packed_dataset, tmp_path, capsys, amp, channels_last):
    run(spec(2, amp, channels_last), packed_dataset, tmp_path / "straight")
    run(spec(2, amp, channels_last), packed_dataset, tmp_path / "again")
    first = run(spec(1, amp, channels_last), packed_dataset, tmp_path / "resumed")
    saved = checkpoint.load(tmp_path / "resumed" / "checkpoint" / "checkpoint.pt")
    capsys.readouterr()
    summary = run(spec(2, amp, channels_last), packed_dataset, tmp_path / "resumed")
    message = capsys.readouterr().err
    assert first["steps"] == 4 and summary["steps"] == 8 and summary["precision"] == amp
    assert "resumed from" in message and "(4 steps done)" in message
    if target_device().type == "cuda":
        assert "cuda" in saved["rng"], "the checkpoint lacks the CUDA random state"
    if amp == "fp16":
        assert saved["scaler"].get("scale", 0) > 0, "the checkpoint lacks the gradient scaler's scale"
    straight = weights(tmp_path / "straight")
    noise = largest_difference(straight, weights(tmp_path / "again"))
    resumed = largest_difference(straight, weights(tmp_path / "resumed"))
    record(
        "resume",
        amp=amp,
        channels_last=channels_last,
        straight_runs_differ_by=noise,
        resumed_differs_by=resumed,
    )
    if noise == 0:
        assert resumed == 0, f"the resumed run differs from the straight run by up to {resumed:.3g}"
    else:
        assert resumed <= 10 * noise, f"resumed differs by {resumed:.3g}, two straight runs by {noise:.3g}"

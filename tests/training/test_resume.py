"""Which checkpoint a run resumes, one trainer per checkpoint, and errors of the storage and model files.

Each case here produced a wrong or unexplained result before the run identity (sie.training.resume),
the checkpoint lock (sie.ownership) and the storage errors (sie.io) existed.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch
from runs import tiny_spec

from sie.ownership import LockedError, exclusive_lock
from sie.training import checkpoint
from sie.training.loop import lock_path, pretrain

pytestmark = pytest.mark.slow


def run(spec, dataset, folder):
    return pretrain(spec, dataset, folder / "out", folder / "checkpoint" / "checkpoint.pt", threads=1)


def weights(folder):
    return checkpoint.load(folder / "out" / "model.pt")["state_dict"]


def assert_same_weights(first, second):
    assert first.keys() == second.keys()
    for key, value in first.items():
        assert torch.equal(value, second[key]), key


def test_more_epochs_with_the_constant_schedule_continue_exactly(tiny_dataset, tmp_path, capsys):
    run(tiny_spec("SIE", epochs=2), tiny_dataset, tmp_path / "extended")
    capsys.readouterr()
    summary = run(tiny_spec("SIE", epochs=3), tiny_dataset, tmp_path / "extended")
    message = capsys.readouterr().err
    assert "training.epochs 2 -> 3: the constant schedule" in message
    assert "resumed from" in message and "(8 steps done)" in message
    assert summary["epochs"] == 3 and summary["steps"] == 12
    run(tiny_spec("SIE", epochs=3), tiny_dataset, tmp_path / "direct")
    assert_same_weights(weights(tmp_path / "direct"), weights(tmp_path / "extended"))
    config = json.loads((tmp_path / "extended" / "out" / "config.json").read_text())
    assert config["spec"]["training"]["epochs"] == 3


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"epochs": 1}, "the checkpoint is past the new end (8 of 4 steps)"),
        ({"lr": 0.002}, "training.lr: checkpoint 0.001, now 0.002"),
        ({"weight_decay": 0.01}, "training.weight_decay: checkpoint 1e-06, now 0.01"),
    ],
)
def test_changed_settings_start_over_and_keep_the_old_checkpoint(
    tiny_dataset, tmp_path, capsys, change, named
):
    folder = tmp_path / "changed"
    run(tiny_spec("SIE", epochs=2), tiny_dataset, folder)
    capsys.readouterr()
    summary = run(tiny_spec("SIE", **{"epochs": 2, **change}), tiny_dataset, folder)
    message = capsys.readouterr().err
    assert f"not resuming {folder / 'checkpoint' / 'checkpoint.pt'}: " in message and named in message
    assert "training starts over" in message and "resumed from" not in message
    assert summary["steps"] == 4 * summary["epochs"]
    assert len(list((folder / "checkpoint" / "superseded").glob("*.pt"))) == 1
    run(tiny_spec("SIE", **{"epochs": 2, **change}), tiny_dataset, tmp_path / "fresh")
    assert_same_weights(weights(tmp_path / "fresh"), weights(folder))
    config = json.loads((folder / "out" / "config.json").read_text())
    for key, value in change.items():
        assert config["spec"]["training"][key] == value


def test_more_epochs_with_the_cosine_schedule_start_over(tiny_dataset, tmp_path, capsys):
    run(tiny_spec("VICReg", epochs=1, schedule="cosine"), tiny_dataset, tmp_path)
    capsys.readouterr()
    summary = run(tiny_spec("VICReg", epochs=2, schedule="cosine"), tiny_dataset, tmp_path)
    assert "the cosine schedule depends on the number of epochs" in capsys.readouterr().err
    assert summary["steps"] == 8


def test_reverting_a_setting_takes_the_superseded_checkpoint_back(tiny_dataset, tmp_path, capsys):
    first = run(tiny_spec("SIE", epochs=1), tiny_dataset, tmp_path)
    original = weights(tmp_path)
    run(tiny_spec("SIE", epochs=1, lr=0.01), tiny_dataset, tmp_path)
    capsys.readouterr()
    reverted = run(tiny_spec("SIE", epochs=1), tiny_dataset, tmp_path)
    message = capsys.readouterr().err
    assert "took back" in message and "resumed from" in message and "step 1/4" not in message
    assert reverted["fingerprint"] == first["fingerprint"]
    assert_same_weights(original, weights(tmp_path))


def test_a_changed_dataset_starts_over(tiny_dataset, tmp_path, capsys):
    copy = tmp_path / "dataset"
    shutil.copytree(tiny_dataset, copy)
    run(tiny_spec("SIE", epochs=1), copy, tmp_path)
    statistics = json.loads((copy / "statistics.json").read_text())
    statistics["mean"] = [value + 0.01 for value in statistics["mean"]]
    (copy / "statistics.json").write_text(json.dumps(statistics))
    capsys.readouterr()
    run(tiny_spec("SIE", epochs=1), copy, tmp_path)
    assert "dataset: checkpoint" in capsys.readouterr().err


def test_a_second_trainer_on_a_locked_checkpoint_is_refused(tiny_dataset, tmp_path):
    checkpoint_path = tmp_path / "checkpoint" / "checkpoint.pt"
    refusal = pytest.raises(LockedError, match=rf"is in use by process {os.getpid()} ")
    with exclusive_lock(lock_path(checkpoint_path), "test"), refusal:
        run(tiny_spec("SIE", epochs=1), tiny_dataset, tmp_path)
    assert not (tmp_path / "out" / "summary.json").exists()
    assert run(tiny_spec("SIE", epochs=1), tiny_dataset, tmp_path)["steps"] == 4


def pretrain_command(dataset, output, checkpoint_path, spec=None):
    spec = spec or tiny_spec("SIE", epochs=1)
    return [
        *("sie", "pretrain", "--spec", json.dumps(spec.as_dict()), "--dataset", str(dataset)),
        *("--output", str(output), "--checkpoint", str(checkpoint_path), "--threads", "1"),
    ]


def sie_environment():
    return {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}


def test_the_cli_names_the_process_holding_the_checkpoint(tiny_dataset, tmp_path):
    checkpoint_path = tmp_path / "checkpoint.pt"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys
                from sie.ownership import exclusive_lock
                with exclusive_lock({str(lock_path(checkpoint_path))!r}, "test"):
                    print("locked", flush=True)
                    sys.stdin.read()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = subprocess.run(
            pretrain_command(tiny_dataset, tmp_path / "out", checkpoint_path),
            capture_output=True,
            text=True,
            env=sie_environment(),
        )
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert result.returncode == 1
    assert f"sie pretrain: error: {lock_path(checkpoint_path)}: the checkpoint" in result.stderr
    assert f"is in use by process {holder.pid} " in result.stderr


def mounts_available() -> bool:
    if not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


needs_mounts = pytest.mark.skipif(
    not mounts_available(), reason="needs `unshare -m` (root) for a private tmpfs or read-only mount"
)


def run_in_mount_namespace(mount: str, command: list[str]) -> subprocess.CompletedProcess:
    """Run ``command`` in a private mount namespace after the shell line ``mount``."""
    line = f"{mount} && exec " + " ".join(f"'{word}'" for word in command)
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", line], capture_output=True, text=True, env=sie_environment()
    )


@needs_mounts
def test_disk_full_while_saving_the_checkpoint_names_the_file(tiny_dataset, tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    checkpoint_path = disk / "checkpoints" / "checkpoint.pt"
    result = run_in_mount_namespace(
        f"mount -t tmpfs -o size=256k tmpfs {disk}",
        pretrain_command(tiny_dataset, tmp_path / "out", checkpoint_path),
    )
    assert result.returncode == 1, result.stderr
    expected = f"sie pretrain: error: {checkpoint_path}: No space left on device (the disk is full"
    assert expected in result.stderr
    assert "inline_container" not in result.stderr and "Traceback" not in result.stderr


@needs_mounts
def test_read_only_output_is_refused_before_training(tiny_dataset, tmp_path):
    output = tmp_path / "results"
    output.mkdir()
    result = run_in_mount_namespace(
        f"mount --bind -o ro {output} {output}",
        pretrain_command(tiny_dataset, output / "out", output / "checkpoint.pt"),
    )
    assert result.returncode == 1
    expected = f"sie pretrain: error: {output / 'out'}: cannot write here: Read-only file system (the file"
    assert expected in result.stderr
    assert "step 1/" not in result.stderr and "Traceback" not in result.stderr


def test_truncated_and_foreign_model_files_are_named(tiny_dataset, tmp_path):
    run(tiny_spec("SIE", epochs=1), tiny_dataset, tmp_path)
    model = tmp_path / "out" / "model.pt"
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    text = tmp_path / "notes.pt"
    text.write_text("not a model\n")
    pickled = tmp_path / "pickled.pt"
    torch.save({"object": argparse.Namespace(code="runs when unpickled")}, pickled)
    expected = {
        truncated: "not a complete PyTorch file (truncated, or not written by `sie`)",
        text: "not a complete PyTorch file",
        pickled: "holds Python objects other than tensors",
    }
    for path, message in expected.items():
        result = subprocess.run(
            [
                *("sie", "features", "--model", str(path), "--dataset", str(tiny_dataset)),
                *("--output", str(tmp_path / "features"), "--device", "cpu"),
            ],
            capture_output=True,
            text=True,
            env=sie_environment(),
        )
        assert result.returncode == 1
        assert f"sie features: error: {path}: {message}" in result.stderr
        assert "weights_only" not in result.stderr and "Traceback" not in result.stderr

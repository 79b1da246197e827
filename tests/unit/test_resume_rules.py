"""The resume decision and the superseded checkpoints (sie.training.resume), without training."""

from sie.training import resume

IDENTITY = {"method": "SIE", "training": {"lr": 0.001, "schedule": "constant"}, "dataset": "abc"}


def stored(epochs, step, **training):
    identity = {**IDENTITY, "training": {**IDENTITY["training"], **training}}
    return {"identity": identity, "epochs": epochs, "global_step": step}


def test_decisions():
    assert resume.decide(stored(10, 100), IDENTITY, 10, 10).resume
    assert resume.decide(stored(10, 100), IDENTITY, 20, 10).resume  # constant schedule: continue
    assert not resume.decide(stored(10, 100), IDENTITY, 5, 10).resume  # past the new end
    cosine = {**IDENTITY, "training": {**IDENTITY["training"], "schedule": "cosine"}}
    assert not resume.decide(stored(10, 50, schedule="cosine"), cosine, 20, 10).resume
    changed = resume.decide(stored(10, 100, lr=0.01), IDENTITY, 10, 10)
    assert not changed.resume and "training.lr: checkpoint 0.01, now 0.001" in changed.reason


def test_putting_aside_never_overwrites_and_the_furthest_is_taken_back(tmp_path):
    checkpoint = tmp_path / "checkpoint.pt"
    for step in (300, 1000, 200):
        checkpoint.write_text(f"step {step}")
        resume.put_aside(checkpoint, "fp", step)
    assert len(list((tmp_path / "superseded").iterdir())) == 3
    assert resume.take_back(checkpoint, "other") is None
    assert resume.take_back(checkpoint, "fp").name == "fp-step1000.pt"
    assert checkpoint.read_text() == "step 1000"
    assert resume.take_back(checkpoint, "fp") is None  # one is in place now

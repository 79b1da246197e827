"""Run specs of tiny pretraining runs shared by the training tests."""

from sie.training.config import run_spec_from_dict

TINY_MODEL = {"arch": "resnet9", "width": 4, "mlp": "16-16", "equi": 8, "equi_factor": 0.45}
TINY_TRAINING = {
    "epochs": 2,
    "batch_size": 2,
    "workers": 0,
    "checkpoint_minutes": 0,
    "log_every_steps": 1,
    "deterministic": True,
    "device": "cpu",
}


def tiny_spec(method: str = "SIE", **training):
    """A RunSpec of a few steps of ``method`` with a tiny ResNet-9."""
    return run_spec_from_dict(
        {
            "variant": "tiny",
            "method": method,
            "seed": 0,
            "model": dict(TINY_MODEL),
            "training": {**TINY_TRAINING, **training},
        }
    )

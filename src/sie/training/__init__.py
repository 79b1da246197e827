"""Pretraining: run configuration, the training loop, checkpoints, logs and outputs."""

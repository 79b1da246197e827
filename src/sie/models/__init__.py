"""Backbone, heads, loss terms, online probes and the registry of pre-training methods."""

from sie.models.backbone import build_backbone
from sie.models.methods import METHODS, Features, MethodSpec, ModelConfig, SSLModel, StepOutput, build_model

__all__ = [
    "METHODS",
    "Features",
    "MethodSpec",
    "ModelConfig",
    "SSLModel",
    "StepOutput",
    "build_backbone",
    "build_model",
]

"""Detached online probes trained alongside every model (docs/method.md#online-evaluator).

For both the representations and the embeddings: a linear classifier on the whole vector and on its
invariant part (when there is one), and a rotation regressor on the two views' whole vectors and on their
equivariant parts (when there is one). Inputs are detached, so the probes never move the backbone; their
parameters share the model's optimizer. The probe loss is the unweighted sum of every CE and MSE.
"""

from __future__ import annotations

import torch
import torch.nn.functional as functional
from torch import nn

from sie.data.latents import QUATERNION_SIZE
from sie.models.losses import global_r2, mean_squared_error, top_k_accuracy

ROTATION_DIM = QUATERNION_SIZE
KINDS = ("representations", "embeddings")


def rotation_head(input_dim: int, output_dim: int = ROTATION_DIM) -> nn.Sequential:
    """MLP on the concatenated views [a_x; a_y]: 2d -> 2d -> ReLU -> 2d -> ReLU -> output_dim."""
    width = 2 * input_dim
    return nn.Sequential(
        nn.Linear(width, width),
        nn.ReLU(),
        nn.Linear(width, width),
        nn.ReLU(),
        nn.Linear(width, output_dim),
    )


class OnlineEvaluator(nn.Module):
    """Online class and rotation probes; inv = the first ``inv`` dims of a vector, equi = the rest.

    Head names: "representations", "representations-inv", "representations-equi", and the same for
    "embeddings". Metric keys are "<head>/<metric>" with metric in ce, top1, top5 (fractions), mse, r2.
    """

    def __init__(
        self,
        inv_representation: int,
        equi_representation: int,
        inv_embedding: int,
        equi_embedding: int,
        num_classes: int,
        rotation_dim: int = ROTATION_DIM,
    ) -> None:
        super().__init__()
        self.splits = {
            "representations": (inv_representation, equi_representation),
            "embeddings": (inv_embedding, equi_embedding),
        }
        self.rotation_dim = rotation_dim
        self.classifiers = nn.ModuleDict()
        self.rotation_heads = nn.ModuleDict()
        for kind, (inv, equi) in self.splits.items():
            self.classifiers[kind] = nn.Linear(inv + equi, num_classes)
            self.rotation_heads[kind] = rotation_head(inv + equi, rotation_dim)
            if inv > 0:
                self.classifiers[f"{kind}-inv"] = nn.Linear(inv, num_classes)
            if equi > 0:
                self.rotation_heads[f"{kind}-equi"] = rotation_head(equi, rotation_dim)

    def _part(self, name: str, vectors: torch.Tensor) -> torch.Tensor:
        kind, _, part = name.partition("-")
        inv, equi = self.splits[kind]
        if vectors.shape[1] != inv + equi:
            raise ValueError(f"{kind} have {vectors.shape[1]} dims, the evaluator expects {inv + equi}")
        if part == "inv":
            return vectors[:, :inv]
        if part == "equi":
            return vectors[:, inv:]
        return vectors

    def forward(
        self,
        representations: tuple[torch.Tensor, torch.Tensor],
        embeddings: tuple[torch.Tensor, torch.Tensor],
        labels: torch.Tensor,
        rotation: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Probe loss (differentiable w.r.t. the probes only) and detached metrics.

        ``representations`` and ``embeddings`` are the (view x, view y) pairs; ``rotation`` is the
        (B, 4) quaternion target of the rotation heads; ``labels`` the (B,) class indices.
        """
        inputs = {
            "representations": tuple(vector.detach() for vector in representations),
            "embeddings": tuple(vector.detach() for vector in embeddings),
        }
        rotation = rotation[:, : self.rotation_dim].detach()
        stacked_labels = torch.cat([labels, labels], dim=0)
        total = torch.zeros((), device=labels.device)
        metrics: dict[str, torch.Tensor] = {}
        for name, classifier in self.classifiers.items():
            first, second = (self._part(name, vector) for vector in inputs[name.partition("-")[0]])
            logits = classifier(torch.cat([first, second], dim=0)).float()
            cross_entropy = functional.cross_entropy(logits, stacked_labels)
            total = total + cross_entropy
            metrics[f"{name}/ce"] = cross_entropy.detach()
            metrics[f"{name}/top1"] = top_k_accuracy(logits.detach(), stacked_labels, 1)
            metrics[f"{name}/top5"] = top_k_accuracy(logits.detach(), stacked_labels, 5)
        for name, head in self.rotation_heads.items():
            first, second = (self._part(name, vector) for vector in inputs[name.partition("-")[0]])
            prediction = head(torch.cat([first, second], dim=1))
            error = mean_squared_error(prediction, rotation)
            total = total + error
            metrics[f"{name}/mse"] = error.detach()
            metrics[f"{name}/r2"] = global_r2(prediction.detach(), rotation)
        return total, metrics

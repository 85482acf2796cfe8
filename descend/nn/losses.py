"""Losses: each takes (prediction, target) and returns a scalar tensor, the mean over the batch."""

from __future__ import annotations

from typing import Any

import numpy as np

from descend import ops
from descend.errors import ShapeError
from descend.nn.module import Module
from descend.tensor import Tensor


class MSELoss(Module):
    """Mean squared error: mean((prediction − target)²); both of one shape, e.g. (N, k)."""

    def forward(self, prediction: Tensor, target: Any) -> Tensor:
        """prediction and target of one shape -> scalar mean((prediction − target)²)."""
        target_shape = tuple(np.shape(target.data if isinstance(target, Tensor) else target))
        if target_shape != prediction.shape:
            raise ShapeError(
                f"MSELoss: prediction of shape {prediction.shape} and target of shape {target_shape} differ; "
                "give targets of the model's output shape (e.g. y.reshape(-1, 1) for one output)"
            )
        difference = prediction - target
        return (difference * difference).mean()


class CrossEntropyLoss(Module):
    """Softmax cross-entropy on logits, fused with log-softmax: logits (N, C), labels (N,) in [0, C)."""

    def forward(self, logits: Tensor, labels: Any) -> Tensor:
        """logits (N, C), integer labels (N,) in [0, C) -> scalar mean loss."""
        return ops.cross_entropy(logits, labels)


class BCEWithLogitsLoss(Module):
    """Binary cross-entropy on raw scores: logits and targets in [0, 1] of one shape, e.g. (N, 1)."""

    def forward(self, logits: Tensor, targets: Any) -> Tensor:
        """logits and targets in [0, 1] of one shape -> scalar mean loss."""
        return ops.binary_cross_entropy_with_logits(logits, targets)

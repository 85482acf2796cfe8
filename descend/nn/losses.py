"""Losses: each takes (prediction, target) and returns the mean over the batch, a scalar tensor.

Every loss takes PyTorch's `reduction=`: "mean" (the default), "sum", or "none"
for one value per sample (per element for MSELoss and BCEWithLogitsLoss, per
position for a sequence's CrossEntropyLoss and NLLLoss). `fit` and `evaluate`
weigh each batch's mean by its rows themselves, so they take "mean".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from descend import ops
from descend.checks import check_real, check_reduction
from descend.errors import DescendValueError, ShapeError
from descend.nn.capsules import CapsuleOutput
from descend.nn.module import Module
from descend.tensor import Tensor, array_of


def reduce(losses: Tensor, reduction: str) -> Tensor:
    """Per-sample (or per-element) losses as `reduction` asks: their mean, their sum, or as they are."""
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    return losses


class MSELoss(Module):
    """Mean squared error: mean((prediction − target)²); both of one shape, e.g. (N, k).

    >>> float(MSELoss()(Tensor([[1.0], [3.0]]), [[0.0], [0.0]]))  # (1² + 3²) / 2
    5.0
    """

    def __init__(self, reduction: str = "mean"):
        self.reduction = check_reduction(reduction)

    def forward(self, prediction: Tensor, target: Any) -> Tensor:
        """prediction and target of one shape -> scalar mean((prediction − target)²) (or as `reduction` says)."""
        target_shape = array_of(target).shape
        if target_shape != prediction.shape:
            raise ShapeError(
                f"MSELoss: prediction of shape {prediction.shape} and target of shape {target_shape} differ; "
                "give targets of the model's output shape (e.g. y.reshape(-1, 1) for one output)"
            )
        difference = prediction - target
        return reduce(difference * difference, self.reduction)


class CrossEntropyLoss(Module):
    """Softmax cross-entropy on logits, fused with log-softmax: logits (N, C), labels (N,) in [0, C).

    >>> round(float(CrossEntropyLoss()(Tensor(np.zeros((2, 3))), [0, 2])), 4)  # uniform over 3 classes: ln 3
    1.0986
    >>> CrossEntropyLoss(reduction="none")(Tensor(np.zeros((2, 3))), [0, 2]).shape
    (2,)
    """

    def __init__(self, reduction: str = "mean"):
        self.reduction = check_reduction(reduction)

    def forward(self, logits: Tensor, labels: Any) -> Tensor:
        """logits (N, C), integer labels (N,) in [0, C) -> scalar mean loss (or as `reduction` says)."""
        return ops.cross_entropy(logits, labels, self.reduction)


class NLLLoss(Module):
    """Negative log-likelihood of the labels from log-probabilities: log_probs (N, C) (a LogSoftmax's output),
    labels (N,) in [0, C). NLLLoss after log_softmax is CrossEntropyLoss, as in PyTorch.

    >>> float(NLLLoss()(Tensor([[-0.5, -1.0], [-2.0, -0.25]]), [0, 1]))  # (0.5 + 0.25) / 2
    0.375
    """

    def __init__(self, reduction: str = "mean"):
        self.reduction = check_reduction(reduction)

    def forward(self, log_probs: Tensor, labels: Any) -> Tensor:
        """log_probs (N, C), integer labels (N,) in [0, C) -> scalar mean loss (or as `reduction` says)."""
        return ops.nll_loss(log_probs, labels, self.reduction)


class BCEWithLogitsLoss(Module):
    """Binary cross-entropy on raw scores: logits and targets in [0, 1] of one shape, e.g. (N, 1).

    >>> round(float(BCEWithLogitsLoss()(Tensor([[0.0], [0.0]]), [[1.0], [0.0]])), 4)  # σ(0) = ½: ln 2
    0.6931
    """

    def __init__(self, reduction: str = "mean"):
        self.reduction = check_reduction(reduction)

    def forward(self, logits: Tensor, targets: Any) -> Tensor:
        """logits and targets in [0, 1] of one shape -> scalar mean loss (or as `reduction` says)."""
        loss = ops.binary_cross_entropy_with_logits(logits, targets)  # checks both, and is the fused mean
        if self.reduction == "mean":
            return loss
        # per element: softplus(z) − z·y, the same loss written with primitives
        return reduce(ops.softplus(logits) - logits * targets, self.reduction)


class MarginLoss(Module):
    """The capsule network's loss: a margin on each class capsule's length, plus the reconstruction's error.

    For lengths ‖v_k‖ (N, K) and integer labels (N,), with T_k = 1 for the true class:
        L_k = T_k · max(0, m⁺ − ‖v_k‖)² + λ (1 − T_k) · max(0, ‖v_k‖ − m⁻)²
    summed over the classes; the true class's capsule must be long, every
    other short. Given a CapsNet's output and reconstruction_weight > 0, the
    decoder redraws each input from its true class's capsule alone, and
    reconstruction_weight × Σ (pixel − reconstruction)² is added. Both are
    averaged over the batch. The paper's values are the defaults, with 0.0005
    as the reconstruction weight when one is wanted.

    >>> lengths = Tensor([[0.9, 0.1], [0.3, 0.5]])  # row 0 costs nothing: its true capsule is long, the other short
    >>> round(float(MarginLoss()(lengths, [0, 1])), 4)  # row 1: ((0.9 − 0.5)² + 0.5 · (0.3 − 0.1)²) / 2
    0.09
    """

    def __init__(self, m_plus: float = 0.9, m_minus: float = 0.1, lam: float = 0.5,
                 reconstruction_weight: float = 0.0, reduction: str = "mean"):
        self.reduction = check_reduction(reduction)
        self.m_plus = check_real("m_plus", m_plus, low=0.0, high=1.0)
        self.m_minus = check_real("m_minus", m_minus, low=0.0, high=self.m_plus)
        self.lam = check_real("lam", lam, low=0.0)
        self.reconstruction_weight = check_real("reconstruction_weight", reconstruction_weight, low=0.0)

    def forward(self, output: Any, labels: Any) -> Tensor:
        """A CapsNet's CapsuleOutput (or lengths (N, K) in [0, 1]), integer labels (N,) in [0, K) -> scalar loss."""
        lengths = output.lengths if isinstance(output, CapsuleOutput) else output
        labels = array_of(labels)
        if lengths.ndim != 2 or labels.shape != lengths.shape[:1]:
            raise ShapeError(f"MarginLoss: lengths of shape {lengths.shape} and labels of shape {labels.shape} do not "
                             "fit; expected lengths (N, K) and labels (N,)")
        if labels.dtype.kind not in "iu" or (labels.size and (labels.min() < 0 or labels.max() >= lengths.shape[1])):
            raise DescendValueError(f"MarginLoss: labels must be integer classes in [0, {lengths.shape[1]}); got "
                                    f"{labels.dtype} values {np.unique(labels)[:5].tolist()}")
        target = np.zeros(lengths.shape, dtype=lengths.dtype)
        target[np.arange(len(labels)), labels] = 1
        present = ops.relu(self.m_plus - lengths)
        absent = ops.relu(lengths - self.m_minus)
        margins = target * present * present + self.lam * (1 - target) * absent * absent
        losses = margins.sum(axis=1)
        if self.reconstruction_weight > 0:
            if not isinstance(output, CapsuleOutput) or output.model.decoder is None:
                raise DescendValueError("MarginLoss(reconstruction_weight > 0) needs the output of a CapsNet built "
                                        "with reconstruction=True; pass reconstruction_weight=0 otherwise")
            pixels = output.images.reshape(len(labels), -1)
            difference = output.reconstruct(labels) - pixels
            if self.reduction == "mean":  # the two means apart, as always: the same numbers as before
                return losses.mean() + self.reconstruction_weight * (difference * difference).sum(axis=1).mean()
            losses = losses + self.reconstruction_weight * (difference * difference).sum(axis=1)
        return reduce(losses, self.reduction)


#: the losses whose targets are integer class labels, and whose answer is the output's largest entry
CLASS_LABEL_LOSSES = (CrossEntropyLoss, NLLLoss, MarginLoss)

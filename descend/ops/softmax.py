"""Softmax, log-softmax and the fused losses built on them.

Each is one op rather than a composition: subtracting the row maximum keeps
exp() from overflowing, and the fused losses have a short, exact gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from descend import kernels
from descend.checks import accepting_torch_names, check_axis, check_reduction
from descend.errors import DescendTypeError, DescendValueError, ShapeError
from descend.ops.base import Function, shape_of
from descend.ops.elementwise import stable_sigmoid
from descend.ops.shape import getitem, reshape
from descend.tensor import Tensor, array_of


def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


class Softmax(Function):
    """s = softmax(x), s_i = e^{x_i} / Σ_j e^{x_j} along `axis`; d/dx = s · (grad − Σ_j grad_j s_j)."""

    notation = "softmax({0})"

    def forward(self, x):
        self.out = np.exp(_log_softmax(x, self.axis))
        return self.out

    def backward(self, grad):
        return (self.out * (grad - (grad * self.out).sum(axis=self.axis, keepdims=True)),)


@accepting_torch_names
def softmax(x: Any, axis: int = -1) -> Tensor:
    """Probabilities along `axis` that sum to 1; same shape as x.

    >>> softmax([0.0, np.log(3.0)]).data.round(2).tolist()
    [0.25, 0.75]
    """
    return Softmax.apply(x, axis=check_axis("axis", axis, len(shape_of(x))))


class LogSoftmax(Function):
    """log softmax(x) = x − log Σ e^x along `axis`; d/dx = grad − softmax(x) · Σ grad."""

    notation = "log_softmax({0})"

    def forward(self, x):
        self.out = _log_softmax(x, self.axis)
        return self.out

    def backward(self, grad):
        return (grad - np.exp(self.out) * grad.sum(axis=self.axis, keepdims=True),)


@accepting_torch_names
def log_softmax(x: Any, axis: int = -1) -> Tensor:
    """log(softmax(x)) computed stably; same shape as x.

    >>> [round(value, 4) for value in log_softmax([0.0, 0.0]).data.tolist()]  # log ½ each
    [-0.6931, -0.6931]
    """
    return LogSoftmax.apply(x, axis=check_axis("axis", axis, len(shape_of(x))))


class SoftmaxCrossEntropy(Function):
    """Mean over rows of −log softmax(logits)[label]: logits (N, C), labels (N,) ints -> scalar.

    d/dlogits = (softmax(logits) − onehot(labels)) / N; the labels get no gradient.
    """

    notation = "cross_entropy({0}, {1})"

    def forward(self, logits, labels):
        self.labels, self.kernels = labels, kernels.for_arrays(logits)
        if self.kernels is not None and logits.shape[1]:
            self.log_probs = self.kernels.log_softmax_rows(logits)
        else:
            self.log_probs = _log_softmax(logits, axis=1)
        rows = np.arange(len(labels))
        return -self.log_probs[rows, labels].mean(dtype=logits.dtype).astype(logits.dtype)

    def backward(self, grad):
        if self.kernels is not None and self.log_probs.shape[1]:
            return self.kernels.softmax_cross_entropy_grad(self.log_probs, self.labels, grad / len(self.labels)), None
        grad_logits = np.exp(self.log_probs)
        grad_logits[np.arange(len(self.labels)), self.labels] -= 1
        grad_logits *= grad / len(self.labels)
        return grad_logits, None


def _class_labels(what: str, scores: str, scores_shape: tuple[int, ...], labels: Any) -> np.ndarray:
    """Integer class labels of shape scores_shape[:-1], each in [0, C), as int64; else an error naming `what` and
    its `scores` argument."""
    labels_array = array_of(labels)
    if len(scores_shape) < 2:
        raise ShapeError(f"{what}: {scores} must be (N, C) or (N, ..., C); got shape {scores_shape}")
    if labels_array.shape != scores_shape[:-1]:
        raise ShapeError(
            f"{what}: labels of shape {labels_array.shape} do not match {scores} of shape {scores_shape}; "
            f"expected labels of shape {scores_shape[:-1]}"
        )
    if labels_array.dtype.kind not in "iuf":
        raise DescendTypeError(f"{what}: labels must be integer class indices; got dtype {labels_array.dtype}")
    if labels_array.dtype.kind == "f":
        fractional = np.mod(labels_array, 1) != 0  # NaN counts: its remainder is NaN
        if fractional.any():
            raise DescendValueError(
                f"{what}: labels must be whole class indices; got {labels_array[fractional][:5].tolist()} "
                f"in float labels of dtype {labels_array.dtype}"
            )
        labels_array = labels_array.astype(np.int64)
    classes = scores_shape[-1]
    if labels_array.size and (labels_array.min() < 0 or labels_array.max() >= classes):
        raise DescendValueError(
            f"{what}: labels must lie in [0, {classes}) for {classes} classes; "
            f"got values from {labels_array.min()} to {labels_array.max()}"
        )
    return labels_array


def cross_entropy(logits: Tensor, labels: Any, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy: logits (N, C), labels (N,) in [0, C) -> the mean over rows (a scalar).

    Logits (N, T, C) with labels (N, T), as a sequence model makes, are
    averaged over every position: they are flattened to (N·T, C) first.
    `reduction` "sum" adds the rows' losses instead; "none" returns them, of labels' shape.

    >>> round(float(cross_entropy(np.zeros((2, 3)), [0, 2])), 4)  # uniform logits: ln 3
    1.0986
    >>> cross_entropy(np.zeros((2, 3)), [0, 2], reduction="none").shape
    (2,)
    """
    reduction = check_reduction(reduction)
    logits_shape = shape_of(logits)
    labels_array = _class_labels("cross_entropy", "logits", logits_shape, labels)
    if reduction != "mean":
        return nll_loss(log_softmax(logits, axis=-1), labels_array, reduction)
    if len(logits_shape) > 2:
        logits, labels_array = reshape(logits, (-1, logits_shape[-1])), labels_array.reshape(-1)
    return SoftmaxCrossEntropy.apply(logits, labels_array)


def nll_loss(log_probs: Tensor, labels: Any, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of each row's label: −log_probs[row, label], log_probs (N, C) (or (N, ..., C)),
    labels (N,) in [0, C); reduced by `reduction` ("mean", "sum", or "none": labels' shape).

    PyTorch's nll_loss: log_probs are a log_softmax's output, so
    nll_loss(log_softmax(z), y) is cross_entropy(z, y).

    >>> log_probs = [[-0.5, -1.0], [-2.0, -0.25]]
    >>> float(nll_loss(log_probs, [0, 1])), nll_loss(log_probs, [0, 1], reduction="none").data.tolist()
    (0.375, [0.5, 0.25])
    """
    reduction = check_reduction(reduction)
    shape = shape_of(log_probs)
    labels_array = _class_labels("nll_loss", "log_probs", shape, labels)
    rows = reshape(log_probs, (-1, shape[-1]))
    per_position = -getitem(rows, (np.arange(labels_array.size), labels_array.reshape(-1)))
    if reduction == "mean":
        return per_position.mean()
    if reduction == "sum":
        return per_position.sum()
    return reshape(per_position, labels_array.shape)


class SigmoidCrossEntropy(Function):
    """Mean binary cross-entropy on logits: −[y log σ(z) + (1 − y) log(1 − σ(z))].

    Written as max(z, 0) − z·y + log(1 + e^−|z|), which never overflows;
    d/dz = (σ(z) − y) / n, d/dy = −z / n.
    """

    notation = "bce_with_logits({0}, {1})"

    def forward(self, logits, targets):
        self.logits, self.targets = logits, targets
        losses = np.maximum(logits, 0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))
        return losses.mean(dtype=logits.dtype).astype(logits.dtype)

    def backward(self, grad):
        scale = grad / self.logits.size
        return (stable_sigmoid(self.logits) - self.targets) * scale, -self.logits * scale if self.needs_input_grad[1] else None


def binary_cross_entropy_with_logits(logits: Tensor, targets: Any) -> Tensor:
    """Mean binary cross-entropy on raw scores: logits and targets (in [0, 1]) of one shape -> scalar."""
    targets_shape = shape_of(targets)
    if tuple(targets_shape) != tuple(logits.shape):
        raise ShapeError(
            f"binary_cross_entropy_with_logits: targets of shape {tuple(targets_shape)} do not match "
            f"logits of shape {logits.shape}"
        )
    targets_array = array_of(targets)
    if targets_array.dtype.kind in "iuf" and targets_array.size and not (
        0 <= targets_array.min() and targets_array.max() <= 1
    ):
        raise DescendValueError(
            f"binary_cross_entropy_with_logits: targets must lie in [0, 1]; "
            f"got values from {targets_array.min()} to {targets_array.max()}"
        )
    return SigmoidCrossEntropy.apply(logits, targets)

"""Batch normalisation: the training-mode transform is one op with its own gradient."""

from __future__ import annotations

from typing import Any

import numpy as np

from descend.errors import DescendTypeError, ShapeError
from descend.ops.base import Function, shape_of
from descend.ops.shape import reshape
from descend.tensor import Tensor


class BatchNorm(Function):
    """y = γ · (x − μ) / √(σ² + eps) + β, with μ, σ² the batch's mean and (biased) variance per channel.

    x is (N, C) or (N, C, ...); channels are axis 1 and the statistics run
    over every other axis. Fused: the backward is one short formula,
        dx = (γ / σ̂) · (g − mean(g) − x̂ · mean(g · x̂)),
    where x̂ is the normalised input and σ̂ = √(σ² + eps). The batch
    statistics are also blended into the running ones (in place), as
    PyTorch's batch_norm does: running = (1 − momentum) · running + momentum · batch,
    with the unbiased variance.
    """

    notation = "batch_norm({0})"

    def forward(self, x, gamma, beta):
        self.axes = (0, *range(2, x.ndim))
        channel_shape = (1, -1) + (1,) * (x.ndim - 2)
        count = x.size // x.shape[1]
        mean = x.mean(axis=self.axes, keepdims=True)
        centered = x - mean
        variance = np.mean(centered * centered, axis=self.axes, keepdims=True)
        self.inverse_std = 1.0 / np.sqrt(variance + np.asarray(self.eps, dtype=x.dtype))
        self.normalized = centered * self.inverse_std
        self.gamma = gamma.reshape(channel_shape)
        if self.running_mean is not None:
            momentum = self.momentum
            self.running_mean *= 1 - momentum
            self.running_mean += momentum * mean.reshape(-1)
            self.running_var *= 1 - momentum
            self.running_var += momentum * variance.reshape(-1) * (count / max(count - 1, 1))
        return self.normalized * self.gamma + beta.reshape(channel_shape)

    def backward(self, grad):
        grad_gamma = (grad * self.normalized).sum(axis=self.axes)
        grad_beta = grad.sum(axis=self.axes)
        grad_x = None
        if self.needs_input_grad[0]:
            grad_normalized = grad * self.gamma
            grad_x = self.inverse_std * (
                grad_normalized
                - grad_normalized.mean(axis=self.axes, keepdims=True)
                - self.normalized * (grad_normalized * self.normalized).mean(axis=self.axes, keepdims=True)
            )
        return grad_x, grad_gamma, grad_beta


def batch_norm(
    x: Tensor, gamma: Any, beta: Any, running_mean: np.ndarray | None = None, running_var: np.ndarray | None = None,
    training: bool = True, momentum: float = 0.1, eps: float = 1e-5,
) -> Tensor:
    """Normalise each channel (axis 1) of x (N, C, ...) and scale by γ, shift by β (both (C,)).

    In training the batch statistics are used and blended into
    running_mean / running_var (arrays of shape (C,), updated in place);
    in evaluation the running statistics are used, composed from
    elementwise ops.
    """
    shape = x.shape
    gamma_shape = shape_of(gamma)
    if len(shape) < 2 or gamma_shape != (shape[1],):
        raise ShapeError(
            f"batch_norm: x must be (N, C, ...) with gamma and beta of shape (C,); "
            f"got x {shape} and gamma {gamma_shape}"
        )
    if x.dtype.kind != "f":
        raise DescendTypeError(f"batch_norm: x must hold floats (a mean and a variance are taken); got dtype {x.dtype}")
    if training:
        if shape[0] * int(np.prod(shape[2:])) < 2:
            raise ShapeError(f"batch_norm in training needs more than one value per channel; got x {shape}")
        return BatchNorm.apply(x, gamma, beta, running_mean=running_mean, running_var=running_var,
                               momentum=momentum, eps=eps)
    channel_shape = (1, shape[1]) + (1,) * (len(shape) - 2)
    scale = np.asarray(1.0 / np.sqrt(running_var + eps), dtype=x.dtype).reshape(channel_shape)
    shift = np.asarray(running_mean, dtype=x.dtype).reshape(channel_shape)
    return (x - shift) * scale * reshape(gamma, channel_shape) + reshape(beta, channel_shape)

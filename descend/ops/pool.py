"""Pooling over NCHW activations: max and average, each one op; global and adaptive average built on them.

Like im2col, each op loops over the kernel's offsets (4 for a 2x2
window), each step one vectorised pass over the whole batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from descend.errors import ShapeError
from descend.ops.base import Function
from descend.ops.conv import offsets, output_size, pad, pair, shape_of
from descend.ops.reduce import mean
from descend.tensor import Tensor

_NO_DILATION = (1, 1)


class _Pool2d(Function):
    def _windows(self, x):
        height, width = x.shape[2:]
        self.input_shape = x.shape
        self.out_hw = (
            output_size(height, self.kernel_size[0], self.stride[0], self.padding[0], 1, f"{self.name} height"),
            output_size(width, self.kernel_size[1], self.stride[1], self.padding[1], 1, f"{self.name} width"),
        )
        return offsets(self.kernel_size, self.stride, _NO_DILATION, self.out_hw)

    def _scatter(self, parts):
        """Add each offset's gradient back into its window of the padded input; crop the padding."""
        n, channels, height, width = self.input_shape
        grad_padded = np.zeros((n, channels, height + 2 * self.padding[0], width + 2 * self.padding[1]), dtype=self.dtype)
        for (_, _, rows, columns), part in zip(offsets(self.kernel_size, self.stride, _NO_DILATION, self.out_hw), parts):
            grad_padded[:, :, rows, columns] += part
        return grad_padded[:, :, self.padding[0] : self.padding[0] + height, self.padding[1] : self.padding[1] + width]


class MaxPool2d(_Pool2d):
    """Largest value of each window: x (N, C, H, W) -> (N, C, Ho, Wo); the gradient goes to the first maximum."""

    notation = "max_pool2d({0})"
    name = "max_pool2d"

    def forward(self, x):
        self.dtype = x.dtype
        padded = pad(x, self.padding, value=-np.inf)
        out, self.winner = None, None
        for index, (_, _, rows, columns) in enumerate(self._windows(x)):
            window = padded[:, :, rows, columns]
            if out is None:
                out, self.winner = window.copy(), np.zeros(window.shape, dtype=np.int16)
            else:
                better = window > out  # strictly: ties keep the earlier position, as PyTorch does
                np.copyto(out, window, where=better)
                np.copyto(self.winner, index, where=better)
        return out

    def backward(self, grad):
        count = self.kernel_size[0] * self.kernel_size[1]
        return (self._scatter(grad * (self.winner == index) for index in range(count)),)


class AvgPool2d(_Pool2d):
    """Mean of each window, padding counted as zeros (PyTorch's default): x (N, C, H, W) -> (N, C, Ho, Wo)."""

    notation = "avg_pool2d({0})"
    name = "avg_pool2d"

    def forward(self, x):
        self.dtype = x.dtype
        padded = pad(x, self.padding)
        out = None
        for _, _, rows, columns in self._windows(x):
            window = padded[:, :, rows, columns]
            out = window.copy() if out is None else np.add(out, window, out=out)
        self.scale = np.asarray(1.0 / (self.kernel_size[0] * self.kernel_size[1]), dtype=x.dtype)
        return out * self.scale

    def backward(self, grad):
        share = grad * self.scale
        count = self.kernel_size[0] * self.kernel_size[1]
        return (self._scatter(share for _ in range(count)),)


def _pool_arguments(x: Any, kernel_size: Any, stride: Any, padding: Any, name: str) -> dict[str, tuple[int, int]]:
    if len(shape_of(x)) != 4:
        raise ShapeError(f"{name} needs x of shape (N, C, H, W); got {shape_of(x)}")
    kernel = pair(kernel_size, "kernel_size", 1)
    padding = pair(padding, "padding", 0)
    if padding[0] * 2 > kernel[0] or padding[1] * 2 > kernel[1]:
        raise ShapeError(f"{name}: padding {padding} must be at most half the kernel size {kernel}")
    return dict(kernel_size=kernel, stride=pair(kernel if stride is None else stride, "stride", 1), padding=padding)


def max_pool2d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0) -> Tensor:
    """Max over kernel_size windows, moved by stride (default: the kernel size); padding is −∞."""
    return MaxPool2d.apply(x, **_pool_arguments(x, kernel_size, stride, padding, "max_pool2d"))


def avg_pool2d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0) -> Tensor:
    """Mean over kernel_size windows, moved by stride (default: the kernel size); padding counts as 0."""
    return AvgPool2d.apply(x, **_pool_arguments(x, kernel_size, stride, padding, "avg_pool2d"))


def global_avg_pool2d(x: Tensor) -> Tensor:
    """Mean over each channel's whole map: (N, C, H, W) -> (N, C)."""
    if len(shape_of(x)) != 4:
        raise ShapeError(f"global_avg_pool2d needs x of shape (N, C, H, W); got {shape_of(x)}")
    return mean(x, axis=(2, 3))


def adaptive_avg_pool2d(x: Tensor, output_size: Any) -> Tensor:
    """Average pooling to a fixed (Ho, Wo): (N, C, H, W) -> (N, C, Ho, Wo).

    Each output cell averages an equal block, so H and W must be multiples
    of Ho and Wo (1x1 always works).
    """
    shape = shape_of(x)
    if len(shape) != 4:
        raise ShapeError(f"adaptive_avg_pool2d needs x of shape (N, C, H, W); got {shape}")
    out_h, out_w = pair(output_size, "output_size", 1)
    if shape[2] % out_h or shape[3] % out_w:
        raise ShapeError(
            f"adaptive_avg_pool2d: input of {shape[2]}x{shape[3]} does not divide into {out_h}x{out_w} equal blocks"
        )
    block = (shape[2] // out_h, shape[3] // out_w)
    return avg_pool2d(x, block, block)

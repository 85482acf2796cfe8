"""Pooling over NCHW activations: max and average, each one op; global and adaptive average built on them.

Like im2col, each op loops over the kernel's offsets (4 for a 2x2
window), each step one vectorised pass over the whole batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from descend import kernels
from descend.errors import ShapeError
from descend.ops.base import Function, shape_of
from descend.ops.conv import crop, offsets, output_size, pad, pair
from descend.ops.reduce import mean
from descend.tensor import Tensor

_NO_DILATION = (1, 1)


class _Pool2d(Function):
    """Shared by the pools: the windows of the padded input, one strided view per kernel offset."""

    def _measure(self, x: np.ndarray) -> None:
        """The input's shape and the output's (height, width), and the kernels this op runs on."""
        height, width = x.shape[2:]
        self.input_shape = x.shape
        self.out_hw = (
            output_size(height, self.kernel_size[0], self.stride[0], self.padding[0], 1, f"{self.name} height"),
            output_size(width, self.kernel_size[1], self.stride[1], self.padding[1], 1, f"{self.name} width"),
        )
        self.kernels = kernels.for_arrays(x)

    def _windows(self, x: np.ndarray, fill: float) -> list[np.ndarray]:
        self.padded = pad(x, self.padding, fill)
        return self._views()

    def _views(self) -> list[np.ndarray]:
        return [self.padded[:, :, rows, columns] for _, _, rows, columns in self._offsets()]

    def _offsets(self):
        return offsets(self.kernel_size, self.stride, _NO_DILATION, self.out_hw)

    def _scatter(self, parts) -> np.ndarray:
        """Put each offset's gradient back into its window of the padded input, then crop the padding."""
        grad_padded = np.zeros_like(self.padded)
        disjoint = self.stride[0] >= self.kernel_size[0] and self.stride[1] >= self.kernel_size[1]
        for (_, _, rows, columns), part in zip(self._offsets(), parts):
            if disjoint:  # each input position lies in one window at most: write, no need to add
                grad_padded[:, :, rows, columns] = part
            else:
                grad_padded[:, :, rows, columns] += part
        return crop(grad_padded, self.padding, self.input_shape[2:])


def _pool_arguments(x: Any, kernel_size: Any, stride: Any, padding: Any, name: str) -> dict[str, tuple[int, int]]:
    if len(shape_of(x)) != 4:
        raise ShapeError(f"{name} needs x of shape (N, C, H, W); got {shape_of(x)}")
    kernel = pair(kernel_size, "kernel_size", 1)
    padding = pair(padding, "padding", 0)
    if padding[0] * 2 > kernel[0] or padding[1] * 2 > kernel[1]:
        raise ShapeError(f"{name}: padding {padding} must be at most half the kernel size {kernel}")
    return dict(kernel_size=kernel, stride=pair(kernel if stride is None else stride, "stride", 1), padding=padding)


class MaxPool2d(_Pool2d):
    """Largest value of each window: x (N, C, H, W) -> (N, C, Ho, Wo); the gradient goes to the first maximum."""

    notation = "max_pool2d({0})"
    name = "max_pool2d"

    def forward(self, x):
        self._measure(x)
        if self.kernels is not None:
            self.x = x
            self.out, self.where = self.kernels.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.out_hw)
            return self.out
        windows = self._windows(x, -np.inf)
        self.out = windows[0].copy(order="K") if len(windows) == 1 else np.maximum(windows[0], windows[1])
        for window in windows[2:]:
            np.maximum(self.out, window, out=self.out)
        return self.out

    def backward(self, grad):
        if self.kernels is not None:
            return (self.kernels.max_pool2d_backward(grad, self.where, self.x, self.kernel_size, self.stride,
                                                     self.padding),)

        def parts():
            # `unclaimed` is the gradient no earlier position took, so on a tie the first maximum wins, as in PyTorch
            unclaimed = grad.copy(order="K")
            views = self._views()
            for index, window in enumerate(views):
                part = unclaimed * (window == self.out)
                if index < len(views) - 1:
                    unclaimed -= part
                yield part

        return (self._scatter(parts()),)


def max_pool2d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0) -> Tensor:
    """Max over kernel_size windows, moved by stride (default: the kernel size); padding is −∞."""
    return MaxPool2d.apply(x, **_pool_arguments(x, kernel_size, stride, padding, "max_pool2d"))


class AvgPool2d(_Pool2d):
    """Mean of each window, padding counted as zeros (PyTorch's default): x (N, C, H, W) -> (N, C, Ho, Wo)."""

    notation = "avg_pool2d({0})"
    name = "avg_pool2d"

    def forward(self, x):
        self._measure(x)
        if self.kernels is not None:
            return self.kernels.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.out_hw)
        windows = self._windows(x, 0.0)
        total = windows[0].copy(order="K")
        for window in windows[1:]:
            total += window
        self.scale = np.asarray(1.0 / len(windows), dtype=x.dtype)
        return total * self.scale

    def backward(self, grad):
        if self.kernels is not None:
            return (self.kernels.avg_pool2d_backward(grad, self.kernel_size, self.stride, self.padding,
                                                     self.input_shape),)
        share = grad * self.scale
        return (self._scatter(share for _ in range(self.kernel_size[0] * self.kernel_size[1])),)


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


class Upsample2d(Function):
    """Nearest-neighbour upsampling by whole factors: (N, C, H, W) -> (N, C, H·sh, W·sw).

    Each output pixel copies its source pixel, so the backward sums each
    sh x sw block of the gradient back onto it.
    """

    notation = "upsample({0})"

    def forward(self, x):
        return x.repeat(self.scale[0], axis=2).repeat(self.scale[1], axis=3)

    def backward(self, grad):
        n, channels, height, width = grad.shape
        (sh, sw) = self.scale
        return (grad.reshape(n, channels, height // sh, sh, width // sw, sw).sum(axis=(3, 5)),)


def upsample2d(x: Tensor, scale_factor: Any = 2) -> Tensor:
    """Nearest-neighbour upsampling of (N, C, H, W) by an int or a pair of ints."""
    if len(shape_of(x)) != 4:
        raise ShapeError(f"upsample2d needs x of shape (N, C, H, W); got {shape_of(x)}")
    return Upsample2d.apply(x, scale=pair(scale_factor, "scale_factor", 1))

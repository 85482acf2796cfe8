"""Convolution: conv2d as one op over im2col, conv1d built from it.

Layout, decided once: activations are NCHW, a weight is (out_channels,
in_channels / groups, kernel_height, kernel_width), as in PyTorch.

im2col copies every receptive field into a column, so the convolution of
a whole batch becomes one BLAS product per group; the copy is one NumPy
copy from a strided view. col2im, in the backward, adds the columns back
with a loop over the kernel's offsets (9 for a 3x3 kernel), never over
pixels, samples or channels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from descend import kernels
from descend.checks import check_integer
from descend.errors import DescendTypeError, DescendValueError, ShapeError
from descend.ops.base import Function, shape_of
from descend.ops.shape import reshape
from descend.tensor import Tensor


def pair(value: Any, argument: str, low: int) -> tuple[int, int]:
    """(a, b) from an int or a pair of ints, each >= low; else an error naming the argument."""
    values = (value, value) if isinstance(value, (int, np.integer)) else value
    if not (isinstance(values, (tuple, list)) and len(values) == 2
            and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values)):
        raise DescendTypeError(f"{argument} must be an int or a pair of ints; got {type(value).__name__} {value!r}")
    if min(values) < low:
        raise DescendValueError(f"{argument} must be >= {low}; got {value!r}")
    return int(values[0]), int(values[1])


def output_size(size: int, kernel: int, stride: int, padding: int, dilation: int, what: str) -> int:
    """Output length along one axis: ⌊(size + 2·padding − dilation·(kernel − 1) − 1) / stride⌋ + 1."""
    span = dilation * (kernel - 1) + 1
    if size + 2 * padding < span:
        raise ShapeError(
            f"{what}: the kernel spans {span} but the padded input is only {size + 2 * padding} long "
            f"(input {size}, padding {padding}); use a smaller kernel or more padding"
        )
    return (size + 2 * padding - span) // stride + 1


def offsets(kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int], out: tuple[int, int]):
    """Each kernel offset (i, j) with the strided window of the padded input it sees: (i, j, rows, cols)."""
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            rows = slice(i * dilation[0], i * dilation[0] + stride[0] * (out[0] - 1) + 1, stride[0])
            cols = slice(j * dilation[1], j * dilation[1] + stride[1] * (out[1] - 1) + 1, stride[1])
            yield i, j, rows, cols


def pad(x: np.ndarray, padding: tuple[int, int], value: float = 0.0) -> np.ndarray:
    """The last two axes of x (N, C, H, W) padded with `value`, in x's own memory layout (no copy without padding)."""
    if padding == (0, 0):
        return x
    n, channels, height, width = x.shape
    padded = np.full_like(x, value, shape=(n, channels, height + 2 * padding[0], width + 2 * padding[1]))
    padded[:, :, padding[0] : padding[0] + height, padding[1] : padding[1] + width] = x
    return padded


def receptive_fields(
    x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int]
) -> np.ndarray:
    """Every window of the last two axes as a view: (A, B, H, W) -> (A, B, Ho, Wo, kh, kw), no copy."""
    span = (dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1)
    windows = sliding_window_view(x, span, axis=(2, 3))
    return windows[:, :, :: stride[0], :: stride[1], :: dilation[0], :: dilation[1]]


def crop(x: np.ndarray, padding: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """Undo `pad`: the (height, width) interior of a padded array, as a view."""
    return x[:, :, padding[0] : padding[0] + size[0], padding[1] : padding[1] + size[1]]


class Conv2d(Function):
    """Cross-correlation of x (N, C, H, W) with w (O, C/groups, kh, kw), plus b (O,): -> (N, O, Ho, Wo).

    Forward: cols = im2col(x), of shape (groups, C/groups·kh·kw, N·Ho·Wo),
    and out = w @ cols, one BLAS product per group for the whole batch.
    Backward: dw = grad @ colsᵀ, dcols = wᵀ @ grad, dx = col2im(dcols),
    db = Σ grad over N, Ho, Wo.

    The columns are laid out channel-major (C, kh, kw, N, Ho, Wo), so the
    product lands as (O, N, Ho, Wo) and the output is that array seen
    through a transposed view: no copy. Elementwise ops keep the layout, and
    the next convolution reads its channel-major input without a copy either.
    On the compiled kernels the columns have the batch last, (C, kh, kw, Ho,
    Wo, N), and so has the output, (O, Ho, Wo, N) in memory: every copy
    around the products (im2col, col2im, pooling) then runs over rows of N
    contiguous numbers, and the backward needs no copy to put the batch last.
    """

    notation = "conv2d({0}, {1})"

    def forward(self, x, weight, bias=None):
        n, channels, height, width = x.shape
        out_channels, group_channels, kh, kw = weight.shape
        self.out_hw = (
            output_size(height, kh, self.stride[0], self.padding[0], self.dilation[0], "conv2d height"),
            output_size(width, kw, self.stride[1], self.padding[1], self.dilation[1], "conv2d width"),
        )
        self.input_shape, self.kernel = x.shape, (kh, kw)
        self.kernels = kernels.for_arrays(x, weight, *(() if bias is None else (bias,)))
        if self.kernels is not None:
            cols = self.kernels.im2col(x, self.kernel, self.stride, self.padding, self.dilation, self.out_hw)
        else:
            padded = pad(x, self.padding).transpose(1, 0, 2, 3)
            cols = np.empty((channels, kh, kw, n, *self.out_hw), dtype=x.dtype)
            np.copyto(cols, receptive_fields(padded, self.kernel, self.stride, self.dilation)
                      .transpose(0, 4, 5, 1, 2, 3))
        self.cols = cols.reshape(self.groups, group_channels * kh * kw, -1)
        self.weight = weight.reshape(self.groups, out_channels // self.groups, -1)
        out = np.matmul(self.weight, self.cols)
        if self.kernels is not None:  # the kernels' columns have the batch last, and so has the output
            if bias is not None:
                self.kernels.add_channel_bias(out.reshape(out_channels, -1), bias)
            return out.reshape(out_channels, *self.out_hw, n).transpose(3, 0, 1, 2)
        out = out.reshape(out_channels, n, *self.out_hw)
        if bias is not None:
            out += bias.reshape(-1, 1, 1, 1)
        return out.transpose(1, 0, 2, 3)

    def backward(self, grad):
        n, channels, height, width = self.input_shape
        groups, group_out = self.weight.shape[:2]
        # the output's positions in the columns' order: (N, Ho, Wo), or (Ho, Wo, N) on the kernels
        positions = (1, 2, 3, 0) if self.kernels is not None else (1, 0, 2, 3)
        grad_groups = grad.transpose(positions).reshape(groups, group_out, -1)
        grad_x = grad_weight = grad_bias = None
        if self.needs_input_grad[1]:
            grad_weight = np.matmul(grad_groups, np.swapaxes(self.cols, 1, 2))
            grad_weight = grad_weight.reshape(groups * group_out, channels // groups, *self.kernel)
        if len(self.needs_input_grad) > 2 and self.needs_input_grad[2]:
            if self.kernels is not None:
                grad_bias = self.kernels.channel_sums(grad_groups.reshape(groups * group_out, -1))
            else:
                grad_bias = grad.sum(axis=(0, 2, 3))
        if self.needs_input_grad[0]:
            # columns with the batch last, (C, kh, kw, Ho, Wo, N): each offset's add in col2im then runs over
            # rows of N contiguous numbers, not rows of Wo numbers a stride apart (4x faster for a strided 9x9)
            grad_last = grad.transpose(1, 2, 3, 0).reshape(groups, group_out, -1)
            grad_cols = np.matmul(np.swapaxes(self.weight, 1, 2), grad_last)
            grad_cols = grad_cols.reshape(channels, *self.kernel, *self.out_hw, n)
            if self.kernels is not None:
                grad_x = self.kernels.col2im(grad_cols, self.input_shape, self.stride, self.padding, self.dilation)
                return (grad_x, grad_weight, grad_bias)[: len(self.needs_input_grad)]  # no bias: two inputs
            grad_padded = np.zeros(
                (channels, height + 2 * self.padding[0], width + 2 * self.padding[1], n), dtype=grad.dtype
            )
            for i, j, rows, columns in offsets(self.kernel, self.stride, self.dilation, self.out_hw):
                grad_padded[:, rows, columns] += grad_cols[:, i, j]
            grad_x = grad_padded[:, self.padding[0] : self.padding[0] + height,
                                 self.padding[1] : self.padding[1] + width].transpose(3, 0, 1, 2)
        return (grad_x, grad_weight, grad_bias)[: len(self.needs_input_grad)]  # no bias: two inputs


def conv2d(
    x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
    groups: int = 1,
) -> Tensor:
    """2-D convolution (cross-correlation, as in every framework): x (N, C, H, W), weight (O, C/groups, kh, kw).

    Returns (N, O, Ho, Wo) with Ho = ⌊(H + 2·padding − dilation·(kh − 1) − 1) / stride⌋ + 1.
    """
    x_shape, w_shape = shape_of(x), shape_of(weight)
    if len(x_shape) != 4 or len(w_shape) != 4:
        raise ShapeError(f"conv2d needs x (N, C, H, W) and weight (O, C/groups, kh, kw); got {x_shape} and {w_shape}")
    groups = check_integer("groups", groups, low=1)
    if x_shape[1] % groups or w_shape[0] % groups or x_shape[1] // groups != w_shape[1]:
        raise ShapeError(
            f"conv2d: input with {x_shape[1]} channels in {groups} group(s) needs a weight of shape "
            f"(O, {x_shape[1] // groups}, kh, kw) with O divisible by {groups}; got {w_shape}"
        )
    if bias is not None and shape_of(bias) != w_shape[:1]:
        raise ShapeError(f"conv2d: bias has shape {shape_of(bias)}; expected (out_channels,) = {w_shape[:1]}")
    parameters = dict(stride=pair(stride, "stride", 1), padding=pair(padding, "padding", 0),
                      dilation=pair(dilation, "dilation", 1), groups=groups)
    if bias is None:
        return Conv2d.apply(x, weight, **parameters)
    return Conv2d.apply(x, weight, bias, **parameters)


def conv1d(
    x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int = 1, padding: int = 0, dilation: int = 1,
    groups: int = 1,
) -> Tensor:
    """1-D convolution: x (N, C, L), weight (O, C/groups, k) -> (N, O, Lo); a conv2d over a height of 1."""
    x_shape, w_shape = shape_of(x), shape_of(weight)
    if len(x_shape) != 3 or len(w_shape) != 3:
        raise ShapeError(f"conv1d needs x (N, C, L) and weight (O, C/groups, k); got {x_shape} and {w_shape}")
    out = conv2d(
        reshape(x, (x_shape[0], x_shape[1], 1, x_shape[2])), reshape(weight, (*w_shape[:2], 1, w_shape[2])), bias,
        stride=(1, stride), padding=(0, padding), dilation=(1, dilation), groups=groups,
    )
    return reshape(out, (out.shape[0], out.shape[1], out.shape[3]))

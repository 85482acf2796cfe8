"""Convolution: conv2d as one op over im2col, its transpose as one op over col2im, the 1-D ones built from them.

Layout, decided once: activations are NCHW, a weight is (out_channels,
in_channels / groups, kernel_height, kernel_width), as in PyTorch; a
transposed convolution's weight is (in_channels, out_channels / groups,
kernel_height, kernel_width), PyTorch's too, so weights copy over as they are.

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
from descend.ops.shape import getitem, reshape
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


def col2im(cols: np.ndarray, shape: tuple[int, ...], kernel: tuple[int, int], stride: tuple[int, int],
           padding: tuple[int, int], dilation: tuple[int, int]) -> np.ndarray:
    """Columns with the batch last (C, kh, kw, Ho, Wo, N) added back where im2col read them: (N, C, H, W) = shape.

    The NumPy reference, one vectorised add per kernel offset (never per
    pixel); every one of the Ho·Wo windows lies inside the padded input.
    """
    n, channels, height, width = shape
    padded = np.zeros((channels, height + 2 * padding[0], width + 2 * padding[1], n), dtype=cols.dtype)
    for i, j, rows, columns in offsets(kernel, stride, dilation, cols.shape[3:5]):
        padded[:, rows, columns] += cols[:, i, j]
    return padded[:, padding[0] : padding[0] + height, padding[1] : padding[1] + width].transpose(3, 0, 1, 2)


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
        n, channels = self.input_shape[:2]
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
            else:
                grad_x = col2im(grad_cols, self.input_shape, self.kernel, self.stride, self.padding, self.dilation)
        return (grad_x, grad_weight, grad_bias)[: len(self.needs_input_grad)]  # no bias: two inputs


PADDING_MODES = ("same", "valid")


def check_padding(padding: Any, stride: Any, what: str) -> tuple[int, int] | str:
    """padding as a pair of ints >= 0, or "same" / "valid"; "same" only with a stride of 1, as in PyTorch."""
    if not isinstance(padding, str):
        return pair(padding, "padding", 0)
    if padding not in PADDING_MODES:
        raise DescendValueError(f"{what}: padding must be an int, a pair of ints, 'same' or 'valid'; got {padding!r}")
    if padding == "same" and stride not in (1, (1, 1)):
        raise DescendValueError(
            f"{what}: padding='same' needs stride 1; got stride={stride!r}. A stride s keeps about one position in "
            "s, so no padding gives back the input's size (PyTorch refuses it too): give the padding as numbers"
        )
    return padding


def padding_for(padding: Any, stride: tuple[int, int], kernel: tuple[int, int], dilation: tuple[int, int],
                what: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """The zeros on each side of H and W, and how many leading output rows and columns to drop.

    "valid" is no padding; "same" keeps the input's size: dilation·(k − 1)
    zeros along each axis, half before and half after, and where that is
    odd the extra zero goes after, as in PyTorch. The op pads both sides
    alike, so an odd total is padded with the extra zero before as well and
    the one output row (column) it adds at the start is dropped.

    >>> padding_for("same", (1, 1), (3, 4), (1, 1), "conv2d")
    ((1, 2), (0, 1))
    """
    padding = check_padding(padding, stride, what)
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return (totals[0] - totals[0] // 2, totals[1] - totals[1] // 2), (totals[0] % 2, totals[1] % 2)
    return padding, (0, 0)


def conv2d(
    x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
    groups: int = 1,
) -> Tensor:
    """2-D convolution (cross-correlation, as in every framework): x (N, C, H, W), weight (O, C/groups, kh, kw).

    Returns (N, O, Ho, Wo) with Ho = ⌊(H + 2·padding − dilation·(kh − 1) − 1) / stride⌋ + 1.
    padding is an int, a pair, "valid" (0) or "same" (Ho = H, Wo = W; stride 1 only).

    >>> conv2d(np.ones((1, 1, 5, 6)), np.ones((2, 1, 2, 3)), padding="same").shape
    (1, 2, 5, 6)
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
    stride, dilation = pair(stride, "stride", 1), pair(dilation, "dilation", 1)
    padding, dropped = padding_for(padding, stride, w_shape[2:], dilation, "conv2d")
    parameters = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    out = Conv2d.apply(x, weight, **parameters) if bias is None else Conv2d.apply(x, weight, bias, **parameters)
    if dropped == (0, 0):
        return out
    return getitem(out, (slice(None), slice(None), slice(dropped[0], None), slice(dropped[1], None)))


def conv1d(
    x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int = 1, padding: int = 0, dilation: int = 1,
    groups: int = 1,
) -> Tensor:
    """1-D convolution: x (N, C, L), weight (O, C/groups, k) -> (N, O, Lo); a conv2d over a height of 1.

    padding is an int, "valid" (0) or "same" (Lo = L; stride 1 only).

    >>> conv1d(np.ones((2, 3, 10)), np.ones((4, 3, 4)), padding="same").shape
    (2, 4, 10)
    """
    x_shape, w_shape = shape_of(x), shape_of(weight)
    if len(x_shape) != 3 or len(w_shape) != 3:
        raise ShapeError(f"conv1d needs x (N, C, L) and weight (O, C/groups, k); got {x_shape} and {w_shape}")
    if isinstance(padding, str):
        check_padding(padding, stride, "conv1d")
    else:
        padding = (0, check_integer("padding", padding, low=0))
    out = conv2d(
        reshape(x, (x_shape[0], x_shape[1], 1, x_shape[2])), reshape(weight, (*w_shape[:2], 1, w_shape[2])), bias,
        stride=(1, stride), padding=padding, dilation=(1, dilation), groups=groups,
    )
    return reshape(out, (out.shape[0], out.shape[1], out.shape[3]))


def transposed_size(size: int, kernel: int, stride: int, padding: int, output_padding: int, dilation: int,
                    what: str) -> int:
    """Output length of a transposed convolution along one axis, the length whose convolution gives `size` back:
    (size − 1)·stride − 2·padding + dilation·(kernel − 1) + output_padding + 1."""
    out = (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1
    if out < 1:
        raise ShapeError(
            f"{what}: an input {size} long with kernel {kernel}, stride {stride}, dilation {dilation} and "
            f"output_padding {output_padding} gives {out + 2 * padding} positions, fewer than the "
            f"2·padding = {2 * padding} cropped; use less padding"
        )
    return out


def check_output_padding(output_padding: Any, stride: Any, dilation: Any, what: str) -> Any:
    """output_padding as given (ints or pairs alike), when each number is smaller than the stride or the dilation
    along its axis: PyTorch's rule.

    A convolution with stride s maps s neighbouring sizes onto one; output_padding (0 to s − 1) says which of
    them the transposed convolution gives back.
    """
    values = [np.broadcast_to(value, 2) for value in (output_padding, stride, dilation)]
    if any(o >= s and o >= d for o, s, d in zip(*values)):
        raise DescendValueError(
            f"{what}: output_padding must be smaller than the stride or the dilation (PyTorch's rule); got "
            f"output_padding={output_padding}, stride={stride}, dilation={dilation}"
        )
    return output_padding


class ConvTranspose2d(Function):
    """Transposed convolution of x (N, C, H, W) with w (C, O/groups, kh, kw), plus b (O,): -> (N, O, Ho, Wo).

    Ho = (H − 1)·stride − 2·padding + dilation·(kh − 1) + output_padding + 1.
    It is conv2d's vector-Jacobian product with respect to its input, run
    forward: each input pixel spreads a kh x kw patch of w onto the output.
    Forward: cols = wᵀ @ x, of shape (groups, O/groups·kh·kw, H·W·N), one BLAS
    product per group, and out = col2im(cols).
    Backward: cols = im2col(grad), which is what conv2d(grad, w) multiplies:
    dx = w @ cols (that convolution), dw = x @ colsᵀ, db = Σ grad over N, Ho, Wo.

    Columns and x have the batch last, as conv2d's backward has them, so a
    convolution's output on the kernels, batch-last in memory, needs no copy.
    """

    notation = "conv_transpose2d({0}, {1})"

    def forward(self, x, weight, bias=None):
        n, channels, height, width = x.shape
        group_out, kh, kw = weight.shape[1:]
        out_channels = group_out * self.groups
        self.kernel, self.input_hw = (kh, kw), (height, width)
        self.output_shape = (n, out_channels, *(
            transposed_size(size, k, s, p, o, d, f"conv_transpose2d {axis}") for size, k, s, p, o, d, axis in zip(
                self.input_hw, self.kernel, self.stride, self.padding, self.output_padding, self.dilation,
                ("height", "width"))))
        self.kernels = kernels.for_arrays(x, weight, *(() if bias is None else (bias,)))
        if any(o >= s for o, s in zip(self.output_padding, self.stride)):
            # output_padding >= stride (allowed below the dilation): the output's convolution would give more
            # than H x W positions, a window the kernels' im2col and col2im refuse; the reference crops them
            self.kernels = None
        self.x = x.transpose(1, 2, 3, 0).reshape(self.groups, channels // self.groups, -1)
        self.weight = weight.reshape(self.groups, channels // self.groups, -1)
        cols = np.matmul(np.swapaxes(self.weight, 1, 2), self.x).reshape(out_channels, kh, kw, height, width, n)
        if self.kernels is None:
            out = col2im(cols, self.output_shape, self.kernel, self.stride, self.padding, self.dilation)
            if bias is not None:
                out += bias.reshape(-1, 1, 1)
            return out
        out = self.kernels.col2im(cols, self.output_shape, self.stride, self.padding, self.dilation)
        if bias is not None:  # the output is (O, Ho, Wo, N) in memory: one row per channel
            self.kernels.add_channel_bias(out.transpose(1, 2, 3, 0).reshape(out_channels, -1), bias)
        return out

    def _columns(self, grad: np.ndarray) -> np.ndarray:
        """im2col of grad with the batch last, (O, kh, kw, H, W, N): the windows conv2d(grad, w) reads."""
        if self.kernels is not None:
            return self.kernels.im2col(grad, self.kernel, self.stride, self.padding, self.dilation, self.input_hw)
        windows = receptive_fields(pad(grad, self.padding).transpose(1, 0, 2, 3), self.kernel, self.stride,
                                   self.dilation)
        cols = np.empty((grad.shape[1], *self.kernel, *self.input_hw, grad.shape[0]), dtype=grad.dtype)
        # output_padding past the stride leaves windows beyond H x W: they reach no input pixel
        np.copyto(cols, windows[:, :, : self.input_hw[0], : self.input_hw[1]].transpose(0, 4, 5, 2, 3, 1))
        return cols

    def backward(self, grad):
        groups, group_in = self.weight.shape[:2]
        n, out_channels = grad.shape[:2]
        grad_x = grad_weight = grad_bias = None
        if self.needs_input_grad[0] or self.needs_input_grad[1]:
            cols = self._columns(grad).reshape(groups, -1, self.x.shape[2])
            if self.needs_input_grad[0]:
                grad_x = np.matmul(self.weight, cols).reshape(groups * group_in, *self.input_hw, n)
                grad_x = grad_x.transpose(3, 0, 1, 2)
            if self.needs_input_grad[1]:
                grad_weight = np.matmul(self.x, np.swapaxes(cols, 1, 2))
                grad_weight = grad_weight.reshape(groups * group_in, out_channels // groups, *self.kernel)
        if len(self.needs_input_grad) > 2 and self.needs_input_grad[2]:
            if self.kernels is not None:
                grad_bias = self.kernels.channel_sums(grad.transpose(1, 2, 3, 0).reshape(out_channels, -1))
            else:
                grad_bias = grad.sum(axis=(0, 2, 3))
        return (grad_x, grad_weight, grad_bias)[: len(self.needs_input_grad)]  # no bias: two inputs


def conv_transpose2d(
    x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1, padding: Any = 0,
    output_padding: Any = 0, groups: int = 1, dilation: Any = 1,
) -> Tensor:
    """2-D transposed convolution (PyTorch's arguments, in its order): x (N, C, H, W), weight (C, O/groups, kh, kw).

    Returns (N, O, Ho, Wo) with Ho = (H − 1)·stride − 2·padding + dilation·(kh − 1) + output_padding + 1:
    the shape whose conv2d with the same settings gives (N, C, H, W) back, and
    the gradient of that conv2d with respect to its input. output_padding
    adds rows (columns) at the end, to pick among the sizes a stride maps to
    one size; it must be smaller than the stride or the dilation.

    >>> conv_transpose2d(np.ones((1, 4, 5, 5)), np.ones((4, 2, 3, 3)), stride=2, padding=1, output_padding=1).shape
    (1, 2, 10, 10)
    """
    x_shape, w_shape = shape_of(x), shape_of(weight)
    if len(x_shape) != 4 or len(w_shape) != 4:
        raise ShapeError(
            f"conv_transpose2d needs x (N, C, H, W) and weight (C, O/groups, kh, kw); got {x_shape} and {w_shape}"
        )
    groups = check_integer("groups", groups, low=1)
    if x_shape[1] != w_shape[0] or w_shape[0] % groups:
        raise ShapeError(
            f"conv_transpose2d: input with {x_shape[1]} channels needs a weight of shape "
            f"({x_shape[1]}, O/groups, kh, kw) with {x_shape[1]} divisible by groups = {groups}; got {w_shape}"
        )
    if bias is not None and shape_of(bias) != (w_shape[1] * groups,):
        raise ShapeError(
            f"conv_transpose2d: bias has shape {shape_of(bias)}; expected (out_channels,) = ({w_shape[1] * groups},)"
        )
    stride, dilation = pair(stride, "stride", 1), pair(dilation, "dilation", 1)
    output_padding = check_output_padding(pair(output_padding, "output_padding", 0), stride, dilation,
                                          "conv_transpose2d")
    parameters = dict(stride=stride, padding=pair(padding, "padding", 0), output_padding=output_padding,
                      dilation=dilation, groups=groups)
    if bias is None:
        return ConvTranspose2d.apply(x, weight, **parameters)
    return ConvTranspose2d.apply(x, weight, bias, **parameters)


def conv_transpose1d(
    x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int = 1, padding: int = 0, output_padding: int = 0,
    groups: int = 1, dilation: int = 1,
) -> Tensor:
    """1-D transposed convolution: x (N, C, L), weight (C, O/groups, k) -> (N, O, Lo); a conv_transpose2d of height 1.

    Lo = (L − 1)·stride − 2·padding + dilation·(k − 1) + output_padding + 1.

    >>> conv_transpose1d(np.ones((2, 3, 16)), np.ones((3, 1, 7)), stride=2, padding=3, output_padding=1).shape
    (2, 1, 32)
    """
    x_shape, w_shape = shape_of(x), shape_of(weight)
    if len(x_shape) != 3 or len(w_shape) != 3:
        raise ShapeError(f"conv_transpose1d needs x (N, C, L) and weight (C, O/groups, k); got {x_shape} and {w_shape}")
    stride, dilation = check_integer("stride", stride, low=1), check_integer("dilation", dilation, low=1)
    output_padding = check_output_padding(check_integer("output_padding", output_padding, low=0), stride, dilation,
                                          "conv_transpose1d")
    out = conv_transpose2d(
        reshape(x, (x_shape[0], x_shape[1], 1, x_shape[2])), reshape(weight, (*w_shape[:2], 1, w_shape[2])), bias,
        stride=(1, stride), padding=(0, check_integer("padding", padding, low=0)), output_padding=(0, output_padding),
        groups=groups, dilation=(1, dilation),
    )
    return reshape(out, (out.shape[0], out.shape[1], out.shape[3]))

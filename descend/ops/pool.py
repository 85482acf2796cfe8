"""Pooling over NCHW activations: max and average, each one op; global and adaptive average built on them;
upsampling and interpolation (nearest, linear, bilinear), PyTorch's F.interpolate.

Like im2col, each op loops over the kernel's offsets (4 for a 2x2
window), each step one vectorised pass over the whole batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from descend import kernels
from descend.checks import check_integer
from descend.errors import DescendTypeError, DescendValueError, ShapeError
from descend.ops.base import Function, shape_of
from descend.ops.conv import crop, offsets, output_size, pad, pair
from descend.ops.reduce import mean
from descend.ops.shape import reshape
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


INTERPOLATION_MODES = {"nearest": (3, 4), "linear": (3,), "bilinear": (4,)}


def source_positions(size_in: int, size_out: int, scale: int | None, mode: str, align_corners: bool,
                     dtype: np.dtype) -> tuple[np.ndarray, np.ndarray | None]:
    """Where each of size_out positions reads along one axis, PyTorch's rule in x's precision (so the same sources).

    nearest: (index (size_out,), None), index = ⌊o·r⌋ with r = 1/scale (or
    size_in/size_out when a size was asked for), capped at size_in − 1.
    linear: ((2, size_out) indices, (2, size_out) weights 1 − λ and λ) of the
    two neighbours of the source point r·(o + ½) − ½ (clipped at 0), or
    o·(size_in − 1)/(size_out − 1) with align_corners.

    >>> index, weights = source_positions(2, 4, 2, "linear", False, np.dtype(np.float64))
    >>> index.tolist(), weights[1].tolist()
    ([[0, 0, 0, 1], [1, 1, 1, 1]], [0.0, 0.25, 0.75, 0.25])
    """
    positions, kind = np.arange(size_out), dtype.type
    if mode == "nearest":
        ratio = kind(1.0 / scale) if scale is not None else kind(size_in) / kind(size_out)
        return _floor(ratio * positions.astype(dtype), size_in), None
    if size_out == size_in:  # PyTorch copies: no rounding through the ratio
        return np.stack([positions, positions]), np.stack([np.ones(size_out, dtype), np.zeros(size_out, dtype)])
    if align_corners:
        ratio = kind(size_in - 1) / kind(size_out - 1) if size_out > 1 else kind(0)
        source = ratio * positions.astype(dtype)
    else:
        ratio = kind(1.0 / scale) if scale is not None else kind(size_in) / kind(size_out)
        # r·(o + ½) − ½ rounded once to x's precision, as PyTorch's compiled fused multiply-add rounds it
        source = np.maximum(np.float64(ratio) * (positions + 0.5) - 0.5, 0).astype(dtype)
    low = _floor(source, size_in)
    weight = np.clip(source - low.astype(dtype), 0, 1).astype(dtype)
    high = low + (low < size_in - 1)
    return np.stack([low, high]), np.stack([1 - weight, weight])


def _floor(source: np.ndarray, size: int) -> np.ndarray:
    """⌊source⌋ capped at size − 1, floored in float32 whatever the dtype, as PyTorch's floorf does: a float64
    source just below a whole number can round up to it first."""
    return np.minimum(np.floor(source.astype(np.float32)).astype(np.int64), size - 1)


class Interpolate(Function):
    """Resampling of the last axis (N, C, L) or last two (N, C, H, W) to a new size, nearest or (bi)linear.

    Along each axis an output position copies one input position (nearest)
    or blends its two neighbours, (1 − λ)·x[low] + λ·x[high] (linear): a
    linear map out = A·x with A (size_out, size_in), applied to W, then to H.
    Forward gathers (a take per neighbour, no product with zeros); backward
    applies the transposed maps, grad_x = A_hᵀ · grad · A_w, as BLAS products.
    """

    notation = "interpolate({0})"

    def forward(self, x):
        self.maps = []
        out = x
        for axis in range(x.ndim - 1, 1, -1):  # W before H: PyTorch's bilinear blends along W first
            size_out, scale = self.size[axis - 2], self.scale[axis - 2]
            index, weights = source_positions(x.shape[axis], size_out, scale, self.mode, self.align_corners, x.dtype)
            along = (-1,) + (1,) * (x.ndim - 1 - axis)  # weights broadcast along `axis`
            if weights is None:
                out = np.take(out, index, axis=axis)
                rows, columns, values = np.arange(size_out), index, np.ones(size_out, x.dtype)
            else:
                blend = np.take(out, index[0], axis=axis)
                blend *= weights[0].reshape(along)
                blend += np.take(out, index[1], axis=axis) * weights[1].reshape(along)
                out = blend
                rows, columns, values = np.tile(np.arange(size_out), 2), index.ravel(), weights.ravel()
            self.maps.append((axis, (rows, columns, values), x.shape[axis], size_out))
        return out

    def backward(self, grad):
        for axis, (rows, columns, values), size_in, size_out in reversed(self.maps):
            matrix = np.zeros((size_out, size_in), dtype=grad.dtype)
            np.add.at(matrix, (rows, columns), values)  # 2·size_out entries: the map A of this axis
            if axis == grad.ndim - 1:
                grad = np.matmul(grad, matrix)
            else:
                grad = np.matmul(matrix.T, grad)
        return (grad,)


def interpolate(x: Tensor, size: Any = None, scale_factor: Any = None, mode: str = "nearest",
                align_corners: bool | None = None) -> Tensor:
    """Resize (N, C, L) or (N, C, H, W) to `size`, or by whole `scale_factor`s, as PyTorch's F.interpolate.

    mode "nearest" (3-D or 4-D), "linear" (3-D) or "bilinear" (4-D);
    align_corners (linear modes only, False by default) maps the corner
    pixels' centres onto each other. Give size or scale_factor, not both.
    Nearest by whole factors repeats each value (`upsample2d`); every other
    case is the `Interpolate` op.

    >>> interpolate(np.ones((2, 3, 4, 5)), scale_factor=(2, 3), mode="bilinear").shape
    (2, 3, 8, 15)
    >>> interpolate(np.ones((2, 3, 10)), size=7).shape
    (2, 3, 7)
    """
    check_resize(size, scale_factor, mode, align_corners)
    shape = shape_of(x)
    if len(shape) not in INTERPOLATION_MODES[mode]:
        expected = " or ".join({3: "(N, C, L)", 4: "(N, C, H, W)"}[rank] for rank in INTERPOLATION_MODES[mode])
        hint = {"linear": "; use mode='bilinear' for (N, C, H, W)", "bilinear": "; use mode='linear' for (N, C, L)"}
        raise ShapeError(f"interpolate with mode={mode!r} needs x of shape {expected}; got {shape}{hint.get(mode, '')}")
    spatial = len(shape) - 2
    if size is not None:
        sizes, scales = _per_axis(size, "size", spatial), (None,) * spatial
    else:
        scales = _per_axis(scale_factor, "scale_factor", spatial)
        sizes = tuple(n * s for n, s in zip(shape[2:], scales))
        if mode == "nearest":  # each value repeated: a reshape and a sum in the backward
            if spatial == 2:
                return Upsample2d.apply(x, scale=scales)
            out = Upsample2d.apply(reshape(x, (*shape[:2], 1, shape[2])), scale=(1, scales[0]))
            return reshape(out, (*shape[:2], sizes[0]))
    return Interpolate.apply(x, size=sizes, scale=scales, mode=mode, align_corners=bool(align_corners))


def check_resize(size: Any, scale_factor: Any, mode: Any, align_corners: Any) -> None:
    """Refuse what interpolate cannot do, whatever the input: an unknown mode, both or neither of size and
    scale_factor, numbers that are not whole and >= 1, align_corners that is not a bool or comes with nearest."""
    if not isinstance(mode, str) or mode not in INTERPOLATION_MODES:
        raise DescendValueError(f"mode must be one of {', '.join(map(repr, INTERPOLATION_MODES))}; got {mode!r}")
    if align_corners is not None and not isinstance(align_corners, bool):
        raise DescendTypeError(f"align_corners must be True, False or None; got {type(align_corners).__name__} "
                               f"{align_corners!r}")
    if mode == "nearest" and align_corners is not None:
        raise DescendValueError(f"align_corners is for the linear modes; got align_corners={align_corners!r} with "
                                "mode='nearest' (leave it None)")
    if (size is None) == (scale_factor is None):
        raise DescendValueError(f"give size or scale_factor, one of them; got size={size!r} and "
                                f"scale_factor={scale_factor!r}")
    value, argument = (size, "size") if size is not None else (scale_factor, "scale_factor")
    values = value if isinstance(value, (tuple, list)) else (value,)
    if not 1 <= len(values) <= 2:
        raise DescendTypeError(f"{argument} must be an int or one int per axis (L, or H and W); got {value!r}")
    for number in values:
        check_integer(argument, number, low=1)


def _per_axis(value: Any, argument: str, spatial: int) -> tuple[int, ...]:
    """An int (the same for every axis) or one int per spatial axis, each >= 1."""
    if spatial == 2:
        return pair(value, argument, 1)
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise ShapeError(f"{argument} {value!r} has {len(value)} numbers for (N, C, L), whose one axis needs one")
        value = value[0]
    return (check_integer(argument, value, low=1),)

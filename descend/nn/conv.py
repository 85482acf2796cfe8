"""Convolutional layers and their transposes, pooling, upsampling and batch normalisation (NCHW, PyTorch's layouts
and initialisation)."""

from __future__ import annotations

from typing import Any

import numpy as np

from descend.checks import check_integer, check_real
from descend.errors import DescendTypeError, ShapeError
from descend.nn import init
from descend.nn.module import Module
from descend.nn.parameter import Parameter
from descend.ops.conv import (
    check_output_padding, check_padding, conv1d, conv2d, conv_transpose1d, conv_transpose2d, pair,
)
from descend.ops.normalization import batch_norm
from descend.ops.pool import INTERPOLATION_MODES, adaptive_avg_pool2d, avg_pool2d, check_resize, interpolate, max_pool2d
from descend.tensor import Tensor
from descend.seeding import generator


def check_input(x: Tensor, layer: Module, rank: int, channels: int | None, hint: str = "") -> None:
    """Raise a ShapeError naming the layer, the expected (N, C, ...) with C, and the shape received."""
    if not isinstance(x, Tensor):
        raise DescendTypeError(f"{layer!r} takes a Tensor of {rank} axes; got {type(x).__name__}. Wrap arrays: dc.tensor(x)")
    if x.ndim != rank or (channels is not None and x.shape[1] != channels):
        axes = {2: "", 3: ", L", 4: ", H, W"}[rank]
        expected = f"(N, {channels if channels is not None else 'C'}{axes})"
        raise ShapeError(f"{layer!r} got input of shape {x.shape}; expected {expected}.{hint}")


_IMAGES_HINT = " For MNIST, load images with dc.data.load_mnist(shape='images')."


class _ConvNd(Module):
    def _make_weights(self, in_channels, out_channels, kernel, groups, bias, rng, transposed=False):
        self.in_channels = check_integer("in_channels", in_channels, low=1)
        self.out_channels = check_integer("out_channels", out_channels, low=1)
        self.groups = check_integer("groups", groups, low=1)
        if in_channels % groups or out_channels % groups:
            raise ShapeError(f"in_channels {in_channels} and out_channels {out_channels} must both divide by groups {groups}")
        rng = generator(rng)
        if transposed:  # (in, out / groups, k...): PyTorch reads the fan-in off axis 1 of either layout
            shape, fan_in_axes = (in_channels, out_channels // groups, *kernel), (0, *range(2, 2 + len(kernel)))
        else:
            shape, fan_in_axes = (out_channels, in_channels // groups, *kernel), tuple(range(1, 2 + len(kernel)))
        bound = 1.0 / np.sqrt(shape[1] * int(np.prod(kernel)))  # PyTorch's Kaiming-uniform default with a = √5
        self.weight = Parameter(init.uniform(rng, bound, shape), fan_in_axes=fan_in_axes)
        self.bias = Parameter(init.uniform(rng, bound, (out_channels,))) if bias else None


class Conv2d(_ConvNd):
    """2-D convolution: x (N, in_channels, H, W) -> (N, out_channels, Ho, Wo).

    Weight (out_channels, in_channels / groups, kh, kw), bias (out_channels,);
    Ho = ⌊(H + 2·padding − dilation·(kh − 1) − 1) / stride⌋ + 1. padding may
    also be "valid" (0) or "same" (Ho = H, Wo = W, stride 1 only; for an even
    kernel the extra zero goes after, as in PyTorch).

    >>> Conv2d(1, 8, kernel_size=3, padding=1, rng=0)(Tensor(np.zeros((2, 1, 28, 28)))).shape
    (2, 8, 28, 28)
    >>> Conv2d(1, 8, kernel_size=4, padding="same", rng=0)(Tensor(np.zeros((2, 1, 28, 28)))).shape
    (2, 8, 28, 28)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: int = 1, bias: bool = True, rng: Any = None):
        self.kernel_size = pair(kernel_size, "kernel_size", 1)
        self.stride = pair(stride, "stride", 1)
        self.padding = check_padding(padding, self.stride, "Conv2d")
        self.dilation = pair(dilation, "dilation", 1)
        self._make_weights(in_channels, out_channels, self.kernel_size, groups, bias, rng)

    def forward(self, x: Tensor) -> Tensor:
        check_input(x, self, 4, self.in_channels, _IMAGES_HINT if x.ndim == 2 else "")
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def __repr__(self) -> str:
        return f"Conv2d({self.in_channels} -> {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding})"


class Conv1d(_ConvNd):
    """1-D convolution: x (N, in_channels, L) -> (N, out_channels, Lo); weight (out_channels, in_channels / groups, k).

    Lo = ⌊(L + 2·padding − dilation·(k − 1) − 1) / stride⌋ + 1; padding may
    also be "valid" (0) or "same" (Lo = L, stride 1 only).

    >>> Conv1d(1, 4, kernel_size=7, padding="same", rng=0)(Tensor(np.zeros((2, 1, 64)))).shape
    (2, 4, 64)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int | str = 0,
                 dilation: int = 1, groups: int = 1, bias: bool = True, rng: Any = None):
        self.kernel_size = check_integer("kernel_size", kernel_size, low=1)
        self.stride = check_integer("stride", stride, low=1)
        self.padding = (check_padding(padding, self.stride, "Conv1d") if isinstance(padding, str)
                        else check_integer("padding", padding, low=0))
        self.dilation = check_integer("dilation", dilation, low=1)
        self._make_weights(in_channels, out_channels, (self.kernel_size,), groups, bias, rng)

    def forward(self, x: Tensor) -> Tensor:
        check_input(x, self, 3, self.in_channels)
        return conv1d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def __repr__(self) -> str:
        return f"Conv1d({self.in_channels} -> {self.out_channels}, kernel_size={self.kernel_size})"


class ConvTranspose2d(_ConvNd):
    """2-D transposed convolution, the usual upsampling step of a decoder: x (N, in_channels, H, W) -> (N, out_channels,
    Ho, Wo); PyTorch's ConvTranspose2d, arguments in its order.

    Weight (in_channels, out_channels / groups, kh, kw), PyTorch's layout, so
    weights copy over as they are; bias (out_channels,);
    Ho = (H − 1)·stride − 2·padding + dilation·(kh − 1) + output_padding + 1,
    the size a Conv2d with these settings maps back to H. output_padding
    must be smaller than the stride or the dilation.

    >>> ConvTranspose2d(8, 1, kernel_size=4, stride=2, padding=1, rng=0)(Tensor(np.zeros((2, 8, 14, 14)))).shape
    (2, 1, 28, 28)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 output_padding: Any = 0, groups: int = 1, bias: bool = True, dilation: Any = 1, rng: Any = None):
        self.kernel_size = pair(kernel_size, "kernel_size", 1)
        self.stride, self.padding = pair(stride, "stride", 1), pair(padding, "padding", 0)
        self.dilation = pair(dilation, "dilation", 1)
        self.output_padding = check_output_padding(pair(output_padding, "output_padding", 0), self.stride,
                                                   self.dilation, "ConvTranspose2d")
        self._make_weights(in_channels, out_channels, self.kernel_size, groups, bias, rng, transposed=True)

    def forward(self, x: Tensor) -> Tensor:
        check_input(x, self, 4, self.in_channels)
        return conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, self.output_padding, self.groups,
                                self.dilation)

    def __repr__(self) -> str:
        return (f"ConvTranspose2d({self.in_channels} -> {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding})")


class ConvTranspose1d(_ConvNd):
    """1-D transposed convolution: x (N, in_channels, L) -> (N, out_channels, Lo); PyTorch's ConvTranspose1d.

    Weight (in_channels, out_channels / groups, k), bias (out_channels,);
    Lo = (L − 1)·stride − 2·padding + dilation·(k − 1) + output_padding + 1.

    >>> ConvTranspose1d(16, 16, kernel_size=7, stride=2, padding=3, output_padding=1, rng=0)(
    ...     Tensor(np.zeros((2, 16, 16)))).shape
    (2, 16, 32)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 output_padding: int = 0, groups: int = 1, bias: bool = True, dilation: int = 1, rng: Any = None):
        self.kernel_size = check_integer("kernel_size", kernel_size, low=1)
        self.stride, self.padding = check_integer("stride", stride, low=1), check_integer("padding", padding, low=0)
        self.dilation = check_integer("dilation", dilation, low=1)
        self.output_padding = check_output_padding(check_integer("output_padding", output_padding, low=0), self.stride,
                                                   self.dilation, "ConvTranspose1d")
        self._make_weights(in_channels, out_channels, (self.kernel_size,), groups, bias, rng, transposed=True)

    def forward(self, x: Tensor) -> Tensor:
        check_input(x, self, 3, self.in_channels)
        return conv_transpose1d(x, self.weight, self.bias, self.stride, self.padding, self.output_padding, self.groups,
                                self.dilation)

    def __repr__(self) -> str:
        return f"ConvTranspose1d({self.in_channels} -> {self.out_channels}, kernel_size={self.kernel_size})"


class Upsample(Module):
    """Upsampling of (N, C, L) or (N, C, H, W), PyTorch's nn.Upsample: by whole scale_factors or to a size.

    mode "nearest" (each value repeated), "linear" for (N, C, L) or
    "bilinear" for (N, C, H, W), with align_corners as in PyTorch (False by
    default). scale_factor comes first, so Upsample(2) doubles, as it always
    has here; give size by name. Shapes: (N, C, L) -> (N, C, L·s) and
    (N, C, H, W) -> (N, C, H·sh, W·sw), or (N, C, *size).

    >>> Upsample(scale_factor=2, mode="bilinear")(Tensor(np.zeros((1, 3, 4, 4)))).shape
    (1, 3, 8, 8)
    >>> Upsample(size=100)(Tensor(np.zeros((1, 3, 64)))).shape
    (1, 3, 100)
    """

    def __init__(self, scale_factor: Any = None, size: Any = None, mode: str = "nearest",
                 align_corners: bool | None = None):
        check_resize(size, scale_factor, mode, align_corners)  # refused here rather than at the first forward
        self.scale_factor, self.size, self.mode, self.align_corners = scale_factor, size, mode, align_corners

    def forward(self, x: Tensor) -> Tensor:
        """x resized along its last one (L) or two (H, W) axes."""
        ranks = INTERPOLATION_MODES[self.mode]
        if not isinstance(x, Tensor) or x.ndim not in ranks:
            expected = " or ".join({3: "(N, C, L)", 4: "(N, C, H, W)"}[rank] for rank in ranks)
            got = f"input of shape {x.shape}" if isinstance(x, Tensor) else f"a {type(x).__name__}"
            raise ShapeError(f"{self!r} got {got}; expected {expected}")
        return interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners)


class MaxPool2d(Module):
    """Max over windows: (N, C, H, W) -> (N, C, Ho, Wo); stride defaults to the kernel size.

    >>> MaxPool2d(2)(Tensor(np.arange(16.0).reshape(1, 1, 4, 4))).data.tolist()
    [[[[5.0, 7.0], [13.0, 15.0]]]]
    """

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0):
        self.kernel_size, self.padding = pair(kernel_size, "kernel_size", 1), pair(padding, "padding", 0)
        self.stride = self.kernel_size if stride is None else pair(stride, "stride", 1)

    def forward(self, x: Tensor) -> Tensor:
        check_input(x, self, 4, None)
        return max_pool2d(x, self.kernel_size, self.stride, self.padding)


class AvgPool2d(MaxPool2d):
    """Mean over windows: (N, C, H, W) -> (N, C, Ho, Wo); padding counts as zeros.

    >>> AvgPool2d(2)(Tensor(np.arange(16.0).reshape(1, 1, 4, 4))).data.tolist()
    [[[[2.5, 4.5], [10.5, 12.5]]]]
    """

    def forward(self, x: Tensor) -> Tensor:
        check_input(x, self, 4, None)
        return avg_pool2d(x, self.kernel_size, self.stride, self.padding)


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size: (N, C, H, W) -> (N, C, *output_size); 1 gives global pooling.

    >>> x = Tensor(np.ones((2, 8, 6, 6)))
    >>> AdaptiveAvgPool2d(1)(x).shape, AdaptiveAvgPool2d((2, 3))(x).shape
    ((2, 8, 1, 1), (2, 8, 2, 3))
    """

    def __init__(self, output_size: Any = 1):
        self.output_size = pair(output_size, "output_size", 1)

    def forward(self, x: Tensor) -> Tensor:
        check_input(x, self, 4, None)
        return adaptive_avg_pool2d(x, self.output_size)


class BatchNorm2d(Module):
    """Batch normalisation per channel of (N, C, H, W), learned scale `weight` and shift `bias` of shape (C,).

    Training uses the batch's statistics and updates `running_mean` and
    `running_var` (momentum 0.1, unbiased variance), evaluation uses the
    running ones: PyTorch's behaviour, so weights and statistics transfer.

    >>> norm = BatchNorm2d(3)
    >>> y = norm(Tensor(np.random.default_rng(0).normal(5.0, 2.0, (8, 3, 4, 4))))
    >>> y.shape, round(float(y.data.std()), 2), norm.running_mean.round(1).tolist()  # 0.9 · 0 + 0.1 · 5
    ((8, 3, 4, 4), 1.0, [0.5, 0.5, 0.5])
    """

    state = ("running_mean", "running_var")
    rank = 4

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        self.num_features = check_integer("num_features", num_features, low=1)
        self.eps = check_real("eps", eps, low=0.0, low_open=True)
        self.momentum = check_real("momentum", momentum, low=0.0, high=1.0)
        self.weight = Parameter(init.ones((num_features,)))
        self.bias = Parameter(init.zeros((num_features,)))
        self.running_mean = init.zeros((num_features,))
        self.running_var = init.ones((num_features,))

    def forward(self, x: Tensor) -> Tensor:
        if self.rank == 3 and x.ndim == 2:
            check_input(x, self, 2, self.num_features)
        else:
            check_input(x, self, self.rank, self.num_features)
        return batch_norm(x, self.weight, self.bias, self.running_mean, self.running_var, training=self.training,
                          momentum=self.momentum, eps=self.eps)


class BatchNorm1d(BatchNorm2d):
    """Batch normalisation per feature of (N, C) or per channel of (N, C, L).

    >>> norm = BatchNorm1d(4)
    >>> norm(Tensor(np.arange(12.0).reshape(3, 4))).data[:, 0].round(3).tolist()  # feature 0 holds 0, 4, 8
    [-1.225, 0.0, 1.225]
    >>> norm(Tensor(np.ones((5, 4, 10)))).shape
    (5, 4, 10)
    """

    rank = 3

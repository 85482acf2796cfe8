"""Convolutional layers, pooling and batch normalisation (NCHW, PyTorch's layouts and initialisation)."""

from __future__ import annotations

from typing import Any

import numpy as np

from descend.checks import check_integer, check_real
from descend.errors import DescendTypeError, ShapeError
from descend.nn import init
from descend.nn.module import Module
from descend.nn.parameter import Parameter
from descend.ops.conv import conv1d, conv2d, pair
from descend.ops.normalization import batch_norm
from descend.ops.pool import adaptive_avg_pool2d, avg_pool2d, max_pool2d
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
    def _make_weights(self, in_channels, out_channels, kernel, groups, bias, rng):
        self.in_channels = check_integer("in_channels", in_channels, low=1)
        self.out_channels = check_integer("out_channels", out_channels, low=1)
        self.groups = check_integer("groups", groups, low=1)
        if in_channels % groups or out_channels % groups:
            raise ShapeError(f"in_channels {in_channels} and out_channels {out_channels} must both divide by groups {groups}")
        rng = generator(rng)
        fan_in = in_channels // groups * int(np.prod(kernel))
        bound = 1.0 / np.sqrt(fan_in)  # PyTorch's Kaiming-uniform default with a = √5
        shape = (out_channels, in_channels // groups, *kernel)
        self.weight = Parameter(init.uniform(rng, bound, shape), fan_in_axes=tuple(range(1, len(shape))))
        self.bias = Parameter(init.uniform(rng, bound, (out_channels,))) if bias else None


class Conv2d(_ConvNd):
    """2-D convolution: x (N, in_channels, H, W) -> (N, out_channels, Ho, Wo).

    Weight (out_channels, in_channels / groups, kh, kw), bias (out_channels,);
    Ho = ⌊(H + 2·padding − dilation·(kh − 1) − 1) / stride⌋ + 1.

    >>> Conv2d(1, 8, kernel_size=3, padding=1, rng=0)(Tensor(np.zeros((2, 1, 28, 28)))).shape
    (2, 8, 28, 28)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: int = 1, bias: bool = True, rng: Any = None):
        self.kernel_size = pair(kernel_size, "kernel_size", 1)
        self.stride, self.padding = pair(stride, "stride", 1), pair(padding, "padding", 0)
        self.dilation = pair(dilation, "dilation", 1)
        self._make_weights(in_channels, out_channels, self.kernel_size, groups, bias, rng)

    def forward(self, x: Tensor) -> Tensor:
        check_input(x, self, 4, self.in_channels, _IMAGES_HINT if x.ndim == 2 else "")
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def __repr__(self) -> str:
        return f"Conv2d({self.in_channels} -> {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding})"


class Conv1d(_ConvNd):
    """1-D convolution: x (N, in_channels, L) -> (N, out_channels, Lo); weight (out_channels, in_channels / groups, k)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 dilation: int = 1, groups: int = 1, bias: bool = True, rng: Any = None):
        self.kernel_size = check_integer("kernel_size", kernel_size, low=1)
        self.stride, self.padding = check_integer("stride", stride, low=1), check_integer("padding", padding, low=0)
        self.dilation = check_integer("dilation", dilation, low=1)
        self._make_weights(in_channels, out_channels, (self.kernel_size,), groups, bias, rng)

    def forward(self, x: Tensor) -> Tensor:
        check_input(x, self, 3, self.in_channels)
        return conv1d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def __repr__(self) -> str:
        return f"Conv1d({self.in_channels} -> {self.out_channels}, kernel_size={self.kernel_size})"


class MaxPool2d(Module):
    """Max over windows: (N, C, H, W) -> (N, C, Ho, Wo); stride defaults to the kernel size."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0):
        self.kernel_size, self.padding = pair(kernel_size, "kernel_size", 1), pair(padding, "padding", 0)
        self.stride = self.kernel_size if stride is None else pair(stride, "stride", 1)

    def forward(self, x: Tensor) -> Tensor:
        check_input(x, self, 4, None)
        return max_pool2d(x, self.kernel_size, self.stride, self.padding)


class AvgPool2d(MaxPool2d):
    """Mean over windows: (N, C, H, W) -> (N, C, Ho, Wo); padding counts as zeros."""

    def forward(self, x: Tensor) -> Tensor:
        check_input(x, self, 4, None)
        return avg_pool2d(x, self.kernel_size, self.stride, self.padding)


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size: (N, C, H, W) -> (N, C, *output_size); 1 gives global pooling."""

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
    """Batch normalisation per feature of (N, C) or per channel of (N, C, L)."""

    rank = 3

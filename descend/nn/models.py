"""Ready models of the crash course: linear and logistic regression, the multi-layer perceptron, CNNs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from descend.checks import check_real
from descend.errors import DescendValueError
from descend.nn.conv import AvgPool2d, BatchNorm2d, Conv2d, MaxPool2d
from descend.nn.layers import Dropout, Flatten, Linear, ReLU, Sequential, activation_layer
from descend.nn.module import Module
from descend.tensor import Tensor


class LinearRegression(Module):
    """ŷ = x @ W + b, trained with MSELoss: x (..., in_features) -> (..., out_features)."""

    def __init__(self, in_features: int, out_features: int = 1, rng: Any = None):
        self.linear = Linear(in_features, out_features, rng=rng)

    def forward(self, x: Tensor) -> Tensor:
        """x (..., in_features) -> (..., out_features)."""
        return self.linear(x)


class LogisticRegression(Module):
    """A softmax classifier: logits = x @ W + b, trained with CrossEntropyLoss.

    Shapes: x (..., in_features) -> logits (..., n_classes).
    """

    def __init__(self, in_features: int, n_classes: int, rng: Any = None):
        self.linear = Linear(in_features, n_classes, rng=rng)

    def forward(self, x: Tensor) -> Tensor:
        """x (..., in_features) -> logits (..., n_classes)."""
        return self.linear(x)


class MLP(Module):
    """A multi-layer perceptron: Linear, activation, dropout, ... , Linear (logits or values).

    `sizes` = [in_features, hidden..., out_features]; `dropout` follows each
    hidden activation, `input_dropout` is applied to the input (both only in
    training). Shapes: x (..., sizes[0]) -> (..., sizes[-1]).

    >>> MLP([784, 512, 256, 10]).parameter_count()
    535818
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str = "relu",
        dropout: float = 0.0,
        input_dropout: float = 0.0,
        rng: Any = None,
    ):
        if len(sizes) < 2:
            raise DescendValueError(f"MLP: sizes needs at least [in_features, out_features]; got {list(sizes)!r}")
        activation_layer(activation)  # refuse an unknown name even when there is no hidden layer
        for name, value in (("dropout", dropout), ("input_dropout", input_dropout)):
            check_real(name, value, low=0.0, high=1.0, high_open=True)
        rng = np.random.default_rng(rng)
        layers: list[Module] = [Dropout(input_dropout, rng=rng)] if input_dropout > 0 else []
        for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(Linear(fan_in, fan_out, rng=rng))
            if index < len(sizes) - 2:
                layers.append(activation_layer(activation))
                if dropout > 0:
                    layers.append(Dropout(dropout, rng=rng))
        self.sizes = [int(s) for s in sizes]
        self.network = Sequential(*layers)

    @property
    def layers(self) -> list[Module]:
        """The layers in order: the inner Sequential's list, not a copy."""
        return self.network.layers

    def forward(self, x: Tensor) -> Tensor:
        """x (..., sizes[0]) -> (..., sizes[-1])."""
        return self.network(x)


class SimpleCNN(Sequential):
    """Conv blocks and a dense head for square images: (N, in_channels, image_size, image_size) -> (N, n_classes).

    [Conv2d 3x3 (padding 1), (BatchNorm2d), ReLU, MaxPool2d 2] for each entry of `channels`
    (two by default), then Flatten, Linear(·, hidden), ReLU, Dropout, Linear(hidden, n_classes).
    """

    def __init__(
        self,
        n_classes: int = 10,
        in_channels: int = 1,
        channels: Sequence[int] = (32, 64),
        hidden: int = 128,
        dropout: float = 0.3,
        batch_norm: bool = False,
        image_size: int = 28,
        rng: Any = None,
    ):
        rng = np.random.default_rng(rng)
        layers: list[Module] = []
        previous, size = in_channels, image_size
        for width in channels:
            layers.append(Conv2d(previous, width, kernel_size=3, padding=1, rng=rng))
            layers.extend([BatchNorm2d(width)] if batch_norm else [])
            layers.extend([ReLU(), MaxPool2d(2)])
            previous, size = width, size // 2
        layers.extend([Flatten(), Linear(previous * size * size, hidden, rng=rng), ReLU()])
        layers.extend([Dropout(dropout, rng=rng)] if dropout > 0 else [])
        layers.append(Linear(hidden, n_classes, rng=rng))
        super().__init__(*layers)


class LeNet5(Sequential):
    """LeCun et al.'s LeNet-5 for 28x28 images (padded to 32x32 by the first convolution).

    Conv 6@5x5 (padding 2), activation, 2x2 average pooling, Conv 16@5x5,
    activation, pooling, then dense 400 -> 120 -> 84 -> n_classes: (N, 1, 28, 28) -> (N, n_classes).
    """

    def __init__(self, n_classes: int = 10, activation: str = "tanh", rng: Any = None):
        rng = np.random.default_rng(rng)
        super().__init__(
            Conv2d(1, 6, kernel_size=5, padding=2, rng=rng), activation_layer(activation), AvgPool2d(2),
            Conv2d(6, 16, kernel_size=5, rng=rng), activation_layer(activation), AvgPool2d(2),
            Flatten(),
            Linear(16 * 5 * 5, 120, rng=rng), activation_layer(activation),
            Linear(120, 84, rng=rng), activation_layer(activation),
            Linear(84, n_classes, rng=rng),
        )

"""Ready models of the crash course: linear and logistic regression, the multi-layer perceptron."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from descend.errors import DescendValueError
from descend.nn.layers import Dropout, Linear, Sequential, activation_layer
from descend.nn.module import Module
from descend.tensor import Tensor


class LinearRegression(Module):
    """ŷ = x @ W + b, trained with MSELoss: x (N, in_features) -> (N, out_features)."""

    def __init__(self, in_features: int, out_features: int = 1, rng: Any = None):
        self.linear = Linear(in_features, out_features, rng=rng)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x)


class LogisticRegression(Module):
    """A softmax classifier: logits = x @ W + b, trained with CrossEntropyLoss; x (N, in) -> (N, n_classes)."""

    def __init__(self, in_features: int, n_classes: int, rng: Any = None):
        self.linear = Linear(in_features, n_classes, rng=rng)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x)


class MLP(Module):
    """A multi-layer perceptron: Linear, activation, dropout, ... , Linear (logits or values).

    `sizes` = [in_features, hidden..., out_features]; `dropout` follows each
    hidden activation, `input_dropout` is applied to the input (both only in
    training). Shapes: x (N, sizes[0]) -> (N, sizes[-1]).

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
        return self.network.layers

    def forward(self, x: Tensor) -> Tensor:
        return self.network(x)

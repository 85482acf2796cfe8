"""Dense layers, activations, dropout and containers.

Weight layout, decided once: a dense weight is (in_features, out_features),
so a layer computes x @ W + b. PyTorch stores the transpose; the oracle
tests transpose when they copy weights, the layers never do.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from descend import ops
from descend.checks import check_integer, check_real
from descend.errors import DescendTypeError, DescendValueError, ShapeError
from descend.nn import init
from descend.nn.module import Module, check_last_dim
from descend.nn.parameter import Parameter
from descend.tensor import Tensor
from descend.seeding import generator


class Linear(Module):
    """y = x @ W + b.

    Shapes: x (..., in_features) -> y (..., out_features); W (in_features, out_features), b (out_features,).
    W and b start uniform in ±1/√in_features, PyTorch's default, so results compare.

    >>> Linear(3, 2, rng=0)(Tensor(np.ones((4, 3)))).shape
    (4, 2)
    >>> Linear(3, 2, rng=0)(Tensor(np.ones((5, 4, 3)))).shape
    (5, 4, 2)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, rng: Any = None):
        self.in_features = check_integer("in_features", in_features, low=1)
        self.out_features = check_integer("out_features", out_features, low=1)
        rng = generator(rng)
        bound = 1.0 / np.sqrt(in_features)
        self.weight = Parameter(init.uniform(rng, bound, (in_features, out_features)), fan_in_axes=(0,))
        self.bias = Parameter(init.uniform(rng, bound, (out_features,))) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        """x (..., in_features) -> (..., out_features)."""
        check_last_dim(x, self.in_features, layer=self)
        return ops.linear(x, self.weight, self.bias)

    def __repr__(self) -> str:
        return f"Linear({self.in_features} -> {self.out_features})"


class ReLU(Module):
    """max(x, 0), elementwise.

    >>> ReLU()(Tensor([-1.0, 2.0])).data.tolist()
    [0.0, 2.0]
    """

    def forward(self, x: Tensor) -> Tensor:
        """x -> max(x, 0), same shape."""
        return ops.relu(x)


class LeakyReLU(Module):
    """x for x > 0, negative_slope · x otherwise.

    >>> LeakyReLU(negative_slope=0.5)(Tensor([-1.0, 2.0])).data.tolist()
    [-0.5, 2.0]
    """

    def __init__(self, negative_slope: float = 0.01):
        self.negative_slope = check_real("negative_slope", negative_slope)

    def forward(self, x: Tensor) -> Tensor:
        """x -> leaky_relu(x), same shape."""
        return ops.leaky_relu(x, self.negative_slope)


class ELU(Module):
    """x for x > 0, α(eˣ − 1) otherwise.

    >>> [round(value, 4) for value in ELU(alpha=1.0)(Tensor([-1.0, 2.0])).data.tolist()]
    [-0.6321, 2.0]
    """

    def __init__(self, alpha: float = 1.0):
        self.alpha = check_real("alpha", alpha)

    def forward(self, x: Tensor) -> Tensor:
        """x -> elu(x), same shape."""
        return ops.elu(x, self.alpha)


class Sigmoid(Module):
    """1 / (1 + e^−x), elementwise.

    >>> Sigmoid()(Tensor([-1000.0, 0.0])).data.tolist()
    [0.0, 0.5]
    """

    def forward(self, x: Tensor) -> Tensor:
        """x -> σ(x), same shape."""
        return ops.sigmoid(x)


class Tanh(Module):
    """tanh x, elementwise.

    >>> Tanh()(Tensor([0.0, 100.0])).data.tolist()
    [0.0, 1.0]
    """

    def forward(self, x: Tensor) -> Tensor:
        """x -> tanh x, same shape."""
        return ops.tanh(x)


class Softmax(Module):
    """Probabilities along `axis`.

    >>> Softmax(axis=-1)(Tensor(np.zeros((2, 4)))).data.tolist()
    [[0.25, 0.25, 0.25, 0.25], [0.25, 0.25, 0.25, 0.25]]
    """

    def __init__(self, axis: int = -1):
        self.axis = axis

    def forward(self, x: Tensor) -> Tensor:
        """x -> probabilities along `axis`, same shape."""
        return ops.softmax(x, axis=self.axis)


class Maxout(Module):
    """Maxout units (Goodfellow et al. 2013): each output is the max of `pieces` affine maps.

    Shapes: x (..., in_features) -> (..., out_features); W (in_features, out_features · pieces).

    >>> Maxout(3, 2, pieces=4, rng=0)(Tensor(np.ones((5, 3)))).shape
    (5, 2)
    """

    def __init__(self, in_features: int, out_features: int, pieces: int = 2, rng: Any = None):
        self.out_features = check_integer("out_features", out_features, low=1)
        self.pieces = check_integer("pieces", pieces, low=1)
        self.linear = Linear(in_features, out_features * pieces, rng=rng)

    def forward(self, x: Tensor) -> Tensor:
        """x (..., in_features) -> (..., out_features), the max over `pieces` affine maps."""
        candidates = self.linear(x).reshape(*x.shape[:-1], self.out_features, self.pieces)
        return candidates.max(axis=-1)


class Flatten(Module):
    """(N, d1, d2, ...) -> (N, d1·d2·...).

    >>> Flatten()(Tensor(np.ones((2, 3, 4, 5)))).shape
    (2, 60)
    """

    def forward(self, x: Tensor) -> Tensor:
        """x (N, d1, d2, ...) -> (N, d1·d2·...)."""
        if x.ndim == 0:
            raise ShapeError(f"Flatten got a 0-d tensor, shape {x.shape}; expected (N, ...) with a row axis")
        return x.reshape(x.shape[0], -1)


class Dropout(Module):
    """Inverted dropout: in training, zero each value with probability p and scale the rest by 1/(1 − p).

    In eval mode it is the identity, so nothing changes at test time. The
    mask is a constant factor, so the gradient needs no code of its own.

    >>> dropout = Dropout(p=0.5, rng=0)
    >>> sorted(set(dropout(Tensor(np.ones(8))).data.tolist()))  # each value zeroed or doubled
    [0.0, 2.0]
    >>> dropout.eval()(Tensor(np.ones(3))).data.tolist()
    [1.0, 1.0, 1.0]
    """

    def __init__(self, p: float = 0.5, rng: Any = None):
        self.p = check_real("p", p, low=0.0, high=1.0, high_open=True)
        self.rng = generator(rng)

    def forward(self, x: Tensor) -> Tensor:
        """x -> same shape: masked and rescaled in training, unchanged in eval mode."""
        if not self.training or self.p == 0.0:
            return x
        keep = self.rng.random(x.shape, dtype=np.float32) >= self.p
        return x * (keep * np.asarray(1.0 / (1.0 - self.p), dtype=x.dtype))


class Sequential(Module):
    """Layers applied in order: Sequential(a, b, c)(x) == c(b(a(x))).

    >>> model = Sequential(Linear(4, 8, rng=0), ReLU(), Linear(8, 2, rng=1))
    >>> model(Tensor(np.ones((3, 4)))).shape, len(model), model[1]
    ((3, 2), 3, ReLU())
    """

    def __init__(self, *layers: Module):
        for index, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise DescendTypeError(
                    f"Sequential: layers[{index}] must be a Module; got {type(layer).__name__} {layer!r:.80}"
                )
        self.layers = list(layers)

    def forward(self, x: Tensor) -> Tensor:
        """x through each layer in turn: the first layer's input shape -> the last layer's output shape."""
        for layer in self.layers:
            x = layer(x)
        return x

    def __getitem__(self, index: int) -> Module:
        return self.layers[index]

    def __len__(self) -> int:
        return len(self.layers)


ACTIVATIONS = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid, "leaky_relu": LeakyReLU, "elu": ELU}


def activation_layer(name: str) -> Module:
    """A fresh activation module from its name ('relu', 'tanh', 'sigmoid', 'leaky_relu', 'elu')."""
    if name not in ACTIVATIONS:
        raise DescendValueError(f"unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()

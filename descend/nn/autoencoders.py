"""Autoencoders: networks trained to reproduce their input through a narrow code.

Each one sets `target_is_input = True`, so fit trains it to reconstruct x
(no labels needed), and may add a term to the loss through `penalty()`
(sparsity of the code, the VAE's KL divergence), which fit adds to the
reconstruction loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from descend import ops
from descend.checks import check_integer, check_real
from descend.errors import DescendValueError, ShapeError
from descend.nn import init
from descend.nn.conv import Conv2d, MaxPool2d, Upsample
from descend.nn.layers import Linear, ReLU, Sequential, Sigmoid, activation_layer
from descend.nn.module import REGISTRY, Module, check_last_dim
from descend.nn.parameter import Parameter
from descend.tensor import Tensor
from descend.seeding import generator

OUTPUTS = ("sigmoid", "linear")


class TiedLinear(Module):
    """A decoder layer that reuses an encoder layer's weight, transposed: y = x @ Wᵀ + b.

    Shapes: x (..., source.out_features) -> (..., source.in_features); only the bias is its own.

    >>> encoder = Linear(4, 2, rng=0)
    >>> decoder = TiedLinear(encoder)
    >>> decoder(Tensor(np.ones((3, 2)))).shape, decoder.bias.shape
    ((3, 4), (4,))
    """

    def __init__(self, source: Linear):
        self.source = source
        self.bias = Parameter(init.zeros((source.in_features,)))

    def forward(self, x: Tensor) -> Tensor:
        """Decode with the source's weight transposed."""
        check_last_dim(x, self.source.out_features, layer=self)
        return ops.linear(x, ops.transpose(self.source.weight), self.bias)

    def __repr__(self) -> str:
        return f"TiedLinear({self.source.out_features} -> {self.source.in_features}, tied to {self.source!r})"


class _EncoderDecoder(Module):
    """An encoder and a decoder in a row, trained to give back the input."""

    target_is_input = True

    def encode(self, x: Tensor) -> Tensor:
        """The code of x."""
        return self.encoder(x)

    def decode(self, code: Tensor) -> Tensor:
        """A reconstruction from a code."""
        return self.decoder(code)

    def forward(self, x: Tensor) -> Tensor:
        """The reconstruction of x, of x's shape."""
        return self.decode(self.encode(x))


class Autoencoder(_EncoderDecoder):
    """A dense autoencoder; the decoder mirrors the encoder: sizes [784, 256, 64] -> 784-256-64-256-784.

    Hidden layers use `activation`; the code (the last size) is linear; the
    output is `sigmoid` (for data in [0, 1]) or `linear`. With `tied=True`
    each decoder layer reuses its mirror encoder layer's weight, transposed.
    Shapes: x (N, sizes[0]) -> reconstruction (N, sizes[0]); encode: -> (N, sizes[-1]).

    >>> model = Autoencoder([8, 4, 2], rng=0)
    >>> x = Tensor(np.ones((3, 8)))
    >>> model(x).shape, model.encode(x).shape
    ((3, 8), (3, 2))
    """

    def __init__(self, sizes: Sequence[int], activation: str = "relu", output: str = "sigmoid", tied: bool = False,
                 rng: Any = None):
        if len(sizes) < 2:
            raise DescendValueError(f"{type(self).__name__}: sizes needs at least [in_features, code_size]; got {list(sizes)!r}")
        if output not in OUTPUTS:
            raise DescendValueError(f"{type(self).__name__}: output must be one of {', '.join(OUTPUTS)}; got {output!r}")
        activation_layer(activation)
        rng = generator(rng)
        self.sizes = [check_integer("sizes", size, low=1) for size in sizes]
        encoders = [Linear(a, b, rng=rng) for a, b in zip(self.sizes[:-1], self.sizes[1:])]
        decoders = [TiedLinear(layer) if tied else Linear(layer.out_features, layer.in_features, rng=rng)
                    for layer in reversed(encoders)]
        self.encoder = Sequential(*_interleave(encoders, activation))
        self.decoder = Sequential(*_interleave(decoders, activation), *([Sigmoid()] if output == "sigmoid" else []))


def _interleave(layers: list[Module], activation: str) -> list[Module]:
    """Layers with an activation between each pair (none after the last)."""
    out: list[Module] = []
    for index, layer in enumerate(layers):
        out.append(layer)
        if index < len(layers) - 1:
            out.append(activation_layer(activation))
    return out


class DenoisingAutoencoder(Autoencoder):
    """An autoencoder trained to undo corruption: in training, x gets Gaussian noise of std `noise`
    and/or a fraction `dropout` of its values zeroed before encoding; the target stays the clean x.

    >>> model = DenoisingAutoencoder([8, 4], noise=0.1, dropout=0.2, rng=0)
    >>> x = Tensor(np.ones((3, 8)))
    >>> model(x).shape, bool((model(x).data != model(x).data).any())  # in training, each pass corrupts x afresh
    ((3, 8), True)
    >>> bool((model.eval()(x).data == model(x).data).all())  # in eval mode, x goes in clean
    True
    """

    def __init__(self, sizes: Sequence[int], noise: float = 0.1, dropout: float = 0.0, activation: str = "relu",
                 output: str = "sigmoid", tied: bool = False, rng: Any = None):
        super().__init__(sizes, activation, output, tied, rng)
        self.noise = check_real("noise", noise, low=0.0)
        self.dropout = check_real("dropout", dropout, low=0.0, high=1.0, high_open=True)
        self.rng = generator(rng)

    def forward(self, x: Tensor) -> Tensor:
        """The reconstruction of (corrupted, in training) x: (N, sizes[0]) -> (N, sizes[0])."""
        if self.training:
            corruption = np.ones(x.shape, dtype=x.dtype)
            if self.dropout > 0:
                corruption *= self.rng.random(x.shape) >= self.dropout
            x = x * corruption
            if self.noise > 0:
                x = x + (self.noise * self.rng.standard_normal(x.shape)).astype(x.dtype)
        return self.decode(self.encode(x))


class SparseAutoencoder(Autoencoder):
    """An autoencoder whose code is pushed towards zeros: fit adds sparsity · mean |code| to the loss.

    >>> model = SparseAutoencoder([8, 4], sparsity=0.01, rng=0)
    >>> model(Tensor(np.ones((3, 8)))).shape, model.penalty().shape  # the penalty of that pass, a scalar
    ((3, 8), ())
    """

    def __init__(self, sizes: Sequence[int], sparsity: float = 1e-3, activation: str = "relu",
                 output: str = "sigmoid", tied: bool = False, rng: Any = None):
        super().__init__(sizes, activation, output, tied, rng)
        self.sparsity = check_real("sparsity", sparsity, low=0.0)
        self.code = None

    def forward(self, x: Tensor) -> Tensor:
        """The reconstruction of x; the code is kept for `penalty()`."""
        self.code = self.encode(x)
        return self.decode(self.code)

    def penalty(self) -> Tensor | None:
        """sparsity · mean |code| of the last forward pass (an L1 penalty on the code)."""
        return None if self.code is None else ops.abs(self.code).mean() * self.sparsity


class VariationalAutoencoder(_EncoderDecoder):
    """A VAE (Kingma and Welling, 2014): the encoder gives a mean μ and log-variance per code unit,
    the code is z = μ + σ·ε with ε ~ N(0, 1) (the reparameterisation, so gradients reach μ and σ),
    and fit adds kl_weight · KL(q(z|x) ‖ N(0, I)), averaged over the batch, to the reconstruction loss.

    In eval mode z = μ. Shapes: x (N, sizes[0]) -> (N, sizes[0]); encode -> (N, sizes[-1]).

    >>> model = VariationalAutoencoder([8, 6, 2], rng=0)
    >>> x = Tensor(np.ones((3, 8)))
    >>> model(x).shape, model.encode(x).shape, float(model.penalty().data) > 0  # the KL term of that pass
    ((3, 8), (3, 2), True)
    """

    def __init__(self, sizes: Sequence[int], activation: str = "relu", output: str = "sigmoid",
                 kl_weight: float | None = None, rng: Any = None):
        if len(sizes) < 3:
            raise DescendValueError(f"VariationalAutoencoder: sizes needs [in, hidden..., code]; got {list(sizes)!r}")
        rng = generator(rng)
        self.sizes = [check_integer("sizes", size, low=1) for size in sizes]
        hidden = self.sizes[:-1]
        self.encoder = Sequential(*_interleave([Linear(a, b, rng=rng) for a, b in zip(hidden[:-1], hidden[1:])],
                                               activation), activation_layer(activation))
        self.mean = Linear(hidden[-1], self.sizes[-1], rng=rng)
        self.log_variance = Linear(hidden[-1], self.sizes[-1], rng=rng)
        mirrored = [self.sizes[-1], *reversed(hidden)]
        self.decoder = Sequential(
            *_interleave([Linear(a, b, rng=rng) for a, b in zip(mirrored[:-1], mirrored[1:])], activation),
            *([Sigmoid()] if output == "sigmoid" else []),
        )
        self.kl_weight = check_real("kl_weight", kl_weight if kl_weight is not None else 1.0 / self.sizes[0], low=0.0)
        self.rng = rng
        self.divergence = None

    def encode(self, x: Tensor) -> Tensor:
        """The code's mean μ: (N, sizes[0]) -> (N, sizes[-1])."""
        return self.mean(self.encoder(x))

    def forward(self, x: Tensor) -> Tensor:
        """The reconstruction through a sampled code (the mean in eval mode); keeps the KL term for `penalty()`."""
        hidden = self.encoder(x)
        mean, log_variance = self.mean(hidden), self.log_variance(hidden)
        self.divergence = (-0.5 * (1 + log_variance - mean * mean - ops.exp(log_variance)).sum(axis=1)).mean()
        if not self.training:
            return self.decode(mean)
        noise = self.rng.standard_normal(mean.shape).astype(mean.dtype)
        return self.decode(mean + ops.exp(0.5 * log_variance) * noise)

    def penalty(self) -> Tensor | None:
        """kl_weight · the mean KL divergence of the last forward pass."""
        return None if self.divergence is None else self.divergence * self.kl_weight


class ConvAutoencoder(_EncoderDecoder):
    """A convolutional autoencoder for (N, C, H, W) images with H, W divisible by 4.

    Encoder: [Conv 3x3, ReLU, MaxPool 2] per entry of `channels`; decoder:
    [Upsample 2, Conv 3x3, ReLU] back up, a last Conv 3x3 to C channels and
    a sigmoid. Shapes: x (N, C, H, W) -> reconstruction (N, C, H, W);
    encode: -> (N, channels[-1], H / 2^k, W / 2^k).

    >>> model = ConvAutoencoder(in_channels=1, channels=(4, 8), rng=0)
    >>> x = Tensor(np.zeros((2, 1, 8, 8)))
    >>> model(x).shape, model.encode(x).shape
    ((2, 1, 8, 8), (2, 8, 2, 2))
    """

    def __init__(self, in_channels: int = 1, channels: Sequence[int] = (16, 32), rng: Any = None):
        rng = generator(rng)
        widths = [check_integer("in_channels", in_channels, low=1), *[check_integer("channels", c, low=1) for c in channels]]
        if len(widths) < 2:
            raise DescendValueError(f"ConvAutoencoder: channels needs at least one width; got {list(channels)!r}")
        self.in_channels, self.scale = widths[0], 2 ** (len(widths) - 1)  # each block pools by 2
        encoder: list[Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            encoder += [Conv2d(a, b, 3, padding=1, rng=rng), ReLU(), MaxPool2d(2)]
        decoder: list[Module] = []
        for a, b in zip(widths[:0:-1], widths[-2:0:-1]):
            decoder += [Upsample(2), Conv2d(a, b, 3, padding=1, rng=rng), ReLU()]
        decoder += [Upsample(2), Conv2d(widths[1], widths[0], 3, padding=1, rng=rng), Sigmoid()]
        self.encoder, self.decoder = Sequential(*encoder), Sequential(*decoder)

    def forward(self, x: Tensor) -> Tensor:
        """The reconstruction of x (N, C, H, W), of x's shape: H and W must divide by 2 for every block."""
        if x.ndim != 4 or x.shape[1] != self.in_channels or x.shape[2] % self.scale or x.shape[3] % self.scale:
            raise ShapeError(
                f"{type(self).__name__} got input of shape {x.shape}; expected (N, {self.in_channels}, H, W) "
                f"with H and W divisible by {self.scale}, or the reconstruction would not match it"
            )
        return self.decode(self.encode(x))


#: Upsample lived in this module until it took (N, C, L) input and the linear modes: files that name it here still load
REGISTRY["descend.nn.autoencoders.Upsample"] = Upsample

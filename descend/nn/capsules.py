"""Capsule networks: primary capsules, digit capsules with routing by agreement, and CapsNet.

CapsNet (Sabour, Frosst and Hinton, 2017) on (N, 1, 28, 28) images:
    Conv2d 9×9, ReLU                   -> (N, conv_channels, 20, 20)
    PrimaryCapsules: Conv2d 9×9 / 2    -> primary_caps · 6 · 6 capsules of primary_dim, squashed
    DigitCapsules: u_i W_ij, routing   -> n_classes capsules of digit_dim; their lengths score the classes
    decoder (reconstruction=True)      the true class's capsule (the longest at test time), others masked
                                       to 0 -> 512 -> 1024 -> 784 sigmoid pixels
The model returns a CapsuleOutput: `.data` is the lengths (N, n_classes),
so `predict`, `evaluate` and accuracy treat it as class scores, and
MarginLoss finds the capsules and the decoder in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from descend import ops
from descend.checks import check_integer
from descend.errors import DescendValueError, ShapeError
from descend.nn import init
from descend.nn.conv import Conv2d, check_input
from descend.nn.layers import Linear, ReLU, Sequential, Sigmoid
from descend.nn.module import Module
from descend.nn.parameter import Parameter
from descend.tensor import Tensor, array_of, as_tensor, no_grad
from descend.seeding import generator

#: the paper's perturbations of a capsule's dimensions: -0.25 to 0.25 in steps of 0.05
PERTURBATION_STEPS = np.round(np.arange(-0.25, 0.2501, 0.05), 2)


class PrimaryCapsules(Module):
    """A convolution whose channels are read as capsules: x (N, C, H, W) -> (N, capsules · Ho · Wo, dim), squashed.

    The convolution has capsules · dim output channels; channel k · dim + d
    is coordinate d of capsule type k, one capsule per type and position.

    >>> primary = PrimaryCapsules(8, capsules=4, dim=6, kernel_size=3, stride=2, rng=0)
    >>> primary(Tensor(np.ones((2, 8, 9, 9)))).shape  # 4 types · 4 · 4 positions, 6-d each
    (2, 64, 6)
    """

    def __init__(self, in_channels: int, capsules: int, dim: int, kernel_size: Any = 9, stride: Any = 2,
                 rng: Any = None):
        self.capsules = check_integer("capsules", capsules, low=1)
        self.dim = check_integer("dim", dim, low=1)
        self.conv = Conv2d(in_channels, capsules * dim, kernel_size, stride=stride, rng=rng)

    def forward(self, x: Tensor) -> Tensor:
        """x (N, in_channels, H, W) -> capsules (N, capsules · Ho · Wo, dim)."""
        maps = self.conv(x)
        n, _, height, width = maps.shape
        grouped = maps.reshape(n, self.capsules, self.dim, height, width).transpose(0, 1, 3, 4, 2)
        return ops.squash(grouped.reshape(n, self.capsules * height * width, self.dim))


class DigitCapsules(Module):
    """Capsules that each input capsule predicts, agreed on by routing: u (N, I, in_dim) -> v (N, J, out_dim).

    One transformation matrix per (input capsule i, output capsule j), kept
    as `weight` (I, in_dim, J · out_dim) so the predictions are one batched
    product (descend.ops.capsule_predictions); `routing_iters` rounds of
    routing by agreement (descend.ops.dynamic_routing) then pick the outputs.

    >>> DigitCapsules(in_capsules=16, in_dim=6, out_capsules=3, out_dim=4, rng=0)(Tensor(np.ones((2, 16, 6)))).shape
    (2, 3, 4)
    """

    def __init__(self, in_capsules: int, in_dim: int, out_capsules: int, out_dim: int, routing_iters: int = 3,
                 rng: Any = None):
        self.in_capsules = check_integer("in_capsules", in_capsules, low=1)
        self.in_dim = check_integer("in_dim", in_dim, low=1)
        self.out_capsules = check_integer("out_capsules", out_capsules, low=1)
        self.out_dim = check_integer("out_dim", out_dim, low=1)
        self.routing_iters = check_integer("routing_iters", routing_iters, low=1)
        rng = generator(rng)
        # small, as in the paper's published code: the first votes must not saturate the squash
        shape = (in_capsules, in_dim, out_capsules * out_dim)
        self.weight = Parameter(0.01 * init.standard_normal(rng, shape), fan_in_axes=(1,))

    def forward(self, u: Tensor) -> Tensor:
        """u (N, in_capsules, in_dim) -> v (N, out_capsules, out_dim)."""
        if u.ndim != 3 or u.shape[1:] != (self.in_capsules, self.in_dim):
            raise ShapeError(f"{self!r} got capsules of shape {u.shape}; expected (N, {self.in_capsules}, {self.in_dim})")
        predictions = ops.capsule_predictions(u, self.weight, self.out_capsules)
        return ops.dynamic_routing(predictions, self.routing_iters)

    def __repr__(self) -> str:
        return (f"DigitCapsules({self.in_capsules}×{self.in_dim} -> {self.out_capsules}×{self.out_dim}, "
                f"routing_iters={self.routing_iters})")


@dataclass
class CapsuleOutput:
    """What CapsNet returns: its class capsules, their lengths, and the input they may reconstruct.

    `lengths` (N, classes) are the class scores (`data` is their array, so
    `predict` returns them); `capsules` (N, classes, dim); `images` the
    input (N, C, H, W); `model` the CapsNet, whose decoder `reconstruct` uses.

    >>> net = CapsNet(conv_channels=8, primary_caps=2, primary_dim=4, digit_dim=4, n_classes=3, image_size=18,
    ...               reconstruction=False, rng=0)
    >>> output = net(Tensor(np.zeros((2, 1, 18, 18))))
    >>> type(output).__name__, output.shape, output.capsules.shape
    ('CapsuleOutput', (2, 3), (2, 3, 4))
    """

    lengths: Tensor
    capsules: Tensor
    images: Tensor
    model: CapsNet

    @property
    def data(self) -> np.ndarray:
        """The lengths' array (N, classes): the probability that each class's entity is present."""
        return self.lengths.data

    @property
    def shape(self) -> tuple[int, ...]:
        """The lengths' shape, (N, classes)."""
        return self.lengths.shape

    def reconstruct(self, labels: Any = None) -> Tensor:
        """The decoder's image of each row's capsule of class `labels` (N,) (the longest when None): (N, C·H·W)."""
        return self.model.decode(self.capsules, self.lengths.data.argmax(axis=1) if labels is None else labels)


class CapsNet(Module):
    """Sabour, Frosst and Hinton's CapsNet: images (N, in_channels, S, S) -> CapsuleOutput (lengths (N, n_classes)).

    The paper's MNIST network is the default (conv_channels=256,
    primary_caps=32, primary_dim=8, digit_dim=16, 3 routing iterations,
    a 512-1024-784 decoder); conv_channels=64, primary_caps=8 trains on a
    laptop's CPU. Train it with nn.MarginLoss(reconstruction_weight=0.0005).

    >>> net = CapsNet(conv_channels=8, primary_caps=2, primary_dim=4, digit_dim=4, n_classes=3, image_size=18,
    ...               reconstruction=False, rng=0)
    >>> net(Tensor(np.zeros((2, 1, 18, 18)))).lengths.shape  # one capsule length per class
    (2, 3)
    """

    def __init__(self, conv_channels: int = 256, primary_caps: int = 32, primary_dim: int = 8, digit_dim: int = 16,
                 routing_iters: int = 3, reconstruction: bool = True, n_classes: int = 10, in_channels: int = 1,
                 image_size: int = 28, rng: Any = None):
        rng = generator(rng)
        self.image_size = check_integer("image_size", image_size, low=18)  # two 9×9 convolutions need 18 pixels
        self.in_channels = check_integer("in_channels", in_channels, low=1)
        self.n_classes = check_integer("n_classes", n_classes, low=2)
        self.digit_dim = check_integer("digit_dim", digit_dim, low=1)
        self.conv = Conv2d(in_channels, check_integer("conv_channels", conv_channels, low=1), 9, rng=rng)
        self.relu = ReLU()
        self.primary = PrimaryCapsules(conv_channels, primary_caps, primary_dim, kernel_size=9, stride=2, rng=rng)
        side = (image_size - 8 - 9) // 2 + 1  # after the 9×9 convolution, then the 9×9 one of stride 2
        self.digits = DigitCapsules(primary_caps * side * side, primary_dim, n_classes, digit_dim, routing_iters,
                                    rng=rng)
        pixels = in_channels * image_size * image_size
        self.decoder = Sequential(Linear(n_classes * digit_dim, 512, rng=rng), ReLU(), Linear(512, 1024, rng=rng),
                                  ReLU(), Linear(1024, pixels, rng=rng), Sigmoid()) if reconstruction else None

    def forward(self, x: Tensor) -> CapsuleOutput:
        """images (N, in_channels, image_size, image_size) -> CapsuleOutput of lengths (N, n_classes)."""
        check_input(x, self, 4, self.in_channels, " For MNIST, load images with dc.data.load_mnist(shape='images').")
        if x.shape[2:] != (self.image_size, self.image_size):
            raise ShapeError(f"{type(self).__name__} got images of shape {x.shape}; expected "
                             f"(N, {self.in_channels}, {self.image_size}, {self.image_size})")
        capsules = self.digits(self.primary(self.relu(self.conv(x))))
        return CapsuleOutput(ops.capsule_length(capsules), capsules, x, self)

    def decode(self, capsules: Tensor, labels: Any) -> Tensor:
        """Pixels (N, C·H·W) from the capsules (N, n_classes, digit_dim) with all but class `labels` (N,) masked out."""
        if self.decoder is None:
            raise DescendValueError("this CapsNet has no decoder: build it with reconstruction=True")
        labels = array_of(labels)
        if labels.shape != (capsules.shape[0],) or labels.dtype.kind not in "iu":
            raise ShapeError(f"decode needs one integer class per row, shape ({capsules.shape[0]},); "
                             f"got {labels.dtype} of shape {labels.shape}")
        if labels.size and (labels.min() < 0 or labels.max() >= self.n_classes):
            raise DescendValueError(f"decode: classes must lie in [0, {self.n_classes}); "
                                    f"got values from {labels.min()} to {labels.max()}")
        mask = np.zeros(capsules.shape[:2] + (1,), dtype=capsules.dtype)
        mask[np.arange(len(labels)), labels] = 1
        return self.decoder((capsules * mask).reshape(capsules.shape[0], -1))

    def reconstructions(self, images: Any) -> tuple[np.ndarray, np.ndarray]:
        """The predicted classes (N,) and the decoder's images (N, C·H·W) of each input's longest capsule, in eval mode."""
        was_training = self.training
        self.eval()
        try:
            with no_grad():
                output = self(as_tensor(images))
                predicted = output.lengths.data.argmax(axis=1)
                return predicted, output.reconstruct(predicted).data
        finally:
            self.train(was_training)

    def perturbations(self, image: Any, steps: Any = PERTURBATION_STEPS) -> tuple[int, np.ndarray]:
        """The paper's figure 4: each dimension of the predicted class's capsule nudged by each step, then decoded.

        image (C, H, W) -> (the predicted class, images (digit_dim, len(steps), C·H·W)): row d is dimension d
        moved by every step in turn, the other dimensions kept.
        """
        steps = np.asarray(steps, dtype=np.float64)
        image = array_of(image)
        was_training = self.training
        self.eval()
        try:
            with no_grad():
                output = self(Tensor(image[None].astype(self.conv.weight.dtype)))
                predicted = int(output.lengths.data.argmax())
                base = output.capsules.data[0]
                nudged = np.repeat(base[None, None], self.digit_dim * len(steps), axis=0).reshape(
                    self.digit_dim, len(steps), *base.shape)
                for dimension in range(self.digit_dim):
                    nudged[dimension, :, predicted, dimension] += steps.astype(base.dtype)
                flat = nudged.reshape(-1, *base.shape)
                pictures = self.decode(Tensor(flat), np.full(len(flat), predicted)).data
        finally:
            self.train(was_training)
        return predicted, pictures.reshape(self.digit_dim, len(steps), -1)

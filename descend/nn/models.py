"""Ready models of the crash course: linear and logistic regression, the multi-layer perceptron, CNNs, CharRNN."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from descend.checks import check_integer, check_real
from descend.errors import DescendValueError, ShapeError
from descend.nn.conv import AvgPool2d, BatchNorm2d, Conv2d, MaxPool2d
from descend.nn.layers import Dropout, Flatten, Linear, ReLU, Sequential, activation_layer
from descend.nn.module import Module
from descend.nn.recurrent import GRU, LSTM, RNN, Embedding
from descend.tensor import Tensor, array_of, no_grad
from descend.seeding import generator


class LinearRegression(Module):
    """ŷ = x @ W + b, trained with MSELoss: x (..., in_features) -> (..., out_features).

    >>> model = LinearRegression(3, rng=0)
    >>> model(Tensor(np.ones((4, 3)))).shape, model.parameter_count()
    ((4, 1), 4)
    """

    def __init__(self, in_features: int, out_features: int = 1, rng: Any = None):
        self.linear = Linear(in_features, out_features, rng=rng)

    def forward(self, x: Tensor) -> Tensor:
        """x (..., in_features) -> (..., out_features)."""
        return self.linear(x)


class LogisticRegression(Module):
    """A softmax classifier: logits = x @ W + b, trained with CrossEntropyLoss.

    Shapes: x (..., in_features) -> logits (..., n_classes).

    >>> LogisticRegression(4, n_classes=3, rng=0)(Tensor(np.ones((5, 4)))).shape
    (5, 3)
    """

    def __init__(self, in_features: int, n_classes: int, rng: Any = None):
        self.linear = Linear(in_features, check_integer("n_classes", n_classes, low=1), rng=rng)

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
        sizes = [check_integer(f"sizes[{index}]", size, low=1) for index, size in enumerate(sizes)]
        activation_layer(activation)  # refuse an unknown name even when there is no hidden layer
        for name, value in (("dropout", dropout), ("input_dropout", input_dropout)):
            check_real(name, value, low=0.0, high=1.0, high_open=True)
        rng = generator(rng)
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

    >>> model = SimpleCNN(n_classes=3, channels=(4, 8), hidden=16, image_size=8, rng=0)
    >>> model(Tensor(np.zeros((2, 1, 8, 8)))).shape
    (2, 3)
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
        n_classes, hidden = check_integer("n_classes", n_classes, low=1), check_integer("hidden", hidden, low=1)
        dropout = check_real("dropout", dropout, low=0.0, high=1.0, high_open=True)
        # each block halves the image: below 2^blocks pixels the last one would have nothing left to pool
        image_size = check_integer("image_size", image_size, low=2 ** len(channels))
        rng = generator(rng)
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

    >>> model = LeNet5(rng=0)
    >>> model(Tensor(np.zeros((2, 1, 28, 28)))).shape, model.parameter_count()
    ((2, 10), 61706)
    """

    def __init__(self, n_classes: int = 10, activation: str = "tanh", rng: Any = None):
        n_classes = check_integer("n_classes", n_classes, low=1)
        rng = generator(rng)
        super().__init__(
            Conv2d(1, 6, kernel_size=5, padding=2, rng=rng), activation_layer(activation), AvgPool2d(2),
            Conv2d(6, 16, kernel_size=5, rng=rng), activation_layer(activation), AvgPool2d(2),
            Flatten(),
            Linear(16 * 5 * 5, 120, rng=rng), activation_layer(activation),
            Linear(120, 84, rng=rng), activation_layer(activation),
            Linear(84, n_classes, rng=rng),
        )


class CharRNN(Module):
    """A character-level language model: Embedding -> RNN / LSTM / GRU -> Linear.

    ids (N, T) int -> logits (N, T, vocab_size), the next character's scores
    at every position. With `stateful=True` the final state of one batch is
    the initial state of the next, detached (truncated backpropagation
    through time); feed it batches that continue each other, e.g.
    text.sequences(length, batch_size=B) with fit(..., shuffle=False).

    >>> model = CharRNN(vocab_size=20, embed=8, hidden=16, rng=0)
    >>> model(np.zeros((2, 5), dtype=np.int64)).shape  # ids (N, T) -> logits (N, T, vocab_size)
    (2, 5, 20)
    """

    def __init__(self, vocab_size: int, embed: int = 64, hidden: int = 256, layers: int = 1, cell: str = "lstm",
                 dropout: float = 0.0, stateful: bool = False, rng: Any = None):
        cells = {"lstm": LSTM, "gru": GRU, "rnn": RNN}
        if cell not in cells:
            raise DescendValueError(f"CharRNN: cell must be one of {', '.join(cells)}; got {cell!r}")
        for name, value in (("embed", embed), ("hidden", hidden), ("layers", layers)):
            check_integer(name, value, low=1)  # here, so the error names CharRNN's argument, not the inner layer's
        rng = generator(rng)
        self.vocab_size = check_integer("vocab_size", vocab_size, low=1)
        self.embedding = Embedding(vocab_size, embed, rng=rng)
        self.recurrent = cells[cell](embed, hidden, layers, batch_first=True, dropout=dropout, rng=rng)
        self.head = Linear(hidden, vocab_size, rng=rng)
        self.stateful = bool(stateful)
        self.carried = None

    def forward(self, ids: Any) -> Tensor:
        """Logits (N, T, vocab_size) for token ids (N, T)."""
        ids = array_of(ids)
        if ids.ndim != 2:
            raise ShapeError(f"CharRNN needs token ids of shape (N, T); got {ids.shape}")
        state = self.carried if self.stateful and self._fits(ids.shape[0]) else None
        out, final = self.recurrent(self.embedding(ids), state)
        if self.stateful:
            self.carried = _detached(final)
        return self.head(out)

    def _fits(self, batch: int) -> bool:
        first = self.carried[0] if isinstance(self.carried, tuple) else self.carried
        return first is not None and first.shape[1] == batch

    def reset_state(self) -> None:
        """Forget the carried state: the next batch starts from zeros."""
        self.carried = None

    def training_state(self) -> dict[str, np.ndarray]:
        """The carried state, (num_layers · directions, N, hidden) each: h, and c for an LSTM; {} when none."""
        if self.carried is None:
            return {}
        parts = self.carried if isinstance(self.carried, tuple) else (self.carried,)
        return {f"carried.{index}": part.data for index, part in enumerate(parts)}

    def load_training_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Carry the state `training_state()` gave into the next batch."""
        parts = tuple(Tensor(arrays[f"carried.{index}"]) for index in range(len(arrays)))
        self.carried = None if not parts else parts if len(parts) > 1 else parts[0]

    def generate(self, text: Any, prompt: str = "", length: int = 300, temperature: float = 1.0,
                 top_k: int | None = None, seed: int | None = None) -> str:
        """Continue `prompt` by `length` characters sampled one at a time from the model.

        `text` gives the vocabulary (encode/decode). Probabilities are
        softmax(logits / temperature), optionally kept to the top_k most
        likely characters. With an empty prompt the first character is drawn
        uniformly.
        """
        length = check_integer("length", length, low=0)
        temperature = check_real("temperature", temperature, low=0.0, low_open=True)
        if top_k is not None:
            top_k = check_integer("top_k", top_k, low=1)
        rng = np.random.default_rng(seed)
        ids = text.encode(prompt) if prompt else rng.integers(0, self.vocab_size, 1)
        was_training, carried = self.training, self.carried
        self.eval()
        generated: list[int] = []
        try:
            with no_grad():
                out, state = self.recurrent(self.embedding(ids[None]))
                for _ in range(length):
                    logits = self.head(out).data[0, -1].astype(np.float64) / temperature
                    if top_k is not None and top_k < logits.size:
                        logits[logits < np.partition(logits, -top_k)[-top_k]] = -np.inf
                    probabilities = np.exp(logits - logits.max())
                    choice = int(rng.choice(logits.size, p=probabilities / probabilities.sum()))
                    generated.append(choice)
                    out, state = self.recurrent(self.embedding(np.array([[choice]])), state)
        finally:
            self.train(was_training)
            self.carried = carried
        return (prompt if prompt else text.decode(ids)) + text.decode(np.array(generated, dtype=np.int64))


def _detached(state: Any) -> Any:
    if isinstance(state, tuple):
        return tuple(part.detach() for part in state)
    return state.detach()

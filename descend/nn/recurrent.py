"""Recurrent layers (RNN, LSTM, GRU), their cells, and Embedding.

PyTorch's gate order and equations, so weights copied from torch.nn.LSTM
give the same outputs; the weights are stored (in, gates·hidden), the
dense-layer layout, and the oracle tests transpose torch's. A layer runs
each (layer, direction) over the whole sequence as one op
(descend.ops.recurrent); the cells are the same maths for one step,
composed from elementwise ops, for loops written by hand.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from descend import ops
from descend.checks import check_integer, check_real
from descend.errors import DescendTypeError, DescendValueError, ShapeError
from descend.nn import init
from descend.nn.layers import Dropout
from descend.nn.module import Module
from descend.nn.parameter import Parameter
from descend.ops.recurrent import gru, lstm, rnn
from descend.tensor import Tensor, array_of
from descend.seeding import generator

GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}


def _uniform(rng: np.random.Generator, size: int, shape: tuple[int, ...], fan_in_axes: Any = None) -> Parameter:
    bound = 1.0 / np.sqrt(size)  # PyTorch's initialisation of every recurrent weight and bias
    return Parameter(init.uniform(rng, bound, shape), fan_in_axes=fan_in_axes)


def _state_array(value: Any) -> Any:
    return value if isinstance(value, Tensor) else np.asarray(value)


class _Recurrent(Module):
    """The stack of (layer, direction) sequence ops shared by RNN, LSTM and GRU."""

    kind = "RNN"

    def _build(self, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, rng):
        self.input_size = check_integer("input_size", input_size, low=1)
        self.hidden_size = check_integer("hidden_size", hidden_size, low=1)
        self.num_layers = check_integer("num_layers", num_layers, low=1)
        self.bias, self.batch_first, self.bidirectional = bool(bias), bool(batch_first), bool(bidirectional)
        self.dropout = Dropout(check_real("dropout", dropout, low=0.0, high=1.0, high_open=True), rng=rng)
        rng = generator(rng)
        width = GATES[self.kind] * hidden_size
        self.directions = 2 if bidirectional else 1
        per_input = width * self.directions  # each direction's weight_ih row, for one input feature
        per_layer = (hidden_size + 2 * self.bias) * per_input  # weight_hh and the biases of both directions
        init.check_room(input_size * per_input + (num_layers - 1) * hidden_size * self.directions * per_input
                   + num_layers * per_layer, f"{type(self).__name__} of {num_layers} layers of {hidden_size}")
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * self.directions
            for suffix in self._suffixes(layer):
                setattr(self, f"weight_ih{suffix}", _uniform(rng, hidden_size, (layer_input, width), (0,)))
                setattr(self, f"weight_hh{suffix}", _uniform(rng, hidden_size, (hidden_size, width), (0,)))
                if bias:
                    setattr(self, f"bias_ih{suffix}", _uniform(rng, hidden_size, (width,)))
                    setattr(self, f"bias_hh{suffix}", _uniform(rng, hidden_size, (width,)))

    def _suffixes(self, layer: int) -> list[str]:
        return [f"_l{layer}"] + ([f"_l{layer}_reverse"] if self.bidirectional else [])

    def _weights(self, suffix: str) -> tuple[Any, ...]:
        if self.bias:
            return (getattr(self, f"weight_ih{suffix}"), getattr(self, f"weight_hh{suffix}"),
                    getattr(self, f"bias_ih{suffix}"), getattr(self, f"bias_hh{suffix}"))
        zeros = np.zeros(GATES[self.kind] * self.hidden_size, dtype=self.weight_ih_l0.dtype)
        return getattr(self, f"weight_ih{suffix}"), getattr(self, f"weight_hh{suffix}"), zeros, zeros

    def _check_input(self, x: Tensor) -> None:
        expected = "(N, T, {0})" if self.batch_first else "(T, N, {0})"
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise ShapeError(f"{self!r} got input of shape {x.shape}; expected {expected.format(self.input_size)}")

    def _initial(self, state: Any, batch: int, dtype: np.dtype, name: str) -> Any:
        shape = (self.num_layers * self.directions, batch, self.hidden_size)
        if state is None:
            return np.zeros(shape, dtype=dtype)
        state = _state_array(state)
        if tuple(state.shape) != shape:
            raise ShapeError(
                f"{self!r}: {name} must be (num_layers · directions, N, hidden_size) = {shape}; got {tuple(state.shape)}"
            )
        return state

    def _run(self, x: Tensor, h0: Any, c0: Any = None) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """The whole stack over time-major x (T, N, I): (top layer's outputs (T, N, D·H), final h's, final c's)."""
        steps = x.shape[0]
        layer_input, final_h, final_c = x, [], []
        for layer in range(self.num_layers):
            outputs = []
            for direction, suffix in enumerate(self._suffixes(layer)):
                index, reverse = layer * self.directions + direction, direction == 1
                if self.kind == "LSTM":
                    sequence, h_n, c_n = lstm(layer_input, h0[index], c0[index], *self._weights(suffix),
                                              reverse=reverse)
                    final_c.append(c_n)
                else:
                    if self.kind == "GRU":
                        sequence = gru(layer_input, h0[index], *self._weights(suffix), reverse=reverse)
                    else:
                        sequence = rnn(layer_input, h0[index], *self._weights(suffix),
                                       nonlinearity=self.nonlinearity, reverse=reverse)
                    h_n = sequence[0] if reverse else sequence[steps - 1]
                final_h.append(h_n)
                outputs.append(sequence)
            layer_input = outputs[0] if len(outputs) == 1 else ops.concat(outputs, axis=2)
            if layer < self.num_layers - 1:
                layer_input = self.dropout(layer_input)
        return layer_input, final_h, final_c

    def __repr__(self) -> str:
        extra = ", bidirectional" if self.bidirectional else ""
        return f"{type(self).__name__}({self.input_size} -> {self.hidden_size}, layers={self.num_layers}{extra})"


class RNN(_Recurrent):
    """Elman RNN: h_t = act(x_t W_ih + b_ih + h_{t−1} W_hh + b_hh), act tanh or relu, layer on layer.

    forward(x, h0=None) -> (output, h_n). x (T, N, input_size) ((N, T, ·) with batch_first);
    output (T, N, D·hidden_size) with D = 2 if bidirectional; h0 and h_n (num_layers·D, N, hidden_size).

    >>> output, h_n = RNN(3, 5, num_layers=2, rng=0)(Tensor(np.zeros((7, 2, 3))))
    >>> output.shape, h_n.shape
    ((7, 2, 5), (2, 2, 5))
    """

    kind = "RNN"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 rng: Any = None):
        if nonlinearity not in ("tanh", "relu"):
            raise DescendValueError(f"RNN: nonlinearity must be 'tanh' or 'relu'; got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        self._build(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, rng)

    def forward(self, x: Tensor, h0: Any = None) -> tuple[Tensor, Tensor]:
        """(output, h_n) for x; see the class docstring for the shapes."""
        self._check_input(x)
        x = x.transpose(1, 0, 2) if self.batch_first else x
        out, final_h, _ = self._run(x, self._initial(h0, x.shape[1], x.dtype, "h0"))
        return (out.transpose(1, 0, 2) if self.batch_first else out), ops.stack(final_h)


class GRU(RNN):
    """Gated recurrent unit, PyTorch's equations (gates r, z, n); forward(x, h0=None) -> (output, h_n) as RNN's.

    >>> output, h_n = GRU(3, 5, batch_first=True, rng=0)(Tensor(np.zeros((2, 7, 3))))
    >>> output.shape, h_n.shape
    ((2, 7, 5), (1, 2, 5))
    """

    kind = "GRU"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, rng: Any = None):
        self._build(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, rng)


class LSTM(_Recurrent):
    """Long short-term memory, PyTorch's equations (gates i, f, g, o).

    forward(x, state=None) -> (output, (h_n, c_n)); state is (h0, c0), each
    (num_layers·D, N, hidden_size); output (T, N, D·hidden_size), or (N, T, ·) with batch_first.

    >>> output, (h_n, c_n) = LSTM(3, 5, bidirectional=True, rng=0)(Tensor(np.zeros((7, 2, 3))))
    >>> output.shape, h_n.shape, c_n.shape
    ((7, 2, 10), (2, 2, 5), (2, 2, 5))
    """

    kind = "LSTM"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, rng: Any = None):
        self._build(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, rng)

    def forward(self, x: Tensor, state: Any = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """(output, (h_n, c_n)) for x; see the class docstring for the shapes."""
        self._check_input(x)
        x = x.transpose(1, 0, 2) if self.batch_first else x
        if state is not None and not (isinstance(state, (tuple, list)) and len(state) == 2):
            raise DescendTypeError(f"{self!r}: state must be a pair (h0, c0); got {type(state).__name__}")
        h0, c0 = state if state is not None else (None, None)
        h0 = self._initial(h0, x.shape[1], x.dtype, "h0")
        c0 = self._initial(c0, x.shape[1], x.dtype, "c0")
        out, final_h, final_c = self._run(x, h0, c0)
        return (out.transpose(1, 0, 2) if self.batch_first else out), (ops.stack(final_h), ops.stack(final_c))


class _Cell(Module):
    kind = "RNN"

    def _build(self, input_size: int, hidden_size: int, bias: bool, rng: Any) -> None:
        self.input_size = check_integer("input_size", input_size, low=1)
        self.hidden_size = check_integer("hidden_size", hidden_size, low=1)
        rng = generator(rng)
        width = GATES[self.kind] * hidden_size
        self.weight_ih = _uniform(rng, hidden_size, (input_size, width), (0,))
        self.weight_hh = _uniform(rng, hidden_size, (hidden_size, width), (0,))
        self.bias_ih = _uniform(rng, hidden_size, (width,)) if bias else None
        self.bias_hh = _uniform(rng, hidden_size, (width,)) if bias else None

    def _state(self, state: Any, x: Tensor, name: str) -> Any:
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise ShapeError(f"{type(self).__name__}: x must be (N, {self.input_size}); got {x.shape}")
        if state is None:
            return np.zeros((x.shape[0], self.hidden_size), dtype=x.dtype)
        state = _state_array(state)
        if tuple(state.shape) != (x.shape[0], self.hidden_size):
            raise ShapeError(
                f"{type(self).__name__}: {name} must be (N, hidden_size) = {(x.shape[0], self.hidden_size)}; "
                f"got {tuple(state.shape)}"
            )
        return state

    def _gates(self, x: Tensor, h: Any) -> tuple[Tensor, Tensor]:
        return ops.linear(x, self.weight_ih, self.bias_ih), ops.linear(h, self.weight_hh, self.bias_hh)


class RNNCell(_Cell):
    """One step of an Elman RNN: h' = act(x W_ih + b_ih + h W_hh + b_hh); x (N, input_size), h (N, hidden_size).

    >>> cell = RNNCell(3, 5, rng=0)
    >>> h = cell(Tensor(np.zeros((2, 3))))  # h starts at zeros
    >>> cell(Tensor(np.ones((2, 3))), h).shape
    (2, 5)
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 rng: Any = None):
        if nonlinearity not in ("tanh", "relu"):
            raise DescendValueError(f"RNNCell: nonlinearity must be 'tanh' or 'relu'; got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        self._build(input_size, hidden_size, bias, rng)

    def forward(self, x: Tensor, h: Any = None) -> Tensor:
        """The next hidden state (N, hidden_size)."""
        from_input, from_hidden = self._gates(x, self._state(h, x, "h"))
        pre = from_input + from_hidden
        return ops.tanh(pre) if self.nonlinearity == "tanh" else ops.relu(pre)


class LSTMCell(_Cell):
    """One LSTM step: gates i, f, g, o from x and h; c' = f·c + i·g; h' = o·tanh(c'). forward(x, (h, c)) -> (h', c').

    >>> cell = LSTMCell(3, 5, rng=0)
    >>> h, c = cell(Tensor(np.zeros((2, 3))))  # (h, c) start at zeros
    >>> [part.shape for part in cell(Tensor(np.ones((2, 3))), (h, c))]
    [(2, 5), (2, 5)]
    """

    kind = "LSTM"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, rng: Any = None):
        self._build(input_size, hidden_size, bias, rng)

    def forward(self, x: Tensor, state: Any = None) -> tuple[Tensor, Tensor]:
        """(h', c'), each (N, hidden_size)."""
        if state is not None and not (isinstance(state, (tuple, list)) and len(state) == 2):
            raise DescendTypeError(f"{type(self).__name__}: state must be a pair (h, c); got {type(state).__name__}")
        h, c = state if state is not None else (None, None)
        from_input, from_hidden = self._gates(x, self._state(h, x, "h"))
        i, f, g, o = ops.split(from_input + from_hidden, 4, axis=1)
        c_next = ops.sigmoid(f) * self._state(c, x, "c") + ops.sigmoid(i) * ops.tanh(g)
        return ops.sigmoid(o) * ops.tanh(c_next), c_next


class GRUCell(_Cell):
    """One GRU step: r, z = σ(·); n = tanh(x W_in + b_in + r·(h W_hn + b_hn)); h' = (1 − z)·n + z·h.

    >>> cell = GRUCell(3, 5, rng=0)
    >>> h = cell(Tensor(np.zeros((2, 3))))  # h starts at zeros
    >>> cell(Tensor(np.ones((2, 3))), h).shape
    (2, 5)
    """

    kind = "GRU"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, rng: Any = None):
        self._build(input_size, hidden_size, bias, rng)

    def forward(self, x: Tensor, h: Any = None) -> Tensor:
        """The next hidden state (N, hidden_size)."""
        h = self._state(h, x, "h")
        from_input, from_hidden = self._gates(x, h)
        input_r, input_z, input_n = ops.split(from_input, 3, axis=1)
        hidden_r, hidden_z, hidden_n = ops.split(from_hidden, 3, axis=1)
        r, z = ops.sigmoid(input_r + hidden_r), ops.sigmoid(input_z + hidden_z)
        n = ops.tanh(input_n + r * hidden_n)
        return n + z * (h - n)


class Embedding(Module):
    """A table of learned vectors: token ids (...) -> vectors (..., embedding_dim); weight (num_embeddings, embedding_dim).

    The lookup is indexing, so its gradient is GetItem's scatter-add; no code of its own.

    >>> Embedding(10, 4, rng=0)(np.array([[1, 2, 3], [4, 5, 6]])).shape
    (2, 3, 4)
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, rng: Any = None):
        self.num_embeddings = check_integer("num_embeddings", num_embeddings, low=1)
        self.embedding_dim = check_integer("embedding_dim", embedding_dim, low=1)
        self.weight = Parameter(init.standard_normal(generator(rng), (num_embeddings, embedding_dim)))

    def forward(self, ids: Any) -> Tensor:
        """The vectors of the ids: (...) int -> (..., embedding_dim)."""
        ids = array_of(ids)
        if ids.dtype.kind not in "iu":
            raise DescendTypeError(f"{self!r} needs integer token ids; got dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_embeddings):
            raise DescendValueError(
                f"{self!r}: token ids must lie in [0, {self.num_embeddings}); got values from {ids.min()} to {ids.max()}"
            )
        return ops.getitem(self.weight, ids)

    def __repr__(self) -> str:
        return f"Embedding({self.num_embeddings}, {self.embedding_dim})"

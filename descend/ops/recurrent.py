"""Recurrent layers over whole sequences: RNN, LSTM and GRU, each one op with backpropagation through time.

Layout, decided once: sequences are time-major, x (T, N, input_size); a
weight maps rows to gates as a dense layer does, w_ih (input_size, G·H) and
w_hh (H, G·H), with PyTorch's gate order (LSTM: i, f, g, o; GRU: r, z, n)
and its two biases b_ih, b_hh (G·H,). The oracle tests transpose torch's
(G·H, in) weights when they copy them.

Speed by construction: the input projections of all T steps are one
matrix product before the loop; inside the loop there is only the
recurrent product h @ w_hh and elementwise work on (N, G·H); after the
backward sweep, the weight gradients are one product each over all steps.
With `reverse=True` the op runs from the last step to the first (the
backward half of a bidirectional layer) and still returns outputs in time order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from descend import kernels
from descend.errors import DescendValueError, ShapeError
from descend.ops.base import Function, shape_of
from descend.tensor import Tensor


def _sigmoid_(values: np.ndarray) -> np.ndarray:
    """σ in place, as ½·tanh(½x) + ½: one transcendental call, no overflow for any x."""
    values *= 0.5
    np.tanh(values, out=values)
    values *= 0.5
    values += 0.5
    return values


def _project(xs: np.ndarray, w_ih: np.ndarray, *biases: np.ndarray) -> np.ndarray:
    """Every step's input projection in one product: (T, N, I) @ (I, G·H) + biases -> (T, N, G·H)."""
    steps, batch, features = xs.shape
    projected = (xs.reshape(steps * batch, features) @ w_ih).reshape(steps, batch, -1)
    for bias in biases:
        projected += bias
    return projected


def _in_processing_order(array: np.ndarray, reverse: bool) -> np.ndarray:
    return array[::-1] if reverse else array


def _check(x: Any, states: dict[str, Any], w_ih: Any, w_hh: Any, biases: dict[str, Any], gates: int,
           what: str) -> None:
    """Every shape against w_hh (hidden_size, gates · hidden_size), naming the first argument that does not fit."""
    shape, w_shape, hh_shape = shape_of(x), shape_of(w_ih), shape_of(w_hh)
    if len(hh_shape) != 2 or hh_shape[1] != gates * hh_shape[0]:
        raise ShapeError(f"{what}: w_hh must be (hidden_size, {gates} · hidden_size); got shape {hh_shape}")
    size = hh_shape[0]
    if len(w_shape) != 2 or w_shape[1] != gates * size:
        raise ShapeError(f"{what}: w_ih must be (input_size, {gates * size}) for hidden_size {size}; got {w_shape}")
    if len(shape) != 3 or shape[2] != w_shape[0]:
        raise ShapeError(
            f"{what}: x must be (T, N, {w_shape[0]}) for w_ih of shape {w_shape}; got x of shape {shape}"
        )
    if shape[0] == 0 or shape[1] == 0:
        raise ShapeError(f"{what}: x must hold at least one time step and one sequence; got x of shape {shape}")
    for name, state in states.items():
        state_shape = shape_of(state)
        if state_shape != (shape[1], size):
            raise ShapeError(f"{what}: {name} must be (N, hidden_size) = ({shape[1]}, {size}); got {state_shape}")
    for name, bias in biases.items():
        if shape_of(bias) != (gates * size,):
            raise ShapeError(
                f"{what}: {name} must be ({gates} · hidden_size,) = ({gates * size},); got {shape_of(bias)}"
            )


class _Recurrence(Function):
    """What the three layers share: the weight gradients after the sweep, one product each."""

    def _recurrent_transposed(self) -> np.ndarray:
        """W_hhᵀ as a contiguous copy: the backward multiplies by it at every step, twice as fast as by the view."""
        return np.ascontiguousarray(self.w_hh.T)

    def _parameter_grads(self, d_inputs: np.ndarray, d_hidden: np.ndarray) -> tuple[Any, ...]:
        """From the per-step gate gradients (T, N, G·H), in processing order: dx, dw_ih, dw_hh, db_ih, db_hh."""
        steps, batch, width = d_inputs.shape
        flat_inputs = d_inputs.reshape(steps * batch, width)
        flat_hidden = d_hidden.reshape(steps * batch, width)
        weights = self.weight_positions
        d_x = d_w_ih = d_w_hh = d_b_ih = d_b_hh = None
        if self.needs_input_grad[0]:
            d_x = _in_processing_order((flat_inputs @ self.w_ih.T).reshape(steps, batch, -1), self.reverse)
        if self.needs_input_grad[weights]:
            d_w_ih = self.xs.reshape(steps * batch, -1).T @ flat_inputs
        if self.needs_input_grad[weights + 1]:
            d_w_hh = self.hidden[:steps].reshape(steps * batch, -1).T @ flat_hidden
        if self.needs_input_grad[weights + 2]:
            d_b_ih = flat_inputs.sum(axis=0)
        if self.needs_input_grad[weights + 3]:
            d_b_hh = d_b_ih if d_b_ih is not None and d_hidden is d_inputs else flat_hidden.sum(axis=0)
        return d_x, d_w_ih, d_w_hh, d_b_ih, d_b_hh


class RNNLayer(_Recurrence):
    """h_t = act(x_t W_ih + b_ih + h_{t−1} W_hh + b_hh), act tanh or relu; over x (T, N, I) -> hidden states (T, N, H).

    Backward: d(pre)_t = dh_t · act'(·); dh_{t−1} = d(pre)_t W_hhᵀ.
    """

    notation = "rnn({0})"
    weight_positions = 2

    def forward(self, x, h0, w_ih, w_hh, b_ih, b_hh):
        self.xs, self.w_ih, self.w_hh = _in_processing_order(x, self.reverse), w_ih, w_hh
        steps = x.shape[0]
        pre = _project(self.xs, w_ih, b_ih, b_hh)
        self.hidden = np.empty((steps + 1, *h0.shape), dtype=pre.dtype)
        self.hidden[0] = h0
        for k in range(steps):
            state = pre[k]
            state += self.hidden[k] @ w_hh
            if self.nonlinearity == "tanh":
                np.tanh(state, out=self.hidden[k + 1])
            else:
                np.maximum(state, 0, out=self.hidden[k + 1])
        return _in_processing_order(self.hidden[1:], self.reverse)

    def backward(self, grad):
        grad = _in_processing_order(grad, self.reverse)
        steps = grad.shape[0]
        out = self.hidden[1:]
        slope = 1 - out * out if self.nonlinearity == "tanh" else (out > 0).astype(out.dtype)  # all steps at once
        d_pre = np.empty_like(grad)
        d_h = np.zeros_like(grad[0])
        recurrent_t = self._recurrent_transposed()
        for k in range(steps - 1, -1, -1):
            d_h += grad[k]
            np.multiply(d_h, slope[k], out=d_pre[k])
            d_h = d_pre[k] @ recurrent_t
        d_x, d_w_ih, d_w_hh, d_b_ih, d_b_hh = self._parameter_grads(d_pre, d_pre)
        return d_x, d_h, d_w_ih, d_w_hh, d_b_ih, d_b_hh


def rnn(x: Any, h0: Any, w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any, nonlinearity: str = "tanh",
        reverse: bool = False) -> Tensor:
    """A tanh or relu RNN over a whole sequence: x (T, N, I), h0 (N, H) -> hidden states (T, N, H)."""
    if nonlinearity not in ("tanh", "relu"):
        raise DescendValueError(f"rnn: nonlinearity must be 'tanh' or 'relu'; got {nonlinearity!r}")
    _check(x, {"h0": h0}, w_ih, w_hh, {"b_ih": b_ih, "b_hh": b_hh}, 1, "rnn")
    return RNNLayer.apply(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity=nonlinearity, reverse=reverse)


def _by_gate(weight: np.ndarray) -> np.ndarray:
    """A dense-layout weight (..., 4H) as one contiguous block per gate: (I, 4H) -> (4, I, H); a bias (4H,) -> (4, 1, H)."""
    rows = weight.reshape(-1, 4, weight.shape[-1] // 4)
    return np.ascontiguousarray(rows.transpose(1, 0, 2))


class LSTMLayer(_Recurrence):
    """LSTM over x (T, N, I) from (h0, c0) (N, H): three outputs, the hidden states (T, N, H), h_T and c_T (N, H).

    i, f, o = σ(·), g = tanh(·) of x_t W_ih + b_ih + h_{t−1} W_hh + b_hh (PyTorch's order);
    c_t = f·c_{t−1} + i·g;  h_t = o·tanh(c_t).
    Backward, per step from the last: dc += dh·o·(1 − tanh²c); di = dc·g; df = dc·c_{t−1};
    dg = dc·i; do = dh·tanh c; each through its activation's derivative; dc_{t−1} = dc·f; dh_{t−1} = d(gates) W_hhᵀ.
    """

    notation = "lstm({0})"
    weight_positions = 3

    def forward(self, x, h0, c0, w_ih, w_hh, b_ih, b_hh):
        self.xs, self.w_ih, self.w_hh = _in_processing_order(x, self.reverse), w_ih, w_hh
        steps, size = x.shape[0], h0.shape[1]
        # σ(x) = ½·tanh(½x) + ½: halving the sigmoid gates' columns of the weights and biases once, up front,
        # lets one tanh over all four gates do all four activations at every step
        half = np.where(np.arange(4 * size) // size == 2, 1.0, 0.5).astype(x.dtype)
        self.kernels = kernels.for_arrays(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
        if self.kernels is not None:
            return self._forward_compiled(h0, c0, w_ih * half, w_hh * half, (b_ih + b_hh) * half)
        # Gate-major (4, T, N, H): each gate of a step is one contiguous block, so every elementwise operation
        # below runs over contiguous memory (three times faster than over a gate's columns of an (N, 4H) row)
        self.gates = np.matmul(self.xs.reshape(steps * x.shape[1], -1), _by_gate(w_ih * half))
        self.gates = self.gates.reshape(4, steps, *h0.shape)
        bias = _by_gate((b_ih + b_hh) * half)  # added to each step's small product: no pass over all steps
        recurrent_weights = _by_gate(w_hh * half)
        self.hidden = np.empty((steps + 1, *h0.shape), dtype=self.gates.dtype)
        cells = np.empty_like(self.hidden)
        self.hidden[0], cells[0] = h0, c0
        if self.recording:
            self.slopes = np.empty_like(self.gates)
            self.cell_from_hidden = np.empty((steps, *h0.shape), dtype=self.gates.dtype)
        tanh_cell = np.empty_like(h0, dtype=self.gates.dtype)
        product = np.empty_like(self.gates[:, 0])
        for k in range(steps):
            gates = self.gates[:, k]
            np.matmul(self.hidden[k], recurrent_weights, out=product)
            product += bias
            gates += product
            np.tanh(gates, out=gates)
            for sigmoid in (gates[:2], gates[3]):
                sigmoid *= 0.5
                sigmoid += 0.5
            i, f, g, o = gates
            cell = cells[k + 1]
            np.multiply(f, cells[k], out=cell)
            cell += i * g
            np.tanh(cell, out=tanh_cell)
            np.multiply(o, tanh_cell, out=self.hidden[k + 1])
            if self.recording:
                self._save_slopes(k, gates, cells[k], tanh_cell)
        # copies: an output the caller may change must not be the saved state, nor keep all the cells alive
        outputs = _in_processing_order(self.hidden[1:], self.reverse).copy()
        return outputs, self.hidden[steps].copy(), cells[steps].copy()

    def _forward_compiled(self, h0: np.ndarray, c0: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
                          bias: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The forward on the kernels, from the halved weights and bias: gates as rows (T, N, 4H), the biases in
        the input projection, each step one product and one kernel call (descend.kernels.recurrent)."""
        steps = self.xs.shape[0]
        self.gates = _project(self.xs, w_ih, bias)
        self.hidden = np.empty((steps + 1, *h0.shape), dtype=self.gates.dtype)
        cells = np.empty_like(self.hidden)
        self.hidden[0], cells[0] = h0, c0
        self.slopes = np.empty_like(self.gates) if self.recording else None
        self.cell_from_hidden = np.empty_like(self.hidden[1:]) if self.recording else None
        product = np.empty_like(self.gates[0])
        for k in range(steps):
            np.matmul(self.hidden[k], w_hh, out=product)
            self.kernels.lstm_step(self.gates[k], product, cells[k], cells[k + 1], self.hidden[k + 1],
                                   self.slopes[k] if self.recording else None,
                                   self.cell_from_hidden[k] if self.recording else None)
        outputs = _in_processing_order(self.hidden[1:], self.reverse).copy()
        return outputs, self.hidden[steps].copy(), cells[steps].copy()

    def _save_slopes(self, k: int, gates: np.ndarray, previous_cell: np.ndarray, tanh_cell: np.ndarray) -> None:
        """Step k's local derivatives, computed while its gates (4, N, H) are still in cache (a pass over all
        steps later reads them back from memory at a quarter of the speed).

        slopes[:, k] = [g·i(1−i), c_{t−1}·f(1−f), i(1−g²), tanh c·o(1−o)]: what multiplies dc (first three) or
        dh (last) in each gate's pre-activation gradient; cell_from_hidden[k] = o(1 − tanh²c).
        """
        i, f, g, o = gates
        slopes = self.slopes[:, k]
        slope_i, slope_f, slope_g, slope_o = slopes
        np.subtract(1, gates[:2], out=slopes[:2])
        slopes[:2] *= gates[:2]
        slope_i *= g
        slope_f *= previous_cell
        np.multiply(g, g, out=slope_g)
        np.subtract(1, slope_g, out=slope_g)
        slope_g *= i
        np.subtract(1, o, out=slope_o)
        slope_o *= o
        slope_o *= tanh_cell
        from_hidden = self.cell_from_hidden[k]
        np.multiply(tanh_cell, tanh_cell, out=from_hidden)
        np.subtract(1, from_hidden, out=from_hidden)
        from_hidden *= o

    def backward(self, grad, grad_h_n, grad_c_n):
        steps = grad.shape[0]
        size = self.w_hh.shape[0]
        grad_hidden = _in_processing_order(grad, self.reverse)
        if self.kernels is not None:
            return self._backward_compiled(np.ascontiguousarray(grad_hidden), grad_h_n, grad_c_n)
        forget = self.gates[1]
        # d_gates is (T, N, 4H), the dense layout, for the products; seen gate-major it matches the slopes
        d_gates = np.empty((steps, grad.shape[1], 4 * size), dtype=self.gates.dtype)
        d_by_gate = d_gates.reshape(steps, -1, 4, size).transpose(0, 2, 1, 3)
        d_h, d_c = grad_h_n.copy(), grad_c_n.copy()  # the final states' gradients start the sweep back in time
        recurrent_t = self._recurrent_transposed()
        for k in range(steps - 1, -1, -1):
            d_h += grad_hidden[k]
            d_c += d_h * self.cell_from_hidden[k]
            np.multiply(self.slopes[:3, k], d_c, out=d_by_gate[k, :3])
            np.multiply(self.slopes[3, k], d_h, out=d_by_gate[k, 3])
            d_c *= forget[k]
            np.matmul(d_gates[k], recurrent_t, out=d_h)
        d_x, d_w_ih, d_w_hh, d_b_ih, d_b_hh = self._parameter_grads(d_gates, d_gates)
        return d_x, d_h, d_c, d_w_ih, d_w_hh, d_b_ih, d_b_hh

    def _backward_compiled(self, grad_hidden: np.ndarray, grad_h_n: np.ndarray,
                           grad_c_n: np.ndarray) -> tuple[np.ndarray | None, ...]:
        """The backward on the kernels: each step one kernel call for the gate gradients, then one product."""
        d_gates = np.empty_like(self.gates)
        d_h, d_c = grad_h_n.copy(), grad_c_n.copy()
        recurrent_t = self._recurrent_transposed()
        for k in range(grad_hidden.shape[0] - 1, -1, -1):
            self.kernels.lstm_step_backward(d_h, grad_hidden[k], d_c, self.slopes[k], self.cell_from_hidden[k],
                                            self.gates[k], d_gates[k])
            np.matmul(d_gates[k], recurrent_t, out=d_h)
        d_x, d_w_ih, d_w_hh, d_b_ih, d_b_hh = self._parameter_grads(d_gates, d_gates)
        return d_x, d_h, d_c, d_w_ih, d_w_hh, d_b_ih, d_b_hh


def lstm(x: Any, h0: Any, c0: Any, w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any,
         reverse: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """An LSTM over a whole sequence: x (T, N, I), h0 and c0 (N, H) -> (hidden states (T, N, H), h_T, c_T (N, H)).

    h_T and c_T are the states after the last step processed (the first time step when `reverse`).
    """
    _check(x, {"h0": h0, "c0": c0}, w_ih, w_hh, {"b_ih": b_ih, "b_hh": b_hh}, 4, "lstm")
    return LSTMLayer.apply(x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse=reverse)


class GRULayer(_Recurrence):
    """GRU over x (T, N, I) from h0 (N, H): returns the hidden states (T, N, H). PyTorch's equations:

    r = σ(x W_ir + b_ir + h W_hr + b_hr);  z = σ(x W_iz + b_iz + h W_hz + b_hz);
    n = tanh(x W_in + b_in + r·(h W_hn + b_hn));  h' = (1 − z)·n + z·h.
    Backward: dn = dh'(1 − z)(1 − n²); dz = dh'(h − n)·z(1 − z); dr = dn·(h W_hn + b_hn)·r(1 − r);
    the hidden product's n-part gets dn·r; dh = dh'·z + d(hidden gates) W_hhᵀ.
    """

    notation = "gru({0})"
    weight_positions = 2

    def forward(self, x, h0, w_ih, w_hh, b_ih, b_hh):
        self.xs, self.w_ih, self.w_hh = _in_processing_order(x, self.reverse), w_ih, w_hh
        steps, size = x.shape[0], h0.shape[1]
        self.gates = _project(self.xs, w_ih, b_ih)  # r, z, n: the input parts now, the activations after the loop
        self.hidden_n = np.empty((steps, *h0.shape), dtype=self.gates.dtype)
        self.hidden = np.empty((steps + 1, *h0.shape), dtype=self.gates.dtype)
        self.hidden[0] = h0
        self.kernels = kernels.for_arrays(self.gates, h0, w_hh, b_hh)
        if self.kernels is not None:  # each step: one product into the same buffer, the rest in one kernel call
            product = np.empty_like(self.gates[0])
            for k in range(steps):
                np.matmul(self.hidden[k], w_hh, out=product)
                self.kernels.gru_step(self.gates[k], product, b_hh, self.hidden[k], self.hidden_n[k],
                                      self.hidden[k + 1])
            return _in_processing_order(self.hidden[1:], self.reverse).copy()
        for k in range(steps):
            gates, previous = self.gates[k], self.hidden[k]
            recurrent = previous @ w_hh
            recurrent += b_hh
            gates[:, : 2 * size] += recurrent[:, : 2 * size]
            _sigmoid_(gates[:, : 2 * size])
            r, z, n = gates[:, :size], gates[:, size : 2 * size], gates[:, 2 * size :]
            self.hidden_n[k] = recurrent[:, 2 * size :]
            n += r * self.hidden_n[k]
            np.tanh(n, out=n)
            np.multiply(z, previous - n, out=self.hidden[k + 1])
            self.hidden[k + 1] += n
        return _in_processing_order(self.hidden[1:], self.reverse).copy()

    def backward(self, grad):
        grad = _in_processing_order(grad, self.reverse)
        steps, size = grad.shape[0], self.w_hh.shape[0]
        d_inputs = np.empty_like(self.gates)
        d_hidden = np.empty_like(self.gates)
        d_h = np.zeros_like(grad[0])
        recurrent_t = self._recurrent_transposed()
        if self.kernels is not None:  # each step's gate math in one fused pass
            grad = np.ascontiguousarray(grad)  # the kernel reads rows of contiguous numbers
            carried, product = np.empty_like(d_h), np.empty_like(d_h)
            for k in range(steps - 1, -1, -1):
                self.kernels.gru_step_backward(d_h, grad[k], self.gates[k], self.hidden_n[k], self.hidden[k],
                                               d_inputs[k], d_hidden[k], carried)
                np.matmul(d_hidden[k], recurrent_t, out=product)
                np.add(carried, product, out=d_h)
        else:
            r, z, n = (self.gates[:, :, j * size : (j + 1) * size] for j in range(3))
            previous = self.hidden[:-1]
            # the step-independent factors, for all steps at once: dn = dh'·n_slope, dr = dn·r_slope, dz = dh'·z_slope
            n_slope = (1 - z) * (1 - n * n)
            r_slope = self.hidden_n * r * (1 - r)
            z_slope = (previous - n) * z * (1 - z)
            for k in range(steps - 1, -1, -1):
                d_h += grad[k]
                d_in, d_hid = d_inputs[k], d_hidden[k]
                d_n = np.multiply(d_h, n_slope[k], out=d_in[:, 2 * size :])
                np.multiply(d_n, r_slope[k], out=d_in[:, :size])
                np.multiply(d_h, z_slope[k], out=d_in[:, size : 2 * size])
                d_hid[:, : 2 * size] = d_in[:, : 2 * size]
                np.multiply(d_n, r[k], out=d_hid[:, 2 * size :])
                d_h = d_h * z[k] + d_hid @ recurrent_t
        d_x, d_w_ih, d_w_hh, d_b_ih, d_b_hh = self._parameter_grads(d_inputs, d_hidden)
        return d_x, d_h, d_w_ih, d_w_hh, d_b_ih, d_b_hh


def gru(x: Any, h0: Any, w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any, reverse: bool = False) -> Tensor:
    """A GRU over a whole sequence: x (T, N, I), h0 (N, H) -> hidden states (T, N, H)."""
    _check(x, {"h0": h0}, w_ih, w_hh, {"b_ih": b_ih, "b_hh": b_hh}, 3, "gru")
    return GRULayer.apply(x, h0, w_ih, w_hh, b_ih, b_hh, reverse=reverse)

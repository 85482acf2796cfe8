"""The recurrent cells' gate math, compiled: one fused pass per time step, forward and backward.

The reference (descend/ops/recurrent.py) makes ten or more NumPy passes
over a step's (N, G·H) gates; here each number is read once, its gate
values stay in registers, and the rows of the batch are split over
threads. The step's recurrent product stays a BLAS call between two
kernel calls. The arithmetic is the reference's, operation for operation;
tanh is the C library's where NumPy has its own vectorised one, so results
agree to a few units in the last place, not to the bit.
"""

from __future__ import annotations

import math

from numba import njit, prange


@njit(parallel=True, cache=True, nogil=True)
def lstm_step_forward(gates, product, bias, previous_cell, cell, hidden, slopes, cell_from_hidden, recording):
    """One LSTM step over gate-major arrays (4, N, H), σ gates' pre-activations pre-halved (σ(x) = ½·tanh(½x) + ½).

    gates <- activations of gates + (product + bias); cell = f·c_{t−1} + i·g; hidden = o·tanh(cell);
    when recording: slopes (4, N, H) and cell_from_hidden (N, H) as LSTMLayer._save_slopes defines them.
    """
    size = gates.shape[2]
    one, half = gates.dtype.type(1), gates.dtype.type(0.5)  # typed: a bare 0.5 would make float32 math float64
    for n in prange(gates.shape[1]):
        for h in range(size):
            i = half * math.tanh(gates[0, n, h] + (product[0, n, h] + bias[0, 0, h])) + half
            f = half * math.tanh(gates[1, n, h] + (product[1, n, h] + bias[1, 0, h])) + half
            g = math.tanh(gates[2, n, h] + (product[2, n, h] + bias[2, 0, h]))
            o = half * math.tanh(gates[3, n, h] + (product[3, n, h] + bias[3, 0, h])) + half
            gates[0, n, h], gates[1, n, h], gates[2, n, h], gates[3, n, h] = i, f, g, o
            previous = previous_cell[n, h]
            value = f * previous + i * g
            cell[n, h] = value
            tanh_cell = math.tanh(value)
            hidden[n, h] = o * tanh_cell
            if recording:
                slopes[0, n, h] = (one - i) * i * g
                slopes[1, n, h] = (one - f) * f * previous
                slopes[2, n, h] = (one - g * g) * i
                slopes[3, n, h] = (one - o) * o * tanh_cell
                cell_from_hidden[n, h] = (one - tanh_cell * tanh_cell) * o


@njit(parallel=True, cache=True, nogil=True)
def lstm_step_backward(d_h, grad_hidden, d_c, slopes, cell_from_hidden, forget, d_gates):
    """One LSTM step back: dh = d_h + grad_hidden; dc += dh·o(1 − tanh²c); d_gates (N, 4H) from the slopes;
    d_c <- dc·f, in place (the carried cell gradient)."""
    size = d_c.shape[1]
    for n in prange(d_c.shape[0]):
        for h in range(size):
            dh = d_h[n, h] + grad_hidden[n, h]
            dc = d_c[n, h] + dh * cell_from_hidden[n, h]
            d_gates[n, h] = slopes[0, n, h] * dc
            d_gates[n, size + h] = slopes[1, n, h] * dc
            d_gates[n, 2 * size + h] = slopes[2, n, h] * dc
            d_gates[n, 3 * size + h] = slopes[3, n, h] * dh
            d_c[n, h] = dc * forget[n, h]


@njit(parallel=True, cache=True, nogil=True)
def gru_step_forward(gates, recurrent, bias, previous, hidden_n, hidden):
    """One GRU step: gates (N, 3H) holds x W_ih + b_ih and becomes (r, z, n); recurrent = h W_hh (N, 3H);
    hidden_n <- (h W_hh + b_hh)'s n part; hidden = z·(h − n) + n."""
    size = previous.shape[1]
    half = gates.dtype.type(0.5)
    for row in prange(gates.shape[0]):
        for h in range(size):
            r = half * math.tanh(half * (gates[row, h] + (recurrent[row, h] + bias[h]))) + half
            z = half * math.tanh(half * (gates[row, size + h] + (recurrent[row, size + h] + bias[size + h]))) + half
            from_hidden = recurrent[row, 2 * size + h] + bias[2 * size + h]
            n = math.tanh(gates[row, 2 * size + h] + r * from_hidden)
            gates[row, h], gates[row, size + h], gates[row, 2 * size + h] = r, z, n
            hidden_n[row, h] = from_hidden
            hidden[row, h] = z * (previous[row, h] - n) + n


@njit(parallel=True, cache=True, nogil=True)
def gru_step_backward(d_h, grad_hidden, gates, hidden_n, previous, d_inputs, d_hidden, carried):
    """One GRU step back from dh = d_h + grad_hidden: d_inputs and d_hidden (N, 3H), the gate gradients
    for x's and h's products; carried = dh·z, to which the caller adds d_hidden W_hhᵀ."""
    size = previous.shape[1]
    one = gates.dtype.type(1)
    for row in prange(d_h.shape[0]):
        for h in range(size):
            r, z, n = gates[row, h], gates[row, size + h], gates[row, 2 * size + h]
            dh = d_h[row, h] + grad_hidden[row, h]
            d_n = dh * ((one - z) * (one - n * n))
            d_r = d_n * (hidden_n[row, h] * r * (one - r))
            d_z = dh * ((previous[row, h] - n) * z * (one - z))
            d_inputs[row, h], d_inputs[row, size + h], d_inputs[row, 2 * size + h] = d_r, d_z, d_n
            d_hidden[row, h], d_hidden[row, size + h], d_hidden[row, 2 * size + h] = d_r, d_z, d_n * r
            carried[row, h] = dh * z

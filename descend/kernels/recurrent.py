"""The recurrent cells' gate math, compiled: one fused pass per time step, forward and backward.

The reference (descend/ops/recurrent.py) makes ten or more NumPy passes
over a step's gates; here a row of the batch is read once, its loops over
contiguous numbers vectorise, and the step's recurrent product stays a BLAS
call between two kernel calls. Gates are rows (N, G·H) in PyTorch's order,
every array C-ordered. The arithmetic is the reference's, but the LSTM adds
its biases once for all steps and tanh is descend.kernels.tanh's, so results
agree with the reference to rounding, not to the bit.
"""

from __future__ import annotations

from numba import prange

from descend.kernels.compiler import kernel

from descend.kernels.tanh import tanh


@kernel
def lstm_step_forward(gates, product, previous_cell, cell, hidden, slopes, cell_from_hidden, recording):
    """One LSTM step over rows (N, 4H) of gates i, f, g, o, the σ gates' pre-activations pre-halved
    (σ(x) = ½·tanh(½x) + ½), the biases already in `gates`.

    gates <- activations of gates + product; cell = f·c_{t−1} + i·g; hidden = o·tanh(cell); when recording,
    slopes (N, 4H) = [g·i(1−i), c_{t−1}·f(1−f), i(1−g²), tanh c·o(1−o)] (what multiplies dc, or dh for the
    last, in each gate's pre-activation gradient) and cell_from_hidden (N, H) = o(1 − tanh²c).
    """
    size = cell.shape[1]
    one, half = gates.dtype.type(1), gates.dtype.type(0.5)
    # every loop writes one array, reading others: loops LLVM can prove safe to vectorise
    for n in prange(gates.shape[0]):
        row, products = gates[n], product[n]
        i, f, g, o = row[:size], row[size : 2 * size], row[2 * size : 3 * size], row[3 * size :]
        for j in range(4 * size):
            row[j] = tanh(row[j] + products[j])
        for sigmoid in (i, f, o):
            for h in range(size):
                sigmoid[h] = half * sigmoid[h] + half
        previous, cells, hiddens = previous_cell[n], cell[n], hidden[n]
        for h in range(size):
            cells[h] = f[h] * previous[h] + i[h] * g[h]
        for h in range(size):
            hiddens[h] = tanh(cells[h])  # tanh c for now; times o last
        if recording:
            slope = slopes[n]
            slope_i, slope_f = slope[:size], slope[size : 2 * size]
            slope_g, slope_o = slope[2 * size : 3 * size], slope[3 * size :]
            from_hidden = cell_from_hidden[n]
            for h in range(size):
                slope_i[h] = (one - i[h]) * i[h] * g[h]
            for h in range(size):
                slope_f[h] = (one - f[h]) * f[h] * previous[h]
            for h in range(size):
                slope_g[h] = (one - g[h] * g[h]) * i[h]
            for h in range(size):
                slope_o[h] = (one - o[h]) * o[h] * hiddens[h]
            for h in range(size):
                from_hidden[h] = (one - hiddens[h] * hiddens[h]) * o[h]
        for h in range(size):
            hiddens[h] = o[h] * hiddens[h]


@kernel
def lstm_step_backward(d_h, grad_hidden, d_c, slopes, cell_from_hidden, gates, d_gates):
    """One LSTM step back: dh = d_h + grad_hidden; dc += dh·o(1 − tanh²c); d_gates (N, 4H) from the slopes;
    d_c <- dc·f, in place (the carried cell gradient; f is gates' second quarter)."""
    size = d_c.shape[1]
    for n in prange(d_c.shape[0]):  # every loop writes one array; dh = d_h + grad_hidden is formed where used
        d_h_row, grad_row, cells, from_hidden = d_h[n], grad_hidden[n], d_c[n], cell_from_hidden[n]
        slope, forget, d_row = slopes[n], gates[n, size : 2 * size], d_gates[n]
        for h in range(size):
            cells[h] = cells[h] + (d_h_row[h] + grad_row[h]) * from_hidden[h]
        for gate in range(3):
            for h in range(size):
                d_row[gate * size + h] = slope[gate * size + h] * cells[h]
        for h in range(size):
            d_row[3 * size + h] = slope[3 * size + h] * (d_h_row[h] + grad_row[h])
        for h in range(size):
            cells[h] = cells[h] * forget[h]


@kernel
def gru_step_forward(gates, recurrent, bias, previous, hidden_n, hidden):
    """One GRU step: gates (N, 3H) holds x W_ih + b_ih and becomes (r, z, n); recurrent = h W_hh (N, 3H);
    hidden_n <- (h W_hh + b_hh)'s n part; hidden = z·(h − n) + n."""
    size = previous.shape[1]
    half = gates.dtype.type(0.5)
    for n in prange(gates.shape[0]):  # every loop writes one array, so that each vectorises
        row, products, before, from_hidden, after = gates[n], recurrent[n], previous[n], hidden_n[n], hidden[n]
        for j in range(2 * size):  # r and z
            row[j] = half * tanh(half * (row[j] + (products[j] + bias[j]))) + half
        for h in range(size):
            from_hidden[h] = products[2 * size + h] + bias[2 * size + h]
        r, z, candidate = row[:size], row[size : 2 * size], row[2 * size :]
        for h in range(size):
            candidate[h] = tanh(candidate[h] + r[h] * from_hidden[h])
        for h in range(size):
            after[h] = z[h] * (before[h] - candidate[h]) + candidate[h]


@kernel
def gru_step_backward(d_h, grad_hidden, gates, hidden_n, previous, d_inputs, d_hidden, carried):
    """One GRU step back from dh = d_h + grad_hidden: d_inputs and d_hidden (N, 3H), the gate gradients
    for x's and h's products; carried = dh·z, to which the caller adds d_hidden W_hhᵀ."""
    size = previous.shape[1]
    one = gates.dtype.type(1)
    for n in prange(d_h.shape[0]):  # every loop writes one array; dh = d_h + grad_hidden is formed where used
        row, d_in, d_hid, d_h_row, grad_row = gates[n], d_inputs[n], d_hidden[n], d_h[n], grad_hidden[n]
        r, z, candidate = row[:size], row[size : 2 * size], row[2 * size :]
        d_r, d_z, d_candidate = d_in[:size], d_in[size : 2 * size], d_in[2 * size :]
        from_hidden, before = hidden_n[n], previous[n]
        for h in range(size):
            d_candidate[h] = (d_h_row[h] + grad_row[h]) * ((one - z[h]) * (one - candidate[h] * candidate[h]))
        for h in range(size):
            d_r[h] = d_candidate[h] * (from_hidden[h] * r[h] * (one - r[h]))
        for h in range(size):
            d_z[h] = (d_h_row[h] + grad_row[h]) * ((before[h] - candidate[h]) * z[h] * (one - z[h]))
        for j in range(2 * size):
            d_hid[j] = d_in[j]
        for h in range(size):
            d_hid[2 * size + h] = d_candidate[h] * r[h]
        carry = carried[n]
        for h in range(size):
            carry[h] = (d_h_row[h] + grad_row[h]) * z[h]

"""The compiled inner loops of HOGWILD!: one SGD pass over a worker's share of the examples.

Why threads and numba: an update touches ~20 of 100,000 weights and costs well under a microsecond,
so the workers must share the weight vector itself (not copies that are merged) and must not pay for
Python per example. numba compiles these loops to machine code with `nogil=True`, so each worker is a
plain Python thread whose kernel runs with the GIL released, truly in parallel, on the one NumPy array
of weights. Processes would need the weights in shared memory too and would add nothing but start-up
time; the dense engine (descend.hogwild.dense) uses processes because its step runs Python.

Every kernel takes the locking mode (descend.hogwild.locks): with "none" it reads and writes the
shared weights with no synchronisation at all, which is the whole point of the paper. The kernels
call libc through ctypes, which numba cannot cache on disk: each process compiles them on first use
(a few seconds).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from descend.hogwild.atomics import atomic_add, atomic_read
from descend.hogwild.locks import LOCK_CODES, pthread_functions

_lock, _unlock, _wait, _broadcast = pthread_functions()
MUTEX, ROUND_ROBIN = LOCK_CODES["mutex"], LOCK_CODES["round-robin"]
LOSSES = ("log", "hinge", "squared")
LOG, HINGE, SQUARED = range(3)


@njit(nogil=True)
def _next_turn(active: np.ndarray, me: int) -> int:
    """The next worker after `me`, cyclically, that has not finished its share (me itself if none)."""
    workers = active.size
    for offset in range(1, workers + 1):
        other = (me + offset) % workers
        if active[other]:
            return other
    return me


@njit(nogil=True)
def _enter(mode, mutex, condition, turn, me):
    if mode == MUTEX:
        _lock(mutex.ctypes.data)
    elif mode == ROUND_ROBIN:
        _lock(mutex.ctypes.data)
        while turn[0] != me:
            _wait(condition.ctypes.data, mutex.ctypes.data)


@njit(nogil=True)
def _leave(mode, mutex, condition, turn, active, me):
    if mode == MUTEX:
        _unlock(mutex.ctypes.data)
    elif mode == ROUND_ROBIN:
        turn[0] = _next_turn(active, me)
        _broadcast(condition.ctypes.data)
        _unlock(mutex.ctypes.data)


@njit(nogil=True)
def _finish(mode, mutex, condition, turn, active, me):
    """Round-robin: leave the rotation, handing the turn on if it was ours, so nobody waits for us."""
    if mode == ROUND_ROBIN:
        _lock(mutex.ctypes.data)
        active[me] = 0
        if turn[0] == me:
            turn[0] = _next_turn(active, me)
        _broadcast(condition.ctypes.data)
        _unlock(mutex.ctypes.data)


@njit(nogil=True)
def _loss_and_slope(kind, score, label):
    """The loss of one example and its derivative with respect to the score s = w·x + b; label is ±1.

    log: ln(1 + e^(−ys)), slope −y/(1 + e^(ys));  hinge: max(0, 1 − ys), slope −y where ys < 1;
    squared: ½(s − y)², slope s − y.
    """
    if kind == LOG:
        margin = label * score
        if margin > 0:  # the two forms keep e^x from overflowing either way
            tail = math.exp(-margin)
            return math.log1p(tail), -label * tail / (1.0 + tail)
        tail = math.exp(margin)
        return -margin + math.log1p(tail), -label / (1.0 + tail)
    if kind == HINGE:
        margin = label * score
        if margin < 1.0:
            return 1.0 - margin, -label
        return 0.0, 0.0
    difference = score - label
    return 0.5 * difference * difference, difference


@njit(nogil=True)
def _decayed(lr, decay, update, n_examples):
    """lr / (1 + decay · epochs so far): decay = 1 halves the rate after one epoch."""
    return lr / (1.0 + decay * update / n_examples)


#: rows gathered at a time: their features fit in a core's L2 cache
CHUNK_ROWS = 1024


@njit(nogil=True)
def _gather_rows(rows, indptr, indices, values, labels, offsets, chunk_indices, chunk_values, chunk_labels):
    """Copy the listed CSR rows into contiguous chunk buffers, in order; returns the buffers (grown if needed).

    Rows in shuffled order are scattered over memory, and an SGD step needs its row before it can start:
    a random read per row costs a memory round trip (~100 ns) that the step cannot hide. The copies of
    different rows do not depend on each other, so the processor overlaps their memory reads: the gather
    then the steps over contiguous memory are several times faster than stepping through X directly.
    offsets (len(rows) + 1,) gets the start of each row's features in the buffers.
    """
    needed = 0
    for p in range(rows.size):
        needed += indptr[rows[p] + 1] - indptr[rows[p]]
    if needed > chunk_indices.size:
        chunk_indices = np.empty(needed, dtype=indices.dtype)
        chunk_values = np.empty(needed, dtype=values.dtype)
    fill = 0
    for p in range(rows.size):
        row = rows[p]
        offsets[p] = fill
        for k in range(indptr[row], indptr[row + 1]):
            chunk_indices[fill] = indices[k]
            chunk_values[fill] = values[k]
            fill += 1
        chunk_labels[p] = labels[row]
    offsets[rows.size] = fill
    return chunk_indices, chunk_values


@njit(nogil=True)
def sparse_linear_pass(indptr, indices, values, labels, rows, weights, intercept, touch_scale,
                       loss_kind, lr, decay, n_examples, first_update, update_stride,
                       alpha, l1, intercept_scale, mode, mutex, condition, turn, active, me):
    """SGD on a linear model over the CSR rows listed in `rows`, in that order; returns the sum of their losses.

    For row i with features x (indices[indptr[i]:indptr[i+1]], values alike) and label y = ±1:
        s = w·x + b;  g = loss'(s);  for each j in x:  w_j −= lr_t (g x_j + alpha c_j w_j)
    then L1 truncation w_j ← sign(w_j) max(|w_j| − lr_t l1 c_j, 0), and b −= intercept_scale · lr_t g. The regulariser is
    spread over the examples that touch each weight (c_j = n / (rows with feature j), the paper's
    splitting), so a step writes only the row's own coordinates and its expectation is the full gradient.
    The p-th row of this share is update first_update + p·update_stride of the whole run (lr_t decays with it).
    The intercept is shared like every weight, but it is the one coordinate every row of every worker
    writes, so it is read and added to atomically (descend.hogwild.atomics says why a plain store loses
    steps there). A worker that kept its intercept steps back to write them less often would steer on
    a stale intercept (with 3 workers in turn and 64 rows held back, it oscillates and the loss diverges).
    Shapes: weights (n_features,) float32 and intercept (1,) float64, shared by all workers.
    """
    total = 0.0
    regularized = alpha > 0.0 or l1 > 0.0
    seen_intercept = atomic_read(intercept, 0)
    offsets = np.empty(CHUNK_ROWS + 1, dtype=np.int64)
    chunk_indices = np.empty(0, dtype=indices.dtype)
    chunk_values = np.empty(0, dtype=values.dtype)
    chunk_labels = np.empty(CHUNK_ROWS, dtype=labels.dtype)
    for chunk_start in range(0, rows.size, CHUNK_ROWS):
        chunk = rows[chunk_start : chunk_start + CHUNK_ROWS]
        chunk_indices, chunk_values = _gather_rows(chunk, indptr, indices, values, labels, offsets,
                                                   chunk_indices, chunk_values, chunk_labels)
        for p in range(chunk.size):
            position = chunk_start + p
            step_lr = _decayed(lr, decay, first_update + position * update_stride, n_examples)
            _enter(mode, mutex, condition, turn, me)
            start, stop = offsets[p], offsets[p + 1]
            score = seen_intercept
            for k in range(start, stop):
                score += weights[chunk_indices[k]] * chunk_values[k]
            loss, slope = _loss_and_slope(loss_kind, score, chunk_labels[p])
            total += loss
            for k in range(start, stop):
                feature = chunk_indices[k]
                if regularized:
                    weight = weights[feature]
                    weight -= step_lr * (slope * chunk_values[k] + alpha * touch_scale[feature] * weight)
                    if l1 > 0.0:
                        shrink = step_lr * l1 * touch_scale[feature]
                        weight = max(weight - shrink, 0.0) if weight > 0.0 else min(weight + shrink, 0.0)
                    weights[feature] = weight
                else:  # the plain step reads nothing more than the weight it writes
                    weights[feature] -= step_lr * slope * chunk_values[k]
            if intercept_scale > 0.0:
                step = -intercept_scale * step_lr * slope
                # the add hands back the value it changed: the next row starts from that, one step fresh,
                # so the intercept's cache line moves between cores once per row, not twice
                seen_intercept = atomic_add(intercept, 0, step) + step
            _leave(mode, mutex, condition, turn, active, me)
    _finish(mode, mutex, condition, turn, active, me)
    return total


@njit(nogil=True)
def factorization_pass(rows, cols, values, order, left, right, lr, decay, n_examples, first_update,
                       update_stride, l2, mode, mutex, condition, turn, active, me):
    """SGD on Z ≈ L Rᵀ over the observed entries listed in `order`; returns the sum of squared errors.

    For entry (u, v, z):  e = z − L_u·R_v;  L_u += lr_t (e R_v − l2 L_u);  R_v += lr_t (e L_u − l2 R_v),
    both from the values before the step. Shapes: left (n_rows, rank), right (n_cols, rank), shared.
    The entries are gathered CHUNK_ROWS at a time first, for the reason _gather_rows gives.
    """
    rank = left.shape[1]
    total = 0.0
    chunk_rows = np.empty(CHUNK_ROWS, dtype=rows.dtype)
    chunk_cols = np.empty(CHUNK_ROWS, dtype=cols.dtype)
    chunk_values = np.empty(CHUNK_ROWS, dtype=values.dtype)
    for chunk_start in range(0, order.size, CHUNK_ROWS):
        chunk = order[chunk_start : chunk_start + CHUNK_ROWS]
        for p in range(chunk.size):
            chunk_rows[p], chunk_cols[p], chunk_values[p] = rows[chunk[p]], cols[chunk[p]], values[chunk[p]]
        for p in range(chunk.size):
            u, v = chunk_rows[p], chunk_cols[p]
            step_lr = _decayed(lr, decay, first_update + (chunk_start + p) * update_stride, n_examples)
            _enter(mode, mutex, condition, turn, me)
            prediction = 0.0
            for r in range(rank):
                prediction += left[u, r] * right[v, r]
            error = chunk_values[p] - prediction
            total += error * error
            for r in range(rank):
                a, b = left[u, r], right[v, r]
                left[u, r] = a + step_lr * (error * b - l2 * a)
                right[v, r] = b + step_lr * (error * a - l2 * b)
            _leave(mode, mutex, condition, turn, active, me)
    _finish(mode, mutex, condition, turn, active, me)
    return total

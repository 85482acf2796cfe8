"""Elementwise kernels: ReLU and the dense layer's bias, one pass each, split over threads.

Each number is computed by one thread, with the reference's operations in
the reference's order, so the results are the reference's to the bit
whatever the thread count.
"""

from __future__ import annotations

from numba import prange

from descend.kernels.compiler import kernel

@kernel
def relu_forward(x, out, positive):
    """out = max(x, 0) (NaN stays NaN, as np.maximum keeps it); positive = x > 0; all flat."""
    zero = out.dtype.type(0)
    for index in prange(x.size):
        value = x[index]
        above = value > 0
        positive[index] = above
        out[index] = value if above or value != value else zero


@kernel
def relu_backward(grad, positive, grad_x):
    """grad_x = grad · positive (a NaN gradient stays NaN even where x ≤ 0, as the reference's product keeps it)."""
    one, zero = grad_x.dtype.type(1), grad_x.dtype.type(0)
    for index in prange(grad.size):
        grad_x[index] = grad[index] * (one if positive[index] else zero)


@kernel
def add_bias(out, bias):
    """out (N, F) += bias (F,) on every row, in place."""
    for row in prange(out.shape[0]):
        for feature in range(out.shape[1]):
            out[row, feature] += bias[feature]


@kernel
def bias_grad(grad, total):
    """total (F,) = Σ over the rows of grad (N, F), row after row for each feature (NumPy's order for a sum
    down a C-ordered array), the features split over threads."""
    rows, features = grad.shape
    for feature in prange(features):
        running = grad[0, feature]
        for row in range(1, rows):
            running += grad[row, feature]
        total[feature] = running

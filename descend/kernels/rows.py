"""Row-wise kernels: log-softmax for the softmax cross-entropy, and the capsules' squash; one thread per block of rows.

A row's own sums (Σ e^x, |s|²) run left to right, where NumPy adds eight
partial sums for rows of eight or more: the results agree with the
reference to rounding (a few units in the last place), not to the bit,
and are the same for any thread count.
"""

from __future__ import annotations

import math

from numba import prange

from descend.kernels.compiler import kernel


@kernel
def log_softmax_rows(logits, log_probs):
    """log_probs (N, C) = logits − max − log Σ e^(logits − max), row by row."""
    classes = logits.shape[1]
    for row in prange(logits.shape[0]):
        largest = logits[row, 0]
        for column in range(1, classes):
            value = logits[row, column]
            if value > largest or value != value:
                largest = value
        total = logits.dtype.type(0)
        for column in range(classes):
            total += math.exp(logits[row, column] - largest)
        shift = math.log(total)
        for column in range(classes):
            log_probs[row, column] = (logits[row, column] - largest) - shift


@kernel
def softmax_cross_entropy_grad(log_probs, labels, scale, grad_logits):
    """grad_logits (N, C) = (softmax − onehot(labels)) · scale, scale = the upstream gradient / N."""
    one = grad_logits.dtype.type(1)
    for row in prange(log_probs.shape[0]):
        for column in range(log_probs.shape[1]):
            probability = math.exp(log_probs[row, column])
            if column == labels[row]:
                probability -= one
            grad_logits[row, column] = probability * scale


@kernel
def squash_rows(s, epsilon, out, scale, slope, recording):
    """Each row of s (M, D) squashed: out = c·s with n = |s|², c = n / ((1 + n)√(n + ε)); scale[row] = c and,
    when recording, slope[row] = (1 / (1 + n) − n / (2(n + ε))) / ((1 + n)√(n + ε))."""
    one, two = s.dtype.type(1), s.dtype.type(2)
    width = s.shape[1]
    for row in prange(s.shape[0]):
        norm = s.dtype.type(0)
        for column in range(width):
            norm += s[row, column] * s[row, column]
        root = math.sqrt(norm + epsilon)
        factor = norm / ((one + norm) * root)
        scale[row] = factor
        if recording:
            slope[row] = (one / (one + norm) - norm / (two * (norm + epsilon))) / ((one + norm) * root)
        for column in range(width):
            out[row, column] = factor * s[row, column]


@kernel
def squash_rows_backward(grad, s, scale, slope, grad_s):
    """grad_s (M, D) = c·grad + 2·slope·(grad · s)·s, row by row."""
    two = s.dtype.type(2)
    width = s.shape[1]
    for row in prange(s.shape[0]):
        along = s.dtype.type(0)
        for column in range(width):
            along += grad[row, column] * s[row, column]
        for column in range(width):
            grad_s[row, column] = scale[row] * grad[row, column] + two * slope[row] * along * s[row, column]

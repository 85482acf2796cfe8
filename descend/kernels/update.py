"""The optimizers' updates over the flat parameter buffer, compiled: one pass instead of five to ten.

Each weight's update reads its gradient and state once and writes the
weight and state once; the buffer is split over threads. The arithmetic
is the reference's (descend/optim/), operation for operation, with every
hyperparameter already cast to the buffer's dtype by the caller, so the
weights are the reference's to the bit.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from descend.kernels.compiler import helper, kernel


@helper
def _regularized(weight, grad, weight_decay, l1):
    """grad + weight_decay·w + l1·sign(w), each term only when its strength is not 0 (as the reference adds it)."""
    if weight_decay != 0:
        grad = grad + weight_decay * weight
    if l1 != 0:
        grad = grad + l1 * np.sign(weight)
    return grad


@kernel
def sgd(weights, grads, velocity, lr, momentum, nesterov, weight_decay, l1):
    """w -= lr·g; with momentum (velocity.size > 0) v = μv + g and g = v, or g + μv when nesterov."""
    with_momentum = velocity.size > 0
    for index in prange(weights.size):
        grad = _regularized(weights[index], grads[index], weight_decay, l1)
        if with_momentum:
            speed = velocity[index] * momentum + grad
            velocity[index] = speed
            grad = grad + momentum * speed if nesterov else speed
        weights[index] -= lr * grad


@kernel
def adam(weights, grads, mean, square, lr_corrected, beta1, one_minus_beta1, beta2, one_minus_beta2,
         root_correction, eps, weight_decay):
    """m = β₁m + (1 − β₁)g; v = β₂v + (1 − β₂)g²; w -= lr_corrected·m / (√v / root_correction + eps)."""
    zero = weights.dtype.type(0)
    for index in prange(weights.size):
        grad = _regularized(weights[index], grads[index], weight_decay, zero)
        first = mean[index] * beta1 + one_minus_beta1 * grad
        second = square[index] * beta2 + one_minus_beta2 * (grad * grad)
        mean[index], square[index] = first, second
        weights[index] -= lr_corrected * first / (math.sqrt(second) / root_correction + eps)


@kernel
def rmsprop(weights, grads, square, velocity, lr, alpha, one_minus_alpha, eps, momentum, weight_decay):
    """s = αs + (1 − α)g²; step = g / (√s + eps); with momentum (velocity.size > 0) b = μb + step; w -= lr·step."""
    zero = weights.dtype.type(0)
    with_momentum = velocity.size > 0
    for index in prange(weights.size):
        grad = _regularized(weights[index], grads[index], weight_decay, zero)
        mean_square = square[index] * alpha + one_minus_alpha * (grad * grad)
        square[index] = mean_square
        step = grad / (math.sqrt(mean_square) + eps)
        if with_momentum:
            step = velocity[index] * momentum + step
            velocity[index] = step
        weights[index] -= lr * step

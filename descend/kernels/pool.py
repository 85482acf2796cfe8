"""Pooling loops, compiled: one thread per block of (sample, channel) planes.

Each plane is read once per output cell's window, in the reference's order
of kernel offsets (row by row), so a maximum and its first position are the
reference's exactly. The backward adds each output's gradient into its
window, going through the outputs from the last to the first: an input
position then receives its gradients in the order of the kernel offsets
that reach it, the reference's order, so even overlapping windows give the
reference's bits. Planes never share memory, so threads never write the
same number.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

#: where a window's maximum is NaN (or lies in the padding): the gradient goes nowhere, as in the reference
NOWHERE = -1


@njit(parallel=True, cache=True, nogil=True)
def max_pool_forward(x, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out, where):
    """out[n, c, oy, ox] = max of the window (padding −∞); where[...] = its first position in the plane, or NOWHERE."""
    samples, channels, height, width = x.shape
    out_h, out_w = out.shape[2], out.shape[3]
    for plane in prange(samples * channels):
        n, c = plane // channels, plane % channels
        for oy in range(out_h):
            for ox in range(out_w):
                best, position = np.inf, NOWHERE
                first = True
                for i in range(kernel_h):
                    y = oy * stride_h + i - pad_h
                    for j in range(kernel_w):
                        column = ox * stride_w + j - pad_w
                        inside = 0 <= y < height and 0 <= column < width
                        value = x[n, c, y, column] if inside else -np.inf
                        if value != value:  # NaN wins the maximum and, equal to nothing, takes no gradient
                            best, position = value, NOWHERE
                            break
                        if first or value > best:
                            best, position, first = value, y * width + column if inside else NOWHERE, False
                    if best != best:
                        break
                out[n, c, oy, ox] = best
                where[n, c, oy, ox] = position


@njit(parallel=True, cache=True, nogil=True)
def max_pool_backward(grad, where, grad_x):
    """grad_x (zeros, N, C, H, W) += each output's gradient at its window's maximum."""
    samples, channels, height, width = grad_x.shape
    out_h, out_w = grad.shape[2], grad.shape[3]
    for plane in prange(samples * channels):
        n, c = plane // channels, plane % channels
        for oy in range(out_h - 1, -1, -1):
            for ox in range(out_w - 1, -1, -1):
                position = where[n, c, oy, ox]
                if position != NOWHERE:
                    grad_x[n, c, position // width, position % width] += grad[n, c, oy, ox]


@njit(parallel=True, cache=True, nogil=True)
def avg_pool_forward(x, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, scale, out):
    """out = the window's sum, offset by offset (padding adds 0), times scale = 1 / (kernel_h · kernel_w)."""
    samples, channels, height, width = x.shape
    out_h, out_w = out.shape[2], out.shape[3]
    zero = out.dtype.type(0)
    for plane in prange(samples * channels):
        n, c = plane // channels, plane % channels
        for oy in range(out_h):
            for ox in range(out_w):
                total = zero
                for i in range(kernel_h):
                    y = oy * stride_h + i - pad_h
                    for j in range(kernel_w):
                        column = ox * stride_w + j - pad_w
                        if i == 0 and j == 0:
                            total = x[n, c, y, column] if 0 <= y < height and 0 <= column < width else zero
                        elif 0 <= y < height and 0 <= column < width:
                            total += x[n, c, y, column]
                out[n, c, oy, ox] = total * scale


@njit(parallel=True, cache=True, nogil=True)
def avg_pool_backward(grad, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, scale, grad_x):
    """grad_x (zeros, N, C, H, W) += grad · scale at every position of each output's window."""
    samples, channels, height, width = grad_x.shape
    out_h, out_w = grad.shape[2], grad.shape[3]
    for plane in prange(samples * channels):
        n, c = plane // channels, plane % channels
        for oy in range(out_h - 1, -1, -1):
            for ox in range(out_w - 1, -1, -1):
                share = grad[n, c, oy, ox] * scale
                for i in range(kernel_h):
                    y = oy * stride_h + i - pad_h
                    if 0 <= y < height:
                        for j in range(kernel_w):
                            column = ox * stride_w + j - pad_w
                            if 0 <= column < width:
                                grad_x[n, c, y, column] += share

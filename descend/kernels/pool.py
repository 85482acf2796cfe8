"""Pooling loops, compiled: one thread per block of (sample, channel) planes.

Max pooling takes its planes as one C-ordered (P, H, W) array, in the
input's own memory order (a convolution's output is channel-major), so
every read of a window is a read of contiguous rows.

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
from numba import prange

from descend.kernels.compiler import kernel

#: where a window's maximum is NaN (or lies in the padding): the gradient goes nowhere, as in the reference
NOWHERE = -1


@kernel
def max_pool_forward(planes, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out, where):
    """out (P, Ho, Wo) = each window's maximum over planes (P, H, W) (padding −∞); where = its first position in
    the plane, or NOWHERE.

    The loops visit only the window's part inside the plane. The padding's −∞ can be the maximum only when
    every value is −∞, and the first position is then the window's top-left corner: NOWHERE when that is padding.
    """
    height, width = planes.shape[1], planes.shape[2]
    for plane in prange(planes.shape[0]):
        image = planes[plane]
        for oy in range(out.shape[1]):
            top = oy * stride_h - pad_h
            first_row, end_row = max(top, 0), min(top + kernel_h, height)
            for ox in range(out.shape[2]):
                left = ox * stride_w - pad_w
                first_column, end_column = max(left, 0), min(left + kernel_w, width)
                best, position = image[first_row, first_column], first_row * width + first_column
                for y in range(first_row, end_row):
                    for column in range(first_column, end_column):
                        value = image[y, column]
                        if value > best or value != value:
                            best, position = value, y * width + column
                if best != best:  # NaN wins the maximum and, equal to nothing, takes no gradient
                    position = NOWHERE
                elif best == -np.inf and (top < 0 or left < 0):
                    position = NOWHERE
                out[plane, oy, ox] = best
                where[plane, oy, ox] = position


@kernel
def max_pool_2x2(planes, out, where):
    """max_pool_forward for the common window, 2x2 with stride 2 and no padding, its four reads written out."""
    width = planes.shape[2]
    for plane in prange(planes.shape[0]):
        image = planes[plane]
        for oy in range(out.shape[1]):
            y = 2 * oy
            for ox in range(out.shape[2]):
                column = 2 * ox
                a, b = image[y, column], image[y, column + 1]
                c, d = image[y + 1, column], image[y + 1, column + 1]
                best, position = a, y * width + column
                if b > best:
                    best, position = b, y * width + column + 1
                if c > best:
                    best, position = c, (y + 1) * width + column
                if d > best:
                    best, position = d, (y + 1) * width + column + 1
                if a != a or b != b or c != c or d != d:
                    best, position = a + b + c + d, NOWHERE  # NaN
                out[plane, oy, ox] = best
                where[plane, oy, ox] = position


@kernel
def max_pool_2x2_batch_last(x, out, where):
    """max_pool_2x2 for a batch-last layout: x (C, H, W, N), out and where (C, Ho, Wo, N); the innermost loop
    runs over the batch, N contiguous numbers. where holds plane positions, as max_pool_forward's."""
    width, samples = x.shape[2], x.shape[3]
    for c in prange(x.shape[0]):
        for oy in range(out.shape[1]):
            y = 2 * oy
            for ox in range(out.shape[2]):
                column = 2 * ox
                top_left, top_right = x[c, y, column], x[c, y, column + 1]
                bottom_left, bottom_right = x[c, y + 1, column], x[c, y + 1, column + 1]
                best, position = out[c, oy, ox], where[c, oy, ox]
                for n in range(samples):
                    a, b, d, e = top_left[n], top_right[n], bottom_left[n], bottom_right[n]
                    value, at = a, y * width + column
                    if b > value:
                        value, at = b, y * width + column + 1
                    if d > value:
                        value, at = d, (y + 1) * width + column
                    if e > value:
                        value, at = e, (y + 1) * width + column + 1
                    if a != a or b != b or d != d or e != e:
                        value, at = a + b + d + e, NOWHERE  # NaN
                    best[n], position[n] = value, at


@kernel
def max_pool_2x2_batch_last_backward(grad, where, grad_x):
    """max_pool_2x2_backward for a batch-last layout: grad and where (C, Ho, Wo, N), grad_x (C, H, W, N)."""
    height, width = grad_x.shape[1], grad_x.shape[2]
    zero = grad_x.dtype.type(0)
    for c in prange(grad_x.shape[0]):
        if height % 2:
            grad_x[c, height - 1] = zero
        if width % 2:
            grad_x[c, :, width - 1] = zero
        for oy in range(grad.shape[1]):
            y = 2 * oy
            for ox in range(grad.shape[2]):
                column = 2 * ox
                gradient, position = grad[c, oy, ox], where[c, oy, ox]
                top_left, top_right = grad_x[c, y, column], grad_x[c, y, column + 1]
                bottom_left, bottom_right = grad_x[c, y + 1, column], grad_x[c, y + 1, column + 1]
                first = y * width + column
                for n in range(grad.shape[3]):
                    value, at = gradient[n], position[n]
                    top_left[n] = value if at == first else zero
                    top_right[n] = value if at == first + 1 else zero
                    bottom_left[n] = value if at == first + width else zero
                    bottom_right[n] = value if at == first + width + 1 else zero


@kernel
def max_pool_2x2_backward(grad, where, grad_x):
    """max_pool_backward for max_pool_2x2: the windows do not overlap, so each input number is written once,
    the gradient at the maximum and 0 beside it (and 0 in a last odd row or column that no window reads)."""
    height, width = grad_x.shape[1], grad_x.shape[2]
    zero = grad_x.dtype.type(0)
    for plane in prange(grad_x.shape[0]):
        target = grad_x[plane]
        if height % 2:
            target[height - 1, :] = zero
        if width % 2:
            target[:, width - 1] = zero
        for oy in range(grad.shape[1]):
            y = 2 * oy
            for ox in range(grad.shape[2]):
                column = 2 * ox
                position, value = where[plane, oy, ox], grad[plane, oy, ox]
                target[y, column] = value if position == y * width + column else zero
                target[y, column + 1] = value if position == y * width + column + 1 else zero
                target[y + 1, column] = value if position == (y + 1) * width + column else zero
                target[y + 1, column + 1] = value if position == (y + 1) * width + column + 1 else zero


@kernel
def max_pool_backward(grad, where, grad_x):
    """grad_x (P, H, W), every number written: each output's gradient (P, Ho, Wo) added at its window's maximum,
    0 elsewhere."""
    width = grad_x.shape[2]
    zero = grad_x.dtype.type(0)
    for plane in prange(grad_x.shape[0]):
        target = grad_x[plane]
        target[:, :] = zero
        for oy in range(grad.shape[1] - 1, -1, -1):
            for ox in range(grad.shape[2] - 1, -1, -1):
                position = where[plane, oy, ox]
                if position != NOWHERE:
                    target[position // width, position % width] += grad[plane, oy, ox]


@kernel
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


@kernel
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

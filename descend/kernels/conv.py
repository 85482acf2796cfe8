"""im2col, col2im and the channel bias, compiled: the work around a convolution's products, split over channels.

The padding is never made: each kernel offset's range of outputs that read
inside the image is worked out once (`_inside`), so the copies run without
a test per number, and the rest is 0 (im2col) or skipped (col2im). Columns
are (C, kh, kw, N, Ho, Wo) both ways. col2im adds the columns back kernel
offset by kernel offset, the reference's order, so each input position's sum
is the reference's to the bit. The bias gradient's sums run in lanes, not
NumPy's pairwise order: they agree with the reference to rounding.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from descend.kernels.compiler import helper, kernel


@helper
def _inside(out_size, stride, offset, size):
    """The outputs o in [first, end) whose input position o·stride + offset lies in [0, size)."""
    first = 0 if offset >= 0 else (-offset + stride - 1) // stride
    end = 0 if offset >= size else min(out_size, (size - 1 - offset) // stride + 1)
    return first, max(first, end)


@kernel
def im2col(cols, x, x_strides, height, width, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w):
    """cols (C, kh, kw, N, Ho, Wo)[c, i, j, n, oy, ox] = x[n, c, oy·sh + i·dh − ph, ox·sw + j·dw − pw] (0 outside).

    x is the input's numbers flat in memory order, `x_strides` its (N, C, H, W) strides in numbers, each
    (height, width) plane inside it; cols is written flat. Flat offsets let a row with unit steps copy as one
    contiguous run, which vectorises.
    """
    channels, kernel_h, kernel_w, samples, out_h, out_w = cols.shape
    step_n, step_c, step_y, step_x = x_strides
    flat = cols.reshape(-1)
    zero = flat.dtype.type(0)
    for task in prange(channels * kernel_h * kernel_w):
        c = task // (kernel_h * kernel_w)
        i = task // kernel_w % kernel_h
        j = task % kernel_w
        first_row, end_row = _inside(out_h, stride_h, i * dilation_h - pad_h, height)
        first_column, end_column = _inside(out_w, stride_w, j * dilation_w - pad_w, width)
        shift = j * dilation_w - pad_w
        for n in range(samples):
            start = ((task * samples + n) * out_h) * out_w
            for oy in range(out_h):
                row = start + oy * out_w
                if oy < first_row or oy >= end_row:
                    for ox in range(out_w):
                        flat[row + ox] = zero
                    continue
                source = n * step_n + c * step_c + (oy * stride_h + i * dilation_h - pad_h) * step_y
                for ox in range(first_column):
                    flat[row + ox] = zero
                if stride_w == 1 and step_x == 1:
                    source += shift
                    for ox in range(first_column, end_column):
                        flat[row + ox] = x[source + ox]
                else:
                    for ox in range(first_column, end_column):
                        flat[row + ox] = x[source + (ox * stride_w + shift) * step_x]
                for ox in range(end_column, out_w):
                    flat[row + ox] = zero
@kernel
def col2im(grad_cols, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, grad_x):
    """grad_x (C, N, H, W), every number written: the columns grad_cols (C, kh, kw, N, Ho, Wo) added back at the
    positions im2col read them from, kernel offset by kernel offset (the reference's order), 0 where none was."""
    channels, kernel_h, kernel_w, samples, out_h, out_w = grad_cols.shape
    height, width = grad_x.shape[2], grad_x.shape[3]
    zero = grad_x.dtype.type(0)
    for c in prange(channels):
        for n in range(samples):
            for y in range(height):
                for column in range(width):
                    grad_x[c, n, y, column] = zero
        for i in range(kernel_h):
            first_row, end_row = _inside(out_h, stride_h, i * dilation_h - pad_h, height)
            for j in range(kernel_w):
                first_column, end_column = _inside(out_w, stride_w, j * dilation_w - pad_w, width)
                for n in range(samples):
                    for oy in range(first_row, end_row):
                        y = oy * stride_h + i * dilation_h - pad_h
                        for ox in range(first_column, end_column):
                            grad_x[c, n, y, ox * stride_w + j * dilation_w - pad_w] += grad_cols[c, i, j, n, oy, ox]


@kernel
def add_channel_bias(out, bias):
    """out (O, M) += bias (O,) down each row, in place: a convolution's output, channel-major."""
    for channel in prange(out.shape[0]):
        row, value = out[channel], bias[channel]
        for m in range(out.shape[1]):
            row[m] += value


#: independent running sums per row of channel_sums: one vector register's worth, so the loop vectorises
LANES = 16


@kernel
def channel_sums(grad, total):
    """total (O,) = each row of grad (O, M) summed: LANES running sums over the row, then combined in order."""
    width = grad.shape[1]
    whole = width - width % LANES
    for channel in prange(grad.shape[0]):
        row = grad[channel]
        lanes = np.zeros(LANES, dtype=total.dtype)
        for start in range(0, whole, LANES):
            for lane in range(LANES):
                lanes[lane] += row[start + lane]
        running = total.dtype.type(0)
        for lane in range(LANES):
            running += lanes[lane]
        for m in range(whole, width):
            running += row[m]
        total[channel] = running

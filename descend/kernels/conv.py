"""im2col, col2im and the channel bias, compiled: the work around a convolution's products, split over channels.

The padding is never made: a position outside the image reads as 0 (im2col)
or is skipped (col2im). Columns have the batch last, (C, kh, kw, Ho, Wo, N),
both ways, so the product lands as (O, Ho, Wo, N): a convolution's output on
the kernels has the batch as its fastest axis, and every copy here runs over
rows of N contiguous numbers. col2im adds the columns back kernel offset by
kernel offset, the reference's order, so each input position's sum is the
reference's to the bit.
The bias gradient's sums run in lanes, not NumPy's pairwise order: they agree
with the reference to rounding.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from descend.kernels.compiler import kernel


@kernel
def im2col(cols, x, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w):
    """cols (C, kh, kw, Ho, Wo, N)[c, i, j, oy, ox, n] = x[n, c, oy·sh + i·dh − ph, ox·sw + j·dw − pw] (0 outside).

    The batch is the last axis: the innermost loop copies one position of every image, a contiguous run
    when x has the batch last too (a convolution's output here does).
    """
    samples, channels, height, width = x.shape
    out_h, out_w = cols.shape[3], cols.shape[4]
    zero = cols.dtype.type(0)
    for task in prange(channels * kernel_h * kernel_w):
        c = task // (kernel_h * kernel_w)
        i = task // kernel_w % kernel_h
        j = task % kernel_w
        for oy in range(out_h):
            y = oy * stride_h + i * dilation_h - pad_h
            for ox in range(out_w):
                column = ox * stride_w + j * dilation_w - pad_w
                if 0 <= y < height and 0 <= column < width:
                    for n in range(samples):
                        cols[c, i, j, oy, ox, n] = x[n, c, y, column]
                else:
                    for n in range(samples):
                        cols[c, i, j, oy, ox, n] = zero


@kernel
def col2im(grad_cols, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, grad_x):
    """grad_x (zeros, C, H, W, N) += each column of grad_cols (C, kh, kw, Ho, Wo, N) where im2col read it."""
    channels, kernel_h, kernel_w, out_h, out_w, samples = grad_cols.shape
    height, width = grad_x.shape[1], grad_x.shape[2]
    for c in prange(channels):
        for i in range(kernel_h):
            for j in range(kernel_w):
                for oy in range(out_h):
                    y = oy * stride_h + i * dilation_h - pad_h
                    if y < 0 or y >= height:
                        continue
                    for ox in range(out_w):
                        column = ox * stride_w + j * dilation_w - pad_w
                        if 0 <= column < width:
                            for n in range(samples):
                                grad_x[c, y, column, n] += grad_cols[c, i, j, oy, ox, n]


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

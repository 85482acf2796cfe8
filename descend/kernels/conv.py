"""im2col and col2im, compiled: the copies around a convolution's products, one thread per block of channels.

The padding is never made: a position outside the image reads as 0 (im2col)
or is skipped (col2im). col2im adds the columns back kernel offset by kernel
offset, the reference's order, so each input position's sum is the
reference's to the bit.
"""

from __future__ import annotations

from numba import prange

from descend.kernels.compiler import kernel


@kernel
def im2col(x, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, cols):
    """cols (C, kh, kw, N, Ho, Wo)[c, i, j, n, oy, ox] = x[n, c, oy·sh + i·dh − ph, ox·sw + j·dw − pw] (0 outside)."""
    samples, channels, height, width = x.shape
    out_h, out_w = cols.shape[4], cols.shape[5]
    zero = cols.dtype.type(0)
    for task in prange(channels * kernel_h * kernel_w):
        c = task // (kernel_h * kernel_w)
        i = task // kernel_w % kernel_h
        j = task % kernel_w
        for n in range(samples):
            for oy in range(out_h):
                y = oy * stride_h + i * dilation_h - pad_h
                if y < 0 or y >= height:
                    for ox in range(out_w):
                        cols[c, i, j, n, oy, ox] = zero
                    continue
                for ox in range(out_w):
                    column = ox * stride_w + j * dilation_w - pad_w
                    cols[c, i, j, n, oy, ox] = x[n, c, y, column] if 0 <= column < width else zero


@kernel
def col2im(grad_cols, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, grad_x):
    """grad_x (zeros, C, H, W, N) += every column of grad_cols (C, kh, kw, Ho, Wo, N) at the position it was read from."""
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

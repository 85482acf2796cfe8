"""tanh inside compiled kernels: a rational approximation for float32, the C library's for float64.

The C library's tanhf is a scalar call that no loop can vectorise (about
50 times slower here than NumPy's own SIMD tanh over a (64, 1024) gate
block). For float32 the kernels use tanh(x) ≈ x·P(x²) / Q(x²), P of degree 6
and Q of degree 3 in x², on x clamped to ±7.905 (where tanh rounds to ±1 in
float32), and x itself below 4e-4: a few multiplications and one division
that vectorise. The coefficients are the minimax fit Eigen uses for its
float tanh; measured against float64 tanh over [−12, 12] it is within
6 units in the last place (NumPy's own float32 tanh: 1.4). float64 keeps the
C library's tanh, to full precision.
"""

from __future__ import annotations

import math

import numpy as np
from numba import types
from numba.extending import overload

from descend.kernels.compiler import helper

_F = np.float32
_NUMERATOR = tuple(_F(c) for c in (4.89352455891786e-03, 6.37261928875436e-04, 1.48572235717979e-05,
                                   5.12229709037114e-08, -8.60467152213735e-11, 2.00018790482477e-13,
                                   -2.76076847742355e-16))
_DENOMINATOR = tuple(_F(c) for c in (4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04,
                                     1.19825839466702e-06))
_SATURATION = _F(7.90531110763549805)
_LINEAR_BELOW = _F(0.0004)


@helper
def _rational_tanh(x):
    n1, n3, n5, n7, n9, n11, n13 = _NUMERATOR
    d0, d2, d4, d6 = _DENOMINATOR
    # comparisons, not min/max: they vectorise, and NaN passes through both to come out NaN
    clamped = _SATURATION if x > _SATURATION else x
    clamped = -_SATURATION if clamped < -_SATURATION else clamped
    square = clamped * clamped
    numerator = ((((((square * n13 + n11) * square + n9) * square + n7) * square + n5) * square + n3) * square
                 + n1) * clamped
    denominator = ((square * d6 + d4) * square + d2) * square + d0
    return x if abs(x) < _LINEAR_BELOW else numerator / denominator


def tanh(x):
    """tanh of a float32 or float64 inside a compiled kernel (see the module's note); not for Python callers."""
    return math.tanh(x)


@overload(tanh)
def _tanh_for(x):
    if x == types.float32:
        return lambda x: _rational_tanh(x)
    return lambda x: math.tanh(x)

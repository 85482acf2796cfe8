"""Matrix products: batched matmul and the fused affine map of a dense layer."""

from __future__ import annotations

from typing import Any

import numpy as np

from descend import kernels
from descend.errors import ShapeError
from descend.ops.base import Function, shape_of
from descend.ops.elementwise import add
from descend.ops.shape import reshape
from descend.tensor import Tensor


def _swap_last(a: np.ndarray) -> np.ndarray:
    return np.swapaxes(a, -1, -2)


def _product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b; an outer product (a contracted axis of length 1) as a broadcast multiply, which is twice as fast
    as NumPy's batched matmul of one-wide matrices (capsule routing has many)."""
    if a.shape[-1] == 1:
        return a * b
    return np.matmul(a, b)


class MatMul(Function):
    """x @ y for 2-D or batched (..., n, k) @ (..., k, m); batch axes broadcast.

    d/dx = grad @ yᵀ, d/dy = xᵀ @ grad (yᵀ: the last two axes swapped).
    """

    notation = "{0} @ {1}"

    def forward(self, x, y):
        if x.ndim < 2 or y.ndim < 2 or x.shape[-1] != y.shape[-2]:
            raise ShapeError(f"matmul: shapes {x.shape} and {y.shape} do not fit; expected (..., n, k) @ (..., k, m)")
        self.x, self.y = x, y
        return np.matmul(x, y)

    def backward(self, grad):
        return (
            _product(grad, _swap_last(self.y)) if self.needs_input_grad[0] else None,
            _product(_swap_last(self.x), grad) if self.needs_input_grad[1] else None,
        )


def matmul(x: Any, y: Any) -> Tensor:
    """Matrix product with NumPy's rules; 1-D operands are promoted and the added axis removed.

    Shapes: (..., n, k) @ (..., k, m) -> (..., n, m).

    >>> matmul(np.ones((5, 2, 3)), np.ones((3, 4))).shape
    (5, 2, 4)
    >>> matmul([1.0, 2.0], [[1.0], [1.0]]).data.tolist()
    [3.0]
    """
    x_vector = len(shape_of(x)) == 1
    y_vector = len(shape_of(y)) == 1
    if x_vector:
        x = reshape(x, (1, -1))
    if y_vector:
        y = reshape(y, (-1, 1))
    out = MatMul.apply(x, y)
    if x_vector or y_vector:
        shape = out.shape[:-2] + ((out.shape[-2],) if not x_vector else ()) + ((out.shape[-1],) if not y_vector else ())
        out = reshape(out, shape)
    return out


class Linear(Function):
    """x @ W + b in one op; d/dx = grad @ Wᵀ, d/dW = xᵀ @ grad, d/db = grad summed over rows.

    Fused so the bias gradient is one column sum and no (N, out) temporary
    is made twice; the products go to BLAS. Shapes: x (N, in), W (in, out),
    b (out,) -> (N, out); `linear` sends x of any other rank to matmul and add.
    """

    notation = "{0} @ {1} + {2}"

    def forward(self, x, weight, bias):
        self.x, self.weight, self.kernels = x, weight, kernels.for_arrays(x, weight, bias)
        out = x @ weight
        if self.kernels is not None:
            self.kernels.add_bias(out, bias)
        else:
            out += bias
        return out

    def backward(self, grad):
        grad_bias = None
        if self.needs_input_grad[2]:
            grad_bias = grad.sum(axis=0) if self.kernels is None else self.kernels.bias_grad(grad)
        return (
            grad @ self.weight.T if self.needs_input_grad[0] else None,
            self.x.T @ grad if self.needs_input_grad[1] else None,
            grad_bias,
        )


def linear(x: Any, weight: Any, bias: Any | None = None) -> Tensor:
    """x @ W + b: x (..., in_features), W (in_features, out_features), b (out_features,) -> (..., out_features)."""
    shape, weight_shape = shape_of(x), shape_of(weight)
    if len(weight_shape) != 2 or not shape or shape[-1] != weight_shape[0]:
        raise ShapeError(
            f"linear: weight of shape {weight_shape} does not fit x of shape {shape}; "
            f"expected weight (in_features, out_features) with in_features = x's last axis"
        )
    if bias is None:
        return matmul(x, weight)
    bias_shape = shape_of(bias)
    if bias_shape != weight_shape[1:]:
        raise ShapeError(f"linear: bias has shape {bias_shape}; expected (out_features,) = {weight_shape[1:]}")
    if len(shape) > 2:  # (..., in) as rows of one 2-D product: one BLAS call, and W's gradient is one product too
        out = Linear.apply(reshape(x, (-1, shape[-1])), weight, bias)
        return reshape(out, (*shape[:-1], out.shape[-1]))
    if len(shape) != 2:
        return add(matmul(x, weight), bias)
    return Linear.apply(x, weight, bias)

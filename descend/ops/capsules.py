"""Capsules (Sabour, Frosst and Hinton, "Dynamic Routing Between Capsules", 2017): squash, predictions, routing.

A capsule is a vector whose length says how likely its entity is present
and whose direction encodes the entity's pose. One primitive is new here,
`squash`, fused because its derivative has a short closed form that stays
finite at zero; everything else is written with the existing primitives, so
a learner reads routing by agreement line by line and the engine
differentiates straight through every routing iteration.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from descend import kernels
from descend.checks import accepting_torch_names, check_axis, check_integer
from descend.errors import ShapeError
from descend.ops.base import Function, shape_of
from descend.ops.matmul import matmul
from descend.ops.reduce import sum
from descend.ops.shape import reshape, transpose
from descend.ops.softmax import softmax
from descend.tensor import Tensor, as_tensor

#: added to |s|² under square roots, so that a zero vector has a length (0) and a finite gradient
EPSILON = 1e-9


class Squash(Function):
    """v = |s|² / (1 + |s|²) · s / |s| along `axis`: short vectors shrink to almost 0, long ones to almost 1.

    With n = |s|² and r = √(n + ε), v = c(n) · s where c(n) = n / ((1 + n) r).
    The VJP: d/ds = c · grad + 2 c′(n) (grad · s) s, where
    c′(n) = (1 / (1 + n) − n / (2 (n + ε))) / ((1 + n) r), written without dividing by n.
    """

    notation = "squash({0})"

    def forward(self, s):
        self.s = s
        # the kernel squashes rows, vectors along the last axis
        self.kernels = kernels.for_arrays(s) if self.axis == s.ndim - 1 and s.size else None
        if self.kernels is not None:
            out, self.c, self.slope = self.kernels.squash(s.reshape(-1, s.shape[-1]), EPSILON, self.recording)
            return out.reshape(s.shape)
        self.n = (s * s).sum(axis=self.axis, keepdims=True)
        root = np.sqrt(self.n + EPSILON)
        self.c = self.n / ((1 + self.n) * root)
        if self.recording:
            self.slope = (1 / (1 + self.n) - self.n / (2 * (self.n + EPSILON))) / ((1 + self.n) * root)
        return self.c * s

    def backward(self, grad):
        if self.kernels is not None:
            rows = self.s.reshape(-1, self.s.shape[-1])
            grad_rows = np.reshape(grad, rows.shape)
            return (self.kernels.squash_backward(grad_rows, rows, self.c, self.slope).reshape(self.s.shape),)
        along_s = (grad * self.s).sum(axis=self.axis, keepdims=True)
        return (self.c * grad + 2 * self.slope * along_s * self.s,)


@accepting_torch_names
def squash(s: Any, axis: int = -1) -> Tensor:
    """Squash capsule vectors along `axis` to lengths in [0, 1), keeping their directions; same shape as s."""
    return Squash.apply(s, axis=check_axis("axis", axis, len(shape_of(s))))


@accepting_torch_names
def capsule_length(v: Any, axis: int = -1) -> Tensor:
    """|v| along `axis` (the capsule's probability of presence): (..., D) -> (...), finite gradient at 0."""
    v = as_tensor(v)
    return (sum(v * v, axis=axis) + EPSILON).sqrt()


class CapsulePredictions(Function):
    """Every input capsule's prediction of every output capsule, û_{j|i} = u_i W_ij (the paper's equation 2).

    u (N, I, D_in) and weight (I, D_in, J·D_out), the J matrices of input
    capsule i side by side -> û (N, J, I, D_out). Forward: one batched
    product over i, (I, N, D_in) @ (I, D_in, J·D_out), a BLAS call per input
    capsule, laid out once as (N, J, I, D_out) because routing reads it many
    times. Backward, with G the gradient laid out as (I, N, J·D_out):
    du = G Wᵀ and dW = uᵀ G for each i. Fused: the composition's transposed
    views made every routing product copy û again.
    """

    notation = "predictions({0}, {1})"

    def forward(self, u, weight):
        n, inputs, _ = u.shape
        self.u_by_input = np.ascontiguousarray(u.transpose(1, 0, 2))  # (I, N, D_in)
        self.weight = weight
        products = np.matmul(self.u_by_input, weight).reshape(inputs, n, self.out_capsules, -1)
        return np.ascontiguousarray(products.transpose(1, 2, 0, 3))

    def backward(self, grad):
        n, outputs, inputs, out_dim = grad.shape
        grad_by_input = np.ascontiguousarray(grad.transpose(2, 0, 1, 3)).reshape(inputs, n, outputs * out_dim)
        return (
            np.matmul(grad_by_input, np.swapaxes(self.weight, 1, 2)).transpose(1, 0, 2)
            if self.needs_input_grad[0] else None,
            np.matmul(np.swapaxes(self.u_by_input, 1, 2), grad_by_input) if self.needs_input_grad[1] else None,
        )


def capsule_predictions(u: Any, weight: Any, out_capsules: int) -> Tensor:
    """û (N, J, I, D_out) from capsules u (N, I, D_in) and weight (I, D_in, J·D_out): see CapsulePredictions."""
    u_shape, w_shape = shape_of(u), shape_of(weight)
    out_capsules = check_integer("out_capsules", out_capsules, low=1)
    if len(u_shape) != 3 or len(w_shape) != 3 or u_shape[1:] != w_shape[:2] or w_shape[2] % out_capsules:
        raise ShapeError(
            f"capsule_predictions: u of shape {u_shape} and weight of shape {w_shape} do not fit; "
            f"expected u (N, I, D_in) and weight (I, D_in, J·D_out) with J = out_capsules = {out_capsules}"
        )
    return CapsulePredictions.apply(u, weight, out_capsules=out_capsules)


def dynamic_routing(predictions: Tensor, iterations: int = 3) -> Tensor:
    """Routing by agreement (Procedure 1 of the paper): the output capsules v (N, J, D) from predictions û (N, J, I, D).

    The coupling logits b (N, J, I) start at 0 for every example; each iteration
        c = softmax of b over the output capsules j    how input i splits its vote
        s_j = Σ_i c_ij û_{j|i}                           the weighted vote for output j
        v_j = squash(s_j)
        b_ij += û_{j|i} · v_j                            agreement raises i's share in j
    and the last iteration's v is returned. Gradients flow through every iteration.
    """
    iterations = check_integer("iterations", iterations, low=1)
    if predictions.ndim != 4:
        raise ShapeError(f"dynamic_routing: predictions must be (N, J, I, D); got shape {predictions.shape}")
    n, j, i, d = predictions.shape
    logits = Tensor(np.zeros((n, j, 1, i), dtype=predictions.dtype))
    for iteration in range(iterations):
        coupling = softmax(logits, axis=1)
        outputs = squash(matmul(coupling, predictions), axis=-1)  # (N, J, 1, D)
        if iteration + 1 < iterations:
            agreement = matmul(predictions, transpose(outputs, (0, 1, 3, 2)))  # (N, J, I, 1)
            logits = logits + transpose(agreement, (0, 1, 3, 2))
    return reshape(outputs, (n, j, d))

"""The op table: one row per way of calling a primitive; tests/test_ops.py checks every row.

A row says how to call the op in descend, how to make valid inputs (float64
from an rng, away from kinks and ties), which inputs are differentiable, the
NumPy forward, the PyTorch twin (the oracle) and the `Function` classes the
call runs. A primitive without a row fails `test_every_primitive_has_a_row`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import descend as dc
from descend.ops.base import Function
from descend.ops.capsules import EPSILON, CapsulePredictions, Squash
from descend.ops.elementwise import (
    Abs, Add, Clip, Cos, Div, Elu, Exp, LeakyRelu, Log, Mul, Neg, Pow, Relu, Sigmoid, Sin, Softplus, Sqrt, Sub,
    Tanh, Where,
)
from descend.ops.conv import Conv2d, ConvTranspose2d
from descend.ops.matmul import Linear, MatMul
from descend.ops.normalization import BatchNorm
from descend.ops.pool import AvgPool2d, Interpolate, MaxPool2d, Upsample2d
from descend.ops.recurrent import GRULayer, LSTMLayer, RNNLayer
from descend.ops.reduce import Max, Mean, Min, Sum
from descend.ops.shape import Concat, GetItem, Reshape, Transpose
from descend.ops.softmax import LogSoftmax, SigmoidCrossEntropy, Softmax, SoftmaxCrossEntropy

try:
    import torch
    import torch.nn.functional as F  # noqa: N812  (PyTorch's own alias)
except ImportError:  # the oracle is optional; rows only call it when it is there
    torch = F = None

Maker = Callable[[np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class OpRow:
    """One way of calling one or more primitives.

    `fn` takes one descend tensor per input and returns a tensor (or a list
    of tensors); `torch_fn` does the same on torch tensors; `reference` on
    NumPy arrays. `grad_inputs` lists the differentiable inputs; None means
    every float input.
    """

    name: str
    fn: Callable[..., Any]
    makers: tuple[Maker, ...]
    ops: tuple[type[Function], ...]
    torch_fn: Callable[..., Any] | None = None
    reference: Callable[..., Any] | None = None
    grad_inputs: tuple[int, ...] | None = None

    def make(self, rng: np.random.Generator) -> list[np.ndarray]:
        return [np.asarray(maker(rng)) for maker in self.makers]

    def differentiable(self, arrays: Sequence[np.ndarray]) -> tuple[int, ...]:
        if self.grad_inputs is not None:
            return self.grad_inputs
        return tuple(i for i, a in enumerate(arrays) if a.dtype.kind == "f")


# -- input makers: valid values, away from kinks, bounds and ties ---------------
def normal(*shape: int, scale: float = 1.0) -> Maker:
    return lambda rng: scale * rng.standard_normal(shape)


def uniform(low: float, high: float, *shape: int) -> Maker:
    return lambda rng: rng.uniform(low, high, shape)


def positive(*shape: int) -> Maker:
    return uniform(0.5, 2.0, *shape)


def nonzero(*shape: int, low: float = 0.2, high: float = 1.5) -> Maker:
    """Values with low <= |x| <= high: away from a kink at 0."""
    return lambda rng: rng.choice([-1.0, 1.0], shape) * rng.uniform(low, high, shape)


def away_from(points: Sequence[float], *shape: int, gap: float = 0.05, low: float = -1.0, high: float = 1.0) -> Maker:
    """Uniform in [low, high] but at least `gap` from every point (clip bounds)."""

    def make(rng: np.random.Generator) -> np.ndarray:
        x = rng.uniform(low, high, shape)
        for point in points:
            near = np.abs(x - point) < gap
            x = np.where(near, point + np.where(x >= point, gap, -gap) * 2, x)
        return x

    return make


def distinct(*shape: int, offset: float = 0.0) -> Maker:
    """Values 0.06 or more apart, so max and min have no ties.

    Each lies in k/10 + offset + [0, 0.04) for a distinct k; two makers with
    offsets 0 and 0.05 never come within 0.01 of each other either.
    """
    size = int(np.prod(shape))
    return lambda rng: (rng.permutation(size) * 0.1 + offset + rng.uniform(0, 0.04, size) - 0.05 * size).reshape(shape)


def labels(n: int, classes: int) -> Maker:
    return lambda rng: rng.integers(0, classes, n)


def mask(*shape: int) -> Maker:
    def make(rng: np.random.Generator) -> np.ndarray:
        m = rng.random(shape) < 0.5
        m.flat[0], m.flat[-1] = True, False  # never all one way
        return m

    return make


def constant(value: Any) -> Maker:
    return lambda rng: np.array(value)


# -- small NumPy references ------------------------------------------------------
def np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def np_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_log_softmax(x, axis):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def np_cross_entropy(logits, y):
    return -np.mean(np_log_softmax(logits, 1)[np.arange(len(y)), y])


def np_bce_with_logits(z, t):
    return np.mean(-t * np.log(np_sigmoid(z)) - (1 - t) * np.log(1 - np_sigmoid(z)))


def np_bce_with_logits_stable(z, t):
    return np.mean(np.logaddexp(0, z) - z * t)  # the same loss, safe for large |z|


def torch_dims(axis: Any, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    return (axis,) if isinstance(axis, int) else tuple(axis)


ROWS: list[OpRow] = []


def row(name: str, fn, makers, ops, torch_fn=None, reference=None, grad_inputs=None) -> None:
    ROWS.append(OpRow(name, fn, tuple(makers), tuple(ops), torch_fn, reference, grad_inputs))


# -- binary elementwise, with broadcasting --------------------------------------
BINARY = [
    # name, operator (descend and torch alike), functional, numpy, class, maker of the right operand
    ("add", lambda x, y: x + y, dc.ops.add, np.add, Add, normal),
    ("sub", lambda x, y: x - y, dc.ops.sub, np.subtract, Sub, normal),
    ("mul", lambda x, y: x * y, dc.ops.mul, np.multiply, Mul, normal),
    ("div", lambda x, y: x / y, dc.ops.div, np.divide, Div, nonzero),
]
SHAPES = [
    ("same", (3, 4), (3, 4)),
    ("row", (3, 4), (4,)),
    ("3d", (2, 1, 3), (4, 3)),
    ("scalar", (), (3, 4)),
    ("outer", (3, 1), (1, 4)),
    ("left_scalar", (3, 4), ()),
]
for op_name, operator, functional, np_op, cls, right in BINARY:
    for case, left_shape, right_shape in SHAPES:
        call = functional if case == "same" else operator
        row(f"{op_name}_{case}", call, [normal(*left_shape), right(*right_shape)], [cls], operator, np_op)
    # Python scalars on either side, and an ndarray on the left (it must defer to the Tensor)
    row(f"{op_name}_python_scalar", lambda x, f=operator: f(x, 2.5), [normal(3, 4)], [cls],
        lambda x, f=operator: f(x, 2.5), lambda x, f=np_op: f(x, 2.5))
    row(f"r{op_name}_python_scalar", lambda x, f=operator: f(2.5, x), [right(3, 4)], [cls],
        lambda x, f=operator: f(2.5, x), lambda x, f=np_op: f(2.5, x))
    row(f"r{op_name}_ndarray", lambda c, x, f=operator: f(c.data, x), [normal(4), right(3, 4)], [cls],
        lambda c, x, f=operator: f(c, x), np_op, grad_inputs=(1,))

# -- powers ----------------------------------------------------------------------
row("pow_int_scalar", lambda x: x**3, [normal(3, 4)], [Pow], lambda x: x**3, lambda x: x**3)
row("pow_float_scalar", lambda x: x**0.5, [positive(3, 4)], [Pow], lambda x: x**0.5, lambda x: x**0.5)
row("pow_negative_scalar", lambda x: x**-2, [nonzero(3, 4)], [Pow], lambda x: x**-2, lambda x: x**-2.0)
row("pow_tensor", lambda x, y: x**y, [positive(3, 4), uniform(-1.5, 1.5, 4)], [Pow], lambda x, y: torch.pow(x, y),
    np.power)
row("power_same_shape", dc.ops.power, [positive(2, 3), normal(2, 3)], [Pow], lambda x, y: x**y, np.power)
row("rpow_python_scalar", lambda x: 2.0**x, [normal(3, 4)], [Pow], lambda x: 2.0**x, lambda x: 2.0**x)

# -- unary elementwise -----------------------------------------------------------
row("neg", lambda x: -x, [normal(3, 4)], [Neg], lambda x: -x, np.negative)
row("neg_fn", dc.ops.neg, [normal(2, 3, 2)], [Neg], lambda x: torch.neg(x), np.negative)
row("exp", dc.exp, [normal(3, 4)], [Exp], lambda x: x.exp(), np.exp)
row("exp_method", lambda x: x.exp(), [normal(5)], [Exp], lambda x: x.exp(), np.exp)
row("log", dc.log, [positive(3, 4)], [Log], lambda x: x.log(), np.log)
row("sqrt", dc.sqrt, [positive(3, 4)], [Sqrt], lambda x: x.sqrt(), np.sqrt)
row("sin", dc.sin, [normal(3, 4, scale=2.0)], [Sin], lambda x: x.sin(), np.sin)
row("cos", dc.cos, [normal(3, 4, scale=2.0)], [Cos], lambda x: x.cos(), np.cos)
row("tanh", dc.tanh, [normal(3, 4, scale=2.0)], [Tanh], lambda x: x.tanh(), np.tanh)
row("sigmoid", dc.sigmoid, [normal(3, 4, scale=3.0)], [Sigmoid], lambda x: x.sigmoid(), np_sigmoid)
row("sigmoid_wide", lambda x: x.sigmoid(), [uniform(-40.0, 40.0, 10)], [Sigmoid], lambda x: x.sigmoid(), np_sigmoid)
row("relu", dc.relu, [nonzero(3, 4)], [Relu], lambda x: x.relu(), lambda x: np.maximum(x, 0))
row("relu_method", lambda x: x.relu(), [nonzero(6)], [Relu], lambda x: x.relu(), lambda x: np.maximum(x, 0))
row("leaky_relu", dc.leaky_relu, [nonzero(3, 4)], [LeakyRelu], lambda x: F.leaky_relu(x),
    lambda x: np.where(x > 0, x, 0.01 * x))
row("leaky_relu_slope", lambda x: dc.leaky_relu(x, negative_slope=0.2), [nonzero(3, 4)], [LeakyRelu],
    lambda x: F.leaky_relu(x, 0.2), lambda x: np.where(x > 0, x, 0.2 * x))
row("elu", dc.ops.elu, [nonzero(3, 4, high=3.0)], [Elu], lambda x: F.elu(x),
    lambda x: np.where(x > 0, x, np.expm1(x)))
row("elu_alpha", lambda x: dc.ops.elu(x, alpha=0.5), [nonzero(3, 4, high=3.0)], [Elu], lambda x: F.elu(x, alpha=0.5),
    lambda x: np.where(x > 0, x, 0.5 * np.expm1(x)))
row("softplus", dc.softplus, [normal(3, 4, scale=3.0)], [Softplus], lambda x: F.softplus(x),
    lambda x: np.log1p(np.exp(x)))
row("softplus_wide", dc.softplus, [uniform(-40.0, 40.0, 10)], [Softplus], lambda x: F.softplus(x),
    lambda x: np.logaddexp(0, x))
row("abs", dc.abs, [nonzero(3, 4)], [Abs], lambda x: x.abs(), np.abs)
row("abs_method", lambda x: x.abs(), [nonzero(7)], [Abs], lambda x: x.abs(), np.abs)
row("clip", lambda x: dc.clip(x, -0.5, 0.5), [away_from([-0.5, 0.5], 3, 4)], [Clip],
    lambda x: x.clamp(-0.5, 0.5), lambda x: np.clip(x, -0.5, 0.5))
row("clip_min", lambda x: x.clip(min=-0.3), [away_from([-0.3], 3, 4)], [Clip], lambda x: x.clamp(min=-0.3),
    lambda x: np.maximum(x, -0.3))
row("clip_max", lambda x: x.clip(max=0.2), [away_from([0.2], 3, 4)], [Clip], lambda x: x.clamp(max=0.2),
    lambda x: np.minimum(x, 0.2))
row("where", dc.where, [mask(3, 4), normal(3, 4), normal(4)], [Where], lambda c, x, y: torch.where(c, x, y), np.where)
row("where_scalar", lambda c, x: dc.where(c, x, 0.0), [mask(2, 5), normal(2, 5)], [Where],
    lambda c, x: torch.where(c, x, 0.0), lambda c, x: np.where(c, x, 0.0))
row("where_broadcast_condition", dc.where, [mask(4), normal(3, 4), normal(3, 1)], [Where],
    lambda c, x, y: torch.where(c, x, y), np.where)
row("maximum", dc.maximum, [distinct(3, 4), distinct(3, 4, offset=0.05)], [Where],
    lambda x, y: torch.maximum(x, y), np.maximum)

# -- reductions ------------------------------------------------------------------
REDUCTIONS = [
    ("sum", Sum, normal, np.sum, lambda x, dim, keepdim: torch.sum(x, dim=dim, keepdim=keepdim)),
    ("mean", Mean, normal, np.mean, lambda x, dim, keepdim: torch.mean(x, dim=dim, keepdim=keepdim)),
    ("max", Max, distinct, np.max, lambda x, dim, keepdim: torch.amax(x, dim=dim, keepdim=keepdim)),
    ("min", Min, distinct, np.min, lambda x, dim, keepdim: torch.amin(x, dim=dim, keepdim=keepdim)),
]
for op_name, cls, maker, np_op, torch_op in REDUCTIONS:
    for axis in (None, 1, -1, (0, 2)):
        for keepdims in (False, True):
            axis_name = "all" if axis is None else str(axis).replace(" ", "").replace("-", "neg")
            row(
                f"{op_name}_axis_{axis_name}_keepdims_{keepdims}",
                lambda x, f=getattr(dc, op_name), a=axis, k=keepdims: f(x, axis=a, keepdims=k),
                [maker(2, 3, 4)], [cls],
                lambda x, f=torch_op, a=axis, k=keepdims: f(x, torch_dims(a, x.ndim), k),
                lambda x, f=np_op, a=axis, k=keepdims: f(x, axis=a, keepdims=k),
            )
    row(f"{op_name}_method_2d", lambda x, m=op_name: getattr(x, m)(axis=0), [maker(3, 4)], [cls],
        lambda x, f=torch_op: f(x, 0, False), lambda x, f=np_op: f(x, axis=0))
    row(f"{op_name}_1d", lambda x, m=op_name: getattr(x, m)(), [maker(5)], [cls],
        lambda x, f=torch_op: f(x, (0,), False), np_op)

# -- shapes ----------------------------------------------------------------------
row("reshape", lambda x: dc.reshape(x, (2, 6)), [normal(3, 4)], [Reshape], lambda x: x.reshape(2, 6),
    lambda x: x.reshape(2, 6))
row("reshape_flatten", lambda x: x.reshape(-1), [normal(2, 3, 2)], [Reshape], lambda x: x.reshape(-1),
    lambda x: x.reshape(-1))
row("reshape_method_args", lambda x: x.reshape(2, -1, 2), [normal(3, 4)], [Reshape],
    lambda x: x.reshape(2, -1, 2), lambda x: x.reshape(2, -1, 2))
row("transpose_reverse", dc.transpose, [normal(2, 3, 4)], [Transpose], lambda x: x.permute(2, 1, 0), np.transpose)
row("transpose_axes", lambda x: dc.transpose(x, (1, 0, 2)), [normal(2, 3, 4)], [Transpose],
    lambda x: x.permute(1, 0, 2), lambda x: np.transpose(x, (1, 0, 2)))
row("transpose_negative_axes", lambda x: x.transpose(-1, 0, 1), [normal(2, 3, 4)], [Transpose],
    lambda x: x.permute(-1, 0, 1), lambda x: np.transpose(x, (-1, 0, 1)))
row("transpose_T", lambda x: x.T, [normal(3, 4)], [Transpose], lambda x: x.T, lambda x: x.T)
row("permute", lambda x: x.permute(2, 0, 1), [normal(2, 3, 4)], [Transpose], lambda x: x.permute(2, 0, 1),
    lambda x: np.transpose(x, (2, 0, 1)))

INDEX_ROWS = [
    # name, descend index, torch version of the same selection
    ("int", 1, lambda x: x[1]),
    ("two_ints", (1, 2), lambda x: x[1, 2]),
    ("negative_int", -1, lambda x: x[-1]),
    ("slice", slice(1, 3), lambda x: x[1:3]),
    ("negative_step", slice(None, None, -2), lambda x: x.flip(0)[::2]),
    ("negative_step_columns", (slice(None), slice(None, None, -1)), lambda x: x.flip(1)),
    ("int_array_repeats", np.array([0, 2, 0, 1]), lambda x: x[[0, 2, 0, 1]]),
    ("list_repeats", [2, 2, 0], lambda x: x[[2, 2, 0]]),
    ("int_matrix_negative_repeats", np.array([[0, -1], [2, 2], [2, 0]]),
     lambda x: x[torch.tensor([[0, -1], [2, 2], [2, 0]])]),
    ("empty_int_array", np.array([], dtype=np.int64), lambda x: x[torch.tensor([], dtype=torch.long)]),
    ("pairs_of_arrays", (np.array([0, 2, 2]), np.array([3, 1, 3])), lambda x: x[[0, 2, 2], [3, 1, 3]]),
    ("ellipsis_newaxis", (Ellipsis, None, 1), lambda x: x[..., None, 1]),
]
for case, index, torch_index in INDEX_ROWS:
    row(f"getitem_{case}", lambda x, i=index: x[i], [normal(3, 4)], [GetItem], torch_index, lambda x, i=index: x[i])
row("getitem_mixed_tuple", lambda x: x[1:, [0, 3, 0], 2], [normal(3, 4, 5)], [GetItem],
    lambda x: x[1:, [0, 3, 0], 2], lambda x: x[1:, [0, 3, 0], 2])
row("getitem_boolean_mask", lambda x, m: x[m], [normal(3, 4), mask(3, 4)], [GetItem], lambda x, m: x[m],
    lambda x, m: x[m])
row("getitem_boolean_rows", lambda x, m: x[m], [normal(4, 3), mask(4)], [GetItem], lambda x, m: x[m],
    lambda x, m: x[m])
row("getitem_tensor_index", lambda x, i: x[i], [normal(5, 2), constant([4, 0, 4, 1])], [GetItem],
    lambda x, i: x[i], lambda x, i: x[i])
row("getitem_fn", lambda x: dc.ops.getitem(x, (slice(None), 0)), [normal(3, 4)], [GetItem], lambda x: x[:, 0],
    lambda x: x[:, 0])

row("concat_axis0", lambda a, b, c: dc.concat([a, b, c]), [normal(2, 3), normal(4, 3), normal(1, 3)], [Concat],
    lambda a, b, c: torch.cat([a, b, c]), lambda a, b, c: np.concatenate([a, b, c]))
row("concat_axis_neg1", lambda a, b: dc.concat([a, b], axis=-1), [normal(2, 3), normal(2, 1)], [Concat],
    lambda a, b: torch.cat([a, b], dim=-1), lambda a, b: np.concatenate([a, b], axis=-1))
row("concat_axis1_3d", lambda a, b: dc.concat([a, b], axis=1), [normal(2, 1, 3), normal(2, 2, 3)], [Concat],
    lambda a, b: torch.cat([a, b], dim=1), lambda a, b: np.concatenate([a, b], axis=1))
row("stack_axis0", lambda a, b, c: dc.stack([a, b, c]), [normal(2, 3)] * 3, [Reshape, Concat],
    lambda a, b, c: torch.stack([a, b, c]), lambda a, b, c: np.stack([a, b, c]))
row("stack_axis_neg1", lambda a, b: dc.stack([a, b], axis=-1), [normal(2, 3)] * 2, [Reshape, Concat],
    lambda a, b: torch.stack([a, b], dim=-1), lambda a, b: np.stack([a, b], axis=-1))
row("stack_axis1", lambda a, b: dc.stack([a, b], axis=1), [normal(4)] * 2, [Reshape, Concat],
    lambda a, b: torch.stack([a, b], dim=1), lambda a, b: np.stack([a, b], axis=1))
row("split_equal", lambda x: dc.split(x, 3, axis=1), [normal(2, 6)], [GetItem],
    lambda x: torch.tensor_split(x, 3, dim=1), lambda x: np.split(x, 3, axis=1))
row("split_indices", lambda x: dc.split(x, [1, 4]), [normal(5, 3)], [GetItem],
    lambda x: torch.tensor_split(x, [1, 4]), lambda x: np.split(x, [1, 4]))
row("split_last_axis", lambda x: dc.split(x, 2, axis=-1), [normal(2, 3, 4)], [GetItem],
    lambda x: torch.tensor_split(x, 2, dim=-1), lambda x: np.split(x, 2, axis=-1))

# -- matrix products -------------------------------------------------------------
MATMULS = [
    ("2d", (3, 4), (4, 5), [MatMul]),
    ("batched_broadcast", (2, 1, 3, 4), (3, 4, 5), [MatMul]),
    ("batched_2d", (2, 3, 4), (4, 5), [MatMul]),
    ("1d_2d", (4,), (4, 5), [MatMul, Reshape]),
    ("2d_1d", (3, 4), (4,), [MatMul, Reshape]),
    ("1d_1d", (4,), (4,), [MatMul, Reshape]),
    ("1d_batched", (4,), (2, 4, 5), [MatMul, Reshape]),
]
for case, x_shape, y_shape, ops in MATMULS:
    row(f"matmul_{case}", lambda x, y: x @ y, [normal(*x_shape), normal(*y_shape)], ops,
        lambda x, y: torch.matmul(x, y), np.matmul)
row("matmul_fn", dc.matmul, [normal(2, 3), normal(3, 2)], [MatMul], lambda x, y: torch.matmul(x, y), np.matmul)
row("rmatmul_ndarray", lambda c, x: c.data @ x, [normal(2, 3), normal(3, 4)], [MatMul], lambda x, y: torch.matmul(x, y),
    np.matmul, grad_inputs=(1,))

# y = x @ W + b with W (in, out): PyTorch keeps (out, in), so its twin transposes
row("linear_bias", dc.ops.linear, [normal(5, 4), normal(4, 3), normal(3)], [Linear],
    lambda x, w, b: F.linear(x, w.T, b), lambda x, w, b: x @ w + b)
row("linear_no_bias", dc.ops.linear, [normal(5, 4), normal(4, 3)], [MatMul], lambda x, w: F.linear(x, w.T),
    np.matmul)
row("linear_3d_bias", dc.ops.linear, [normal(2, 5, 4), normal(4, 3), normal(3)], [Reshape, Linear],
    lambda x, w, b: F.linear(x, w.T, b), lambda x, w, b: x @ w + b)
row("linear_1d_bias", dc.ops.linear, [normal(4), normal(4, 3), normal(3)], [MatMul, Reshape, Add],
    lambda x, w, b: F.linear(x, w.T, b), lambda x, w, b: x @ w + b)

# -- softmax and the fused losses ------------------------------------------------
for op_name, cls, torch_op, np_op in (
    ("softmax", Softmax, lambda x, a: torch.softmax(x, dim=a), np_softmax),
    ("log_softmax", LogSoftmax, lambda x, a: torch.log_softmax(x, dim=a), np_log_softmax),
):
    for axis, shape in ((0, (3, 5)), (-1, (3, 5)), (1, (2, 3, 4))):
        row(f"{op_name}_axis_{axis}", lambda x, f=getattr(dc, op_name), a=axis: f(x, axis=a), [normal(*shape)], [cls],
            lambda x, f=torch_op, a=axis: f(x, a), lambda x, f=np_op, a=axis: f(x, a))
    row(f"{op_name}_method_wide", lambda x, m=op_name: getattr(x, m)(), [normal(4, 6, scale=30.0)], [cls],
        lambda x, f=torch_op: f(x, -1), lambda x, f=np_op: f(x, -1))

row("cross_entropy", dc.ops.cross_entropy, [normal(6, 4, scale=2.0), labels(6, 4)], [SoftmaxCrossEntropy],
    lambda x, y: F.cross_entropy(x, y), np_cross_entropy)
row("cross_entropy_wide", dc.ops.cross_entropy, [normal(5, 3, scale=40.0), labels(5, 3)], [SoftmaxCrossEntropy],
    lambda x, y: F.cross_entropy(x, y), np_cross_entropy)
row("bce_with_logits", dc.ops.binary_cross_entropy_with_logits, [normal(3, 4, scale=3.0), uniform(0.0, 1.0, 3, 4)],
    [SigmoidCrossEntropy], lambda z, t: F.binary_cross_entropy_with_logits(z, t), np_bce_with_logits)
row("bce_with_logits_fixed_targets", dc.ops.binary_cross_entropy_with_logits,
    [uniform(-40.0, 40.0, 8), lambda rng: rng.integers(0, 2, 8).astype(np.float64)], [SigmoidCrossEntropy],
    lambda z, t: F.binary_cross_entropy_with_logits(z, t), np_bce_with_logits_stable, grad_inputs=(0,))


# -- convolution, pooling, batch normalisation (NCHW; PyTorch's weight layout) ---
CONV2D = [
    # name, x shape, weight shape, keyword arguments
    ("plain", (2, 3, 6, 5), (4, 3, 3, 3), {}),
    ("stride_padding", (2, 2, 7, 6), (3, 2, 3, 2), dict(stride=2, padding=1)),
    ("rect_stride_padding", (1, 2, 7, 8), (2, 2, 3, 3), dict(stride=(2, 1), padding=(1, 2))),
    ("dilation", (2, 2, 7, 7), (3, 2, 3, 3), dict(dilation=2, padding=1)),
    ("groups", (2, 4, 5, 5), (6, 2, 3, 3), dict(groups=2, padding=1)),
    ("depthwise", (1, 3, 5, 4), (3, 1, 2, 2), dict(groups=3)),
    ("one_by_one", (2, 3, 4, 4), (5, 3, 1, 1), {}),
]
for case, x_shape, w_shape, options in CONV2D:
    row(f"conv2d_{case}", lambda x, w, b, o=options: dc.ops.conv2d(x, w, b, **o),
        [normal(*x_shape), normal(*w_shape), normal(w_shape[0])], [Conv2d],
        lambda x, w, b, o=options: F.conv2d(x, w, b, **o))
row("conv2d_no_bias", lambda x, w: dc.ops.conv2d(x, w, padding=1), [normal(2, 3, 5, 5), normal(2, 3, 3, 3)], [Conv2d],
    lambda x, w: F.conv2d(x, w, padding=1))
row("conv1d", lambda x, w, b: dc.ops.conv1d(x, w, b, stride=2, padding=1, dilation=2),
    [normal(2, 3, 11), normal(4, 3, 3), normal(4)], [Reshape, Conv2d],
    lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1, dilation=2))
row("conv1d_groups", lambda x, w: dc.ops.conv1d(x, w, groups=2), [normal(2, 4, 6), normal(2, 2, 3)], [Reshape, Conv2d],
    lambda x, w: F.conv1d(x, w, groups=2))
# padding="same": an odd total padding (an even kernel) pads one more zero before too and drops that first output
CONV2D_SAME = [
    # name, x shape, weight shape, keyword arguments, ops on the tape
    ("same_odd_kernel_dilated", (2, 2, 6, 5), (3, 2, 3, 3), dict(padding="same", dilation=2), [Conv2d]),
    ("same_even_kernels", (2, 2, 6, 5), (3, 2, 4, 2), dict(padding="same"), [Conv2d, GetItem]),
    ("same_even_kernel_dilated", (1, 2, 7, 6), (2, 2, 2, 3), dict(padding="same", dilation=(3, 2)), [Conv2d, GetItem]),
    ("valid", (2, 2, 6, 5), (3, 2, 3, 2), dict(padding="valid"), [Conv2d]),
]
for case, x_shape, w_shape, options, ops in CONV2D_SAME:
    row(f"conv2d_{case}", lambda x, w, b, o=options: dc.ops.conv2d(x, w, b, **o),
        [normal(*x_shape), normal(*w_shape), normal(w_shape[0])], ops,
        lambda x, w, b, o=options: F.conv2d(x, w, b, **o))
row("conv1d_same_even_kernel", lambda x, w, b: dc.ops.conv1d(x, w, b, padding="same", dilation=3),
    [normal(2, 3, 9), normal(4, 3, 4), normal(4)], [Reshape, Conv2d, GetItem],
    lambda x, w, b: F.conv1d(x, w, b, padding="same", dilation=3))

CONV_TRANSPOSE2D = [
    # name, x shape, weight shape (in, out/groups, kh, kw), keyword arguments
    ("plain", (2, 3, 4, 5), (3, 2, 3, 3), {}),
    ("stride_padding_output_padding", (2, 2, 4, 3), (2, 3, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    ("rect", (1, 2, 3, 4), (2, 2, 2, 3), dict(stride=(2, 3), padding=(0, 1), output_padding=(1, 2))),
    ("dilation", (2, 2, 4, 4), (2, 3, 3, 2), dict(stride=2, padding=1, dilation=2)),
    ("output_padding_past_the_stride", (1, 2, 4, 3), (2, 2, 3, 3), dict(padding=1, output_padding=2, dilation=3)),
    ("groups", (2, 4, 3, 3), (4, 3, 3, 3), dict(stride=2, groups=2)),
]
for case, x_shape, w_shape, options in CONV_TRANSPOSE2D:
    out_channels = w_shape[1] * options.get("groups", 1)
    row(f"conv_transpose2d_{case}", lambda x, w, b, o=options: dc.ops.conv_transpose2d(x, w, b, **o),
        [normal(*x_shape), normal(*w_shape), normal(out_channels)], [ConvTranspose2d],
        lambda x, w, b, o=options: F.conv_transpose2d(x, w, b, **o))
row("conv_transpose2d_no_bias", lambda x, w: dc.ops.conv_transpose2d(x, w, stride=3, padding=2),
    [normal(2, 3, 3, 3), normal(3, 2, 4, 4)], [ConvTranspose2d],
    lambda x, w: F.conv_transpose2d(x, w, stride=3, padding=2))
row("conv_transpose1d", lambda x, w, b: dc.ops.conv_transpose1d(x, w, b, stride=2, padding=3, output_padding=1),
    [normal(2, 3, 6), normal(3, 4, 7), normal(4)], [Reshape, ConvTranspose2d],
    lambda x, w, b: F.conv_transpose1d(x, w, b, stride=2, padding=3, output_padding=1))
row("conv_transpose1d_groups_dilation", lambda x, w: dc.ops.conv_transpose1d(x, w, groups=2, dilation=2),
    [normal(2, 4, 5), normal(4, 1, 3)], [Reshape, ConvTranspose2d],
    lambda x, w: F.conv_transpose1d(x, w, groups=2, dilation=2))

POOL2D = [
    ("2x2", 2, None, 0, (2, 3, 6, 4)),
    ("3x3_stride_1", 3, 1, 0, (1, 2, 5, 5)),
    ("overlapping_padded", 3, 2, 1, (2, 2, 7, 6)),
    ("rect", (2, 3), (2, 1), (1, 1), (1, 2, 5, 6)),
]
for case, kernel, stride, padding, shape in POOL2D:
    row(f"max_pool2d_{case}", lambda x, k=kernel, s=stride, p=padding: dc.ops.max_pool2d(x, k, s, p),
        [distinct(*shape)], [MaxPool2d], lambda x, k=kernel, s=stride, p=padding: F.max_pool2d(x, k, s, p))
    row(f"avg_pool2d_{case}", lambda x, k=kernel, s=stride, p=padding: dc.ops.avg_pool2d(x, k, s, p),
        [normal(*shape)], [AvgPool2d], lambda x, k=kernel, s=stride, p=padding: F.avg_pool2d(x, k, s, p))
row("global_avg_pool2d", dc.ops.global_avg_pool2d, [normal(2, 3, 4, 5)], [Mean],
    lambda x: F.adaptive_avg_pool2d(x, 1).flatten(1), lambda x: x.mean(axis=(2, 3)))
row("adaptive_avg_pool2d", lambda x: dc.ops.adaptive_avg_pool2d(x, (2, 3)), [normal(2, 3, 4, 6)], [AvgPool2d],
    lambda x: F.adaptive_avg_pool2d(x, (2, 3)))

for case, shape in (("2d", (6, 4)), ("3d", (3, 4, 5)), ("4d", (3, 2, 4, 5))):
    row(f"batch_norm_train_{case}", lambda x, g, b: dc.ops.batch_norm(x, g, b, training=True),
        [normal(*shape, scale=2.0), normal(shape[1]), normal(shape[1])], [BatchNorm],
        lambda x, g, b: F.batch_norm(x, None, None, g, b, training=True))
row("batch_norm_eval", lambda x, g, b: dc.ops.batch_norm(x, g, b, np.array([0.5, -1.0]), np.array([2.0, 0.5]),
                                                            training=False),
    [normal(3, 2, 4, 4), normal(2), normal(2)], [Sub, Mul, Add, Reshape],
    lambda x, g, b: F.batch_norm(x, torch.tensor([0.5, -1.0], dtype=x.dtype), torch.tensor([2.0, 0.5], dtype=x.dtype),
                                 g, b, training=False))


# -- recurrent layers over whole sequences (time-major; weights (in, gates·H), PyTorch's gate order) --------
def torch_recurrence(kind, x, h, c, w_ih, w_hh, b_ih, b_hh, reverse=False, nonlinearity="tanh"):
    """The same recurrences written step by step with torch ops: autograd gives the oracle's gradients."""
    outputs, size = [], h.shape[1]
    steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
    for t in steps:
        from_input, from_hidden = x[t] @ w_ih + b_ih, h @ w_hh + b_hh
        if kind == "rnn":
            h = torch.tanh(from_input + from_hidden) if nonlinearity == "tanh" else torch.relu(from_input + from_hidden)
        elif kind == "lstm":
            i, f, g, o = (from_input + from_hidden).split(size, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
        else:
            r = torch.sigmoid(from_input[:, :size] + from_hidden[:, :size])
            z = torch.sigmoid(from_input[:, size : 2 * size] + from_hidden[:, size : 2 * size])
            n = torch.tanh(from_input[:, 2 * size :] + r * from_hidden[:, 2 * size :])
            h = (1 - z) * n + z * h
        outputs.append(h)
    if reverse:
        outputs.reverse()
    stacked = torch.stack(outputs)
    return (stacked, h, c) if kind == "lstm" else stacked


T_, N_, I_, H_ = 5, 3, 4, 3
for reverse in (False, True):
    for nonlinearity in ("tanh", "relu"):
        row(f"rnn_{nonlinearity}{'_reverse' if reverse else ''}",
            lambda x, h, wi, wh, bi, bh, r=reverse, a=nonlinearity: dc.ops.rnn(x, h, wi, wh, bi, bh, a, reverse=r),
            [normal(T_, N_, I_), normal(N_, H_), normal(I_, H_, scale=0.5), normal(H_, H_, scale=0.5), normal(H_),
             normal(H_)], [RNNLayer],
            lambda x, h, wi, wh, bi, bh, r=reverse, a=nonlinearity: torch_recurrence("rnn", x, h, None, wi, wh, bi, bh,
                                                                                    r, a))
    row(f"lstm{'_reverse' if reverse else ''}",
        lambda x, h, c, wi, wh, bi, bh, r=reverse: dc.ops.lstm(x, h, c, wi, wh, bi, bh, reverse=r),
        [normal(T_, N_, I_), normal(N_, H_), normal(N_, H_), normal(I_, 4 * H_, scale=0.5),
         normal(H_, 4 * H_, scale=0.5), normal(4 * H_), normal(4 * H_)], [LSTMLayer],
        lambda x, h, c, wi, wh, bi, bh, r=reverse: torch_recurrence("lstm", x, h, c, wi, wh, bi, bh, r))
    row(f"gru{'_reverse' if reverse else ''}",
        lambda x, h, wi, wh, bi, bh, r=reverse: dc.ops.gru(x, h, wi, wh, bi, bh, reverse=r),
        [normal(T_, N_, I_), normal(N_, H_), normal(I_, 3 * H_, scale=0.5), normal(H_, 3 * H_, scale=0.5),
         normal(3 * H_), normal(3 * H_)], [GRULayer],
        lambda x, h, wi, wh, bi, bh, r=reverse: torch_recurrence("gru", x, h, None, wi, wh, bi, bh, r))
row("cross_entropy_sequence", dc.ops.cross_entropy, [normal(2, 3, 4, scale=2.0), lambda rng: rng.integers(0, 4, (2, 3))],
    [Reshape, SoftmaxCrossEntropy], lambda x, y: F.cross_entropy(x.reshape(-1, 4), y.reshape(-1)))

row("upsample2d", lambda x: dc.ops.upsample2d(x, 2), [normal(2, 3, 3, 4)], [Upsample2d],
    lambda x: F.interpolate(x, scale_factor=2, mode="nearest"))
row("upsample2d_rect", lambda x: dc.ops.upsample2d(x, (1, 3)), [normal(1, 2, 3, 2)], [Upsample2d],
    lambda x: F.interpolate(x, scale_factor=(1, 3), mode="nearest"))
INTERPOLATE = [
    # name, x shape, keyword arguments (descend's and F.interpolate's alike), ops on the tape
    ("nearest_scale_1d", (2, 3, 4), dict(scale_factor=3), [Reshape, Upsample2d]),
    ("nearest_scale_2d", (2, 2, 3, 2), dict(scale_factor=(2, 3)), [Upsample2d]),
    ("nearest_size_1d", (2, 3, 5), dict(size=12), [Interpolate]),
    ("nearest_size_2d_down_and_up", (1, 2, 5, 4), dict(size=(3, 7)), [Interpolate]),
    ("linear_scale", (2, 3, 5), dict(scale_factor=3, mode="linear"), [Interpolate]),
    ("linear_size_down", (2, 2, 7), dict(size=4, mode="linear"), [Interpolate]),
    ("linear_align_corners", (2, 2, 5), dict(size=8, mode="linear", align_corners=True), [Interpolate]),
    ("bilinear_scale", (2, 2, 3, 4), dict(scale_factor=(2, 3), mode="bilinear"), [Interpolate]),
    ("bilinear_size", (1, 2, 4, 5), dict(size=(7, 3), mode="bilinear"), [Interpolate]),
    ("bilinear_align_corners", (1, 2, 3, 4), dict(size=(5, 7), mode="bilinear", align_corners=True), [Interpolate]),
]
for case, shape, options, ops in INTERPOLATE:
    row(f"interpolate_{case}", lambda x, o=options: dc.ops.interpolate(x, **o), [normal(*shape)], ops,
        lambda x, o=options: F.interpolate(x, **o))


# -- capsules: squash (a primitive), predictions (a primitive) and routing by agreement (composed) --------
def torch_squash(s, dim=-1):
    n = (s * s).sum(dim=dim, keepdim=True)
    return n / ((1 + n) * torch.sqrt(n + EPSILON)) * s


def torch_routing(predictions, iterations):
    """Procedure 1 of the paper with torch ops: b (N, J, I) from 0, c = softmax over j, s, v = squash(s), b += û·v."""
    logits = torch.zeros(predictions.shape[:3], dtype=predictions.dtype)
    for iteration in range(iterations):
        coupling = torch.softmax(logits, dim=1)
        outputs = torch_squash(torch.einsum("nji,njid->njd", coupling, predictions))
        if iteration + 1 < iterations:
            logits = logits + torch.einsum("njid,njd->nji", predictions, outputs)
    return outputs


def torch_margin_loss(lengths, labels, m_plus=0.9, m_minus=0.1, lam=0.5):
    target = F.one_hot(labels, lengths.shape[1]).to(lengths.dtype)
    margins = target * torch.relu(m_plus - lengths) ** 2 + lam * (1 - target) * torch.relu(lengths - m_minus) ** 2
    return margins.sum(dim=1).mean()


row("squash_last_axis", dc.ops.squash, [normal(3, 4, 5)], [Squash], torch_squash)
row("squash_middle_axis", lambda s: dc.ops.squash(s, axis=1), [normal(2, 6, 3, scale=0.3)], [Squash],
    lambda s: torch_squash(s, dim=1))
row("squash_long_and_short", dc.ops.squash, [normal(4, 8, scale=10.0)], [Squash], torch_squash)
row("capsule_length", dc.ops.capsule_length, [normal(3, 5, 4)], [Mul, Sum, Add, Sqrt],
    lambda v: torch.sqrt((v * v).sum(dim=-1) + EPSILON))
row("capsule_predictions", lambda u, w: dc.ops.capsule_predictions(u, w, 3), [normal(2, 5, 4), normal(5, 4, 3 * 6)],
    [CapsulePredictions],
    lambda u, w: torch.einsum("nid,idk->nik", u, w).reshape(2, 5, 3, 6).permute(0, 2, 1, 3))
# with one iteration the couplings are the constant 1/J: no softmax reaches the tape
ROUTING = ((1, [MatMul, Squash, Reshape]), (3, [Softmax, MatMul, Squash, Reshape, Add, Transpose]))
for iterations, ops_used in ROUTING:
    row(f"dynamic_routing_{iterations}", lambda p, k=iterations: dc.ops.dynamic_routing(p, k),
        [normal(2, 3, 5, 4, scale=0.5)], ops_used, lambda p, k=iterations: torch_routing(p, k))
row("margin_loss", lambda v, y: dc.nn.MarginLoss()(v, y), [uniform(0.02, 0.98, 6, 4), labels(6, 4)],
    [Sub, Relu, Mul, Add, Sum, Mean], torch_margin_loss)

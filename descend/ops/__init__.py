"""Every differentiable primitive, by family; each is forward + vector-Jacobian product.

`PRIMITIVES` lists them all: the op-table test checks that each has a row.
"""

from descend.ops.base import Function
from descend.ops.elementwise import (
    abs, add, clip, cos, div, elu, exp, leaky_relu, log, maximum, mul, neg, power, relu, sigmoid, sin,
    softplus, sqrt, sub, tanh, where,
)
from descend.ops.capsules import capsule_length, capsule_predictions, dynamic_routing, squash
from descend.ops.conv import conv1d, conv2d, conv_transpose1d, conv_transpose2d
from descend.ops.matmul import linear, matmul
from descend.ops.normalization import batch_norm
from descend.ops.recurrent import gru, lstm, rnn
from descend.ops.pool import (
    adaptive_avg_pool2d, avg_pool2d, global_avg_pool2d, interpolate, max_pool2d, upsample2d,
)
from descend.ops.reduce import argmax, max, mean, min, sum
from descend.ops.shape import concat, flatten, getitem, reshape, split, stack, transpose
from descend.ops.softmax import binary_cross_entropy_with_logits, cross_entropy, log_softmax, nll_loss, softmax


def all_primitives() -> list[type[Function]]:
    """Every concrete Function subclass defined so far, in definition order."""
    found, pending = [], list(Function.__subclasses__())
    while pending:
        cls = pending.pop(0)
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


__all__ = [
    "gru", "lstm", "rnn", "upsample2d", "capsule_length", "capsule_predictions", "dynamic_routing", "squash",
    "adaptive_avg_pool2d", "avg_pool2d", "batch_norm", "conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d",
    "global_avg_pool2d", "interpolate", "max_pool2d",
    "Function", "abs", "add", "all_primitives", "argmax", "binary_cross_entropy_with_logits", "clip", "concat", "cos",
    "cross_entropy", "div", "elu", "exp", "flatten", "getitem", "leaky_relu", "linear", "log", "log_softmax", "matmul",
    "max", "maximum", "mean", "min", "mul", "neg", "nll_loss", "power", "relu", "reshape", "sigmoid", "sin", "softmax",
    "softplus", "split", "sqrt", "stack", "sub", "sum", "tanh", "transpose", "where",
]

"""Elementwise primitives: each forward sits beside its derivative.

Binary ops broadcast as NumPy does; their `backward` returns gradients of
the broadcast shape and the engine sums them back (`tensor.unbroadcast`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from descend import kernels
from descend.checks import check_real
from descend.errors import DescendValueError, ShapeError
from descend.ops.base import Function, shape_of
from descend.tensor import Tensor, array_of


def broadcasting(op: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """Wrap an op on broadcast operands so that NumPy's bare ValueError for shapes that do not
    broadcast becomes a ShapeError naming the op and every shape; checked only after a failure, so free."""

    @functools.wraps(op)
    def checked(*operands: Any) -> Tensor:
        try:
            return op(*operands)
        except ValueError:
            shapes = [shape_of(operand) for operand in operands]
            try:
                np.broadcast_shapes(*shapes)
            except ValueError:
                raise ShapeError(
                    f"{op.__name__}: operands of shapes {' and '.join(map(str, shapes))} do not broadcast together; "
                    "expected sizes equal or 1 on each axis, counted from the last"
                ) from None
            raise

    return checked


def stable_sigmoid(x: np.ndarray) -> np.ndarray:
    """σ(x) on arrays, through e^−|x| so that neither sign overflows."""
    exp_neg_abs = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + exp_neg_abs), exp_neg_abs / (1 + exp_neg_abs))


class Add(Function):
    """x + y; d/dx = 1, d/dy = 1."""

    notation = "{0} + {1}"

    def forward(self, x, y):
        return x + y

    def backward(self, grad):
        return grad, grad


@broadcasting
def add(x: Any, y: Any) -> Tensor:
    """x + y, broadcasting."""
    return Add.apply(x, y)


class Sub(Function):
    """x − y; d/dx = 1, d/dy = −1."""

    notation = "{0} − {1}"

    def forward(self, x, y):
        return x - y

    def backward(self, grad):
        return grad, -grad if self.needs_input_grad[1] else None


@broadcasting
def sub(x: Any, y: Any) -> Tensor:
    """x − y, broadcasting."""
    return Sub.apply(x, y)


class Mul(Function):
    """x · y elementwise; d/dx = y, d/dy = x."""

    notation = "{0} × {1}"

    def forward(self, x, y):
        self.x, self.y = x, y
        return x * y

    def backward(self, grad):
        return (
            grad * self.y if self.needs_input_grad[0] else None,
            grad * self.x if self.needs_input_grad[1] else None,
        )


@broadcasting
def mul(x: Any, y: Any) -> Tensor:
    """x · y elementwise, broadcasting."""
    return Mul.apply(x, y)


class Div(Function):
    """x / y elementwise; d/dx = 1/y, d/dy = −x/y²."""

    notation = "{0} / {1}"

    def forward(self, x, y):
        self.x, self.y = x, y
        return x / y

    def backward(self, grad):
        grad_x = grad / self.y
        return grad_x, -grad_x * self.x / self.y if self.needs_input_grad[1] else None


@broadcasting
def div(x: Any, y: Any) -> Tensor:
    """x / y elementwise, broadcasting."""
    return Div.apply(x, y)


class Pow(Function):
    """x ** y; d/dx = y · x^(y−1), d/dy = x^y · ln x (taken as 0 where x ≤ 0)."""

    notation = "{0} ^ {1}"

    def forward(self, x, y):
        self.x, self.y = x, y
        self.out = np.power(x, y)
        return self.out

    def backward(self, grad):
        grad_x = grad * self.y * np.power(self.x, self.y - 1) if self.needs_input_grad[0] else None
        grad_y = None
        if self.needs_input_grad[1]:
            with np.errstate(divide="ignore", invalid="ignore"):
                grad_y = grad * self.out * np.where(self.x > 0, np.log(np.where(self.x > 0, self.x, 1)), 0)
        return grad_x, grad_y


@broadcasting
def power(x: Any, y: Any) -> Tensor:
    """x ** y elementwise, broadcasting."""
    return Pow.apply(x, y)


class Neg(Function):
    """−x; d/dx = −1."""

    notation = "−{0}"

    def forward(self, x):
        return -x

    def backward(self, grad):
        return (-grad,)


def neg(x: Any) -> Tensor:
    """−x."""
    return Neg.apply(x)


class Exp(Function):
    """eˣ; d/dx = eˣ, the saved output."""

    notation = "exp({0})"

    def forward(self, x):
        self.out = np.exp(x)
        return self.out

    def backward(self, grad):
        return (grad * self.out,)


def exp(x: Any) -> Tensor:
    """eˣ elementwise.

    >>> round(float(exp(1.0)), 4)
    2.7183
    """
    return Exp.apply(x)


class Log(Function):
    """ln x; d/dx = 1/x."""

    notation = "ln({0})"

    def forward(self, x):
        self.x = x
        return np.log(x)

    def backward(self, grad):
        return (grad / self.x,)


def log(x: Any) -> Tensor:
    """Natural logarithm ln x elementwise; d/dx = 1/x.

    >>> x = Tensor(2.0, requires_grad=True)
    >>> log(x).backward()
    >>> float(log(1.0)), float(x.grad)
    (0.0, 0.5)
    """
    return Log.apply(x)


class Sqrt(Function):
    """√x; d/dx = 1 / (2√x)."""

    notation = "√{0}"

    def forward(self, x):
        self.out = np.sqrt(x)
        return self.out

    def backward(self, grad):
        return (grad / (2 * self.out),)


def sqrt(x: Any) -> Tensor:
    """√x elementwise.

    >>> sqrt([4.0, 9.0]).data.tolist()
    [2.0, 3.0]
    """
    return Sqrt.apply(x)


class Sin(Function):
    """sin x; d/dx = cos x."""

    notation = "sin({0})"

    def forward(self, x):
        self.x = x
        return np.sin(x)

    def backward(self, grad):
        return (grad * np.cos(self.x),)


def sin(x: Any) -> Tensor:
    """sin x elementwise; d/dx = cos x.

    >>> x = Tensor(0.0, requires_grad=True)
    >>> sin(x).backward()
    >>> float(sin(0.0)), float(x.grad)
    (0.0, 1.0)
    """
    return Sin.apply(x)


class Cos(Function):
    """cos x; d/dx = −sin x."""

    notation = "cos({0})"

    def forward(self, x):
        self.x = x
        return np.cos(x)

    def backward(self, grad):
        return (-grad * np.sin(self.x),)


def cos(x: Any) -> Tensor:
    """cos x elementwise; d/dx = −sin x.

    >>> cos([0.0, np.pi]).data.tolist()
    [1.0, -1.0]
    """
    return Cos.apply(x)


class Tanh(Function):
    """tanh x; d/dx = 1 − tanh² x."""

    notation = "tanh({0})"

    def forward(self, x):
        self.out = np.tanh(x)
        return self.out

    def backward(self, grad):
        return (grad * (1 - self.out * self.out),)


def tanh(x: Any) -> Tensor:
    """tanh x elementwise; d/dx = 1 − tanh² x.

    >>> tanh([0.0, 100.0]).data.tolist()
    [0.0, 1.0]
    """
    return Tanh.apply(x)


class Sigmoid(Function):
    """σ(x) = 1 / (1 + e^−x), written so that neither branch overflows; d/dx = σ(1 − σ)."""

    notation = "σ({0})"

    def forward(self, x):
        self.out = stable_sigmoid(x)
        return self.out

    def backward(self, grad):
        return (grad * self.out * (1 - self.out),)


def sigmoid(x: Any) -> Tensor:
    """σ(x) = 1 / (1 + e^−x); d/dx = σ(1 − σ).

    >>> sigmoid([-1000.0, 0.0, 1000.0]).data.tolist()  # no overflow at either end
    [0.0, 0.5, 1.0]
    """
    return Sigmoid.apply(x)


class Relu(Function):
    """max(x, 0); d/dx = 1 where x > 0, else 0."""

    notation = "relu({0})"

    def forward(self, x):
        self.kernels = kernels.for_arrays(x)
        if self.kernels is not None:
            out, self.positive = self.kernels.relu(x)
            return out
        self.positive = x > 0
        return np.maximum(x, 0)

    def backward(self, grad):
        if self.kernels is not None:
            return (self.kernels.relu_backward(grad, self.positive),)
        return (grad * self.positive,)


def relu(x: Any) -> Tensor:
    """max(x, 0); the gradient is 1 where x > 0, else 0.

    >>> relu([-1.0, 2.0]).data.tolist()
    [0.0, 2.0]
    """
    return Relu.apply(x)


class LeakyRelu(Function):
    """x for x > 0, negative_slope · x otherwise; d/dx = 1 or negative_slope."""

    notation = "leaky_relu({0})"

    def forward(self, x):
        self.slope = np.where(x > 0, 1, self.negative_slope).astype(x.dtype)
        return x * self.slope

    def backward(self, grad):
        return (grad * self.slope,)


def leaky_relu(x: Any, negative_slope: float = 0.01) -> Tensor:
    """x for x > 0, negative_slope · x otherwise.

    >>> leaky_relu([-1.0, 2.0], negative_slope=0.5).data.tolist()
    [-0.5, 2.0]
    """
    return LeakyRelu.apply(x, negative_slope=check_real("negative_slope", negative_slope))


class Elu(Function):
    """x for x > 0, α(eˣ − 1) otherwise; d/dx = 1 or αeˣ."""

    notation = "elu({0})"

    def forward(self, x):
        self.positive = x > 0
        self.exp_part = self.alpha * np.exp(np.minimum(x, 0))
        return np.where(self.positive, x, self.exp_part - self.alpha)

    def backward(self, grad):
        return (grad * np.where(self.positive, 1, self.exp_part),)


def elu(x: Any, alpha: float = 1.0) -> Tensor:
    """x for x > 0, α(eˣ − 1) otherwise.

    >>> round(float(elu(-1.0)), 4), float(elu(2.0))
    (-0.6321, 2.0)
    """
    return Elu.apply(x, alpha=check_real("alpha", alpha))


class Softplus(Function):
    """ln(1 + eˣ), computed as max(x, 0) + ln(1 + e^−|x|) so it never overflows; d/dx = σ(x)."""

    notation = "softplus({0})"

    def forward(self, x):
        self.x = x
        return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))

    def backward(self, grad):
        return (grad * stable_sigmoid(self.x),)


def softplus(x: Any) -> Tensor:
    """ln(1 + eˣ), a smooth ReLU; d/dx = σ(x).

    >>> round(float(softplus(0.0)), 4), float(softplus(1000.0))
    (0.6931, 1000.0)
    """
    return Softplus.apply(x)


class Abs(Function):
    """|x|; d/dx = sign x (0 at 0)."""

    notation = "|{0}|"

    def forward(self, x):
        self.sign = np.sign(x)
        return np.abs(x)

    def backward(self, grad):
        return (grad * self.sign,)


def abs(x: Any) -> Tensor:  # noqa: A001  (NumPy's name)
    """|x|; the gradient is sign(x) (0 at 0).

    >>> abs([-1.5, 2.0]).data.tolist()
    [1.5, 2.0]
    """
    return Abs.apply(x)


class Clip(Function):
    """x limited to [min, max]; d/dx = 1 where min ≤ x ≤ max, else 0."""

    notation = "clip({0})"

    def forward(self, x):
        self.inside = np.ones(x.shape, dtype=bool)
        if self.min is not None:
            self.inside &= x >= self.min
        if self.max is not None:
            self.inside &= x <= self.max
        return np.clip(x, self.min, self.max)

    def backward(self, grad):
        return (grad * self.inside,)


def clip(x: Any, min: float | None = None, max: float | None = None) -> Tensor:  # noqa: A002
    """x limited to [min, max] (either bound may be None).

    >>> clip([-2.0, 0.5, 3.0], min=0.0, max=1.0).data.tolist()
    [0.0, 0.5, 1.0]
    """
    if min is not None and max is not None and np.any(np.greater(min, max)):
        raise DescendValueError(f"clip: min must be at most max; got min={min!r} and max={max!r}")
    return Clip.apply(x, min=min, max=max)


class Where(Function):
    """condition ? x : y, elementwise; d/dx = condition, d/dy = not condition; the condition gets none."""

    notation = "where({0}, {1}, {2})"

    def forward(self, condition, x, y):
        self.condition = condition.astype(bool)
        return np.where(self.condition, x, y)

    def backward(self, grad):
        zero = np.zeros((), dtype=grad.dtype)
        return None, np.where(self.condition, grad, zero), np.where(self.condition, zero, grad)


@broadcasting
def where(condition: Any, x: Any, y: Any) -> Tensor:
    """x where condition holds, else y; broadcasting all three.

    >>> where([True, False], [1.0, 2.0], [10.0, 20.0]).data.tolist()
    [1.0, 20.0]
    """
    return Where.apply(condition, x, y)


@broadcasting
def maximum(x: Any, y: Any) -> Tensor:
    """Elementwise max of x and y; where they tie, y gets the gradient.

    >>> maximum([1.0, 5.0], [3.0, 2.0]).data.tolist()
    [3.0, 5.0]
    """
    return where(np.greater(array_of(x), array_of(y)), x, y)

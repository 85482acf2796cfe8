"""Reductions over axes: sum, mean, max, min (with keepdims)."""

from __future__ import annotations

from typing import Any

import numpy as np

from descend.checks import accepting_torch_names, check_axis
from descend.errors import DescendValueError, ShapeError
from descend.ops.base import Function
from descend.tensor import Tensor, array_of


def _normalize_axis(axis: Any, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (tuple, list)):
        axes = tuple(check_axis(f"axis[{index}]", a, ndim) for index, a in enumerate(axis))
    else:
        axes = (check_axis("axis", axis, ndim),)
    if len(set(axes)) != len(axes):
        raise DescendValueError(f"axis must name each axis once; got {axis!r}, which repeats one")
    return axes


def _expand_to_input(grad: np.ndarray, axes: tuple[int, ...], keepdims: bool, ndim: int) -> np.ndarray:
    """Put the reduced axes back as size-1 axes so grad broadcasts over the input."""
    if keepdims:
        return grad
    shape = list(grad.shape)
    for axis in sorted(axes):
        shape.insert(axis, 1)
    return grad.reshape(shape[:ndim] if ndim else ())


class Sum(Function):
    """Σ x over axes; d/dx = 1, so grad is broadcast back over the summed axes."""

    notation = "Σ {0}"

    def forward(self, x):
        self.shape = x.shape
        self.axes = _normalize_axis(self.axis, x.ndim)
        return np.sum(x, axis=self.axes, keepdims=self.keepdims)

    def backward(self, grad):
        grad = _expand_to_input(grad, self.axes, self.keepdims, len(self.shape))
        return (np.broadcast_to(grad, self.shape),)


@accepting_torch_names
def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001  (NumPy's name)
    """Σ over `axis` (an int, a tuple, or None for all); reduced axes go, or stay as size 1 with keepdims.

    >>> sum([[1.0, 2.0], [3.0, 4.0]], axis=0).data.tolist()
    [4.0, 6.0]
    """
    return Sum.apply(x, axis=axis, keepdims=keepdims)


class Mean(Function):
    """Mean of n values over axes; d/dx = 1/n, broadcast back over the reduced axes."""

    notation = "mean({0})"

    def forward(self, x):
        self.shape = x.shape
        self.axes = _normalize_axis(self.axis, x.ndim)
        self.count = int(np.prod([x.shape[a] for a in self.axes])) if self.axes else 1
        return np.mean(x, axis=self.axes, keepdims=self.keepdims)

    def backward(self, grad):
        grad = _expand_to_input(grad, self.axes, self.keepdims, len(self.shape))
        return (np.broadcast_to(grad / self.count, self.shape),)


@accepting_torch_names
def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Arithmetic mean over `axis`; shapes as for `sum`.

    >>> mean([[1.0, 2.0], [3.0, 4.0]], axis=1).data.tolist()
    [1.5, 3.5]
    """
    return Mean.apply(x, axis=axis, keepdims=keepdims)


class Max(Function):
    """Largest value over axes; d/dx = 1 at the maximum, else 0; ties share the gradient equally."""

    notation = "max({0})"
    pick = staticmethod(np.max)

    def forward(self, x):
        self.x = x
        self.axes = _normalize_axis(self.axis, x.ndim)
        if any(x.shape[axis] == 0 for axis in self.axes):
            raise DescendValueError(
                f"{self.pick.__name__}(axis={self.axis!r}) of a tensor of shape {x.shape} reduces an empty axis, "
                "which has no extreme value; expected at least one value along every reduced axis"
            )
        self.out = self.pick(x, axis=self.axes, keepdims=True)
        return self.out if self.keepdims else self.out.reshape(
            [s for a, s in enumerate(x.shape) if a not in self.axes]
        )

    def backward(self, grad):
        grad = _expand_to_input(grad, self.axes, self.keepdims, self.x.ndim)
        winners = self.x == self.out
        count = winners.sum(axis=self.axes, keepdims=True, dtype=self.x.dtype)  # an int count would give float64
        return (grad * winners / count,)


@accepting_torch_names
def max(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Largest value over `axis`; shapes as for `sum`.

    >>> max([[1.0, 5.0], [3.0, 4.0]], axis=0).data.tolist()
    [3.0, 5.0]
    """
    return Max.apply(x, axis=axis, keepdims=keepdims)


class Min(Max):
    """Smallest value over axes; d/dx = 1 at the minimum, else 0; ties share the gradient equally."""

    notation = "min({0})"
    pick = staticmethod(np.min)


@accepting_torch_names
def min(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Smallest value over `axis`; shapes as for `sum`.

    >>> min([[1.0, 5.0], [3.0, 4.0]], axis=1, keepdims=True).data.tolist()
    [[1.0], [3.0]]
    """
    return Min.apply(x, axis=axis, keepdims=keepdims)


@accepting_torch_names
def argmax(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """The index of the largest value along `axis` (an int, or None for the flattened array): an int64
    tensor that is not on the tape, since an index has no gradient. The first index wins a tie, as in NumPy.

    >>> argmax([[1.0, 5.0], [3.0, 2.0]], axis=1).data.tolist()
    [1, 0]
    """
    values = array_of(x)
    if values.size == 0:
        raise ShapeError(f"argmax of an empty array (shape {values.shape}) has no answer")
    if axis is None:
        if keepdims:
            raise DescendValueError("argmax: keepdims=True needs an axis")
        return Tensor(np.asarray(np.argmax(values)))
    axis = check_axis("axis", axis, values.ndim)
    return Tensor(np.argmax(values, axis=axis, keepdims=bool(keepdims)))

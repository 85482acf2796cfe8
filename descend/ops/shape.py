"""Shape ops: reshape, transpose, indexing, concatenation; stack and split are built from them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from descend.checks import accepting_torch_names, check_axis
from descend.errors import DescendTypeError, IndexOutOfRangeError, ShapeError
from descend.ops.base import Function, shape_of
from descend.tensor import Tensor


class Reshape(Function):
    """The same elements in a new shape; the gradient is reshaped back to the input's shape."""

    notation = "reshape({0})"

    def forward(self, x):
        self.input_shape = x.shape
        try:
            return x.reshape(self.shape)
        except TypeError:
            raise DescendTypeError(f"reshape: shape must be a sequence of integers; got {self.shape!r}") from None
        except ValueError:
            raise ShapeError(
                f"cannot reshape a tensor of shape {x.shape} ({x.size} elements) into {tuple(self.shape)}; "
                f"expected a shape of {x.size} elements, at most one size -1"
            ) from None

    def backward(self, grad):
        return (grad.reshape(self.input_shape),)


def reshape(x: Any, shape: Sequence[int]) -> Tensor:
    """The same elements in a new shape (one dimension may be -1).

    >>> reshape(np.arange(6.0), (2, -1)).shape
    (2, 3)
    """
    try:
        shape = tuple(shape)
    except TypeError:
        raise DescendTypeError(
            f"reshape: shape must be a sequence of integers; got {type(shape).__name__} {shape!r}"
        ) from None
    return Reshape.apply(x, shape=shape)


class Transpose(Function):
    """Axes permuted (reversed when `axes` is None); the gradient is permuted back."""

    notation = "transpose({0})"

    def forward(self, x):
        if self.axes is None:
            self.order = tuple(range(x.ndim))[::-1]
        else:
            self.order = tuple(check_axis(f"axes[{index}]", a, x.ndim) for index, a in enumerate(self.axes))
        if sorted(self.order) != list(range(x.ndim)):
            raise ShapeError(f"transpose axes {self.axes} are not a permutation of the {x.ndim} axes of {x.shape}")
        return np.transpose(x, self.order)

    def backward(self, grad):
        return (np.transpose(grad, np.argsort(self.order)),)


def transpose(x: Any, axes: Sequence[int] | None = None) -> Tensor:
    """Axes permuted as `axes` says, or reversed.

    >>> transpose(np.ones((2, 3, 4))).shape, transpose(np.ones((2, 3, 4)), (0, 2, 1)).shape
    ((4, 3, 2), (2, 4, 3))
    """
    return Transpose.apply(x, axes=None if axes is None else tuple(axes))


def _add_rows_at(full: np.ndarray, rows: np.ndarray, grad: np.ndarray) -> None:
    """full[rows[j]] += grad[j] for every j, repeats summed: sort the rows, then one np.add.reduceat per run."""
    flat = rows.ravel()
    if flat.size == 0:
        return
    flat = np.where(flat < 0, flat + full.shape[0], flat)  # -1 and n - 1 are the same row
    order = np.argsort(flat, kind="stable")
    sorted_rows = flat[order]
    starts = np.flatnonzero(np.r_[True, sorted_rows[1:] != sorted_rows[:-1]])
    picked = grad.reshape(flat.size, *full.shape[1:])[order]
    full[sorted_rows[starts]] += np.add.reduceat(picked, starts, axis=0)


class GetItem(Function):
    """x[index] for ints, slices, None, Ellipsis and integer or boolean arrays.

    The backward puts grad back where the elements came from. An integer
    or boolean array may pick an element twice, so it scatters with
    `np.add.at`, which adds repeats up; ints and slices never repeat, so
    they add in one plain (ten times faster) assignment. One integer array
    picking rows (an embedding lookup) sums each row's repeats after a sort,
    six times faster than `np.add.at`.
    """

    notation = "{0}[…]"

    def forward(self, x):
        self.input_shape = x.shape
        try:
            return x[self.index]
        except IndexError as error:
            raise IndexOutOfRangeError(f"index {self.index!r} does not fit a tensor of shape {x.shape}: {error}") from None

    def backward(self, grad):
        full = np.zeros(self.input_shape, dtype=grad.dtype)
        parts = self.index if isinstance(self.index, tuple) else (self.index,)
        if all(part is None or part is Ellipsis or isinstance(part, (int, np.integer, slice)) for part in parts):
            full[self.index] += grad
        elif isinstance(self.index, np.ndarray) and self.index.dtype.kind in "iu" and full.ndim:
            _add_rows_at(full, self.index, grad)
        else:
            np.add.at(full, self.index, grad)
        return (full,)


def getitem(x: Any, index: Any) -> Tensor:
    """x[index], NumPy indexing; index arrays may be tensors."""
    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return GetItem.apply(x, index=index)


class Concat(Function):
    """Tensors joined along an existing axis; the gradient is split back at the same boundaries."""

    notation = "concat({0}, …)"

    def forward(self, *xs):
        try:
            out = np.concatenate(xs, axis=self.axis)
        except ValueError:
            shapes = ", ".join(str(x.shape) for x in xs)
            raise ShapeError(f"concat along axis {self.axis} needs equal other axes; got shapes {shapes}") from None
        self.boundaries = np.cumsum([x.shape[self.axis] for x in xs])[:-1]
        return out

    def backward(self, grad):
        return tuple(np.split(grad, self.boundaries, axis=self.axis))


@accepting_torch_names
def concat(xs: Sequence[Any], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis: shapes (.., a, ..) + (.., b, ..) -> (.., a+b, ..).

    >>> concat([np.ones((2, 3)), np.ones((1, 3))]).shape
    (3, 3)
    """
    if len(xs) == 0:
        raise ShapeError("concat needs at least one tensor; got an empty sequence")
    axis = check_axis("axis", axis, len(shape_of(xs[0])))
    return Concat.apply(*xs, axis=axis)


@accepting_torch_names
def stack(xs: Sequence[Any], axis: int = 0) -> Tensor:
    """Join equal-shaped tensors along a new axis: k tensors of shape S -> shape with k inserted at `axis`.

    >>> stack([np.ones(3), np.ones(3)]).shape, stack([np.ones(3), np.ones(3)], axis=1).shape
    ((2, 3), (3, 2))
    """
    if len(xs) == 0:
        raise ShapeError("stack needs at least one tensor; got an empty sequence")
    axis = check_axis("axis", axis, len(shape_of(xs[0])) + 1)
    expanded = []
    for x in xs:
        shape = list(shape_of(x))
        shape.insert(axis, 1)
        expanded.append(reshape(x, shape))
    return concat(expanded, axis=axis)


@accepting_torch_names
def split(x: Tensor, sections: int | Sequence[int], axis: int = 0) -> list[Tensor]:
    """Cut along `axis` into `sections` equal parts, or at the given indices (NumPy's rule).

    >>> x = Tensor(np.ones((6, 2)))
    >>> [part.shape for part in split(x, 3)], [part.shape for part in split(x, [1, 4])]
    ([(2, 2), (2, 2), (2, 2)], [(1, 2), (3, 2), (2, 2)])
    """
    axis = check_axis("axis", axis, x.ndim)
    length = x.shape[axis]
    if isinstance(sections, (int, np.integer)):
        if sections <= 0 or length % sections:
            raise ShapeError(f"split: axis {axis} of length {length} does not divide into {sections} equal parts")
        step = length // sections
        cuts = list(range(step, length, step))
    else:
        cuts = list(sections)
    edges = [0, *cuts, length]
    before = (slice(None),) * axis
    return [getitem(x, (*before, slice(start, stop))) for start, stop in zip(edges[:-1], edges[1:])]


@accepting_torch_names
def flatten(x: Any, start_axis: int = 0) -> Tensor:
    """The axes from `start_axis` on merged into one: (N, C, H, W) with start_axis=1 -> (N, C·H·W), as
    torch.flatten(x, 1); a reshape, so its gradient is the reshape back.

    >>> flatten(np.ones((2, 3, 4, 5)), start_axis=1).shape
    (2, 60)
    """
    shape = shape_of(x)
    start = check_axis("start_axis", start_axis, max(len(shape), 1))
    return reshape(x, (*shape[:start], -1))

"""Parameters, and the one flat buffer that holds them all.

A model's parameters live in one contiguous array; each `Parameter` is a
view of it, and so is each gradient. An optimizer then updates every weight
in a few vector operations, HOGWILD! workers can share the buffer in shared
memory, and Spark can broadcast and average one array.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from descend.errors import DescendTypeError, DescendValueError, ParameterBufferWarning, warn
from descend.tensor import DEFAULT_DTYPE, Tensor, array_of


class Parameter(Tensor):
    """A trainable tensor: a leaf with `requires_grad=True`, float32 unless `dtype` says otherwise.

    `fan_in_axes` names the axes that hold one unit's incoming weights (for
    a dense weight of shape (in, out) that is axis 0); the max-norm
    constraint uses it. Once the parameter joins a `ParameterBuffer`, its
    `data` and `grad` are views of the buffer: change them in place
    (`p.data[...] = values`), never by rebinding.

    >>> weight = Parameter([[1.0, 2.0]])
    >>> weight, weight.requires_grad
    (Parameter(shape=(1, 2), dtype=float32), True)
    """

    def __init__(self, data: Any, dtype: Any = None, fan_in_axes: tuple[int, ...] | None = None):
        array = array_of(data)
        if array.dtype.kind not in "fiu":
            raise DescendTypeError(f"Parameter data must be numeric; got dtype {array.dtype}")
        super().__init__(np.array(array, dtype=dtype or DEFAULT_DTYPE), requires_grad=True)
        self.fan_in_axes = fan_in_axes
        self.buffer: ParameterBuffer | None = None

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype})"


class ParameterBuffer:
    """One flat array `data` (and `grad`) that every parameter in `params` is a view of.

    Shapes: data and grad are 1-D of length Σ p.size, in the order of `params`.

    >>> weight, bias = Parameter(np.ones((2, 3))), Parameter(np.zeros(3))
    >>> buffer = ParameterBuffer.of([weight, bias])
    >>> buffer.size, bool(np.shares_memory(buffer.data, weight.data)), buffer.data[-3:].tolist()
    (9, True, [0.0, 0.0, 0.0])
    """

    def __init__(self, params: Sequence[Parameter], dtype: Any = None):
        self.params = list(params)
        self.pinned = False  # set by an optimizer that holds this buffer
        self.retired = False  # set when its parameters moved to a new buffer: an optimizer holding this one is stale
        if dtype is None:
            dtype = np.result_type(*(p.dtype for p in self.params)) if self.params else DEFAULT_DTYPE
        self.offsets = np.concatenate([[0], np.cumsum([p.size for p in self.params])]).astype(int)
        data = np.concatenate([p.data.ravel() for p in self.params]).astype(dtype) if self.params else np.zeros(0, dtype)
        grad = np.zeros_like(data)
        for p, start, stop in zip(self.params, self.offsets[:-1], self.offsets[1:]):
            if p.grad is not None:
                grad[start:stop] = p.grad.ravel()
        self.rebind(data, grad)

    @classmethod
    def of(cls, params: Iterable[Parameter]) -> ParameterBuffer:
        """The buffer these parameters already share, in this order; else a new one for them."""
        params = check_parameters(params)
        if params and params[0].buffer is not None:
            shared = params[0].buffer
            if len(shared.params) == len(params) and all(a is b for a, b in zip(shared.params, params)):
                return shared
        pinned = {id(p.buffer): p.buffer for p in params if p.buffer is not None and p.buffer.pinned}
        if pinned:
            for buffer in pinned.values():
                buffer.retired = True
            warn("the model's parameters changed after an optimizer was made for them (a submodule replaced, or "
                 "the optimizer made from only some of them): they now live in a new flat buffer, and that optimizer "
                 "refuses to step. Make it again from model.parameters().", ParameterBufferWarning)
        return cls(params)

    @property
    def size(self) -> int:
        """The number of weights, Σ p.size."""
        return self.data.size

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the flat `data` and `grad`."""
        return self.data.dtype

    def rebind(self, data: np.ndarray, grad: np.ndarray | None = None) -> None:
        """Point every parameter at new flat arrays (shared memory, another dtype); the values come from them."""
        if data.ndim != 1 or data.size != self.offsets[-1]:
            raise DescendTypeError(f"rebind needs a flat array of {self.offsets[-1]} values; got shape {data.shape}")
        self.data = data
        self.grad = np.zeros_like(data) if grad is None else grad
        for p, start, stop in zip(self.params, self.offsets[:-1], self.offsets[1:]):
            p.data = self.data[start:stop].reshape(p.shape)
            p.grad = self.grad[start:stop].reshape(p.shape)
            p.buffer = self

    def zero_grad(self) -> None:
        """Set every gradient to zero in one write."""
        self.grad.fill(0)

    def views(self, flat: np.ndarray) -> list[np.ndarray]:
        """Cut any flat array of this layout (a momentum buffer, say) into per-parameter views."""
        return [flat[start:stop].reshape(p.shape) for p, start, stop in zip(self.params, self.offsets[:-1], self.offsets[1:])]


def check_parameters(params: Any) -> list[Parameter]:
    """`params` as a list of distinct Parameters, or an error naming the first one that is not."""
    if isinstance(params, Tensor) or not isinstance(params, Iterable):
        hint = "; wrap a single one in a list: [p]" if isinstance(params, Tensor) else ""
        raise DescendTypeError(
            f"params must be an iterable of Parameters, e.g. model.parameters(); got {type(params).__name__}{hint}"
        )
    params = list(params)
    first_index: dict[int, int] = {}
    for index, p in enumerate(params):
        if not isinstance(p, Parameter):
            raise DescendTypeError(
                f"params[{index}] must be a Parameter (e.g. from model.parameters()); got {type(p).__name__}"
            )
        if id(p) in first_index:
            raise DescendValueError(
                f"params lists the same {p!r} twice (at {first_index[id(p)]} and {index}); give each parameter once"
            )
        first_index[id(p)] = index
    return params

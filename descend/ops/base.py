"""Function: the base of every differentiable primitive."""

from __future__ import annotations

from typing import Any

import numpy as np

from descend.tensor import Tensor, as_tensor, is_grad_enabled


class Function:
    """One differentiable primitive: `forward` on arrays and its vector-Jacobian product.

    `forward(*arrays)` computes the output and saves what `backward` needs
    (arrays, never tensors, so the tape can be freed). `backward(grad)`
    returns one gradient per input, as if nothing was broadcast; the engine
    sums each back to its input's shape. `self.needs_input_grad[i]` says
    whether input i wants a gradient, so costly products can be skipped;
    `self.recording` says whether a backward can follow at all, so a forward
    run under `no_grad` (or on constants) can skip saving what only the backward needs.

    Hyperparameters (an axis, a slope) are keyword arguments of `apply` and
    become attributes before `forward` runs.
    """

    #: how `explain` writes the op: a format with {0}, {1}, ... for the inputs
    notation = ""

    def __init__(self, **params: Any):
        self.__dict__.update(params)
        self.inputs: tuple[Tensor, ...] = ()
        self.needs_input_grad: tuple[bool, ...] = ()
        self.recording = False

    def forward(self, *arrays: np.ndarray) -> np.ndarray:
        """The output array from the input arrays; saves what `backward` needs."""
        raise NotImplementedError

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray | None, ...]:
        """From `grad` = d(loss)/d(output), one d(loss)/d(input) per input (None where not needed)."""
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: Any, **params: Any) -> Tensor:
        """Run the op on tensors (or array-likes) and record it on the tape."""
        tensors = _as_tensors(inputs)
        function = cls(**params)
        function.needs_input_grad = tuple(t.requires_grad for t in tensors)
        function.recording = is_grad_enabled() and any(function.needs_input_grad)
        # NumPy hands back scalars (np.float64) from full reductions and int indexing; keep them arrays of their dtype
        output = np.asarray(function.forward(*(t.data for t in tensors)))
        if function.recording:
            result = Tensor(output)
            result.requires_grad = True
            result.creator = function
            function.inputs = tensors
            return result
        return Tensor(output)

    def release(self) -> None:
        """Drop saved arrays and inputs once the sweep is past this op."""
        self.__dict__.clear()

    def describe(self, *names: str) -> str:
        """The op written for a person, e.g. 'ln(v1)' or 'v1 × v2'."""
        if self.notation:
            return self.notation.format(*names)
        return f"{type(self).__name__.lower()}({', '.join(names)})"


def shape_of(value: Any) -> tuple[int, ...]:
    """The shape of a tensor or array-like: what an op's checks read before it runs."""
    return tuple(np.shape(value.data if isinstance(value, Tensor) else value))


def _as_tensors(inputs: tuple[Any, ...]) -> tuple[Tensor, ...]:
    like = None
    for value in inputs:
        if isinstance(value, Tensor) and value.dtype.kind == "f":
            like = value.dtype
            break
    return tuple(as_tensor(value, like) for value in inputs)

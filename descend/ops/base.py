"""Function: the base of every differentiable primitive."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from descend.tensor import Tensor, array_of, as_tensor, is_grad_enabled


#: called with every op recorded on the tape, as it is made (descend.nonfinite labels each with the module running)
op_observers: list[Callable[[Function], None]] = []


class Function:
    """One differentiable primitive: `forward` on arrays and its vector-Jacobian product.

    `forward(*arrays)` computes the output and saves what `backward` needs
    (arrays, never tensors, so the tape can be freed). `backward(grad)`
    returns one gradient per input, as if nothing was broadcast; the engine
    sums each back to its input's shape. `self.needs_input_grad[i]` says
    whether input i wants a gradient, so costly products can be skipped;
    `self.recording` says whether a backward can follow at all, so a forward
    run under `no_grad` (or on constants) can skip saving what only the backward needs.

    Several outputs: `forward` returns a tuple of arrays, `apply` then a
    tuple of tensors, and `backward(*grads)` gets one gradient per output,
    in order, each of its output's shape and dtype: zeros for an output that
    no gradient reached, so the VJP needs no special case. It runs once per
    sweep, after every output's gradient is complete, and still returns one
    gradient per input.

    Hyperparameters (an axis, a slope) are keyword arguments of `apply` and
    become attributes before `forward` runs.

    >>> class Cube(Function):
    ...     def forward(self, x):
    ...         self.x = x
    ...         return x ** 3
    ...     def backward(self, grad):
    ...         return (grad * 3 * self.x ** 2,)
    >>> x = Tensor(2.0, requires_grad=True)
    >>> Cube.apply(x).backward()
    >>> float(x.grad)
    12.0
    """

    #: how `explain` writes the op: a format with {0}, {1}, ... for the inputs
    notation = ""

    def __init__(self, **params: Any):
        self.__dict__.update(params)
        self.inputs: tuple[Tensor, ...] = ()
        self.needs_input_grad: tuple[bool, ...] = ()
        self.recording = False
        # weak: an output keeps its op alive, not the other way round, so an unused output is freed at once
        self.outputs: tuple[weakref.ref[Tensor], ...] = ()
        self.output_layouts: tuple[tuple[tuple[int, ...], np.dtype], ...] = ()  # (shape, dtype) of each output

    def forward(self, *arrays: np.ndarray) -> np.ndarray | tuple[np.ndarray, ...]:
        """The output array (or a tuple of them) from the input arrays; saves what `backward` needs."""
        raise NotImplementedError

    def backward(self, *grads: np.ndarray) -> tuple[np.ndarray | None, ...]:
        """From d(loss)/d(output), one per output, one d(loss)/d(input) per input (None where not needed)."""
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: Any, **params: Any) -> Tensor | tuple[Tensor, ...]:
        """Run the op on tensors (or array-likes) and record it on the tape: its output, or a tuple of them."""
        tensors = _as_tensors(inputs)
        function = cls(**params)
        function.needs_input_grad = tuple(t.requires_grad for t in tensors)
        function.recording = is_grad_enabled() and any(function.needs_input_grad)
        result = function.forward(*(t.data for t in tensors))
        several = isinstance(result, tuple)
        # NumPy hands back scalars (np.float64) from full reductions and int indexing; keep them arrays of their dtype
        outputs = tuple(Tensor(np.asarray(array)) for array in (result if several else (result,)))
        if function.recording:
            function.inputs = tensors
            function.outputs = tuple(weakref.ref(output) for output in outputs)
            function.output_layouts = tuple((output.shape, output.dtype) for output in outputs)
            for output in outputs:
                output.requires_grad, output.creator = True, function
            for observe in op_observers:
                observe(function)
        return outputs if several else outputs[0]

    def release(self) -> None:
        """Once the sweep is past this op: cut its outputs off the tape (`freed`), drop saved arrays and inputs."""
        for ref in self.outputs:
            output = ref()
            if output is not None:
                output.creator, output.freed = None, True
        self.__dict__.clear()

    def describe(self, *names: str) -> str:
        """The op written for a person, e.g. 'ln(v1)' or 'v1 × v2'."""
        if self.notation:
            return self.notation.format(*names)
        return f"{type(self).__name__.lower()}({', '.join(names)})"


def shape_of(value: Any) -> tuple[int, ...]:
    """The shape of a tensor or array-like: what an op's checks read before it runs."""
    return array_of(value).shape


def _as_tensors(inputs: tuple[Any, ...]) -> tuple[Tensor, ...]:
    like = None
    for value in inputs:
        if isinstance(value, Tensor) and value.dtype.kind == "f":
            like = value.dtype
            break
    return tuple(as_tensor(value, like) for value in inputs)

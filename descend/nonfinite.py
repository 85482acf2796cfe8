"""Where a NaN or an infinity first appeared in a training step: the op, its layer, the parameters it reached.

When a step's loss or gradient is not finite, the local training loop runs
the same step again (the same weights, minibatch and random generators)
with every value checked as it is made, as PyTorch's anomaly mode does: in
the forward pass, the first op whose output is not finite although its
inputs are; failing that, in the reverse sweep, the first op whose
vector-Jacobian product is not finite although the adjoint it was given
is. That op, the innermost layer that ran it, and the parameters whose
gradients the bad values reached (nearest the loss first) go into the
error message, so a learner sees that, say, a log in the loss met a zero,
not just that the first layer's weights went bad.

The replay costs one extra step and runs only after a failure; a step
that goes well pays nothing for it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from descend.nn.module import Module
from descend.ops.base import Function, op_observers
from descend.tensor import Tensor, reverse_sweep, topological_order


@dataclass
class Origin:
    """Where the first non-finite value of a step came from.

    `phase` is "weights" (a parameter already held one: the last update
    overflowed), "forward" or "backward"; `op` names the op ("log", "matmul")
    and `layer` the innermost module that ran it, as a dotted name with its
    class ("network.layers.2 (Linear)"), or None outside any module;
    `parameters` lists the parameters whose gradients went bad, in the order
    the reverse sweep reached them.
    """

    phase: str
    op: str | None = None
    layer: str | None = None
    parameters: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """The origin in words, for an error message."""
        if self.phase == "weights":
            names = ", ".join(self.parameters)
            return f"the weights of {names} were already NaN or infinite (the last update overflowed)"
        where = f"in the {self.phase} pass of {self.op}"
        if self.layer is not None:
            where += f" in {self.layer}"
        if self.parameters:
            more = f" ({len(self.parameters)} parameters in all)" if len(self.parameters) > 1 else ""
            where += f"; the first parameter whose gradient it reached is '{self.parameters[0]}'{more}"
        return f"it first appeared {where}"


def locate(model: Module, loss_fn: Module, x: np.ndarray, y: np.ndarray, penalties: Any) -> Origin | None:
    """Run a training step of `model` on (x, y) with every value checked; where the first non-finite one came from.

    `penalties(model, loss)` adds the model's own loss terms, as the
    training step does. The caller puts the random generators and running
    statistics where they were before the step, and back afterwards: the
    replay changes them as the step did. Returns None when it finds every
    value finite.
    """
    names = {id(parameter): name for name, parameter in model.named_parameters()}
    bad_weights = [name for name, parameter in model.named_parameters() if not np.isfinite(parameter.data).all()]
    if bad_weights:
        return Origin("weights", parameters=bad_weights)
    layers: dict[int, str] = {}  # id(op) -> the innermost layer running when the op was made
    running: list[str] = []  # the layers whose forward is running, innermost last

    replaying = threading.get_ident()

    def label(op: Function) -> None:
        if running and threading.get_ident() == replaying:  # another thread's ops are not this step's
            layers[id(op)] = running[-1]

    wrapped = [*model._named_modules(), ("loss", loss_fn)]
    op_observers.append(label)
    try:
        for name, module in wrapped:
            module.forward = _labelling(module, f"{name.rstrip('.') or 'the model'} ({type(module).__name__})", running)
        with np.errstate(all="ignore"):
            loss = penalties(model, loss_fn(model(Tensor(x)), y))
            origin = _first_bad_forward(loss, layers)
            if origin is None:
                origin = _first_bad_backward(loss, layers, names)
    finally:
        op_observers.remove(label)
        for _, module in wrapped:
            vars(module).pop("forward", None)
    return origin


def _labelling(module: Module, label: str, running: list[str]) -> Any:
    """`module.forward`, made to keep `label` on the `running` stack while it runs: the ops it makes between its
    children's calls are its own, those its children make are theirs."""
    forward = type(module).forward.__get__(module)

    def labelled(*args: Any, **kwargs: Any) -> Any:
        running.append(label)
        try:
            return forward(*args, **kwargs)
        finally:
            running.pop()

    return labelled


def _finite(array: np.ndarray) -> bool:
    return array.dtype.kind != "f" or bool(np.isfinite(array).all())


def _op_name(op: Any) -> str:
    return type(op).__name__.lower()


def _first_bad_forward(loss: Tensor, layers: dict[int, str]) -> Origin | None:
    for node in topological_order(loss):  # inputs before outputs: the first bad node is where it began
        op = node.creator
        if op is not None and not _finite(node.data) and all(_finite(parent.data) for parent in op.inputs):
            return Origin("forward", _op_name(op), layers.get(id(op)))
    return None


def _first_bad_backward(loss: Tensor, layers: dict[int, str], names: dict[int, str]) -> Origin | None:
    origin, reached = None, []
    for node, adjoint, contributions in reverse_sweep(loss, np.ones_like(loss.data)):
        if node.creator is None:
            if id(node) in names and not _finite(adjoint):
                reached.append(names[id(node)])
            continue
        if origin is None and _finite(adjoint) and not all(_finite(grad) for _, grad in contributions):
            origin = Origin("backward", _op_name(node.creator), layers.get(id(node.creator)))
    if origin is not None:
        origin.parameters = reached
    return origin

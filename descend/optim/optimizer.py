"""Optimizer: the base of every update rule, working on the one flat parameter buffer."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from descend import kernels
from descend.errors import DescendTypeError, DescendValueError, ShapeError
from descend.nn.parameter import Parameter, ParameterBuffer
from descend.checks import check_integer, check_real, naming_arguments
from descend.optim.constraints import MaxNorm
from descend.optim.schedules import MomentumRamp, Schedule, build_schedule


#: weights per chunk of an update: with a few state arrays, a chunk stays in a core's L2 cache
CHUNK = 1 << 16

#: every optimizer class by name, for rebuilding one from its description in another process
OPTIMIZERS: dict[str, type[Optimizer]] = {}

class Optimizer:
    """Base of the optimizers: one step updates every parameter in a few vector operations.

    The parameters are gathered into one flat buffer, `self.buffer` (the
    model's own when they are all of a model's parameters, in order). A
    subclass's `_update(lr, weights, grad, state)` changes `weights` in place
    from `grad`; all are views of one chunk of the flat buffer, and `state`
    holds the same chunk of its per-weight arrays (momentum, moment
    estimates), kept whole in `self.state`.

    One `step()`:
        lr = schedule(base_lr, iterations)      (base_lr when there is no schedule)
        g  = grad + weight_decay · w + l1 · sign(w)   (l1 is SGD's)
        the subclass's update of w from g
        max-norm constraint, when max_norm is set
        iterations += 1
    """

    #: strength of the L1 term l1·sign(w) added to the gradient; SGD takes it as an argument
    l1: float = 0.0

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        OPTIMIZERS[cls.__name__] = cls
        if "__init__" in cls.__dict__:
            cls.__init__ = naming_arguments(cls.__init__)

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float,
        schedule: Schedule | None = None,
        max_norm: float | None = None,
        weight_decay: float = 0.0,
    ):
        self.base_lr = check_real("lr", lr, low=0.0, low_open=True)
        self.schedule = _check_schedule(schedule)
        self.weight_decay = check_real("weight_decay", weight_decay, low=0.0)
        self.buffer = ParameterBuffer.of(params)
        if not self.buffer.params:
            raise DescendValueError("params is empty: the optimizer would have nothing to update")
        self.buffer.pinned = True
        self.constraint = None if max_norm is None else MaxNorm(self.buffer.params, max_norm)
        self.max_norm = None if self.constraint is None else self.constraint.max_norm
        self.iterations = 0
        self.state: dict[str, np.ndarray] = {}

    @property
    def lr(self) -> float:
        """The learning rate the next step uses: the schedule applied to base_lr."""
        return self.lr_at(self.iterations)

    @lr.setter
    def lr(self, value: float) -> None:
        """Set the rate from the next step on, as PyTorch users set a group's "lr": it becomes base_lr, which a
        schedule, if there is one, goes on scaling."""
        self.base_lr = check_real("lr", value, low=0.0, low_open=True)

    def lr_at(self, iterations: int) -> float:
        """The learning rate of the step taken after `iterations` steps (what `lr` is once that many are done)."""
        if self.schedule is None:
            return self.base_lr
        return float(self.schedule(self.base_lr, iterations))

    def zero_grad(self) -> None:
        """Set every gradient to zero (one write to the flat gradient buffer)."""
        self.buffer.zero_grad()

    def step(self) -> None:
        """Update every parameter from its gradient, then apply the max-norm constraint.

        With the compiled kernels (descend.kernels) the rule runs in one
        fused pass over the buffer. The NumPy reference, `_update`, runs
        the rule's several passes on chunks small enough to stay in cache
        (a third faster than whole-buffer passes on MNIST's MLP). Every
        rule is elementwise: the result does not depend on the cut.
        """
        lr, data, grad = self.lr, self.buffer.data, self.buffer.grad
        compiled = kernels.for_arrays(data, grad, *self.state.values())
        if compiled is None or not self._update_compiled(compiled, lr):
            for start in range(0, data.size, CHUNK):
                part = slice(start, start + CHUNK)
                self._update(lr, data[part], grad[part], {name: array[part] for name, array in self.state.items()})
        if self.constraint is not None:
            self.constraint.apply()
        self.iterations += 1

    def _update(self, lr: float, weights: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray]) -> None:
        """Change `weights` in place from `grad` and the state arrays: all views of one chunk of the buffer."""
        raise NotImplementedError(f"{type(self).__name__} must define _update")

    def _update_compiled(self, compiled: kernels.Kernels, lr: float) -> bool:
        """The whole buffer's update in one compiled pass, the same numbers as `_update`'s; False where this
        optimizer has no kernel (its `_update` then runs)."""
        return False

    def _gradient(self, weights: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """grad + weight_decay·w + l1·sign(w).

        A new array when a term is added: `buffer.grad` stays what backward() made it.
        """
        if self.weight_decay:
            grad = grad + self.weight_decay * weights
        if self.l1:
            grad = grad + self.l1 * np.sign(weights)
        return grad

    def _new_state(self, *names: str) -> None:
        """Start flat state arrays of zeros, one weight each."""
        for name in names:
            self.state[name] = np.zeros_like(self.buffer.data)

    # -- saving and resuming -----------------------------------------------
    def describe(self) -> dict[str, Any]:
        """JSON-ready: {"class", "hyperparameters", "schedule"}, all `build_optimizer` needs besides the parameters."""
        return {
            "class": type(self).__name__,
            "hyperparameters": self.hyperparameters(),
            "schedule": None if self.schedule is None else self.schedule.describe(),
        }

    def hyperparameters(self) -> dict[str, Any]:
        """The constructor arguments other than params and schedule, JSON-ready."""
        return {"lr": self.base_lr, "weight_decay": self.weight_decay, "max_norm": self.max_norm}

    def state_dict(self) -> dict[str, dict[str, Any]]:
        """What resumes training exactly: flat state arrays, and JSON-ready scalars.

        {"arrays": {name: copy of a flat array}, "scalars": {"class", "iterations",
        "hyperparameters", "schedule"}}. The weights themselves are the model's to save.
        """
        return {
            "arrays": {name: array.copy() for name, array in self.state.items()},
            "scalars": {
                "class": type(self).__name__,
                "iterations": self.iterations,
                "hyperparameters": self.hyperparameters(),
                "schedule": None if self.schedule is None else self.schedule.describe(),
            },
        }

    def load_state_dict(self, state: dict[str, dict[str, Any]]) -> None:
        """Restore what `state_dict()` saved: hyperparameters, schedule, iterations, state arrays.

        Everything is checked before anything changes.
        """
        parts = state if isinstance(state, dict) else {}
        if not (isinstance(parts.get("arrays"), dict) and isinstance(parts.get("scalars"), dict)):
            raise DescendTypeError(
                "state must be a dict holding dicts 'arrays' and 'scalars' (from state_dict()); "
                f"got {type(state).__name__} {state!r:.200}"
            )
        arrays, scalars = state["arrays"], state["scalars"]
        if scalars.get("class") != type(self).__name__:
            raise DescendValueError(
                f"state was saved by {scalars.get('class')!r}; it cannot be loaded into {type(self).__name__}"
            )
        iterations = check_integer("iterations", scalars.get("iterations"), low=0)
        schedule = None if scalars.get("schedule") is None else build_schedule(scalars["schedule"])
        saved = scalars.get("hyperparameters")
        if not isinstance(saved, dict):
            raise DescendTypeError(f"state's hyperparameters must be a dict of arguments; got {saved!r:.200}")
        hyperparameters = {name: _decode(value) for name, value in saved.items()}
        try:
            # the constructor checks the saved hyperparameters exactly as it checks new ones
            restored = type(self)(self.buffer.params, schedule=schedule, **hyperparameters)
        except TypeError as error:
            if isinstance(error, DescendTypeError):
                raise
            raise DescendValueError(
                f"saved hyperparameters {hyperparameters} do not fit {type(self).__name__}: {error}"
            ) from None
        missing, unexpected = sorted(set(restored.state) - set(arrays)), sorted(set(arrays) - set(restored.state))
        if missing or unexpected:
            raise DescendValueError(
                f"state arrays do not fit {restored!r}: missing {missing or 'nothing'}, "
                f"unexpected {unexpected or 'nothing'}"
            )
        for name, target in restored.state.items():
            value = np.asarray(arrays[name])
            if value.shape != target.shape:
                raise ShapeError(
                    f"state array '{name}' has shape {value.shape}; these parameters need {target.shape}"
                )
        for name, target in restored.state.items():
            target[...] = arrays[name]
        restored.iterations = iterations
        vars(self).update(vars(restored))

    def __repr__(self) -> str:
        arguments = ", ".join(f"{name}={_decode(value)!r}" for name, value in self.hyperparameters().items())
        if self.schedule is not None:
            arguments += f", schedule={self.schedule!r}"
        return f"{type(self).__name__}({arguments})"


def build_optimizer(description: dict[str, Any], params: Iterable[Parameter]) -> Optimizer:
    """A fresh optimizer of `params` from `Optimizer.describe()` output (its state starts at zero)."""
    cls = OPTIMIZERS.get(description.get("class")) if isinstance(description, dict) else None
    if cls is None:
        raise DescendValueError(
            f"an optimizer description needs a known 'class' ({', '.join(sorted(OPTIMIZERS))}); got {description!r:.200}"
        )
    schedule = None if description.get("schedule") is None else build_schedule(description["schedule"])
    hyperparameters = {name: _decode(value) for name, value in description.get("hyperparameters", {}).items()}
    return cls(params, schedule=schedule, **hyperparameters)


def _check_schedule(schedule: Any) -> Schedule | None:
    if schedule is None or isinstance(schedule, Schedule):
        return schedule
    hint = "; a MomentumRamp goes to SGD(momentum=...)" if isinstance(schedule, MomentumRamp) else ""
    raise DescendTypeError(
        "schedule must be None or a learning-rate schedule (StepDecay, ExponentialDecay, InverseTimeDecay, "
        f"CosineDecay); got {type(schedule).__name__} {schedule!r}{hint}"
    )


def _decode(value: Any) -> Any:
    """A saved hyperparameter as the constructor takes it (a MomentumRamp from its description)."""
    if isinstance(value, dict):
        return build_schedule(value)
    return value

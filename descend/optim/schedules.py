"""Learning-rate schedules and the momentum ramp: small objects that say a rate for a step.

A learning-rate schedule is called as `schedule(base_lr, t)` and gives the
learning rate at t. With `per="step"` (the default) t counts the optimizer
steps already taken (0 for the first); with `per="epoch"` it counts the
epochs already ended, as a PyTorch scheduler stepped once per epoch: the
optimizer asks with its `epochs`, which `Optimizer.end_epoch()` moves on
(fit calls it after every epoch). Each object stores the arguments it was built
with, so `describe()` gives a JSON-ready `{"class": ..., "config": ...}` and
`build_schedule` rebuilds it, which is how an optimizer's state is saved
without pickling code.
"""

from __future__ import annotations

import math
from typing import Any

from descend.checks import check_integer, check_real, naming_arguments
from descend.errors import DescendTypeError, DescendValueError
from descend.nn.module import qualified_name

#: every schedule class (and MomentumRamp) by qualified name, for rebuilding from a description
SCHEDULES: dict[str, type[Described]] = {}

#: what a schedule's t counts: optimizer steps taken, or epochs ended
PER = ("step", "epoch")


class Described:
    """Base of the objects rebuilt from a description: the constructor arguments are the attributes."""

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        SCHEDULES[qualified_name(cls)] = cls
        if "__init__" in cls.__dict__:
            cls.__init__ = naming_arguments(cls.__init__)

    def config(self) -> dict[str, Any]:
        """The arguments this object was built with."""
        return dict(vars(self))

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description that `build_schedule` turns back into an equal object."""
        return {"class": qualified_name(type(self)), "config": self.config()}

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.config() == other.config()

    __hash__ = None  # type: ignore[assignment]  (equal by value and mutable: unhashable, as for lists)

    def __repr__(self) -> str:
        arguments = ", ".join(f"{name}={value!r}" for name, value in self.config().items())
        return f"{type(self).__name__}({arguments})"


class Schedule(Described):
    """Base of the learning-rate schedules: `schedule(base_lr, t)` is the rate at t, in steps or epochs (`per`).

    A schedule of your own defines `__call__`; its `__init__` arguments are its config:

    >>> class Halving(Schedule):
    ...     def __call__(self, base_lr, step):
    ...         return base_lr / 2**step
    >>> Halving()(1.0, 3), Halving().describe()["config"]
    (0.125, {})
    """

    #: "step": t counts optimizer steps; "epoch": t counts epochs ended (Optimizer.end_epoch)
    per: str = "step"

    def __call__(self, base_lr: float, step: int) -> float:
        raise NotImplementedError(f"{type(self).__name__} must define __call__(base_lr, step)")


def check_per(per: Any) -> str:
    """A schedule's `per`: "step" or "epoch"; else an error naming it."""
    if not isinstance(per, str) or per not in PER:
        raise DescendValueError(f"per must be 'step' or 'epoch' (what the schedule counts); got {per!r}")
    return per


class StepDecay(Schedule):
    """Multiply the rate by `gamma` every `step_size` steps (or epochs): lr = base_lr · gamma^⌊t / step_size⌋.

    As torch.optim.lr_scheduler.StepLR stepped once per optimizer step, or,
    with per="epoch", once per epoch as PyTorch users usually step it.

    >>> StepDecay(step_size=2, gamma=0.5)(1.0, 5)
    0.25
    """

    def __init__(self, step_size: int, gamma: float = 0.1, per: str = "step"):
        self.step_size = check_integer("step_size", step_size, low=1)
        self.gamma = check_real("gamma", gamma, low=0.0, high=1.0, low_open=True)
        self.per = check_per(per)

    def __call__(self, base_lr: float, step: int) -> float:
        return base_lr * self.gamma ** (step // self.step_size)


class ExponentialDecay(Schedule):
    """Multiply the rate by `gamma` every step (or epoch): lr = base_lr · gamma^t (torch's ExponentialLR).

    >>> ExponentialDecay(gamma=0.5)(1.0, 3)
    0.125
    """

    def __init__(self, gamma: float, per: str = "step"):
        self.gamma = check_real("gamma", gamma, low=0.0, high=1.0, low_open=True)
        self.per = check_per(per)

    def __call__(self, base_lr: float, step: int) -> float:
        return base_lr * self.gamma**step


class InverseTimeDecay(Schedule):
    """lr = base_lr / (1 + decay · t), t in steps (or epochs): Keras's InverseTimeDecay, H2O's rate annealing.

    H2O counts training samples where this counts steps: its `rate_annealing`
    equals `decay / batch_size` here.

    >>> InverseTimeDecay(decay=0.5)(1.0, 2)
    0.5
    """

    def __init__(self, decay: float, per: str = "step"):
        self.decay = check_real("decay", decay, low=0.0, low_open=True)
        self.per = check_per(per)

    def __call__(self, base_lr: float, step: int) -> float:
        return base_lr / (1.0 + self.decay * step)


class CosineDecay(Schedule):
    """Half a cosine from base_lr down to min_lr over `total_steps` steps (or epochs, per="epoch"), then min_lr.

    lr = min_lr + (base_lr − min_lr) · (1 + cos(π · min(t, total_steps) / total_steps)) / 2,
    as torch's CosineAnnealingLR(T_max=total_steps, eta_min=min_lr) up to
    total_steps; after that torch climbs back up, this stays at min_lr.

    >>> CosineDecay(total_steps=10, min_lr=0.1)(1.0, 10)
    0.1
    """

    def __init__(self, total_steps: int, min_lr: float = 0.0, per: str = "step"):
        self.total_steps = check_integer("total_steps", total_steps, low=1)
        self.min_lr = check_real("min_lr", min_lr, low=0.0)
        self.per = check_per(per)

    def __call__(self, base_lr: float, step: int) -> float:
        progress = min(step, self.total_steps) / self.total_steps
        return self.min_lr + (base_lr - self.min_lr) * (1.0 + math.cos(math.pi * progress)) / 2.0


class MomentumRamp(Described):
    """Momentum that grows linearly from `start` to `stable` over `ramp_steps` steps, then stays.

    momentum(step) = start + (stable − start) · min(step / ramp_steps, 1).
    H2O Deep Learning's momentum_start / momentum_ramp / momentum_stable, with
    the ramp counted in optimizer steps rather than training samples. Give it
    to `SGD(momentum=...)`: a small momentum while the weights are far from
    anything good, a large one once training settles.

    >>> MomentumRamp(start=0.5, ramp_steps=10, stable=0.9)(5)
    0.7
    """

    def __init__(self, start: float = 0.5, ramp_steps: int = 1000, stable: float = 0.99):
        self.start = check_real("start", start, low=0.0, high=1.0, high_open=True)
        self.ramp_steps = check_integer("ramp_steps", ramp_steps, low=1)
        self.stable = check_real("stable", stable, low=0.0, high=1.0, high_open=True)

    def __call__(self, step: int) -> float:
        return self.start + (self.stable - self.start) * min(step / self.ramp_steps, 1.0)


def build_schedule(spec: dict[str, Any]) -> Described:
    """Rebuild a schedule (or a MomentumRamp) from its `describe()` output.

    >>> build_schedule(StepDecay(step_size=3, per="epoch").describe())
    StepDecay(step_size=3, gamma=0.1, per='epoch')
    """
    if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict) or "class" not in spec:
        raise DescendTypeError(
            f"a schedule description must be a dict with 'class' and 'config' (from describe()); got {spec!r:.200}"
        )
    cls = SCHEDULES.get(spec["class"])
    if cls is None or cls is Schedule:
        known = ", ".join(sorted(known.__name__ for known in SCHEDULES.values() if known is not Schedule))
        raise DescendValueError(f"unknown schedule '{spec['class']}'; known schedules: {known}")
    try:
        return cls(**spec["config"])
    except TypeError as error:
        if isinstance(error, DescendTypeError):
            raise
        raise DescendValueError(f"schedule description {spec!r:.200} does not fit {cls.__name__}: {error}") from None

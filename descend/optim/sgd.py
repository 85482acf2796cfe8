"""SGD: stochastic gradient descent with momentum, Nesterov momentum, L2 and L1."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from descend.errors import DescendTypeError, DescendValueError
from descend.nn.parameter import Parameter
from descend.checks import check_real
from descend.optim.optimizer import Optimizer, naming, hyperparameter
from descend.optim.schedules import MomentumRamp, Schedule


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum, weight decay and L1.

    Per step, on the flat buffer (torch.optim.SGD's formulas, dampening 0):
        g = grad + weight_decay · w + l1 · sign(w)
        v = μ · v + g                        (with momentum; v starts at 0)
        g = g + μ · v  if nesterov,  else  g = v
        w = w − lr · g
    μ is `momentum`: a number in [0, 1), or a MomentumRamp that gives μ for
    each step (H2O Deep Learning's momentum_start / _ramp / _stable).

    L1 enters as a subgradient, l1 · sign(w), rather than as a proximal
    (soft-thresholding) step: it then flows through momentum like any other
    gradient term and gives exactly the update that autodiff of
    `l1_penalty` would, so both ways of asking for L1 train alike. The cost:
    weights hover around zero (within lr · l1) instead of landing on it.

    Parameter groups may set lr, momentum, nesterov, weight_decay and l1.
    Defaults against torch.optim.SGD's: lr has none here (torch's is 1e-3,
    `SGD.with_torch_defaults`); momentum, nesterov and weight_decay are
    torch's; l1 is descend's own.

    >>> w = Parameter([1.0, -2.0], dtype="float64")
    >>> optimizer = SGD([w], lr=0.5)
    >>> w.grad[...] = [2.0, -2.0]
    >>> optimizer.step()
    >>> w.data.tolist()
    [0.0, -1.0]
    """

    TORCH_DEFAULTS = {"lr": 1e-3, "momentum": 0.0, "nesterov": False, "weight_decay": 0.0}

    momentum = hyperparameter("momentum")
    nesterov = hyperparameter("nesterov")
    l1 = hyperparameter("l1")

    def __init__(
        self,
        params: Iterable[Parameter] | Iterable[Mapping[str, Any]],
        lr: float,
        momentum: float | MomentumRamp = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        l1: float = 0.0,
        schedule: Schedule | None = None,
        max_norm: float | None = None,
    ):
        super().__init__(params, {"lr": lr, "momentum": momentum, "nesterov": nesterov, "weight_decay": weight_decay,
                                  "l1": l1}, schedule=schedule, max_norm=max_norm)

    @classmethod
    def _checked(cls, values: dict[str, Any], where: str) -> dict[str, Any]:
        name = naming(where)
        momentum = values["momentum"]
        if not isinstance(momentum, MomentumRamp):
            momentum = check_real(name("momentum"), momentum, low=0.0, high=1.0, high_open=True)
        nesterov = values["nesterov"]
        if not isinstance(nesterov, bool):
            raise DescendTypeError(
                f"{name('nesterov')} must be True or False; got {type(nesterov).__name__} {nesterov!r}"
            )
        if nesterov and not _uses_momentum(momentum):
            raise DescendValueError(f"{name('nesterov')}=True needs momentum > 0; got {name('momentum')}={momentum!r}")
        return {**super()._checked(values, where), "momentum": momentum, "nesterov": nesterov,
                "l1": check_real(name("l1"), values["l1"], low=0.0)}

    def _ensure_state(self) -> None:
        """A momentum buffer once any group uses momentum."""
        if "momentum_buffer" not in self.state and any(_uses_momentum(g["momentum"]) for g in self.param_groups):
            self._new_state("momentum_buffer")

    @property
    def current_momentum(self) -> float:
        """The momentum μ the next step uses (the first group's)."""
        return self._momentum_now(self.param_groups[0]["momentum"])

    def _momentum_now(self, momentum: float | MomentumRamp) -> float:
        return momentum(self.iterations) if isinstance(momentum, MomentumRamp) else momentum

    def _update(self, settings, weights, grad, state):
        grad = self._gradient(settings, weights, grad)
        if _uses_momentum(settings["momentum"]):
            momentum, velocity = self._momentum_now(settings["momentum"]), state["momentum_buffer"]
            velocity *= momentum
            velocity += grad
            grad = grad + momentum * velocity if settings["nesterov"] else velocity
        weights -= settings["lr"] * grad

    def _update_compiled(self, compiled, settings, weights, grad, state):
        velocity = state["momentum_buffer"] if _uses_momentum(settings["momentum"]) else None
        compiled.sgd(weights, grad, velocity, settings["lr"], self._momentum_now(settings["momentum"]),
                     settings["nesterov"], settings["weight_decay"], settings["l1"])
        return True


def _uses_momentum(momentum: float | MomentumRamp) -> bool:
    """True when momentum is ever above 0 (a group with it keeps a velocity from its first step)."""
    if isinstance(momentum, MomentumRamp):
        return max(momentum.start, momentum.stable) > 0
    return momentum > 0

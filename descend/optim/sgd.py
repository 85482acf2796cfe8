"""SGD: stochastic gradient descent with momentum, Nesterov momentum, L2 and L1."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from descend.errors import DescendTypeError, DescendValueError
from descend.nn.parameter import Parameter
from descend.checks import check_real
from descend.optim.optimizer import Optimizer
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

    >>> w = Parameter([1.0, -2.0], dtype="float64")
    >>> optimizer = SGD([w], lr=0.5)
    >>> w.grad[...] = [2.0, -2.0]
    >>> optimizer.step()
    >>> w.data.tolist()
    [0.0, -1.0]
    """

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float,
        momentum: float | MomentumRamp = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        l1: float = 0.0,
        schedule: Schedule | None = None,
        max_norm: float | None = None,
    ):
        if isinstance(momentum, MomentumRamp):
            uses_momentum = max(momentum.start, momentum.stable) > 0
        else:
            momentum = check_real("momentum", momentum, low=0.0, high=1.0, high_open=True)
            uses_momentum = momentum > 0
        if not isinstance(nesterov, bool):
            raise DescendTypeError(f"nesterov must be True or False; got {type(nesterov).__name__} {nesterov!r}")
        if nesterov and not uses_momentum:
            raise DescendValueError(f"nesterov=True needs momentum > 0; got momentum={momentum!r}")
        self.momentum = momentum
        self.nesterov = nesterov
        self.l1 = check_real("l1", l1, low=0.0)
        super().__init__(params, lr, schedule=schedule, max_norm=max_norm, weight_decay=weight_decay)
        if uses_momentum:
            self._new_state("momentum_buffer")

    @property
    def current_momentum(self) -> float:
        """The momentum μ the next step uses."""
        if isinstance(self.momentum, MomentumRamp):
            return self.momentum(self.iterations)
        return self.momentum

    def _update(self, lr, weights, grad, state):
        grad = self._gradient(weights, grad)
        if "momentum_buffer" in state:
            momentum, velocity = self.current_momentum, state["momentum_buffer"]
            velocity *= momentum
            velocity += grad
            grad = grad + momentum * velocity if self.nesterov else velocity
        weights -= lr * grad

    def _update_compiled(self, compiled, lr):
        compiled.sgd(self.buffer.data, self.buffer.grad, self.state.get("momentum_buffer"), lr,
                     self.current_momentum, self.nesterov, self.weight_decay, self.l1)
        return True

    def hyperparameters(self) -> dict[str, Any]:
        """The base hyperparameters plus momentum (a MomentumRamp as its description), nesterov and l1."""
        momentum = self.momentum.describe() if isinstance(self.momentum, MomentumRamp) else self.momentum
        return {**super().hyperparameters(), "momentum": momentum, "nesterov": self.nesterov, "l1": self.l1}

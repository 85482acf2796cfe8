"""Adaptive learning rates: Adam, RMSprop, Adadelta, each a few vector operations on the flat buffer.

Each keeps running averages of the gradient (or its square) per weight, as
flat arrays the length of the parameter buffer; the formulas are
torch.optim's, so the two agree to rounding.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from descend.errors import DescendTypeError
from descend.nn.parameter import Parameter
from descend.checks import check_real
from descend.optim.optimizer import Optimizer
from descend.optim.schedules import Schedule


class Adam(Optimizer):
    """Adam: momentum on the gradient, scaled per weight by its running RMS (Kingma & Ba, 2015).

    Per step t = 1, 2, ... (torch.optim.Adam's formulas, L2 weight decay in the gradient):
        g = grad + weight_decay · w
        m = β₁ · m + (1 − β₁) · g
        v = β₂ · v + (1 − β₂) · g²
        w = w − lr / (1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + eps)

    >>> w = Parameter([1.0], dtype="float64")
    >>> optimizer = Adam([w], lr=0.1)
    >>> w.grad[...] = 5.0
    >>> optimizer.step()
    >>> round(float(w.data[0]), 6)   # the first step moves each weight by about lr
    0.9
    """

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        betas: Iterable[float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        schedule: Schedule | None = None,
        max_norm: float | None = None,
    ):
        pair = tuple(betas) if isinstance(betas, Iterable) and not isinstance(betas, (str, bytes)) else ()
        if len(pair) != 2:
            raise DescendTypeError(
                f"betas must be two numbers in [0, 1), e.g. (0.9, 0.999); got {type(betas).__name__} {betas!r}"
            )
        self.betas = tuple(
            check_real(f"betas[{i}]", beta, low=0.0, high=1.0, high_open=True) for i, beta in enumerate(pair)
        )
        self.eps = check_real("eps", eps, low=0.0, low_open=True)
        super().__init__(params, lr, schedule=schedule, max_norm=max_norm, weight_decay=weight_decay)
        self._new_state("exp_avg", "exp_avg_sq")

    def _update(self, lr, weights, grad, state):
        grad = self._gradient(weights, grad)
        beta1, beta2 = self.betas
        mean, square = state["exp_avg"], state["exp_avg_sq"]
        mean *= beta1
        mean += (1.0 - beta1) * grad
        square *= beta2
        square += (1.0 - beta2) * np.square(grad)
        t = self.iterations + 1
        # the averages start at 0: dividing by 1 − βᵗ undoes that bias in the early steps
        denominator = np.sqrt(square) / math.sqrt(1.0 - beta2**t)
        denominator += self.eps
        weights -= (lr / (1.0 - beta1**t)) * mean / denominator

    def _update_compiled(self, compiled, lr):
        compiled.adam(self.buffer.data, self.buffer.grad, self.state["exp_avg"], self.state["exp_avg_sq"], lr,
                      self.betas, self.eps, self.weight_decay, self.iterations + 1)
        return True

    def hyperparameters(self) -> dict[str, Any]:
        """The base hyperparameters plus betas and eps."""
        return {**super().hyperparameters(), "betas": list(self.betas), "eps": self.eps}


class RMSprop(Optimizer):
    """RMSprop: each weight's step divided by the running RMS of its gradient (Hinton, 2012).

    Per step (torch.optim.RMSprop's formulas, not centered):
        g = grad + weight_decay · w
        s = α · s + (1 − α) · g²
        with momentum μ > 0:  b = μ · b + g / (√s + eps);  w = w − lr · b
        otherwise:            w = w − lr · g / (√s + eps)

    >>> w = Parameter([1.0], dtype="float64")
    >>> optimizer = RMSprop([w], lr=0.01, alpha=0.75)
    >>> w.grad[...] = 3.0
    >>> optimizer.step()
    >>> round(float(w.data[0]), 6)   # s = 0.25 · 9, so the step is 0.01 · 3 / 1.5
    0.98
    """

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        schedule: Schedule | None = None,
        max_norm: float | None = None,
    ):
        self.alpha = check_real("alpha", alpha, low=0.0, high=1.0, high_open=True)
        self.eps = check_real("eps", eps, low=0.0, low_open=True)
        self.momentum = check_real("momentum", momentum, low=0.0, high=1.0, high_open=True)
        super().__init__(params, lr, schedule=schedule, max_norm=max_norm, weight_decay=weight_decay)
        self._new_state("square_avg")
        if self.momentum > 0:
            self._new_state("momentum_buffer")

    def _update(self, lr, weights, grad, state):
        grad = self._gradient(weights, grad)
        square = state["square_avg"]
        square *= self.alpha
        square += (1.0 - self.alpha) * np.square(grad)
        scaled = grad / (np.sqrt(square) + self.eps)
        if self.momentum > 0:
            velocity = state["momentum_buffer"]
            velocity *= self.momentum
            velocity += scaled
            scaled = velocity
        weights -= lr * scaled

    def _update_compiled(self, compiled, lr):
        compiled.rmsprop(self.buffer.data, self.buffer.grad, self.state["square_avg"],
                         self.state.get("momentum_buffer"), lr, self.alpha, self.eps, self.momentum, self.weight_decay)
        return True

    def hyperparameters(self) -> dict[str, Any]:
        """The base hyperparameters plus alpha, eps and momentum."""
        return {**super().hyperparameters(), "alpha": self.alpha, "eps": self.eps, "momentum": self.momentum}


class Adadelta(Optimizer):
    """Adadelta: steps scaled by the ratio of running RMS of past steps to that of gradients (Zeiler, 2012).

    Per step (torch.optim.Adadelta's formulas):
        g  = grad + weight_decay · w
        s  = ρ · s + (1 − ρ) · g²
        Δ  = √(d + eps) / √(s + eps) · g
        d  = ρ · d + (1 − ρ) · Δ²
        w  = w − lr · Δ
    The defaults rho=0.99, eps=1e-8 are H2O Deep Learning's (its adaptive
    rate); torch uses rho=0.9, eps=1e-6. lr=1.0 is the method as published.

    >>> w = Parameter([1.0], dtype="float64")
    >>> optimizer = Adadelta([w])
    >>> w.grad[...] = 1.0
    >>> optimizer.step()
    >>> round(float(w.data[0]), 6)   # Δ = √1e-8 / √0.01 = 0.001
    0.999
    """

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1.0,
        rho: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        schedule: Schedule | None = None,
        max_norm: float | None = None,
    ):
        self.rho = check_real("rho", rho, low=0.0, high=1.0, high_open=True)
        self.eps = check_real("eps", eps, low=0.0, low_open=True)
        super().__init__(params, lr, schedule=schedule, max_norm=max_norm, weight_decay=weight_decay)
        self._new_state("square_avg", "acc_delta")

    def _update(self, lr, weights, grad, state):
        grad = self._gradient(weights, grad)
        square, delta_square = state["square_avg"], state["acc_delta"]
        square *= self.rho
        square += (1.0 - self.rho) * np.square(grad)
        delta = np.sqrt(delta_square + self.eps) / np.sqrt(square + self.eps) * grad
        delta_square *= self.rho
        delta_square += (1.0 - self.rho) * np.square(delta)
        weights -= lr * delta

    def hyperparameters(self) -> dict[str, Any]:
        """The base hyperparameters plus rho and eps."""
        return {**super().hyperparameters(), "rho": self.rho, "eps": self.eps}

"""Adaptive learning rates: Adam, RMSprop, Adadelta, each a few vector operations on the flat buffer.

Each keeps running averages of the gradient (or its square) per weight, as
flat arrays the length of the parameter buffer; the formulas are
torch.optim's, so the two agree to rounding.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from descend.errors import DescendTypeError
from descend.nn.parameter import Parameter
from descend.checks import check_real
from descend.optim.optimizer import Optimizer, hyperparameter, naming
from descend.optim.schedules import Schedule


class Adam(Optimizer):
    """Adam: momentum on the gradient, scaled per weight by its running RMS (Kingma & Ba, 2015).

    Per step t = 1, 2, ... (torch.optim.Adam's formulas, L2 weight decay in the gradient):
        g = grad + weight_decay · w
        m = β₁ · m + (1 − β₁) · g
        v = β₂ · v + (1 − β₂) · g²
        w = w − lr / (1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + eps)

    With `eps_hat=True`, eps is Kingma & Ba's ε̂, added to √v before the
    correction, as Keras and scikit-learn's MLP add it:
        w = w − lr · √(1 − β₂ᵗ) / (1 − β₁ᵗ) · m / (√v + eps)
    (the same as eps / √(1 − β₂ᵗ) in torch's formula: larger in the first
    steps, the same once t is large). Parameter groups may set lr, betas,
    eps, weight_decay and eps_hat. The defaults are torch.optim.Adam's
    (lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0).

    >>> w = Parameter([1.0], dtype="float64")
    >>> optimizer = Adam([w], lr=0.1)
    >>> w.grad[...] = 5.0
    >>> optimizer.step()
    >>> round(float(w.data[0]), 6)   # the first step moves each weight by about lr
    0.9
    """

    TORCH_DEFAULTS = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}

    betas = hyperparameter("betas")
    eps = hyperparameter("eps")
    eps_hat = hyperparameter("eps_hat")

    def __init__(
        self,
        params: Iterable[Parameter] | Iterable[Mapping[str, Any]],
        lr: float = 1e-3,
        betas: Iterable[float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        eps_hat: bool = False,
        schedule: Schedule | None = None,
        max_norm: float | None = None,
    ):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                                  "eps_hat": eps_hat}, schedule=schedule, max_norm=max_norm)

    @classmethod
    def _checked(cls, values: dict[str, Any], where: str) -> dict[str, Any]:
        name, betas = naming(where), values["betas"]
        pair = tuple(betas) if isinstance(betas, Iterable) and not isinstance(betas, (str, bytes)) else ()
        if len(pair) != 2:
            raise DescendTypeError(f"{name('betas')} must be two numbers in [0, 1), e.g. (0.9, 0.999); "
                                   f"got {type(betas).__name__} {betas!r}")
        betas = tuple(check_real(f"{name('betas')}[{i}]", beta, low=0.0, high=1.0, high_open=True)
                      for i, beta in enumerate(pair))
        eps_hat = values["eps_hat"]
        if not isinstance(eps_hat, bool):
            raise DescendTypeError(f"{name('eps_hat')} must be True or False; got {type(eps_hat).__name__} {eps_hat!r}")
        return {**super()._checked(values, where), "betas": betas,
                "eps": check_real(name("eps"), values["eps"], low=0.0, low_open=True), "eps_hat": eps_hat}

    def _eps(self, settings: dict[str, Any]) -> float:
        """The eps torch's formula adds at this step: with eps_hat, ε̂ / √(1 − β₂ᵗ) (ε̂ before the correction)."""
        if not settings["eps_hat"]:
            return settings["eps"]
        return settings["eps"] / math.sqrt(1.0 - settings["betas"][1] ** (self.iterations + 1))

    def _ensure_state(self) -> None:
        """The running mean and mean square of the gradient."""
        if not self.state:
            self._new_state("exp_avg", "exp_avg_sq")

    def _update(self, settings, weights, grad, state):
        grad = self._gradient(settings, weights, grad)
        beta1, beta2 = settings["betas"]
        mean, square = state["exp_avg"], state["exp_avg_sq"]
        mean *= beta1
        mean += (1.0 - beta1) * grad
        square *= beta2
        square += (1.0 - beta2) * np.square(grad)
        t = self.iterations + 1
        # the averages start at 0: dividing by 1 − βᵗ undoes that bias in the early steps
        denominator = np.sqrt(square) / math.sqrt(1.0 - beta2**t)
        denominator += self._eps(settings)
        weights -= (settings["lr"] / (1.0 - beta1**t)) * mean / denominator

    def _update_compiled(self, compiled, settings, weights, grad, state):
        compiled.adam(weights, grad, state["exp_avg"], state["exp_avg_sq"], settings["lr"], settings["betas"],
                      self._eps(settings), settings["weight_decay"], self.iterations + 1)
        return True


class RMSprop(Optimizer):
    """RMSprop: each weight's step divided by the running RMS of its gradient (Hinton, 2012).

    Per step (torch.optim.RMSprop's formulas, not centered):
        g = grad + weight_decay · w
        s = α · s + (1 − α) · g²
        with momentum μ > 0:  b = μ · b + g / (√s + eps);  w = w − lr · b
        otherwise:            w = w − lr · g / (√s + eps)

    Parameter groups may set lr, alpha, eps, momentum and weight_decay. The
    defaults are torch.optim.RMSprop's (lr=1e-2, alpha=0.99, eps=1e-8,
    momentum=0, weight_decay=0).

    >>> w = Parameter([1.0], dtype="float64")
    >>> optimizer = RMSprop([w], lr=0.01, alpha=0.75)
    >>> w.grad[...] = 3.0
    >>> optimizer.step()
    >>> round(float(w.data[0]), 6)   # s = 0.25 · 9, so the step is 0.01 · 3 / 1.5
    0.98
    """

    TORCH_DEFAULTS = {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8, "momentum": 0.0, "weight_decay": 0.0}

    alpha = hyperparameter("alpha")
    eps = hyperparameter("eps")
    momentum = hyperparameter("momentum")

    def __init__(
        self,
        params: Iterable[Parameter] | Iterable[Mapping[str, Any]],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        schedule: Schedule | None = None,
        max_norm: float | None = None,
    ):
        super().__init__(params, {"lr": lr, "alpha": alpha, "eps": eps, "momentum": momentum,
                                  "weight_decay": weight_decay}, schedule=schedule, max_norm=max_norm)

    @classmethod
    def _checked(cls, values: dict[str, Any], where: str) -> dict[str, Any]:
        name = naming(where)
        return {**super()._checked(values, where),
                "alpha": check_real(name("alpha"), values["alpha"], low=0.0, high=1.0, high_open=True),
                "eps": check_real(name("eps"), values["eps"], low=0.0, low_open=True),
                "momentum": check_real(name("momentum"), values["momentum"], low=0.0, high=1.0, high_open=True)}

    def _ensure_state(self) -> None:
        """The running mean square of the gradient; a momentum buffer once any group uses momentum."""
        if "square_avg" not in self.state:
            self._new_state("square_avg")
        if "momentum_buffer" not in self.state and any(group["momentum"] > 0 for group in self.param_groups):
            self._new_state("momentum_buffer")

    def _update(self, settings, weights, grad, state):
        grad = self._gradient(settings, weights, grad)
        alpha, square = settings["alpha"], state["square_avg"]
        square *= alpha
        square += (1.0 - alpha) * np.square(grad)
        scaled = grad / (np.sqrt(square) + settings["eps"])
        if settings["momentum"] > 0:
            velocity = state["momentum_buffer"]
            velocity *= settings["momentum"]
            velocity += scaled
            scaled = velocity
        weights -= settings["lr"] * scaled

    def _update_compiled(self, compiled, settings, weights, grad, state):
        velocity = state["momentum_buffer"] if settings["momentum"] > 0 else None
        compiled.rmsprop(weights, grad, state["square_avg"], velocity, settings["lr"], settings["alpha"],
                         settings["eps"], settings["momentum"], settings["weight_decay"])
        return True


class Adadelta(Optimizer):
    """Adadelta: steps scaled by the ratio of running RMS of past steps to that of gradients (Zeiler, 2012).

    Per step (torch.optim.Adadelta's formulas):
        g  = grad + weight_decay · w
        s  = ρ · s + (1 − ρ) · g²
        Δ  = √(d + eps) / √(s + eps) · g
        d  = ρ · d + (1 − ρ) · Δ²
        w  = w − lr · Δ
    Parameter groups may set lr, rho, eps and weight_decay. The defaults
    rho=0.99, eps=1e-8 are H2O Deep Learning's (its adaptive rate), not
    torch.optim.Adadelta's rho=0.9, eps=1e-6: `Adadelta.with_torch_defaults`
    gives torch's. lr=1.0 is the method as published, and torch's.

    >>> w = Parameter([1.0], dtype="float64")
    >>> optimizer = Adadelta([w])
    >>> w.grad[...] = 1.0
    >>> optimizer.step()
    >>> round(float(w.data[0]), 6)   # Δ = √1e-8 / √0.01 = 0.001
    0.999
    """

    TORCH_DEFAULTS = {"lr": 1.0, "rho": 0.9, "eps": 1e-6, "weight_decay": 0.0}

    rho = hyperparameter("rho")
    eps = hyperparameter("eps")

    def __init__(
        self,
        params: Iterable[Parameter] | Iterable[Mapping[str, Any]],
        lr: float = 1.0,
        rho: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        schedule: Schedule | None = None,
        max_norm: float | None = None,
    ):
        super().__init__(params, {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay},
                         schedule=schedule, max_norm=max_norm)

    @classmethod
    def _checked(cls, values: dict[str, Any], where: str) -> dict[str, Any]:
        name = naming(where)
        return {**super()._checked(values, where),
                "rho": check_real(name("rho"), values["rho"], low=0.0, high=1.0, high_open=True),
                "eps": check_real(name("eps"), values["eps"], low=0.0, low_open=True)}

    def _ensure_state(self) -> None:
        """The running mean squares of the gradient and of the steps."""
        if not self.state:
            self._new_state("square_avg", "acc_delta")

    def _update(self, settings, weights, grad, state):
        grad = self._gradient(settings, weights, grad)
        rho, eps = settings["rho"], settings["eps"]
        square, delta_square = state["square_avg"], state["acc_delta"]
        square *= rho
        square += (1.0 - rho) * np.square(grad)
        delta = np.sqrt(delta_square + eps) / np.sqrt(square + eps) * grad
        delta_square *= rho
        delta_square += (1.0 - rho) * np.square(delta)
        weights -= settings["lr"] * delta

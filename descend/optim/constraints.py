"""Weight constraints applied after an optimizer step: the max-norm constraint."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from descend.errors import DescendValueError
from descend.nn.parameter import Parameter
from descend.checks import check_real


class MaxNorm:
    """Rescale each unit's incoming weight vector to norm at most `max_norm`.

    For every parameter whose `fan_in_axes` is set (the weights; biases have
    None), with n = ‖w‖₂ over fan_in_axes per unit:
    w ← w · min(1, max_norm / n). Units already inside the ball are left
    exactly as they are. Srivastava et al. (2014) pair it with dropout; it is
    H2O Deep Learning's `max_w2` (there on the squared norm).

    >>> w = Parameter([[3.0, 0.1], [4.0, 0.0]], dtype="float64", fan_in_axes=(0,))
    >>> MaxNorm([w], max_norm=1.0).apply()
    >>> np.linalg.norm(w.data, axis=0).round(3).tolist()
    [1.0, 0.1]
    """

    def __init__(self, params: Iterable[Parameter], max_norm: float):
        self.max_norm = check_real("max_norm", max_norm, low=0.0, low_open=True)
        params = list(params)
        self.params = [p for p in params if p.fan_in_axes is not None]
        if not self.params:
            raise DescendValueError(
                f"max_norm={max_norm!r} would change nothing: none of the {len(params)} parameters has "
                "fan_in_axes set (a layer sets it on its weights, e.g. Parameter(..., fan_in_axes=(0,)))"
            )
        for p in self.params:
            if any(not -p.ndim <= axis < p.ndim for axis in p.fan_in_axes):
                raise DescendValueError(
                    f"{p!r} has fan_in_axes={p.fan_in_axes}; expected axes of its {p.ndim} dimensions"
                )

    def apply(self) -> None:
        """Clamp the norms in place (one vectorized pass per constrained parameter)."""
        for p in self.params:
            norms = np.sqrt(np.sum(np.square(p.data), axis=tuple(p.fan_in_axes), keepdims=True))
            # only units over the limit are scaled, so an all-zero unit never divides by zero
            scale = np.divide(self.max_norm, norms, out=np.ones_like(norms), where=norms > self.max_norm)
            p.data *= scale

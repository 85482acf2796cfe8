"""Penalties to add to the loss by hand: L1 and L2 on the weights.

They are built from descend ops, so `backward()` gives their gradient with
no gradient code here. By default they skip parameters whose `fan_in_axes`
is None (biases, normalisation shifts and scales): penalising a bias does
not limit how sharply a unit responds to its inputs, only where, and
shrinking it toward zero tends to hurt the fit for nothing. Pass
`include_all=True` to penalise every parameter.

An optimizer's `weight_decay` (and SGD's `l1`) adds the same gradients
inside the update instead, to every parameter, as torch.optim does.
"""

from __future__ import annotations

from collections.abc import Iterable

from descend import ops
from descend.errors import DescendValueError
from descend.nn.parameter import Parameter, check_parameters
from descend.checks import check_real
from descend.tensor import Tensor


def l1_penalty(params: Iterable[Parameter], strength: float, include_all: bool = False) -> Tensor:
    """strength · Σ|w| over the weights (every parameter with `include_all=True`); a scalar Tensor.

    Its gradient is strength · sign(w).

    >>> w = Parameter([[1.0, -2.0]], dtype="float64", fan_in_axes=(0,))
    >>> float(l1_penalty([w], 0.5).item())
    1.5
    """
    strength = check_real("strength", strength, low=0.0)
    chosen = _penalised(params, include_all)
    return ops.mul(_total(ops.sum(ops.abs(p)) for p in chosen), strength)


def l2_penalty(params: Iterable[Parameter], strength: float, include_all: bool = False) -> Tensor:
    """strength / 2 · Σw² over the weights (every parameter with `include_all=True`); a scalar Tensor.

    Its gradient is strength · w, the same as weight_decay=strength in an optimizer.

    >>> w = Parameter([[1.0, -2.0]], dtype="float64", fan_in_axes=(0,))
    >>> float(l2_penalty([w], 0.5).item())
    1.25
    """
    strength = check_real("strength", strength, low=0.0)
    chosen = _penalised(params, include_all)
    return ops.mul(_total(ops.sum(ops.mul(p, p)) for p in chosen), strength / 2.0)


def _penalised(params: Iterable[Parameter], include_all: bool) -> list[Parameter]:
    params = check_parameters(params)
    chosen = params if include_all else [p for p in params if p.fan_in_axes is not None]
    if not chosen:
        # a penalty on nothing is almost surely a mistake (weights made without fan_in_axes): say so
        raise DescendValueError(
            f"the penalty would cover none of the {len(params)} parameters: none has fan_in_axes set "
            "(layers set it on their weights). Pass include_all=True to penalise every parameter."
        )
    return chosen


def _total(terms: Iterable[Tensor]) -> Tensor:
    terms = iter(terms)
    total = next(terms)
    for term in terms:
        total = ops.add(total, term)
    return total

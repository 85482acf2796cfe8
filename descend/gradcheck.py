"""gradcheck: a function's gradients, by backward, against float64 central differences.

The check behind every op of descend (the op table's tests call it) and the
one a user runs on an op of their own, as torch.autograd.gradcheck does:

    >>> import numpy as np, descend as dc
    >>> dc.gradcheck(lambda x, y: x * dc.exp(y), np.array([1.0, 2.0]), np.array([0.5, -1.0]))
    True

For a random cotangent u of each output, φ(x) = Σ <u, f(x)> is a scalar whose
gradient is what `backward` computes; each number of each checked input is
moved by ±eps and (φ(x + eps) − φ(x − eps)) / 2eps compared with it. That is
two forward passes per number checked: meant for small inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from descend.checks import check_real
from descend.errors import DescendTypeError, DescendValueError
from descend.tensor import Tensor, array_of, no_grad


class GradcheckError(DescendValueError):
    """A gradient by backward that differs from the central difference: which input, which number, both values.

    `gradcheck` raises it; a backward that forgets part of the product rule meets it:

    >>> try:
    ...     gradcheck(lambda x: x * x.detach(), np.array([1.0, 2.0]))  # detach() hides one factor's gradient
    ... except GradcheckError as error:
    ...     print(error)  # doctest: +ELLIPSIS
    gradcheck: the gradient of input 0 at (0,) is 0.12573022 by backward but 0.25146044 by central differences ...
    """


def gradcheck(
    fn: Callable[..., Any],
    *inputs: Any,
    wrt: Sequence[int] | None = None,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    cotangents: Sequence[np.ndarray] | None = None,
    seed: int = 0,
) -> bool:
    """True when fn's gradients by backward match float64 central differences; else a GradcheckError.

    fn takes tensors and returns a tensor or a tuple of tensors. `inputs`: arrays or tensors, in fn's
    order; those of a float dtype are checked (or the positions `wrt` names), in float64, and the others
    (integer labels, say) pass through as they are. A number agrees when |backward − difference| <=
    atol + rtol · |difference|. `cotangents`: one array per output to weigh them by (default: standard
    normal, from `seed`).

    >>> gradcheck(lambda x: (x * x).sum(), np.array([1.0, -2.0, 3.0]))
    True
    >>> import descend as dc
    >>> gradcheck(dc.cross_entropy, np.ones((2, 3)), np.array([0, 2]))  # the integer labels pass through
    True
    """
    if not callable(fn):
        raise DescendTypeError(f"gradcheck needs a function of tensors; got {type(fn).__name__} {fn!r:.80}")
    eps = check_real("eps", eps, low=0.0, low_open=True)
    atol, rtol = check_real("atol", atol, low=0.0), check_real("rtol", rtol, low=0.0)
    arrays = [array_of(value) for value in inputs]
    floats = [i for i, array in enumerate(arrays) if array.dtype.kind == "f"]
    checked = list(floats) if wrt is None else _checked_positions(wrt, floats, len(arrays))
    if not checked:
        raise DescendValueError("gradcheck has no float input to check; pass float arrays or name them with wrt=")
    base = [array.astype(np.float64) if i in floats else array for i, array in enumerate(arrays)]

    def outputs_of(values: list[np.ndarray], grad: bool) -> tuple[list[Tensor], list[Tensor]]:
        tensors = [Tensor(np.array(value), requires_grad=grad and i in checked) for i, value in enumerate(values)]
        result = fn(*tensors)
        results = list(result) if isinstance(result, (tuple, list)) else [result]
        if not all(isinstance(out, Tensor) for out in results):
            raise DescendTypeError(f"gradcheck: fn must return a tensor or a tuple of tensors; got {result!r:.80}")
        return tensors, results

    with no_grad():
        _, first = outputs_of(base, grad=False)
    rng = np.random.default_rng(seed)
    weights = ([rng.standard_normal(out.shape) for out in first] if cotangents is None
               else [np.asarray(u, dtype=np.float64) for u in cotangents])
    if len(weights) != len(first) or any(u.shape != out.shape for u, out in zip(weights, first)):
        raise DescendValueError(
            f"gradcheck: cotangents must be one array per output, of shapes {[out.shape for out in first]}; "
            f"got {[u.shape for u in weights]}"
        )

    def objective(values: list[np.ndarray]) -> float:
        with no_grad():
            _, results = outputs_of(values, grad=False)
        return sum(float(np.sum(u * out.data)) for u, out in zip(weights, results))

    tensors, results = outputs_of(base, grad=True)
    for k, (out, u) in enumerate(zip(results, weights)):
        if out.requires_grad:
            out.backward(u.astype(out.dtype), retain_graph=k + 1 < len(results))
    for i in checked:
        analytic = np.zeros_like(base[i]) if tensors[i].grad is None else tensors[i].grad
        for j in range(base[i].size):
            plus, minus = list(base), list(base)
            plus[i], minus[i] = base[i].copy(), base[i].copy()
            plus[i].flat[j] += eps
            minus[i].flat[j] -= eps
            numeric = (objective(plus) - objective(minus)) / (2 * eps)
            found = float(analytic.flat[j])
            if not abs(found - numeric) <= atol + rtol * abs(numeric):
                where = np.unravel_index(j, base[i].shape) if base[i].ndim else ()
                raise GradcheckError(
                    f"gradcheck: the gradient of input {i} at {tuple(int(k) for k in where)} is {found:.8g} by "
                    f"backward but {numeric:.8g} by central differences (eps {eps:g}, atol {atol:g}, rtol {rtol:g})"
                )
    return True


def _checked_positions(wrt: Any, floats: list[int], count: int) -> list[int]:
    positions = [wrt] if isinstance(wrt, int) else list(wrt) if isinstance(wrt, (list, tuple, range)) else None
    if positions is None or not all(isinstance(i, int) and not isinstance(i, bool) for i in positions):
        raise DescendTypeError(f"wrt must be an input position or a sequence of them; got {wrt!r:.80}")
    wrong = [i for i in positions if i not in floats]
    if wrong:
        raise DescendValueError(
            f"wrt names input(s) {wrong}, which are not float inputs of the {count} given (float ones: {floats})"
        )
    return positions

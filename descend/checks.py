"""Argument checks at the boundary: each error names the argument, quotes what came and says what was expected."""

from __future__ import annotations

import functools
import inspect
import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

from descend.errors import DescendTypeError, DescendValueError, IndexOutOfRangeError


def check_real(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """`value` as a float when it is a finite real number in the interval; else raise.

    `low_open=True` excludes `low` itself (the interval is (low, ...)), and likewise for `high`.
    """
    expected = _interval(low, high, low_open, high_open)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise DescendTypeError(f"{name} must be a real number{expected}; got {type(value).__name__} {value!r}")
    number = float(value)
    inside = math.isfinite(number)
    if low is not None:
        inside = inside and (number > low if low_open else number >= low)
    if high is not None:
        inside = inside and (number < high if high_open else number <= high)
    if not inside:
        raise DescendValueError(f"{name} must be a finite number{expected}; got {value!r}")
    return number


def check_integer(name: str, value: Any, low: int) -> int:
    """`value` as an int when it is an integer >= `low`; else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise DescendTypeError(f"{name} must be an integer >= {low}; got {type(value).__name__} {value!r}")
    if value < low:
        raise DescendValueError(f"{name} must be an integer >= {low}; got {value!r}")
    return int(value)


def check_fraction(name: str, value: Any) -> float:
    """`value` as a float strictly between 0 and 1; else raise."""
    return check_real(name, value, low=0.0, high=1.0, low_open=True, high_open=True)


def check_axis(name: str, axis: Any, ndim: int) -> int:
    """`axis` as an index in [0, ndim) when it is an integer in [-ndim, ndim), NumPy's rule; else raise."""
    # a plain int skips the slower abstract-class test: this runs on every reduction and softmax
    if type(axis) is not int and (isinstance(axis, bool) or not isinstance(axis, numbers.Integral)):
        raise DescendTypeError(f"{name} must be an integer axis; got {type(axis).__name__} {axis!r}")
    if not -ndim <= axis < ndim:
        expected = f"in [{-ndim}, {ndim - 1}]" if ndim else "and a 0-d tensor has none"
        raise IndexOutOfRangeError(f"{name} must be an axis of the {ndim}-d tensor, {expected}; got {axis}")
    return int(axis) % ndim


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    """' in [low, high]', ' >= low' or ' <= high', each with its leading space; '' for no bound."""
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f" {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f" {'<' if high_open else '<='} {high:g}"
    return ""


def naming_arguments(function: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap `function` (or a class's __init__) so a call with an unknown, missing or doubled argument raises
    a DescendTypeError that lists the arguments it takes, instead of Python's bare TypeError.

    The arguments are bound once before the call; the function itself runs unchanged.
    """
    signature = inspect.signature(function)
    names = list(signature.parameters)
    if function.__name__ == "__init__":
        names = names[1:]  # the instance, whatever the class calls it
    takes = ", ".join(names) or "no arguments"

    @functools.wraps(function)
    def checked(*args: Any, **kwargs: Any) -> Any:
        try:
            signature.bind(*args, **kwargs)
        except TypeError as error:
            owner = type(args[0]).__name__ if function.__name__ == "__init__" and args else function.__name__
            raise DescendTypeError(f"{owner}: {error}; it takes {takes}") from None
        return function(*args, **kwargs)

    return checked


def check_seed(seed: Any, name: str = "seed") -> int | None:
    """`seed` as an int >= 0, or None for fresh entropy; else an error naming it."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise DescendTypeError(f"{name} must be an integer >= 0 or None; got {type(seed).__name__} {seed!r}")
    if seed < 0:
        raise DescendValueError(f"{name} must be an integer >= 0 or None; got {seed!r}")
    return int(seed)


def as_array(value: Any, name: str, expected: str) -> np.ndarray:
    """np.asarray(value); where NumPy cannot make one (ragged nested lists), a DescendTypeError saying `name`
    must be `expected` ("a 1-D array of labels")."""
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as error:
        raise DescendTypeError(f"{name} must be {expected}; could not make one from {type(value).__name__}: "
                               f"{error}") from None


#: what a loss does with its per-sample values: their mean (the default), their sum, or nothing (one per sample)
REDUCTIONS = ("mean", "sum", "none")


def check_reduction(reduction: Any) -> str:
    """`reduction` when it is one of REDUCTIONS; else an error naming it (PyTorch's `reduction=`)."""
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise DescendValueError(f"reduction must be one of {', '.join(map(repr, REDUCTIONS))}; got {reduction!r:.80}")
    return reduction


#: PyTorch's names for arguments that descend spells as NumPy does; both are accepted wherever the NumPy one is
TORCH_NAMES = {"dim": "axis", "keepdim": "keepdims", "start_dim": "start_axis"}


def accepting_torch_names(function: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap `function` so PyTorch's argument names (dim=, keepdim=, start_dim=) stand for its NumPy ones.

    Only the names `function` has a NumPy twin for are accepted; passing both
    spellings is an error naming them.

    >>> @accepting_torch_names
    ... def total(values, axis=None, keepdims=False):
    ...     return np.sum(values, axis=axis, keepdims=keepdims)
    >>> total(np.ones((2, 3)), dim=1, keepdim=True).shape
    (2, 1)
    """
    parameters = inspect.signature(function).parameters
    aliases = {torch: numpy for torch, numpy in TORCH_NAMES.items() if numpy in parameters and torch not in parameters}

    @functools.wraps(function)
    def accepting(*args: Any, **kwargs: Any) -> Any:
        for torch, numpy in aliases.items():
            if torch in kwargs:
                if numpy in kwargs:
                    owner = type(args[0]).__name__ if function.__name__ == "__init__" and args else function.__name__
                    raise DescendTypeError(
                        f"{owner}: got both {numpy}= and {torch}= (PyTorch's name for {numpy}); pass one of them"
                    )
                kwargs[numpy] = kwargs.pop(torch)
        return function(*args, **kwargs)

    if aliases and accepting.__doc__:
        spelled = ", ".join(f"{torch}= for {numpy}=" for torch, numpy in aliases.items())
        accepting.__doc__ = accepting.__doc__.rstrip() + f"\n\n    PyTorch's spelling is accepted too: {spelled}."
    return accepting

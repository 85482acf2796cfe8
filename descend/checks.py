"""Argument checks at the boundary: each error names the argument, quotes what came and says what was expected."""

from __future__ import annotations

import math
import numbers
from typing import Any

from descend.errors import DescendTypeError, DescendValueError


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
        raise DescendTypeError(f"{name} must be a real number {expected}; got {type(value).__name__} {value!r}")
    number = float(value)
    inside = math.isfinite(number)
    if low is not None:
        inside = inside and (number > low if low_open else number >= low)
    if high is not None:
        inside = inside and (number < high if high_open else number <= high)
    if not inside:
        raise DescendValueError(f"{name} must be a finite number {expected}; got {value!r}")
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


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high:g}"
    return ""

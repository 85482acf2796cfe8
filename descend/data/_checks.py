"""Argument checks shared by the data loaders: each error names the argument and what came."""

import numbers

from descend.errors import DescendTypeError, DescendValueError


def check_int(value: object, name: str, minimum: int) -> int:
    """Return `value` as an int, or raise naming `name` if it is not an integer >= minimum."""
    # bool is an Integral, but n=True is always a slip
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise DescendTypeError(f"{name} must be an integer; got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise DescendValueError(f"{name} must be an integer >= {minimum}; got {value}")
    return int(value)


def check_real(value: object, name: str, minimum: float | None = None) -> float:
    """Return `value` as a finite float, or raise naming `name`; `minimum` is inclusive."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise DescendTypeError(f"{name} must be a real number; got {value!r} ({type(value).__name__})")
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise DescendValueError(f"{name} must be finite; got {value}")
    if minimum is not None and value < minimum:
        raise DescendValueError(f"{name} must be >= {minimum}; got {value}")
    return value


def check_fraction(value: object, name: str) -> float:
    """Return `value` as a float strictly between 0 and 1, or raise naming `name`."""
    value = check_real(value, name)
    if not 0.0 < value < 1.0:
        raise DescendValueError(f"{name} must be strictly between 0 and 1; got {value}")
    return value

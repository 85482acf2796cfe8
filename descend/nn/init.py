"""Where every layer's starting values come from, and a cap on how many a model may ask for.

Layers draw their weights, biases and running statistics through these
functions and nowhere else. That gives one place to read how a network
starts, and one place to guard: loading a model file rebuilds its
architecture before the weights are copied in, and a damaged or hostile
file could describe a network of 10^12 weights. Inside `values_limit(n)`
each function counts what it is asked for against `n` before it allocates
anything, so such a file is refused at once instead of exhausting memory.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from descend.errors import SizeLimitError

_limit = threading.local()


@contextlib.contextmanager
def values_limit(values: int) -> Iterator[None]:
    """Let the layers built inside ask for at most `values` starting values in all; more raises SizeLimitError.

    >>> from descend import nn
    >>> with values_limit(100):
    ...     nn.Linear(1000, 1000)
    Traceback (most recent call last):
    ...
    descend.errors.SizeLimitError: a layer asked for 1000000 starting values of shape (1000, 1000); 100 of the 100 allowed are left
    """
    previous = getattr(_limit, "remaining", None), getattr(_limit, "allowed", None)
    _limit.remaining = _limit.allowed = values
    try:
        yield
    finally:
        _limit.remaining, _limit.allowed = previous


def check_room(values: int, what: str) -> None:
    """Refuse at once, before its first layer is built, a stack of layers whose `values` starting values in all
    cannot fit in what the limit has left (the layers then claim theirs one by one); counts nothing itself."""
    remaining = getattr(_limit, "remaining", None)
    if remaining is not None and values > remaining:
        raise SizeLimitError(f"{what} asks for {values} starting values; {remaining} of the {_limit.allowed} "
                             "allowed are left")


def _claim(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Count `shape`'s values against the limit, if one is set, before anything is allocated."""
    shape = tuple(int(side) for side in shape)
    remaining = getattr(_limit, "remaining", None)
    if remaining is not None:
        wanted = math.prod(shape)  # Python ints: an absurd shape cannot overflow into a small number
        if wanted > remaining:
            raise SizeLimitError(
                f"a layer asked for {wanted} starting values of shape {shape}; "
                f"{remaining} of the {_limit.allowed} allowed are left"
            )
        _limit.remaining = remaining - wanted
    return shape


def uniform(rng: np.random.Generator, bound: float, shape: tuple[int, ...]) -> np.ndarray:
    """Values drawn uniformly from [-bound, bound): float64 of `shape` (a Parameter casts them)."""
    return rng.uniform(-bound, bound, _claim(shape))


def standard_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Values drawn from N(0, 1): float64 of `shape`."""
    return rng.standard_normal(_claim(shape))


def zeros(shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
    """Zeros of `shape` (a bias, a running mean)."""
    return np.zeros(_claim(shape), dtype=dtype)


def ones(shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
    """Ones of `shape` (a scale, a running variance)."""
    return np.ones(_claim(shape), dtype=dtype)

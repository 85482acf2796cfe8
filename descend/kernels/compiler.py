"""How every kernel is compiled: one decorator, so that all of them share the same guarantees.

- `nogil=True`: a kernel runs without the GIL (other Python threads go on);
- `cache=True`: compiled once per machine, kept beside the source in __pycache__;
- `error_model="numpy"`: division follows IEEE as NumPy does (x / 0 is ±inf or NaN, never an exception),
  which is the reference's behaviour and is what lets LLVM vectorise loops that divide;
- two builds of each kernel, one whose `prange` loops split over numba's threads and one on the calling
  thread alone: waking a sleeping thread costs tens of microseconds, more than the whole work of a small
  call (a recurrent step's gates, a layer of a batch of 32), so a call on fewer than PARALLEL_WORK numbers
  runs on one thread. Each number is computed the same way in both, so the results are the same bits.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import numpy as np
from numba import njit

#: numbers of work (the size of a kernel's first array) from which a call is split over threads
PARALLEL_WORK = 1 << 17

_OPTIONS = dict(cache=True, nogil=True, error_model="numpy")


class Kernel:
    """A compiled kernel, built twice (threads, one thread); a call picks by the size of its first array."""

    def __init__(self, function: Callable[..., Any]):
        self.__doc__, self.__name__ = function.__doc__, function.__name__
        self.parallel = njit(parallel=True, **_OPTIONS)(function)
        # a copy of the function under its own name: numba's disk cache keys a build by the function's name
        alone = types.FunctionType(function.__code__, function.__globals__, function.__name__ + "_one_thread")
        alone.__qualname__ = function.__qualname__ + "_one_thread"
        self.serial = njit(**_OPTIONS)(alone)

    def __call__(self, first: np.ndarray, *arguments: Any) -> Any:
        build = self.parallel if first.size >= PARALLEL_WORK else self.serial
        return build(first, *arguments)


def kernel(function: Callable[..., Any]) -> Kernel:
    """A kernel: above a function whose outer loop is a `prange`."""
    return Kernel(function)


#: a helper called from kernels, compiled inline with them
helper = njit(**_OPTIONS)

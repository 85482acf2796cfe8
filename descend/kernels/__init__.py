"""Compiled kernels under the ops, and the one switch that chooses them.

An op that has a kernel asks `current()` for the implementation in use and
calls it; `None` means the NumPy reference, the op's own code in
descend/ops/, which stays the readable definition and the oracle every
kernel is tested against. The choice:

- the environment variable DESCEND_KERNELS, read once on first use:
  "numba" (the default: compiled, multi-threaded CPU kernels) or "numpy";
- `use("numpy")` from Python, for the whole process, or `with using("numpy"):` for a block.

An implementation is a subclass of `descend.kernels.interface.Kernels`
named in `BACKENDS`; a GPU backend (CuPy) would be one more entry, with the
ops unchanged.

Threads: `set_threads(n)` sets both pools a training step runs on, the
kernels' and BLAS's (through threadpoolctl), so that the two never ask for
more cores than there are between them. Kernels and BLAS calls run one
after the other, never at once, so each may use all n.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
import numpy as np

from descend.checks import check_integer
from descend.errors import DescendValueError
from descend.kernels.interface import Kernels

#: implementation name -> "module:class" (imported on first use); "numpy" is the ops' own reference code
BACKENDS: dict[str, str | None] = {"numba": "descend.kernels.cpu:CPUKernels", "numpy": None}
#: the environment variable that picks the implementation when a process starts
ENVIRONMENT_VARIABLE = "DESCEND_KERNELS"

#: the dtypes the kernels are compiled for; an op on anything else runs its reference code
_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

_chosen: str | None = None  # the backend's name once chosen
_instance: Kernels | None = None


def _check_name(name: object, where: str) -> str:
    if not isinstance(name, str) or name not in BACKENDS:
        raise DescendValueError(f"{where} must be one of {', '.join(map(repr, BACKENDS))}; got {name!r}")
    return name


def _load(name: str) -> Kernels | None:
    target = BACKENDS[name]
    if target is None:
        return None
    module, attribute = target.split(":")
    return getattr(importlib.import_module(module), attribute)()


def use(name: str) -> None:
    """Run every op from now on with the kernels `name` ("numba" or "numpy")."""
    global _chosen, _instance
    name = _check_name(name, "the kernel backend")
    _instance, _chosen = _load(name), name


@contextmanager
def using(name: str) -> Iterator[None]:
    """The kernels `name` inside the block, the previous choice after it (however the block ends)."""
    previous = backend_name()
    use(name)
    try:
        yield
    finally:
        use(previous)


def backend_name() -> str:
    """The name of the kernels in use: "numba" or "numpy"."""
    if _chosen is None:
        use(_check_name(os.environ.get(ENVIRONMENT_VARIABLE, "numba"), f"${ENVIRONMENT_VARIABLE}"))
    return _chosen


def current() -> Kernels | None:
    """The kernel implementation in use, or None when the ops run their NumPy reference code."""
    if _chosen is None:
        backend_name()
    return _instance


def for_arrays(*arrays: np.ndarray) -> Kernels | None:
    """The kernels in use for an op on `arrays`: None (the reference) unless all are float32, or all float64."""
    kernels = current()
    if kernels is None or arrays[0].dtype not in _KERNEL_DTYPES or any(a.dtype != arrays[0].dtype for a in arrays):
        return None
    return kernels


def set_threads(threads: int) -> None:
    """Run the kernels and BLAS on `threads` threads each (they take turns, so never more than that at once)."""
    threads = check_integer("threads", threads, low=1)
    from threadpoolctl import threadpool_limits

    import numba

    from descend.kernels.cpu import start_threads

    start_threads()
    threadpool_limits(threads, user_api="blas")
    # numba's pool is made once per process with NUMBA_NUM_THREADS threads (the cores): it can only shrink
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))

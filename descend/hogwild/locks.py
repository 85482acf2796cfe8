"""The two locking schemes HOGWILD! is compared against, as real POSIX locks the compiled kernels can take.

The kernels run in threads without the GIL, so a Python `threading.Lock` is out of their reach. They
call the C library's `pthread_mutex_lock` / `pthread_cond_wait` directly (numba compiles calls to
ctypes functions), on a mutex and a condition variable that live in small NumPy byte arrays:

- "mutex": every update takes the one lock, reads the weights it needs, writes them, lets go.
- "round-robin": the workers update strictly in turn (Langford, Smola and Zinkevich's scheme), each
  waiting on the condition variable until the turn counter names it.
- "none": HOGWILD! itself; no lock is ever taken.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

import numpy as np

from descend.errors import DescendValueError

LOCKS = ("none", "mutex", "round-robin")
LOCK_CODES = {name: code for code, name in enumerate(LOCKS)}  # what the kernels branch on

#: bytes reserved per pthread object: more than glibc (40, 48) or macOS (64, 48) needs
_OBJECT_BYTES = 128


@functools.cache
def _libc() -> ctypes.CDLL:
    name = ctypes.util.find_library("c") or ctypes.util.find_library("pthread")
    if name is None:
        raise OSError("HOGWILD! needs a C library with POSIX threads (libc or libpthread); none was found")
    return ctypes.CDLL(name)


def pthread_functions() -> tuple[ctypes._CFuncPtr, ...]:
    """lock, unlock, wait, broadcast: libc's pthread_mutex_lock, _unlock, pthread_cond_wait, _broadcast."""
    found = []
    for function, arguments in (
        ("pthread_mutex_lock", 1), ("pthread_mutex_unlock", 1), ("pthread_cond_wait", 2), ("pthread_cond_broadcast", 1),
    ):
        c_function = getattr(_libc(), function)
        c_function.argtypes = (ctypes.c_void_p,) * arguments
        c_function.restype = ctypes.c_int
        found.append(c_function)
    return tuple(found)


class LockState:
    """A mutex, a condition variable, the round-robin turn and which workers are still running.

    `mutex` and `condition` are initialised pthread objects inside byte arrays (the kernels take their
    addresses); `turn` (1,) int64 names the worker whose update comes next; `active` (workers,) int64
    marks the workers that have not finished their share, so the turn skips those that have.
    """

    def __init__(self, workers: int):
        self.mutex = np.zeros(_OBJECT_BYTES, dtype=np.uint8)
        self.condition = np.zeros(_OBJECT_BYTES, dtype=np.uint8)
        _libc().pthread_mutex_init(ctypes.c_void_p(self.mutex.ctypes.data), None)
        _libc().pthread_cond_init(ctypes.c_void_p(self.condition.ctypes.data), None)
        self.turn = np.zeros(1, dtype=np.int64)
        self.active = np.ones(workers, dtype=np.int64)


def lock_code(lock: str) -> int:
    """The kernels' code for a lock mode, or an error naming the modes there are."""
    if lock not in LOCK_CODES:
        raise DescendValueError(f"lock must be one of {', '.join(map(repr, LOCKS))}; got {lock!r}")
    return LOCK_CODES[lock]

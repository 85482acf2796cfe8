"""Keeping freed memory for reuse: what makes a training loop's big temporaries cheap.

A training step allocates and frees the same large arrays every step
(im2col columns, activations, gradients). By default glibc hands large
freed blocks back to the operating system, so the next step's arrays are
fresh pages that fault in one by one; on a CNN step that is a quarter of
the time. Raising glibc's mmap and trim thresholds keeps the freed memory
in the process heap for the next step, as PyTorch's caching allocator
does for its tensors. Memory stays bounded by the peak of one step.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

from descend.errors import SizeLimitError

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_KEEP_BYTES = 1 << 30  # blocks up to 1 GiB come from the heap and stay there when freed


@functools.cache
def reuse_freed_memory() -> bool:
    """Ask glibc to keep freed blocks for reuse; True when it agreed, False where there is no glibc (macOS, musl)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _KEEP_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD, 2 * _KEEP_BYTES))


def physical_memory() -> int | None:
    """Bytes of memory this machine has, or None where the system does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(what: str, n_bytes: int, fix: str) -> None:
    """Refuse, before allocating, `n_bytes` of arrays that exceed this machine's memory; `what` names them."""
    memory = physical_memory()
    if memory is not None and n_bytes > memory:
        raise SizeLimitError(f"{what} would need {n_bytes / 1e9:,.1f} GB; this machine has "
                             f"{memory / 1e9:,.1f} GB of memory. {fix}")

"""Atomic reads and adds on one element of a NumPy array, for compiled kernels that share it between threads.

HOGWILD!'s model (Niu et al., section 2) has the processors add to single components atomically. A
sparse weight is rarely touched by two workers at once, so a plain load and store serves; the
intercept is touched by every update of every worker, and there a plain `intercept[0] -= step` is
not enough: the compiler may keep the value in a register for the whole loop (it cannot know another
thread writes it), and then one worker's final store wipes out all the others' steps. These emit
LLVM's atomic load and `atomicrmw fadd` (relaxed ordering: a plain `mov` and a `lock cmpxchg` loop
on x86), which the compiler must perform in memory, every time.
"""

from __future__ import annotations

from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


def _element_pointer(context, builder, array_type, array_value, index_value):
    array = context.make_array(array_type)(context, builder, array_value)
    return cgutils.get_item_pointer(context, builder, array_type, array, [index_value])


@intrinsic
def atomic_read(typing_context, array, index):
    """array[index], read from memory every time (a relaxed atomic load)."""

    def codegen(context, builder, signature, arguments):
        pointer = _element_pointer(context, builder, signature.args[0], *arguments)
        return builder.load_atomic(pointer, "monotonic", array.dtype.bitwidth // 8)

    return array.dtype(array, types.intp), codegen


@intrinsic
def atomic_add(typing_context, array, index, value):
    """array[index] += value as one indivisible step; returns the value before (a relaxed atomic add)."""

    def codegen(context, builder, signature, arguments):
        array_value, index_value, add_value = arguments
        pointer = _element_pointer(context, builder, signature.args[0], array_value, index_value)
        return builder.atomic_rmw("fadd", pointer, add_value, "monotonic")

    return array.dtype(array, types.intp, array.dtype), codegen

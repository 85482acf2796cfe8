"""CPUKernels: the Kernels interface on numba-compiled, multi-threaded loops (descend/kernels/*.py).

Why numba: the loops stay Python a learner can read, compile to machine code
on first use (cached on disk), run without the GIL and split over threads
with `prange`; HOGWILD! already needed it. Every method checks what its loop
relies on before calling it (the `_check_*` helpers), so a loop only ever
sees float arrays of one dtype and shapes that fit each other.

Determinism: every loop splits its work so that each output number is made
by one thread, alone, in a fixed order; none combines partial results by
arrival. The same inputs give the same bits for any thread count.
"""

from __future__ import annotations

import math
import os

import numba
import numpy as np

from descend.errors import DescendTypeError, ShapeError
from descend.kernels import activation, conv, pool, recurrent, rows, update
from descend.kernels.interface import Kernels

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def start_threads() -> None:
    """Start numba's thread pool (once per process) with its OpenMP threads waiting passively between kernels.

    Spinning threads would hold a core that BLAS's threads need for the product that comes next (that made a
    CNN epoch 2.5x slower on two cores). The policy is read once, when the pool's OpenMP library loads, so it is
    set only for that moment: another library's OpenMP (torch's) keeps its own. A policy the user set stays.
    """
    previous = os.environ.get("OMP_WAIT_POLICY")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        numba.get_num_threads()  # launches the pool
    finally:
        if previous is None:
            del os.environ["OMP_WAIT_POLICY"]


def _check_floats(kernel: str, *arrays: np.ndarray) -> np.dtype:
    """The one float dtype of `arrays`; else an error naming the kernel and the dtypes."""
    dtype = arrays[0].dtype
    if dtype not in FLOATS or any(array.dtype != dtype for array in arrays):
        raise DescendTypeError(
            f"kernel {kernel} takes float32 or float64 arrays of one dtype; got {[str(a.dtype) for a in arrays]}"
        )
    return dtype


def _check_shape(kernel: str, name: str, array: np.ndarray, shape: tuple[int, ...]) -> None:
    if array.shape != tuple(shape):
        raise ShapeError(f"kernel {kernel}: {name} must have shape {tuple(shape)}; got {array.shape}")


#: the arrays of a recurrent step that hold all G gates of a row, (N, G·H); the others are (N, H)
_GATE_ROWS = {"gates", "product", "recurrent", "slopes", "d_gates", "d_inputs", "d_hidden"}


def _check_rows(kernel: str, gate_count: int, state_shape: tuple[int, ...], **arrays: np.ndarray) -> None:
    """A recurrent step's arrays: C-ordered rows, (N, G·H) for the gate rows and (N, H) for the states."""
    if len(state_shape) != 2:
        raise ShapeError(f"kernel {kernel}: states must be (N, H); got shape {state_shape}")
    n, size = state_shape
    for name, array in arrays.items():
        _check_shape(kernel, name, array, (n, gate_count * size) if name in _GATE_ROWS else (n, size))
        if not array.flags.c_contiguous:
            raise ShapeError(f"kernel {kernel}: {name} must be C-ordered (its rows are read as contiguous numbers)")


def _check_window(kernel: str, x_shape: tuple[int, ...], window: tuple[int, int], stride: tuple[int, int],
                  padding: tuple[int, int], dilation: tuple[int, int], out_hw: tuple[int, int]) -> None:
    """A (N, C, H, W) input and an output size that the window, stride, padding and dilation really give."""
    if len(x_shape) != 4:
        raise ShapeError(f"kernel {kernel}: x must be (N, C, H, W); got shape {x_shape}")
    if min(*window, *stride, *dilation) < 1 or min(padding) < 0:
        raise ShapeError(f"kernel {kernel}: window {window}, stride {stride} and dilation {dilation} must be >= 1 "
                         f"and padding {padding} >= 0")
    for axis in range(2):
        span = dilation[axis] * (window[axis] - 1) + 1
        room = x_shape[2 + axis] + 2 * padding[axis] - span
        if room < 0 or out_hw[axis] != room // stride[axis] + 1:
            raise ShapeError(f"kernel {kernel}: output size {out_hw} does not follow from input {x_shape[2:]}, "
                             f"window {window}, stride {stride}, padding {padding}, dilation {dilation}")


def _dense_axes(x: np.ndarray) -> tuple[int, ...] | None:
    """The axes of x in memory order (outermost first) when x covers one dense block in some order, else None."""
    order = tuple(int(axis) for axis in np.argsort([-abs(step) for step in x.strides], kind="stable"))
    return order if x.transpose(order).flags.c_contiguous else None


def _empty_in_order(shape: tuple[int, ...], order: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A new array of `shape` whose axes lie in memory in `order` (outermost first)."""
    return np.empty([shape[axis] for axis in order], dtype=dtype).transpose(np.argsort(order))


#: the memory order of a convolution's output on the kernels: (C, H, W, N), the batch fastest
_BATCH_LAST = (1, 2, 3, 0)


def _plane_order(x: np.ndarray) -> tuple[int, ...]:
    """x's (N, C) axes in memory order, then H, W: the order in which x's (H, W) planes are read as one array."""
    order = _dense_axes(x)
    return order if order is not None and order[2:] == (2, 3) else (0, 1, 2, 3)


def _planes(array: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
    """The (H, W) planes of an (N, C, H, W) array dense in `order`, as one (P, H, W) view."""
    return array.transpose(order).reshape(-1, *array.shape[2:])


def _flat(array: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
    """The numbers of an array dense in `order`, flat in memory order (a view)."""
    return array.transpose(order).reshape(-1)


class CPUKernels(Kernels):
    """The kernels on this machine's cores (numba; `descend.kernels.set_threads` sets how many)."""

    def __init__(self):
        start_threads()

    def max_pool2d(self, x, kernel, stride, padding, out_hw):
        _check_floats("max_pool2d", x)
        _check_window("max_pool2d", x.shape, kernel, stride, padding, (1, 1), out_hw)
        if x.shape[2] * x.shape[3] > np.iinfo(np.int32).max:
            raise ShapeError(f"kernel max_pool2d: a plane of {x.shape[2]}x{x.shape[3]} has more positions than "
                             "int32 counts")
        if padding[0] >= kernel[0] or padding[1] >= kernel[1]:
            raise ShapeError(f"kernel max_pool2d: padding {padding} must be smaller than the window {kernel}")
        two_by_two = (kernel, stride, padding) == ((2, 2), (2, 2), (0, 0))
        if two_by_two and _dense_axes(x) == _BATCH_LAST:  # a convolution's output on the kernels
            out = _empty_in_order((*x.shape[:2], *out_hw), _BATCH_LAST, x.dtype)
            where = _empty_in_order(out.shape, _BATCH_LAST, np.int32)
            pool.max_pool_2x2_batch_last(*(array.transpose(_BATCH_LAST) for array in (x, out, where)))
            return out, where
        order = _plane_order(x)
        planes = np.ascontiguousarray(x.transpose(order)).reshape(-1, *x.shape[2:])
        out = _empty_in_order((*x.shape[:2], *out_hw), order, x.dtype)
        where = _empty_in_order(out.shape, order, np.int32)
        flat_out, flat_where = _planes(out, order), _planes(where, order)
        if two_by_two:
            pool.max_pool_2x2(planes, flat_out, flat_where)
        else:
            pool.max_pool_forward(planes, *kernel, *stride, *padding, flat_out, flat_where)
        return out, where

    def max_pool2d_backward(self, grad, where, x, kernel, stride, padding):
        _check_floats("max_pool2d_backward", grad, x)
        _check_shape("max_pool2d_backward", "where", where, grad.shape)
        if where.dtype != np.int32 or x.ndim != 4 or grad.shape[:2] != x.shape[:2]:
            raise ShapeError(f"kernel max_pool2d_backward: where (int32) and grad {grad.shape} must come from "
                             f"max_pool2d of x, of shape {x.shape}")
        _check_window("max_pool2d_backward", x.shape, kernel, stride, padding, (1, 1), grad.shape[2:])
        two_by_two = (kernel, stride, padding) == ((2, 2), (2, 2), (0, 0))
        if two_by_two and _dense_axes(x) == _BATCH_LAST and _dense_axes(where) == _BATCH_LAST:
            grad_x = _empty_in_order(x.shape, _BATCH_LAST, x.dtype)
            pool.max_pool_2x2_batch_last_backward(np.ascontiguousarray(grad.transpose(_BATCH_LAST)),
                                                  where.transpose(_BATCH_LAST), grad_x.transpose(_BATCH_LAST))
            return grad_x
        order = _plane_order(x)
        if _dense_axes(where) != order:
            raise ShapeError("kernel max_pool2d_backward: where must be max_pool2d's own, in x's memory order")
        grad_x = _empty_in_order(x.shape, order, x.dtype)  # x's layout: the backward of the op before reads it so
        grad_planes = np.ascontiguousarray(grad.transpose(order)).reshape(-1, *grad.shape[2:])
        backward = pool.max_pool_2x2_backward if two_by_two else pool.max_pool_backward
        backward(grad_planes, _planes(where, order), _planes(grad_x, order))
        return grad_x

    def avg_pool2d(self, x, kernel, stride, padding, out_hw):
        dtype = _check_floats("avg_pool2d", x)
        _check_window("avg_pool2d", x.shape, kernel, stride, padding, (1, 1), out_hw)
        out = np.empty((*x.shape[:2], *out_hw), dtype=dtype)
        pool.avg_pool_forward(x, *kernel, *stride, *padding, dtype.type(1.0 / (kernel[0] * kernel[1])), out)
        return out

    def avg_pool2d_backward(self, grad, kernel, stride, padding, input_shape):
        dtype = _check_floats("avg_pool2d_backward", grad)
        _check_window("avg_pool2d_backward", tuple(input_shape), kernel, stride, padding, (1, 1), grad.shape[2:])
        _check_shape("avg_pool2d_backward", "grad", grad, (*input_shape[:2], *grad.shape[2:]))
        grad_x = np.zeros(input_shape, dtype=dtype)
        pool.avg_pool_backward(grad, *kernel, *stride, *padding, dtype.type(1.0 / (kernel[0] * kernel[1])), grad_x)
        return grad_x

    def im2col(self, x, kernel, stride, padding, dilation, out_hw):
        _check_floats("im2col", x)
        _check_window("im2col", x.shape, kernel, stride, padding, dilation, out_hw)
        n, channels = x.shape[:2]
        cols = np.empty((channels, *kernel, *out_hw, n), dtype=x.dtype)
        conv.im2col(cols, x, *kernel, *stride, *padding, *dilation)
        return cols

    def col2im(self, grad_cols, input_shape, stride, padding, dilation):
        _check_floats("col2im", grad_cols)
        if grad_cols.ndim != 6 or len(input_shape) != 4:
            raise ShapeError(f"kernel col2im: columns must be (C, kh, kw, Ho, Wo, N) and the input (N, C, H, W); "
                             f"got {grad_cols.shape} and {input_shape}")
        channels, kh, kw, out_h, out_w, n = grad_cols.shape
        _check_window("col2im", tuple(input_shape), (kh, kw), stride, padding, dilation, (out_h, out_w))
        if (n, channels) != tuple(input_shape[:2]):
            raise ShapeError(f"kernel col2im: columns {grad_cols.shape} do not fit an input of shape {input_shape}")
        grad_x = np.zeros((channels, *input_shape[2:], n), dtype=grad_cols.dtype)
        conv.col2im(grad_cols, *stride, *padding, *dilation, grad_x)
        return grad_x.transpose(3, 0, 1, 2)

    def add_channel_bias(self, out, bias):
        _check_floats("add_channel_bias", out, bias)
        if out.ndim != 2 or not out.flags.c_contiguous:
            raise ShapeError(f"kernel add_channel_bias: out must be a C-ordered (O, M); got shape {out.shape}")
        _check_shape("add_channel_bias", "bias", bias, out.shape[:1])
        conv.add_channel_bias(out, bias)

    def channel_sums(self, grad):
        _check_floats("channel_sums", grad)
        if grad.ndim != 2:
            raise ShapeError(f"kernel channel_sums: grad must be (O, M); got shape {grad.shape}")
        total = np.empty(grad.shape[0], dtype=grad.dtype)
        conv.channel_sums(grad, total)
        return total

    def relu(self, x):
        _check_floats("relu", x)
        order = _dense_axes(x)
        if order is None:
            x, order = np.ascontiguousarray(x), tuple(range(x.ndim))
        # the output and the mask in x's own layout (a conv's output is channel-major): one flat pass over all three
        out, positive = _empty_in_order(x.shape, order, x.dtype), _empty_in_order(x.shape, order, np.bool_)
        activation.relu_forward(_flat(x, order), _flat(out, order), _flat(positive, order))
        return out, positive

    def relu_backward(self, grad, positive):
        _check_floats("relu_backward", grad)
        _check_shape("relu_backward", "positive", positive, grad.shape)
        order = _dense_axes(positive)
        if positive.dtype != np.bool_ or order is None:
            raise DescendTypeError(f"kernel relu_backward: positive must be a dense bool mask; got {positive.dtype}")
        grad_x = _empty_in_order(grad.shape, order, grad.dtype)
        activation.relu_backward(np.ascontiguousarray(grad.transpose(order)).reshape(-1), _flat(positive, order),
                                 _flat(grad_x, order))
        return grad_x

    def add_bias(self, out, bias):
        _check_floats("add_bias", out, bias)
        if out.ndim != 2:
            raise ShapeError(f"kernel add_bias: out must be (N, F); got shape {out.shape}")
        _check_shape("add_bias", "bias", bias, out.shape[1:])
        activation.add_bias(out, bias)

    def bias_grad(self, grad):
        _check_floats("bias_grad", grad)
        if grad.ndim != 2:
            raise ShapeError(f"kernel bias_grad: grad must be (N, F); got shape {grad.shape}")
        if grad.shape[0] == 0:
            return np.zeros(grad.shape[1], dtype=grad.dtype)
        total = np.empty(grad.shape[1], dtype=grad.dtype)
        activation.bias_grad(grad, total)
        return total

    def lstm_step(self, gates, product, previous_cell, cell, hidden, slopes, cell_from_hidden):
        recording = slopes is not None
        arrays = (gates, product, previous_cell, cell, hidden)
        _check_floats("lstm_step", *arrays, *((slopes, cell_from_hidden) if recording else ()))
        _check_rows("lstm_step", 4, previous_cell.shape, gates=gates, product=product, previous_cell=previous_cell,
                    cell=cell, hidden=hidden, **({"slopes": slopes, "cell_from_hidden": cell_from_hidden}
                                                 if recording else {}))
        if not recording:
            slopes, cell_from_hidden = gates, cell  # never written: the loop reads `recording` first
        recurrent.lstm_step_forward(gates, product, previous_cell, cell, hidden, slopes, cell_from_hidden,
                                    recording)

    def lstm_step_backward(self, d_h, grad_hidden, d_c, slopes, cell_from_hidden, gates, d_gates):
        _check_floats("lstm_step_backward", d_h, grad_hidden, d_c, slopes, cell_from_hidden, gates, d_gates)
        _check_rows("lstm_step_backward", 4, d_c.shape, d_h=d_h, grad_hidden=grad_hidden, d_c=d_c, slopes=slopes,
                    cell_from_hidden=cell_from_hidden, gates=gates, d_gates=d_gates)
        recurrent.lstm_step_backward(d_h, grad_hidden, d_c, slopes, cell_from_hidden, gates, d_gates)

    def gru_step(self, gates, recurrent_product, bias, previous, hidden_n, hidden):
        _check_floats("gru_step", gates, recurrent_product, bias, previous, hidden_n, hidden)
        _check_rows("gru_step", 3, previous.shape, gates=gates, recurrent=recurrent_product, previous=previous,
                    hidden_n=hidden_n, hidden=hidden)
        _check_shape("gru_step", "bias", bias, (gates.shape[1],))
        recurrent.gru_step_forward(gates, recurrent_product, bias, previous, hidden_n, hidden)

    def gru_step_backward(self, d_h, grad_hidden, gates, hidden_n, previous, d_inputs, d_hidden, carried):
        _check_floats("gru_step_backward", d_h, grad_hidden, gates, hidden_n, previous, d_inputs, d_hidden, carried)
        _check_rows("gru_step_backward", 3, previous.shape, d_h=d_h, grad_hidden=grad_hidden, gates=gates,
                    hidden_n=hidden_n, previous=previous, d_inputs=d_inputs, d_hidden=d_hidden, carried=carried)
        recurrent.gru_step_backward(d_h, grad_hidden, gates, hidden_n, previous, d_inputs, d_hidden, carried)

    def sgd(self, weights, grads, velocity, lr, momentum, nesterov, weight_decay, l1):
        state = () if velocity is None else (velocity,)
        dtype = _check_flat("sgd", weights, grads, *state)
        cast = dtype.type
        update.sgd(weights, grads, np.empty(0, dtype) if velocity is None else velocity, cast(lr), cast(momentum),
                   bool(nesterov), cast(weight_decay), cast(l1))

    def adam(self, weights, grads, mean, square, lr, betas, eps, weight_decay, step):
        dtype = _check_flat("adam", weights, grads, mean, square)
        cast = dtype.type
        beta1, beta2 = betas
        update.adam(weights, grads, mean, square, cast(lr / (1.0 - beta1**step)), cast(beta1), cast(1.0 - beta1),
                    cast(beta2), cast(1.0 - beta2), cast(math.sqrt(1.0 - beta2**step)), cast(eps), cast(weight_decay))

    def rmsprop(self, weights, grads, square, velocity, lr, alpha, eps, momentum, weight_decay):
        state = () if velocity is None else (velocity,)
        dtype = _check_flat("rmsprop", weights, grads, square, *state)
        cast = dtype.type
        update.rmsprop(weights, grads, square, np.empty(0, dtype) if velocity is None else velocity, cast(lr),
                       cast(alpha), cast(1.0 - alpha), cast(eps), cast(momentum), cast(weight_decay))

    def log_softmax_rows(self, logits):
        _check_floats("log_softmax_rows", logits)
        if logits.ndim != 2 or logits.shape[1] == 0:
            raise ShapeError(f"kernel log_softmax_rows: logits must be (N, C) with C >= 1; got {logits.shape}")
        log_probs = np.empty(logits.shape, dtype=logits.dtype)
        rows.log_softmax_rows(logits, log_probs)
        return log_probs

    def softmax_cross_entropy_grad(self, log_probs, labels, scale):
        dtype = _check_floats("softmax_cross_entropy_grad", log_probs)
        if log_probs.ndim != 2 or labels.shape != log_probs.shape[:1] or labels.dtype.kind not in "iu":
            raise ShapeError(f"kernel softmax_cross_entropy_grad: log_probs (N, C) and integer labels (N,); got "
                             f"{log_probs.shape} and {labels.dtype} {labels.shape}")
        if labels.size and (labels.min() < 0 or labels.max() >= log_probs.shape[1]):
            raise ShapeError(f"kernel softmax_cross_entropy_grad: labels must lie in [0, {log_probs.shape[1]})")
        grad_logits = np.empty(log_probs.shape, dtype=dtype)
        rows.softmax_cross_entropy_grad(log_probs, labels, dtype.type(scale), grad_logits)
        return grad_logits

    def squash(self, s, epsilon, recording):
        dtype = _check_floats("squash", s)
        if s.ndim != 2:
            raise ShapeError(f"kernel squash: s must be (M, D); got shape {s.shape}")
        out = np.empty(s.shape, dtype=dtype)
        scale = np.empty((s.shape[0], 1), dtype=dtype)
        slope = np.empty((s.shape[0], 1), dtype=dtype) if recording else scale
        rows.squash_rows(s, dtype.type(epsilon), out, scale[:, 0], slope[:, 0], recording)
        return out, scale, slope if recording else None

    def squash_backward(self, grad, s, scale, slope):
        _check_floats("squash_backward", grad, s, scale, slope)
        _check_shape("squash_backward", "grad", grad, s.shape)
        for name, array in (("scale", scale), ("slope", slope)):
            _check_shape("squash_backward", name, array, (s.shape[0], 1))
        grad_s = np.empty(s.shape, dtype=s.dtype)
        rows.squash_rows_backward(grad, s, scale[:, 0], slope[:, 0], grad_s)
        return grad_s


def _check_flat(kernel: str, *buffers: np.ndarray) -> np.dtype:
    """Flat buffers of one float dtype and one length: the weights, their gradients and the optimizer's state."""
    dtype = _check_floats(kernel, *buffers)
    if any(buffer.ndim != 1 or buffer.shape != buffers[0].shape for buffer in buffers):
        raise ShapeError(f"kernel {kernel} takes flat buffers of one length; got shapes {[b.shape for b in buffers]}")
    return dtype


"""Kernels: what an implementation of the compiled kernels provides, one method per kernel.

The ops call these methods and nothing else of an implementation, so a GPU
backend is one more subclass (CuPy arrays in, CuPy arrays out) named in
`descend.kernels.BACKENDS`. Every method takes arrays the op has already
checked as a user's input; an implementation checks again what its own
loops rely on (dtypes, ranks, shapes that fit, and nothing empty where a
loop reads a first element) before any compiled code runs, so that no
input an op accepts can make a kernel read or write out of bounds.

Shapes: activations NCHW; pairs are (height, width); "float" means float32
or float64, every float array of one call of the same dtype.
"""

from __future__ import annotations

import numpy as np


class Kernels:
    """The compiled kernels an op may call; a subclass implements every method."""

    # -- pooling ------------------------------------------------------------
    def max_pool2d(self, x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
                   padding: tuple[int, int], out_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Window maxima of x (N, C, H, W), padding −∞ (smaller than the window): (out (N, C, Ho, Wo), where
        (N, C, Ho, Wo) int32), where = each maximum's first flat position in its (H, W) plane, or −1 for a NaN
        window or one whose maximum is padding (no gradient)."""
        raise NotImplementedError

    def max_pool2d_backward(self, grad: np.ndarray, where: np.ndarray, x: np.ndarray, kernel: tuple[int, int],
                            stride: tuple[int, int], padding: tuple[int, int]) -> np.ndarray:
        """grad (N, C, Ho, Wo) put back at `where` (max_pool2d's of x with this window): the gradient of x
        (N, C, H, W), in x's memory layout."""
        raise NotImplementedError

    def avg_pool2d(self, x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
                   padding: tuple[int, int], out_hw: tuple[int, int]) -> np.ndarray:
        """Window means of x (N, C, H, W), padding counted as 0: (N, C, Ho, Wo)."""
        raise NotImplementedError

    def avg_pool2d_backward(self, grad: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
                            padding: tuple[int, int], input_shape: tuple[int, ...]) -> np.ndarray:
        """grad (N, C, Ho, Wo) spread evenly over each window: the gradient of x, of input_shape."""
        raise NotImplementedError

    # -- convolution ------------------------------------------------------------
    def im2col(self, x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
               dilation: tuple[int, int], out_hw: tuple[int, int]) -> np.ndarray:
        """Every receptive field of x (N, C, H, W) as columns with the batch last (C, kh, kw, Ho, Wo, N), zeros
        for the padding."""
        raise NotImplementedError

    def col2im(self, grad_cols: np.ndarray, input_shape: tuple[int, ...], stride: tuple[int, int],
               padding: tuple[int, int], dilation: tuple[int, int]) -> np.ndarray:
        """Columns with the batch last (C, kh, kw, Ho, Wo, N) added back where im2col read them: the gradient
        of x (N, C, H, W)."""
        raise NotImplementedError

    def add_channel_bias(self, out: np.ndarray, bias: np.ndarray) -> None:
        """out (O, M) += bias (O,) along each row, in place (a convolution's output, channel-major)."""
        raise NotImplementedError

    def channel_sums(self, grad: np.ndarray) -> np.ndarray:
        """Σ along each row of grad (O, M): (O,), a convolution's bias gradient."""
        raise NotImplementedError

    # -- dense layers and activations --------------------------------------------
    def relu(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(max(x, 0), x > 0), both of x's shape and memory layout."""
        raise NotImplementedError

    def relu_backward(self, grad: np.ndarray, positive: np.ndarray) -> np.ndarray:
        """grad · positive, of grad's shape."""
        raise NotImplementedError

    def add_bias(self, out: np.ndarray, bias: np.ndarray) -> None:
        """out (N, F) += bias (F,), in place."""
        raise NotImplementedError

    def bias_grad(self, grad: np.ndarray) -> np.ndarray:
        """Σ over the rows of grad (N, F): (F,)."""
        raise NotImplementedError

    # -- recurrent cells ------------------------------------------------------------
    def lstm_step(self, gates: np.ndarray, product: np.ndarray, previous_cell: np.ndarray, cell: np.ndarray,
                  hidden: np.ndarray, slopes: np.ndarray | None, cell_from_hidden: np.ndarray | None) -> None:
        """One LSTM step in place on C-ordered rows: gates (N, 4H) (biases in), product = h W_hh (N, 4H); writes
        the activations into gates, cell and hidden (N, H), and when recording the slopes (N, 4H) and
        cell_from_hidden (N, H) the backward needs: see descend.kernels.recurrent.lstm_step_forward."""
        raise NotImplementedError

    def lstm_step_backward(self, d_h: np.ndarray, grad_hidden: np.ndarray, d_c: np.ndarray, slopes: np.ndarray,
                           cell_from_hidden: np.ndarray, gates: np.ndarray, d_gates: np.ndarray) -> None:
        """One LSTM step back in place: d_gates (N, 4H) and the carried d_c (N, H)."""
        raise NotImplementedError

    def gru_step(self, gates: np.ndarray, recurrent: np.ndarray, bias: np.ndarray, previous: np.ndarray,
                 hidden_n: np.ndarray, hidden: np.ndarray) -> None:
        """One GRU step in place: gates (N, 3H) become (r, z, n); hidden_n, hidden (N, H) written."""
        raise NotImplementedError

    def gru_step_backward(self, d_h: np.ndarray, grad_hidden: np.ndarray, gates: np.ndarray, hidden_n: np.ndarray,
                          previous: np.ndarray, d_inputs: np.ndarray, d_hidden: np.ndarray,
                          carried: np.ndarray) -> None:
        """One GRU step back in place: d_inputs, d_hidden (N, 3H) and carried = dh·z (N, H)."""
        raise NotImplementedError

    # -- optimizers ---------------------------------------------------------------
    def sgd(self, weights: np.ndarray, grads: np.ndarray, velocity: np.ndarray | None, lr: float, momentum: float,
            nesterov: bool, weight_decay: float, l1: float) -> None:
        """SGD's step on flat buffers, in place (velocity None: no momentum)."""
        raise NotImplementedError

    def adam(self, weights: np.ndarray, grads: np.ndarray, mean: np.ndarray, square: np.ndarray, lr: float,
             betas: tuple[float, float], eps: float, weight_decay: float, step: int) -> None:
        """Adam's step number `step` (from 1) on flat buffers, in place."""
        raise NotImplementedError

    def rmsprop(self, weights: np.ndarray, grads: np.ndarray, square: np.ndarray, velocity: np.ndarray | None,
                lr: float, alpha: float, eps: float, momentum: float, weight_decay: float) -> None:
        """RMSprop's step on flat buffers, in place (velocity None: no momentum)."""
        raise NotImplementedError

    # -- row-wise ---------------------------------------------------------------------
    def log_softmax_rows(self, logits: np.ndarray) -> np.ndarray:
        """log softmax of each row of logits (N, C): (N, C)."""
        raise NotImplementedError

    def softmax_cross_entropy_grad(self, log_probs: np.ndarray, labels: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """(softmax − onehot(labels)) · scale: (N, C) from log_probs (N, C) and labels (N,) in [0, C)."""
        raise NotImplementedError

    def squash(self, s: np.ndarray, epsilon: float,
               recording: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Squash each row of s (M, D): (out (M, D), c (M, 1), slope (M, 1) or None when not recording)."""
        raise NotImplementedError

    def squash_backward(self, grad: np.ndarray, s: np.ndarray, scale: np.ndarray, slope: np.ndarray) -> np.ndarray:
        """The gradient of squash's rows (M, D) from grad (M, D) and what `squash` returned."""
        raise NotImplementedError

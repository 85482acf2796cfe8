"""MatrixFactorization: matrix completion Z ≈ L Rᵀ from observed entries, trained by HOGWILD!.

An entry (u, v) touches only row u of L and row v of R, so workers updating different entries
rarely meet: the paper's second problem (Netflix-style ratings).

>>> from descend import data, hogwild
>>> train, test = data.make_low_rank_matrix(n_rows=200, n_cols=150, rank=3, density=0.3, noise=0.05, seed=0)
>>> model = hogwild.MatrixFactorization(rank=3, epochs=30, workers=2).fit(train.rows, train.cols, train.values)
>>> bool(model.rmse(test.rows, test.cols, test.values) < 0.5)
True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from descend.checks import as_array, check_integer, check_real, check_seed
from descend.errors import DescendTypeError, DescendValueError, ShapeError
from descend.hogwild.kernels import factorization_pass
from descend.hogwild.locks import LockState, lock_code
from descend.hogwild.workers import check_schedule, check_workers, train_epochs
from descend.memory import check_memory


def _indices(name: str, values: Any) -> np.ndarray:
    """`values` as 1-D int64 indices >= 0; float, bool or object indices are refused, not rounded."""
    array = as_array(values, name, "a 1-D array of integer indices")
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise DescendTypeError(f"{name} must be a 1-D array of integer indices; got shape {array.shape}, dtype {array.dtype}")
    if array.size and array.min() < 0:
        at = int(np.argmin(array))
        raise DescendValueError(f"{name} must hold indices >= 0; got {int(array[at])} at entry {at}")
    if array.size and array.max() > np.iinfo(np.int64).max:  # uint64 beyond int64 would wrap negative
        raise DescendValueError(f"{name} holds {int(array.max())}; expected indices below 2**63")
    return array.astype(np.int64, copy=False)


def _check_in_range(name: str, indices: np.ndarray, size: int, size_name: str) -> None:
    if indices.size and indices.max() >= size:
        at = int(np.argmax(indices))
        raise DescendValueError(f"{name} holds {int(indices[at])} at entry {at}, outside the model's {size} "
                                f"{size_name} (0..{size - 1})")


def _values(name: str, values: Any) -> np.ndarray:
    """`values` as 1-D float32, every one finite; an error naming the argument and the first bad entry."""
    try:
        array = np.asarray(values)
    except (TypeError, ValueError) as error:
        raise DescendTypeError(f"{name} must be a 1-D array of numbers; could not make one from "
                               f"{type(values).__name__}: {error}") from None
    if array.dtype.kind not in "biuf":
        raise DescendTypeError(f"{name} must be a 1-D array of numbers; got dtype {array.dtype}")
    with np.errstate(over="ignore"):  # a value beyond float32's range becomes inf, refused just below
        single = array.astype(np.float32)
    if not np.isfinite(single).all():
        at = int(np.flatnonzero(~np.isfinite(single))[0])
        raise DescendValueError(f"{name} holds NaN or infinite entries, or entries beyond float32's range (the first "
                                f"at {at}: {float(array.reshape(-1)[at])!r}); expected finite numbers")
    return single


def _check_shape(shape: Any) -> tuple[int, int]:
    if not isinstance(shape, (tuple, list)) or len(shape) != 2:
        raise DescendTypeError(f"shape must be a pair (n_rows, n_cols) of integers; got {shape!r}")
    return check_integer("shape[0]", shape[0], low=1), check_integer("shape[1]", shape[1], low=1)


class MatrixFactorization:
    """Z ≈ L Rᵀ with L (n_rows, rank), R (n_cols, rank), fitted to observed entries by lock-free SGD.

    Each step on an entry (u, v, z): e = z − L_u·R_v; L_u += lr_t (e R_v − l2 L_u); R_v += lr_t (e L_u − l2 R_v),
    with lr_t = lr / (1 + decay · epochs so far) under schedule="inverse-time". Workers and lock modes
    as in SGDClassifier. Learned: left_, right_ (float32), history_ (one dict per epoch; its loss is the
    mean squared training error of that epoch's updates).
    """

    def __init__(self, rank: int = 10, l2: float = 0.01, lr: float = 0.05, epochs: int = 20, workers: int = 1,
                 lock: str = "none", schedule: str = "inverse-time", decay: float = 0.1, seed: int | None = 0):
        self.rank = rank
        self.l2 = l2
        self.lr = lr
        self.epochs = epochs
        self.workers = workers
        self.lock = lock
        self.schedule = schedule
        self.decay = decay
        self.seed = seed

    def fit(self, rows: Any, cols: Any, values: Any, shape: tuple[int, int] | None = None) -> MatrixFactorization:
        """Learn the factors from entries Z[rows[k], cols[k]] = values[k]; `shape` defaults to the largest indices + 1.

        Every array the kernel reads is checked first: integer indices inside `shape`, finite values, and
        factors that fit in memory ((n_rows + n_cols) · rank float32 values).
        """
        rank = check_integer("rank", self.rank, low=1)
        l2 = check_real("l2", self.l2, low=0.0)
        lr = check_real("lr", self.lr, low=0.0, low_open=True)
        epochs = check_integer("epochs", self.epochs, low=1)
        workers = check_workers(self.workers)
        mode = lock_code(self.lock)
        decay = check_schedule(self.schedule, self.decay)
        seed = check_seed(self.seed)
        rows, cols = _indices("rows", rows), _indices("cols", cols)
        values = _values("values", values)
        if not (rows.shape == cols.shape == values.shape):
            raise ShapeError(f"rows, cols and values must have one entry each; got {rows.shape}, {cols.shape}, {values.shape}")
        if rows.size == 0:
            raise DescendValueError("no entries to fit: rows, cols and values are empty")
        if shape is None:
            shape, source = (int(rows.max()) + 1, int(cols.max()) + 1), "the largest indices in rows and cols + 1"
        else:
            shape, source = _check_shape(shape), "shape"
            _check_in_range("rows", rows, shape[0], "rows"), _check_in_range("cols", cols, shape[1], "columns")
        check_memory(f"MatrixFactorization(rank={rank}) on a {shape[0]} x {shape[1]} matrix ({source}): its factors, "
                     f"(n_rows + n_cols) · rank = {(shape[0] + shape[1]) * rank:,} float32 values,",
                     4 * (shape[0] + shape[1]) * rank, "Lower rank, or renumber rows and cols densely from 0.")
        rng = np.random.default_rng(seed)
        scale = 0.1 / np.sqrt(rank)  # small and random: zero factors would have zero gradients
        left = rng.normal(0.0, scale, (shape[0], rank)).astype(np.float32)
        right = rng.normal(0.0, scale, (shape[1], rank)).astype(np.float32)

        def one_pass(k: int, share: np.ndarray, first_update: int, state: LockState) -> float:
            return factorization_pass(rows, cols, values, share, left, right, lr, decay, rows.size, first_update,
                                      workers, l2, mode, state.mutex, state.condition, state.turn, state.active, k)

        self.history_ = train_epochs(rows.size, epochs, workers, seed, one_pass)
        self.left_, self.right_ = left, right
        return self

    def predict(self, rows: Any, cols: Any) -> np.ndarray:
        """L_u·R_v for each pair: rows, cols (K,) -> (K,) float32."""
        if not hasattr(self, "left_"):
            raise DescendValueError("this MatrixFactorization is not fitted yet; call fit(rows, cols, values) first")
        rows, cols = _indices("rows", rows), _indices("cols", cols)
        if rows.shape != cols.shape:
            raise ShapeError(f"rows and cols must have one entry each; got {rows.shape} and {cols.shape}")
        _check_in_range("rows", rows, self.left_.shape[0], "rows")
        _check_in_range("cols", cols, self.right_.shape[0], "columns")
        return np.einsum("kr,kr->k", self.left_[rows], self.right_[cols])

    def rmse(self, rows: Any, cols: Any, values: Any) -> float:
        """Root mean squared error of the predictions against `values` (K,)."""
        predictions, values = self.predict(rows, cols), _values("values", values)
        if values.shape != predictions.shape:
            raise ShapeError(f"values must have one entry per (row, col) pair, {predictions.shape}; got {values.shape}")
        errors = predictions - values
        return float(np.sqrt(np.mean(errors.astype(np.float64) ** 2)))

    def __repr__(self) -> str:
        return (f"MatrixFactorization(rank={self.rank}, l2={self.l2}, lr={self.lr}, epochs={self.epochs}, "
                f"workers={self.workers}, lock={self.lock!r})")

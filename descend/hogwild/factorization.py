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

from descend.checks import check_integer, check_real
from descend.errors import DescendTypeError, DescendValueError, ShapeError
from descend.hogwild.kernels import factorization_pass
from descend.hogwild.locks import LockState, lock_code
from descend.hogwild.workers import check_schedule, check_workers, train_epochs


def _indices(name: str, values: Any, size: int | None) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise DescendTypeError(f"{name} must be a 1-D array of integer indices; got shape {array.shape}, dtype {array.dtype}")
    if array.size and array.min() < 0:
        raise DescendValueError(f"{name} must be >= 0; got {int(array.min())}")
    if size is not None and array.size and array.max() >= size:
        raise DescendValueError(f"{name} holds {int(array.max())}, outside the model's {size} (0..{size - 1})")
    return array.astype(np.int64, copy=False)


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
        """Learn the factors from entries Z[rows[k], cols[k]] = values[k]; `shape` defaults to the largest indices + 1."""
        rank = check_integer("rank", self.rank, low=1)
        l2 = check_real("l2", self.l2, low=0.0)
        lr = check_real("lr", self.lr, low=0.0, low_open=True)
        epochs = check_integer("epochs", self.epochs, low=1)
        workers = check_workers(self.workers)
        mode = lock_code(self.lock)
        decay = check_schedule(self.schedule, self.decay)
        rows, cols = _indices("rows", rows, None), _indices("cols", cols, None)
        values = np.asarray(values, dtype=np.float32)
        if not (rows.shape == cols.shape == values.shape):
            raise ShapeError(f"rows, cols and values must have one entry each; got {rows.shape}, {cols.shape}, {values.shape}")
        if rows.size == 0:
            raise DescendValueError("no entries to fit: rows, cols and values are empty")
        if not np.isfinite(values).all():
            raise DescendValueError(f"values holds NaN or infinite entries (the first at {int(np.flatnonzero(~np.isfinite(values))[0])})")
        if shape is None:
            shape = (int(rows.max()) + 1, int(cols.max()) + 1)
        _indices("rows", rows, shape[0]), _indices("cols", cols, shape[1])
        rng = np.random.default_rng(self.seed)
        scale = 0.1 / np.sqrt(rank)  # small and random: zero factors would have zero gradients
        left = rng.normal(0.0, scale, (shape[0], rank)).astype(np.float32)
        right = rng.normal(0.0, scale, (shape[1], rank)).astype(np.float32)

        def one_pass(k: int, share: np.ndarray, first_update: int, state: LockState) -> float:
            return factorization_pass(rows, cols, values, share, left, right, lr, decay, rows.size, first_update,
                                      workers, l2, mode, state.mutex, state.condition, state.turn, state.active, k)

        self.history_ = train_epochs(rows.size, epochs, workers, self.seed, one_pass)
        self.left_, self.right_ = left, right
        return self

    def predict(self, rows: Any, cols: Any) -> np.ndarray:
        """L_u·R_v for each pair: rows, cols (K,) -> (K,) float32."""
        if not hasattr(self, "left_"):
            raise DescendValueError("this MatrixFactorization is not fitted yet; call fit(rows, cols, values) first")
        rows = _indices("rows", rows, self.left_.shape[0])
        cols = _indices("cols", cols, self.right_.shape[0])
        return np.einsum("kr,kr->k", self.left_[rows], self.right_[cols])

    def rmse(self, rows: Any, cols: Any, values: Any) -> float:
        """Root mean squared error of the predictions against `values` (K,)."""
        errors = self.predict(rows, cols) - np.asarray(values, dtype=np.float32)
        return float(np.sqrt(np.mean(errors.astype(np.float64) ** 2)))

    def __repr__(self) -> str:
        return (f"MatrixFactorization(rank={self.rank}, l2={self.l2}, lr={self.lr}, epochs={self.epochs}, "
                f"workers={self.workers}, lock={self.lock!r})")

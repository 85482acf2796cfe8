"""SGDClassifier: sparse linear classification trained by HOGWILD! on every core.

>>> from descend import data, hogwild
>>> X, y = data.make_sparse_classification(n_rows=2_000, n_features=500, nnz_per_row=10, seed=0)
>>> clf = hogwild.SGDClassifier(epochs=3, workers=2).fit(X[:1_500], y[:1_500])
>>> clf.coef_.shape, bool(clf.score(X[1_500:], y[1_500:]) > 0.6)
((500,), True)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from descend.checks import check_integer, check_real
from descend.errors import DescendTypeError, DescendValueError, ShapeError
from descend.hogwild.kernels import LOSSES, sparse_linear_pass
from descend.hogwild.locks import LockState, lock_code
from descend.hogwild.workers import check_schedule, check_workers, train_epochs


def as_csr(X: Any, argument: str = "X") -> Any:
    """X as a float32 CSR matrix with int32 indices and int64 row pointers (the kernels' one signature).

    CSC, COO, LIL, DOK, BSR and DIA matrices (or arrays) are converted; dense arrays too. NaN or
    infinite values are refused.
    """
    import scipy.sparse

    if scipy.sparse.issparse(X):
        matrix = X.tocsr()
    else:
        array = np.asarray(X)
        if array.ndim != 2 or array.dtype.kind not in "biuf":
            raise DescendTypeError(
                f"{argument} must be a 2-D numeric array or a scipy sparse matrix (CSR, CSC, COO, LIL, DOK, BSR, DIA); "
                f"got {type(X).__name__} with shape {array.shape} and dtype {array.dtype}"
            )
        matrix = scipy.sparse.csr_matrix(array)
    if matrix.dtype.kind not in "biuf":
        raise DescendTypeError(f"{argument} must hold real numbers; got dtype {matrix.dtype}")
    matrix = scipy.sparse.csr_matrix(
        (matrix.data.astype(np.float32, copy=False), matrix.indices.astype(np.int32, copy=False),
         matrix.indptr.astype(np.int64, copy=False)),
        shape=matrix.shape,
    )
    if not matrix.has_canonical_format:
        matrix.sum_duplicates()
    if not np.isfinite(matrix.data).all():
        bad = np.flatnonzero(~np.isfinite(matrix.data))[0]
        row = int(np.searchsorted(matrix.indptr, bad, side="right") - 1)
        raise DescendValueError(
            f"{argument} holds NaN or infinite values (the first in row {row}); impute or drop them before fitting"
        )
    return matrix


class SGDClassifier(ClassifierMixin, BaseEstimator):
    """A linear classifier P(y = 1 | x) = σ(w·x + b) (or a hinge / squared-loss one), trained lock-free.

    `workers` threads run SGD at once on one shared weight vector with no locks (lock="none",
    HOGWILD!), or taking one mutex per update (lock="mutex") or strict turns (lock="round-robin"),
    the two schemes the paper compares against. Each epoch shuffles the rows and gives each worker a
    contiguous share. The rate is lr, or lr / (1 + decay · epochs so far) with schedule="inverse-time".
    alpha (L2) and l1 are spread over the rows that touch each weight, so every update stays sparse.
    The intercept is shared like the weights, the one coordinate every update touches; its steps are
    `intercept_scale` times the weights' (scikit-learn's 0.01 for sparse data): stepped on every row at
    the weights' rate, its value would be the noise of its last few hundred steps.

    Learned: coef_ (n_features,) float32, intercept_ float, classes_ (2,), history_ (one dict per
    epoch: loss, seconds, updates_per_second, spans of the workers' threads). With workers=1 this is
    plain serial SGD.
    """

    def __init__(self, loss: str = "log", lr: float = 0.5, schedule: str = "inverse-time", decay: float = 1.0,
                 alpha: float = 0.0, l1: float = 0.0, epochs: int = 5, workers: int = 1, lock: str = "none",
                 fit_intercept: bool = True, intercept_scale: float = 0.01, seed: int | None = 0):
        self.loss = loss
        self.lr = lr
        self.schedule = schedule
        self.decay = decay
        self.alpha = alpha
        self.l1 = l1
        self.epochs = epochs
        self.workers = workers
        self.lock = lock
        self.fit_intercept = fit_intercept
        self.intercept_scale = intercept_scale
        self.seed = seed

    def fit(self, X: Any, y: Any) -> SGDClassifier:
        """Learn coef_ and intercept_ from X (n_rows, n_features), sparse or dense, and y (n_rows,) of two classes."""
        if self.loss not in LOSSES:
            raise DescendValueError(f"loss must be one of {', '.join(map(repr, LOSSES))}; got {self.loss!r}")
        lr = check_real("lr", self.lr, low=0.0, low_open=True)
        decay = check_schedule(self.schedule, self.decay)
        alpha, l1 = check_real("alpha", self.alpha, low=0.0), check_real("l1", self.l1, low=0.0)
        epochs = check_integer("epochs", self.epochs, low=1)
        workers = check_workers(self.workers)
        mode = lock_code(self.lock)
        intercept_scale = check_real("intercept_scale", self.intercept_scale, low=0.0) if self.fit_intercept else 0.0
        X = as_csr(X)
        labels = self._signed_labels(y, X.shape[0])
        n_rows, n_features = X.shape
        touches = np.bincount(X.indices, minlength=n_features)
        touch_scale = (n_rows / np.maximum(touches, 1)).astype(np.float32)
        weights = np.zeros(n_features, dtype=np.float32)
        intercept = np.zeros(1, dtype=np.float64)
        loss_kind = LOSSES.index(self.loss)

        def one_pass(k: int, share: np.ndarray, first_update: int, state: LockState) -> float:
            return sparse_linear_pass(
                X.indptr, X.indices, X.data, labels, share, weights, intercept, touch_scale,
                loss_kind, lr, decay, n_rows, first_update, workers, alpha, l1, intercept_scale,
                mode, state.mutex, state.condition, state.turn, state.active, k)

        self.history_ = train_epochs(n_rows, epochs, workers, self.seed, one_pass)
        self.coef_ = weights
        self.intercept_ = float(intercept[0])
        self.n_features_in_ = n_features
        return self

    def _signed_labels(self, y: Any, n_rows: int) -> np.ndarray:
        """y as ±1 float64 (classes_[1] -> +1), after checking it has one label per row and two classes."""
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != n_rows:
            raise ShapeError(f"y must be 1-D with one label per row of X, ({n_rows},); got shape {y.shape}")
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            raise DescendValueError("y holds NaN or infinite labels; expected two classes such as 0 and 1")
        self.classes_ = np.unique(y)
        if len(self.classes_) != 2:
            shown = self.classes_[:10].tolist()
            raise DescendValueError(
                f"SGDClassifier(loss={self.loss!r}) is a binary classifier: y must hold exactly two classes; "
                f"got {len(self.classes_)}: {shown}{' …' if len(self.classes_) > 10 else ''}"
            )
        return np.where(y == self.classes_[1], 1.0, -1.0)

    def decision_function(self, X: Any) -> np.ndarray:
        """The score w·x + b of every row: X (n, n_features) -> (n,); positive means classes_[1]."""
        X = self._checked(X)
        return X @ self.coef_.astype(np.float64) + self.intercept_

    def predict(self, X: Any) -> np.ndarray:
        """The predicted class of every row: (n, n_features) -> (n,) of classes_."""
        scores = self.decision_function(X)
        return self.classes_[(scores > 0).astype(int)]

    def predict_proba(self, X: Any) -> np.ndarray:
        """P(class | x) for loss="log": (n, n_features) -> (n, 2), columns in the order of classes_."""
        if self.loss != "log":
            raise DescendValueError(f"predict_proba needs loss='log'; this model was trained with loss={self.loss!r}")
        positive = 0.5 * np.tanh(0.5 * self.decision_function(X)) + 0.5
        return np.stack([1.0 - positive, positive], axis=1)

    def _checked(self, X: Any) -> Any:
        if not hasattr(self, "coef_"):
            raise DescendValueError("this SGDClassifier is not fitted yet; call fit(X, y) first")
        X = as_csr(X)
        if X.shape[1] != self.n_features_in_:
            raise ShapeError(f"X has {X.shape[1]} features, but the model expects {self.n_features_in_}")
        return X

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

from descend.checks import as_array, check_integer, check_real, check_seed
from descend.errors import DescendTypeError, DescendValueError, ShapeError
from descend.hogwild.kernels import LOSSES, sparse_linear_pass
from descend.hogwild.locks import LockState, lock_code
from descend.hogwild.workers import check_schedule, check_workers, train_epochs
from descend.memory import check_memory


#: the kernels index the weights with int32 column indices
MAX_FEATURES = int(np.iinfo(np.int32).max)


def as_csr(X: Any, argument: str = "X") -> Any:
    """X as a checked float32 CSR matrix in canonical form (sorted column indices, no duplicates).

    CSC, COO, LIL, DOK, BSR and DIA matrices (or arrays) are converted; dense 2-D arrays too. The
    structure is checked before anything reads through it (scipy's own conversions and the compiled
    kernels trust it): row pointers of length n_rows + 1 that start at 0, never decrease and end at
    nnz; column indices in [0, n_features); finite values within float32's range. X itself is never
    written: the result shares X's arrays only when they already have these dtypes and this form.

    >>> import scipy.sparse
    >>> X = scipy.sparse.csr_matrix(([1.0, 2.0, 3.0], [2, 0, 2], [0, 3]), shape=(1, 3))  # column 2 twice
    >>> as_csr(X).toarray().tolist(), X.indices.tolist()
    ([[2.0, 0.0, 4.0]], [2, 0, 2])
    """
    import scipy.sparse

    if scipy.sparse.issparse(X):
        matrix = _checked_sparse(X, argument)
    else:
        array = as_array(X, argument, "a 2-D numeric array or a scipy sparse matrix")
        if array.ndim != 2 or array.dtype.kind not in "biuf":
            raise DescendTypeError(
                f"{argument} must be a 2-D numeric array or a scipy sparse matrix (CSR, CSC, COO, LIL, DOK, BSR, DIA); "
                f"got {type(X).__name__} with shape {array.shape} and dtype {array.dtype}"
            )
        _check_width(argument, array.shape[1])
        matrix = scipy.sparse.csr_matrix(array)  # new arrays
    with np.errstate(over="ignore"):  # a value beyond float32's range becomes inf, refused just below
        data = matrix.data.astype(np.float32, copy=False)
    if not np.isfinite(data).all():
        bad = int(np.flatnonzero(~np.isfinite(data))[0])
        row = int(np.searchsorted(matrix.indptr, bad, side="right") - 1)
        value = float(matrix.data[bad])
        what = ("NaN" if np.isnan(value) else "an infinite value" if np.isinf(value)
                else f"{value:g}, beyond float32's range (±3.4e38),")
        raise DescendValueError(
            f"{argument} holds {what} at row {row}; expected finite numbers within float32's range: "
            f"impute, drop or scale them before fitting"
        )
    matrix = scipy.sparse.csr_matrix(
        (data, matrix.indices.astype(np.int32, copy=False), matrix.indptr), shape=matrix.shape, copy=False)
    if not matrix.has_canonical_format:  # summing duplicates rewrites the arrays: work on copies, never on X's
        matrix = scipy.sparse.csr_matrix((matrix.data.copy(), matrix.indices.copy(), matrix.indptr.copy()),
                                         shape=matrix.shape)
        matrix.sum_duplicates()
    return matrix


def _checked_sparse(X: Any, argument: str) -> Any:
    """A scipy sparse matrix as CSR, after checking the structure that scipy's conversions and the kernels read."""
    if X.ndim != 2:
        raise ShapeError(f"{argument} must be a 2-D sparse matrix (n_rows, n_features); got shape {X.shape}")
    if X.dtype.kind not in "biuf":
        raise DescendTypeError(f"{argument} must hold real numbers; got dtype {X.dtype}")
    n_rows, n_features = X.shape
    _check_width(argument, n_features)
    if X.format == "csr":
        _check_compressed(argument, X.indptr, X.indices, X.data, n_rows, n_features, "row", "column", "n_features")
        return X
    if X.format == "csc":
        _check_compressed(argument, X.indptr, X.indices, X.data, n_features, n_rows, "column", "row", "n_rows")
        return X.tocsr()
    if X.format == "bsr":
        height, width = X.blocksize
        _check_compressed(argument, X.indptr, X.indices, X.data, n_rows // height, n_features // width,
                          "block row", "block column", f"n_features / {width}")
        return X.tocsr()
    coo = X.tocoo()  # LIL, DOK and DIA convert in Python and NumPy; COO is itself
    for name, coordinates, bound, bound_name in (("row", coo.row, n_rows, "n_rows"),
                                                 ("column", coo.col, n_features, "n_features")):
        _check_indices(argument, name, coordinates, len(coo.data), bound, bound_name,
                       lambda entry: f"entry {entry}")
    return coo.tocsr()


def _check_width(argument: str, n_features: int) -> None:
    if n_features > MAX_FEATURES:
        raise DescendValueError(f"{argument} has {n_features} features (columns); expected at most {MAX_FEATURES}, "
                                f"the most the kernels' int32 column indices reach")


def _check_compressed(argument: str, indptr: Any, indices: Any, data: Any, n_major: int, n_minor: int,
                      major: str, minor: str, bound_name: str) -> None:
    """Check a compressed sparse structure (CSR: major = row, minor = column) in O(nnz) vectorised steps."""
    for name, array in (("indptr", indptr), ("indices", indices)):
        if not isinstance(array, np.ndarray) or array.ndim != 1 or array.dtype.kind not in "iu":
            raise DescendTypeError(f"{argument}.{name} must be a 1-D integer array; got {type(array).__name__} "
                                   f"of shape {np.shape(array)}, dtype {getattr(array, 'dtype', '?')}")
    if len(indptr) != n_major + 1:
        raise ShapeError(f"{argument}.indptr has length {len(indptr)}; expected n_{major.split()[-1]}s + 1 = "
                         f"{n_major + 1}, one pointer per {major} and one past the last")
    if len(data) != len(indices):
        raise ShapeError(f"{argument} has {len(data)} values but {len(indices)} indices; expected one index per value")
    if indptr[0] != 0 or indptr[-1] != len(indices):
        raise DescendValueError(f"{argument}.indptr runs from {indptr[0]} to {indptr[-1]}; expected it to start at 0 "
                                f"and end at nnz = {len(indices)}, the number of stored values")
    steps = np.diff(indptr)
    if steps.size and steps.min() < 0:
        at = int(np.flatnonzero(steps < 0)[0])
        raise DescendValueError(f"{argument}.indptr decreases at {major} {at} (from {indptr[at]} to {indptr[at + 1]}); "
                                f"expected pointers that never decrease")
    _check_indices(argument, minor, indices, len(indices), n_minor, bound_name,
                   lambda entry: f"{major} {int(np.searchsorted(indptr, entry, side='right')) - 1}")


def _check_indices(argument: str, name: str, indices: Any, n_values: int, bound: int, bound_name: str,
                   where: Any) -> None:
    """Check 1-D integer indices, one per stored value, all in [0, bound); `where(entry)` says where a bad one sits."""
    if not isinstance(indices, np.ndarray) or indices.ndim != 1 or indices.dtype.kind not in "iu":
        raise DescendTypeError(f"{argument}'s {name} indices must be a 1-D integer array; got "
                               f"{type(indices).__name__} of dtype {getattr(indices, 'dtype', '?')}")
    if len(indices) != n_values:
        raise ShapeError(f"{argument} has {n_values} values but {len(indices)} {name} indices; expected one per value")
    if indices.size and (indices.min() < 0 or indices.max() >= bound):
        entry = int(np.flatnonzero((indices < 0) | (indices >= bound))[0])
        raise DescendValueError(f"{argument} has a {name} index {int(indices[entry])} at {where(entry)}; "
                                f"expected indices from 0 to below {bound_name}={bound}")


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
        seed = check_seed(self.seed)
        X = as_csr(X)  # every array the kernel reads is checked here, once
        labels = self._signed_labels(y, X.shape[0])
        n_rows, n_features = X.shape
        # the weights, their scales and the feature counts: 16 bytes a feature
        check_memory(f"X's {n_features} features (the weights and their scales)", 16 * n_features,
                     "Hash the features into fewer columns (e.g. sklearn's FeatureHasher).")
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

        self.history_ = train_epochs(n_rows, epochs, workers, seed, one_pass)
        self.coef_ = weights
        self.intercept_ = float(intercept[0])
        self.n_features_in_ = n_features
        return self

    def _signed_labels(self, y: Any, n_rows: int) -> np.ndarray:
        """y as ±1 float64 (classes_[1] -> +1), after checking it has one label per row and two classes."""
        y = as_array(y, "y", "a 1-D array of labels")
        if y.ndim != 1 or len(y) != n_rows:
            raise ShapeError(f"y must be 1-D with one label per row of X, ({n_rows},); got shape {y.shape}")
        if y.dtype.kind not in "biufUSO":
            raise DescendTypeError(f"y must hold class labels (numbers or strings); got dtype {y.dtype}")
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            raise DescendValueError("y holds NaN or infinite labels; expected two classes such as 0 and 1")
        try:
            self.classes_ = np.unique(y)
        except TypeError as error:  # objects that do not compare, e.g. numbers mixed with strings
            raise DescendTypeError(f"y must hold labels of one kind that can be sorted; got {error}") from None
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

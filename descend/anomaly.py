"""Anomaly detection by reconstruction: what an autoencoder trained on normal data cannot rebuild is suspect.

The score of a row is its mean squared reconstruction error; the errors per
feature say which features made it anomalous. `AnomalyDetector` follows
scikit-learn's outlier-detector API: `fit` on normal data sets the
threshold, `predict` answers +1 (normal) or −1 (anomaly), `score_samples`
is higher for more normal rows, and `decision_function` is negative for
anomalies.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from descend.checks import check_integer, check_real
from descend.data import Dataset, as_dataset
from descend.errors import DescendTypeError, DescendValueError, ShapeError
from descend.nn.module import Module, check_finite
from descend.tensor import array_of
from descend.training.evaluate import predict


def _rows(model: Module, x: Any, argument: str = "x") -> np.ndarray:
    """x as checked rows for the model: right feature count, no NaN; Dataset, array or (x,) alike."""
    array = as_dataset(x if isinstance(x, Dataset) else (array_of(x),), argument).x
    expected = _expected_shape(model)
    if expected is not None and array.shape[1:] != expected:
        raise ShapeError(
            f"{argument} has rows of shape {array.shape[1:]}, but the model was built for rows of shape {expected} "
            f"({'x'.join(map(str, expected))} = {int(np.prod(expected))} features)"
        )
    check_finite(array, argument)
    return array


def _expected_shape(model: Module) -> tuple[int, ...] | None:
    sizes = getattr(model, "sizes", None)
    return (sizes[0],) if sizes else None


def feature_errors(model: Module, x: Any, batch_size: int = 1024) -> np.ndarray:
    """Squared reconstruction error of every feature of every row: x (N, ...) -> (N, ...), same shape as x."""
    if not getattr(model, "target_is_input", False):
        raise DescendTypeError(f"reconstruction errors need an autoencoder; got {type(model).__name__}")
    rows = _rows(model, x)
    reconstruction = predict(model, rows, batch_size=batch_size)
    return (reconstruction - rows.astype(reconstruction.dtype)) ** 2


def reconstruction_error(model: Module, x: Any, batch_size: int = 1024) -> np.ndarray:
    """One anomaly score per row, higher = more anomalous: the mean squared reconstruction error, (N, ...) -> (N,)."""
    errors = feature_errors(model, x, batch_size)
    return errors.reshape(len(errors), -1).mean(axis=1)


def threshold_for(scores: np.ndarray, contamination: float) -> float:
    """The score above which a `contamination` fraction of these (normal) scores lie: their (1 − c) quantile."""
    contamination = _check_contamination(contamination)
    return float(np.quantile(np.asarray(scores, dtype=np.float64), 1.0 - contamination))


def _check_contamination(contamination: Any) -> float:
    return check_real("contamination", contamination, low=0.0, high=0.5, low_open=True)


class AnomalyDetector:
    """Flags rows an autoencoder reconstructs badly, scikit-learn's outlier-detector style.

    `fit(normal)` scores data taken as normal and sets `threshold_` so that a
    `contamination` fraction of it would be flagged (or, with
    `threshold_quantile`, at that quantile of the normal scores). The
    autoencoder must be trained already (`dc.fit(model, MSELoss(), ...)`).

    Learned: threshold_, offset_ (= −threshold_), n_features_in_.
    """

    def __init__(self, model: Module, contamination: float = 0.01, threshold_quantile: float | None = None,
                 batch_size: int = 1024):
        if not getattr(model, "target_is_input", False):
            raise DescendTypeError(f"AnomalyDetector needs an autoencoder (a model that reconstructs x); got {type(model).__name__}")
        self.model = model
        self.contamination = _check_contamination(contamination)
        self.threshold_quantile = (None if threshold_quantile is None else
                                   check_real("threshold_quantile", threshold_quantile, low=0.0, high=1.0, low_open=True))
        self.batch_size = check_integer("batch_size", batch_size, low=1)

    def fit(self, x: Any, y: Any = None) -> AnomalyDetector:
        """Set the threshold from data taken as normal; returns self."""
        rows = _rows(self.model, x)
        scores = reconstruction_error(self.model, rows, self.batch_size)
        quantile = self.threshold_quantile if self.threshold_quantile is not None else 1.0 - self.contamination
        self.threshold_ = float(np.quantile(scores.astype(np.float64), quantile))
        self.offset_ = -self.threshold_
        self.n_features_in_ = int(np.prod(rows.shape[1:]))
        self.feature_shape_ = rows.shape[1:]
        return self

    def _check_fitted(self, x: Any) -> np.ndarray:
        if not hasattr(self, "threshold_"):
            raise DescendValueError("this AnomalyDetector is not fitted yet: call fit(normal_data) first")
        rows = _rows(self.model, x)
        if rows.shape[1:] != self.feature_shape_:
            raise ShapeError(f"x has rows of shape {rows.shape[1:]}, but the detector was fitted on {self.feature_shape_}")
        return rows

    def score_samples(self, x: Any) -> np.ndarray:
        """Minus the reconstruction error: higher = more normal (scikit-learn's convention). (N, ...) -> (N,)."""
        return -reconstruction_error(self.model, self._check_fitted(x), self.batch_size)

    def decision_function(self, x: Any) -> np.ndarray:
        """score_samples − offset_: negative for anomalies. (N, ...) -> (N,)."""
        return self.score_samples(x) - self.offset_

    def predict(self, x: Any) -> np.ndarray:
        """+1 for normal rows, −1 for anomalies: (N, ...) -> (N,) int."""
        return np.where(self.decision_function(x) < 0, -1, 1)

    def explain(self, x: Any, top: int = 3) -> list[list[tuple[int, float]]]:
        """For each row, the `top` features with the largest reconstruction errors: [(feature index, error), ...]."""
        errors = feature_errors(self.model, self._check_fitted(x), self.batch_size).reshape(-1, self.n_features_in_)
        top = min(check_integer("top", top, low=1), self.n_features_in_)
        order = np.argsort(-errors, axis=1)[:, :top]
        return [[(int(j), float(row[j])) for j in columns] for row, columns in zip(errors, order)]

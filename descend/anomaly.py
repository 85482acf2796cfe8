"""Anomaly detection by reconstruction: what an autoencoder trained on normal data cannot rebuild is suspect.

The score of a row is its mean squared reconstruction error; the errors per
feature say which features made it anomalous. Any model whose output has
its input's shape will do: descend's autoencoders, or a Module of your own
(a Conv1d / ConvTranspose1d network over windows of a time series).
`AnomalyDetector` follows scikit-learn's outlier-detector API: `fit` on
normal data (training the model on it first, with x as its own target, when
asked for epochs) sets the threshold, `predict` answers +1 (normal) or −1
(anomaly), `score_samples` is higher for more normal rows, and
`decision_function` is negative for anomalies.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from descend.checks import check_integer, check_real
from descend.data import Dataset, as_dataset
from descend.errors import DescendTypeError, DescendValueError, ShapeError
from descend.nn.losses import MSELoss
from descend.nn.module import Module, check_finite
from descend.optim import Adam, Optimizer
from descend.tensor import array_of
from descend.training.evaluate import predict
from descend.training.fit import fit as train
from descend.training.loop import History


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


def _check_model(model: Any, caller: str) -> None:
    if not isinstance(model, Module):
        raise DescendTypeError(f"{caller} needs a descend Module whose output has its input's shape (an autoencoder); "
                               f"got {type(model).__name__}")


def _check_reconstruction(model: Module, rows: np.ndarray, reconstruction: np.ndarray) -> None:
    """Refuse a model whose output is not of its input's shape: there is nothing to compare the input with."""
    if reconstruction.shape != rows.shape:
        raise ShapeError(
            f"{type(model).__name__} turns rows of shape {rows.shape[1:]} into outputs of shape "
            f"{reconstruction.shape[1:]}; a reconstruction error compares each output with its input, so the model "
            "must give back its input's shape"
        )


def feature_errors(model: Module, x: Any, batch_size: int = 1024) -> np.ndarray:
    """Squared reconstruction error of every feature of every row: x (N, ...) -> (N, ...), same shape as x.

    >>> import descend as dc
    >>> feature_errors(dc.nn.Autoencoder([4, 2], rng=0), np.zeros((3, 4))).shape
    (3, 4)
    """
    _check_model(model, "feature_errors")
    rows = _rows(model, x)
    reconstruction = predict(model, rows, batch_size=batch_size)
    _check_reconstruction(model, rows, reconstruction)
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
    """Flags rows a model reconstructs badly, scikit-learn's outlier-detector style.

    The model is any Module whose output has its input's shape: an
    autoencoder of descend's, or one of your own. `fit(normal)` scores data
    taken as normal and sets `threshold_` so that a `contamination` fraction
    of it would be flagged (or, with `threshold_quantile`, at that quantile
    of the normal scores). `fit(normal, epochs=50)` first trains the model to
    reconstruct that data (mean squared error, x as its own target). Shapes:
    x (N, ...) -> scores and predictions (N,).

    Learned: threshold_, offset_ (= −threshold_), n_features_in_, feature_shape_; history_ when fit trained.

    >>> import descend as dc
    >>> rows = np.random.default_rng(0).normal(size=(64, 6))
    >>> model = dc.nn.Autoencoder([6, 3], output="linear", rng=0)
    >>> detector = AnomalyDetector(model).fit(rows, epochs=2, progress=False)
    >>> detector.predict(rows).shape, len(detector.history_["loss"])
    ((64,), 2)
    """

    def __init__(self, model: Module, contamination: float = 0.01, threshold_quantile: float | None = None,
                 batch_size: int = 1024):
        _check_model(model, "AnomalyDetector")
        self.model = model
        self.contamination = _check_contamination(contamination)
        self.threshold_quantile = (None if threshold_quantile is None else
                                   check_real("threshold_quantile", threshold_quantile, low=0.0, high=1.0, low_open=True))
        self.batch_size = check_integer("batch_size", batch_size, low=1)

    def fit(self, x: Any, y: Any = None, epochs: int = 0, optimizer: Optimizer | None = None,
            **fit_options: Any) -> AnomalyDetector:
        """Set the threshold from data taken as normal, x (N, ...); returns self. y is ignored (scikit-learn's API).

        With epochs > 0 the model is first trained to reconstruct x, x being
        its own target: dc.fit(model, MSELoss(), optimizer, (x, x), epochs,
        **fit_options), with Adam(lr=1e-3) when no optimizer is given;
        fit_options go to dc.fit (batch_size, seed, progress, callbacks, ...).
        A model whose output shape differs from x's is refused before it trains.
        """
        rows = _rows(self.model, x)
        epochs = check_integer("epochs", epochs, low=0)
        if epochs:
            _check_reconstruction(self.model, rows[:1], predict(self.model, rows[:1]))
            optimizer = Adam(self.model.parameters(), lr=1e-3) if optimizer is None else optimizer
            self.history_: History = train(self.model, MSELoss(), optimizer, (rows, rows), epochs=epochs,
                                           **fit_options)
        elif fit_options or optimizer is not None:
            given = sorted(fit_options) + (["optimizer"] if optimizer is not None else [])
            raise DescendValueError(f"fit: {', '.join(given)} set how the model trains, and epochs=0 trains nothing; "
                                    "give epochs too, or leave them out")
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

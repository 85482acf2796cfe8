"""Metrics that fit and evaluate report beside the loss: accuracy and top-k accuracy, whatever the loss class.

A metric scores a minibatch's outputs against its targets as a sum over rows
(a row of several predictions, a sequence's characters, counts the mean of
its own), so every engine adds the sums of its minibatches, partitions and
workers and divides once by the rows seen. Metrics are named by strings
("accuracy", "top5_accuracy") so a HOGWILD! worker or a Spark executor
rebuilds the same ones from the names.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from descend.checks import check_integer
from descend.errors import DescendTypeError, DescendValueError, ShapeError
from descend.nn.losses import CLASS_LABEL_LOSSES, BCEWithLogitsLoss
from descend.nn.module import Module

_TOP_K = re.compile(r"top(\d{1,4})_accuracy")


class Metric:
    """Base of the metrics: `name` is how records and workers call it; `score` sums it over a minibatch's rows."""

    name: str = ""

    def score(self, output: np.ndarray, target: np.ndarray) -> float:
        """The metric summed over the rows of `output` (N, ...) against `target` (N, ...)."""
        raise NotImplementedError(f"{type(self).__name__} must define score()")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class Accuracy(Metric):
    """The fraction of predictions that are right.

    With integer labels (N,) or (N, T) beside outputs (N, C) or (N, T, C),
    a prediction is right when its largest output is the label; with
    targets of the output's own shape (binary labels beside one logit each)
    when the logit's sign agrees with the label (> 0 for 1).

    >>> Accuracy().score(np.array([[2.0, 1.0], [0.0, 3.0]]), np.array([0, 0]))
    1.0
    """

    name = "accuracy"

    def score(self, output: np.ndarray, target: np.ndarray) -> float:
        if target.shape == output.shape:
            right = (output > 0) == (target > 0.5)
        else:
            _check_labels(self, output, target)
            right = output.argmax(axis=-1) == target
        return _row_sum(right)


class TopKAccuracy(Metric):
    """The fraction of labels among the `k` largest outputs: outputs (N, C) or (N, T, C), integer labels (N,) or (N, T).

    A label counts when fewer than `k` classes score strictly higher, so ties go in its favour.

    >>> TopKAccuracy(2).score(np.array([[3.0, 2.0, 1.0], [3.0, 2.0, 1.0]]), np.array([1, 2]))
    1.0
    """

    def __init__(self, k: int):
        self.k = check_integer("k", k, low=1)
        self.name = f"top{self.k}_accuracy"

    def score(self, output: np.ndarray, target: np.ndarray) -> float:
        _check_labels(self, output, target)
        if self.k > output.shape[-1]:
            raise DescendValueError(f"{self.name}: k={self.k} but the outputs have only {output.shape[-1]} classes")
        label_score = np.take_along_axis(output, target[..., None].astype(np.intp), axis=-1)
        return _row_sum((output > label_score).sum(axis=-1) < self.k)


def _check_labels(metric: Metric, output: np.ndarray, target: np.ndarray) -> None:
    if output.ndim < 2 or output.shape[:-1] != target.shape or target.dtype.kind not in "iu":
        raise ShapeError(
            f"{metric.name} compares outputs (N, ..., C) with integer labels (N, ...); got outputs of shape "
            f"{output.shape} and targets of shape {target.shape} and dtype {target.dtype}"
        )
    if target.size and (target.min() < 0 or target.max() >= output.shape[-1]):
        raise DescendValueError(f"{metric.name}: labels must be in [0, {output.shape[-1] - 1}] for "
                                f"{output.shape[-1]} classes; got labels from {target.min()} to {target.max()}")


def _row_sum(right: np.ndarray) -> float:
    """The rows' sum of `right` (N, ...), each row counting the mean of its own predictions."""
    return float(right.mean(axis=tuple(range(1, right.ndim))).sum()) if right.ndim > 1 else float(right.sum())


def metric(spec: Any) -> Metric:
    """A Metric from its name ("accuracy", "top5_accuracy") or a Metric itself.

    >>> metric("top3_accuracy").k
    3
    """
    if isinstance(spec, Metric):
        return spec
    if not isinstance(spec, str):
        raise DescendTypeError(f"a metric is a name such as 'accuracy' or 'top5_accuracy', or a Metric; got "
                               f"{type(spec).__name__} {spec!r:.80}")
    if spec == Accuracy.name:
        return Accuracy()
    match = _TOP_K.fullmatch(spec)
    if match:
        return TopKAccuracy(int(match.group(1)))
    raise DescendValueError(f"unknown metric {spec!r:.80}; descend knows 'accuracy' and 'topK_accuracy' "
                            "(e.g. 'top5_accuracy')")


def resolve_metrics(metrics: Sequence[Any] | None, loss_fn: Module) -> tuple[Metric, ...]:
    """The metrics a run reports: those named in `metrics`, or for None accuracy with a classification loss.

    >>> from descend import nn
    >>> resolve_metrics(None, nn.CrossEntropyLoss()), resolve_metrics(None, nn.MSELoss())
    ((Accuracy('accuracy'),), ())
    >>> resolve_metrics(["accuracy", "top5_accuracy"], nn.MSELoss())
    (Accuracy('accuracy'), TopKAccuracy('top5_accuracy'))
    """
    if metrics is None:
        return (Accuracy(),) if isinstance(loss_fn, (*CLASS_LABEL_LOSSES, BCEWithLogitsLoss)) else ()
    if isinstance(metrics, (str, Metric)) or not isinstance(metrics, Sequence):
        raise DescendTypeError(f"metrics must be a list of metric names or Metrics, e.g. ['accuracy']; got "
                               f"{type(metrics).__name__} {metrics!r:.80}")
    resolved = tuple(metric(spec) for spec in metrics)
    names = [m.name for m in resolved]
    doubled = sorted({name for name in names if names.count(name) > 1})
    if doubled:
        raise DescendValueError(f"metrics names {', '.join(doubled)} more than once; give each metric once")
    return resolved


def score_batch(output: np.ndarray, target: np.ndarray, metrics: Sequence[Metric]) -> dict[str, float] | None:
    """Each metric's sum over the minibatch's rows, by name; None when the run reports no metric."""
    return {m.name: m.score(output, target) for m in metrics} if metrics else None


def metric_names(metrics: Sequence[Metric], engine: str) -> list[str]:
    """The names that rebuild `metrics` in another process (a HOGWILD! worker, a Spark executor).

    A Metric of your own cannot travel by name: it is refused with the fix.
    """
    for m in metrics:
        try:
            portable = type(metric(m.name)) is type(m)
        except (DescendTypeError, DescendValueError):
            portable = False
        if not portable:
            raise DescendValueError(f"engine={engine!r} rebuilds the metrics by name in its workers, and {m!r} is a "
                                    "Metric of your own: train with engine='local', or evaluate it afterwards")
    return [m.name for m in metrics]

"""Side by side: one problem trained with each (workers, lock) configuration, for the CLI, the benchmark and the course.

Throughput is the median epoch's updates per second (the estimators compile their kernels before
the first epoch's clock starts). Speed-up is against one lock-free worker, which is plain serial SGD.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from descend.hogwild.factorization import MatrixFactorization
from descend.hogwild.linear import SGDClassifier
from descend.hogwild.locks import lock_code
from descend.hogwild.workers import check_workers


@dataclass
class Run:
    """One configuration's outcome. final_loss: the training objective after the last epoch, on all of the data;
    quality: test accuracy (classification) or test RMSE (ratings)."""

    workers: int
    lock: str
    updates_per_second: float
    speedup: float
    final_loss: float
    quality: float
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def configurations(workers: Sequence[int], locks: Sequence[str]) -> list[tuple[int, str]]:
    """The (workers, lock) pairs a comparison runs, in order, the serial lock-free baseline first when not asked for."""
    for lock in locks:
        lock_code(lock)
    pairs = [(check_workers(count), lock) for lock in locks for count in workers]
    if (1, "none") not in pairs:  # the serial baseline every speed-up is measured against
        pairs.insert(0, (1, "none"))
    return pairs


def _throughput(history: list[dict[str, Any]]) -> tuple[float, float]:
    """The median epoch's updates per second (a moment of the machine's other work spoils one epoch, not the
    figure), and the seconds of all epochs."""
    return float(np.median([record["updates_per_second"] for record in history])), sum(r["seconds"] for r in history)


def compare_sparse(train: tuple[Any, np.ndarray], test: tuple[Any, np.ndarray], workers: Sequence[int],
                   locks: Sequence[str], on_run: Callable[[Run], None] | None = None, **settings: Any) -> list[Run]:
    """SGDClassifier(**settings) on train (X CSR, y) for each configuration; test accuracy as quality.

    `on_run(run)` is called as each configuration finishes (a progress bar, say).
    """
    X, y = train
    runs, baseline = [], None
    for count, lock in configurations(workers, locks):
        model = SGDClassifier(workers=count, lock=lock, **settings).fit(X, y)
        throughput, seconds = _throughput(model.history_)
        baseline = baseline or throughput
        runs.append(Run(count, lock, throughput, throughput / baseline, training_loss(model, X, y),
                        float(model.score(*test)), seconds))
        if on_run is not None:
            on_run(runs[-1])
    return runs


def training_loss(model: SGDClassifier, X: Any, y: np.ndarray) -> float:
    """The mean loss of the fitted model over (X, y) (its objective without the penalty)."""
    signed = np.where(np.asarray(y) == model.classes_[1], 1.0, -1.0)
    scores = model.decision_function(X)
    if model.loss == "log":
        return float(np.mean(np.logaddexp(0.0, -signed * scores)))
    if model.loss == "hinge":
        return float(np.mean(np.maximum(0.0, 1.0 - signed * scores)))
    return float(np.mean(0.5 * (scores - signed) ** 2))


def compare_ratings(train: Any, test: Any, workers: Sequence[int], locks: Sequence[str],
                    on_run: Callable[[Run], None] | None = None, **settings: Any) -> list[Run]:
    """MatrixFactorization(**settings) on train Ratings for each configuration; test RMSE as quality.

    `on_run(run)` is called as each configuration finishes.
    """
    runs, baseline = [], None
    for count, lock in configurations(workers, locks):
        model = MatrixFactorization(workers=count, lock=lock, **settings).fit(
            train.rows, train.cols, train.values, shape=train.shape)
        throughput, seconds = _throughput(model.history_)
        baseline = baseline or throughput
        runs.append(Run(count, lock, throughput, throughput / baseline,
                        model.rmse(train.rows, train.cols, train.values) ** 2,
                        model.rmse(test.rows, test.cols, test.values), seconds))
        if on_run is not None:
            on_run(runs[-1])
    return runs


def format_table(runs: Sequence[Run], quality: str = "test accuracy") -> str:
    """The runs as an aligned text table, one line per configuration."""
    lines = [f"{'workers':>7s}  {'lock':11s}  {'updates/s':>12s}  {'speed-up':>8s}  {'final loss':>10s}  {quality:>13s}"]
    for run in runs:
        lines.append(f"{run.workers:7d}  {run.lock:11s}  {run.updates_per_second:12,.0f}  {run.speedup:7.2f}x  "
                     f"{run.final_loss:10.4f}  {run.quality:13.4f}")
    return "\n".join(lines)

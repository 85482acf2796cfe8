"""Optuna's samplers and pruners by name, and the fit callback that reports a trial's metric and stops it when pruned.

Every sampler and pruner is Optuna's own; this module only names them and sets them for a budget of
`epochs` (a trial's resource is its epochs):

- samplers: "tpe" (Tree-structured Parzen Estimator), "random";
- pruners: "asha" (asynchronous successive halving), "hyperband", "median", "none".

>>> type(make_pruner("asha", epochs=3)).__name__
'SuccessiveHalvingPruner'
"""

from __future__ import annotations

from typing import Any

from descend.errors import DescendValueError
from descend.training.loop import Callback, TrainingState

SAMPLERS = ("tpe", "random")
PRUNERS = ("asha", "hyperband", "median", "none")
#: successive halving keeps the best third at each rung: with 3 epochs, rungs after epoch 1 and epoch 3
REDUCTION_FACTOR = 3
#: the median pruner waits for this many finished trials before it compares (Optuna's default, 5)
MEDIAN_STARTUP_TRIALS = 5


def make_sampler(name: str, seed: int | None) -> Any:
    """Optuna's sampler called `name` (one of SAMPLERS), seeded with `seed`.

    >>> type(make_sampler("tpe", seed=0)).__name__
    'TPESampler'
    """
    import optuna

    if name == "tpe":
        # constant liar: trials still running count as bad ones, so parallel slots are not handed the same region
        # (with one trial at a time none is running when the next is asked for: serial searches are unchanged)
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise DescendValueError(f"sampler must be one of {', '.join(SAMPLERS)}; got {name!r}")


def make_pruner(name: str, epochs: int) -> Any:
    """Optuna's pruner called `name` (one of PRUNERS) for trials of at most `epochs` epochs.

    >>> make_pruner("hyperband", epochs=9)._max_resource
    9
    """
    import optuna

    if name == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=REDUCTION_FACTOR)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs, reduction_factor=REDUCTION_FACTOR)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=MEDIAN_STARTUP_TRIALS)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise DescendValueError(f"pruner must be one of {', '.join(PRUNERS)}; got {name!r}")


class PruningCallback(Callback):
    """Report `metric` of each epoch to an Optuna trial; stop training when the trial's pruner says so.

    A trial is never pruned after its last epoch, `epochs` (it trained in full: its value counts).
    The metric must be in the epoch's record (checked at the first epoch: a DescendValueError naming the
    keys fit records). After fit, `pruned` says whether the trial was stopped early, and `values` holds
    the metric of every epoch run.

    >>> import numpy as np, optuna, descend as dc
    >>> study = optuna.create_study(direction="maximize")
    >>> trial, model = study.ask(), dc.nn.Linear(2, 2, rng=0)
    >>> callback = PruningCallback(trial, "val_accuracy", epochs=2)
    >>> data = (np.eye(2, dtype=np.float32), np.array([0, 1]))
    >>> _ = dc.fit(model, dc.nn.CrossEntropyLoss(), dc.optim.SGD(model.parameters(), lr=0.5), data, epochs=2,
    ...            validation=data, callbacks=[callback], progress=False)
    >>> len(callback.values), callback.pruned, trial.storage.get_trial(trial._trial_id).intermediate_values[2]
    (2, False, 1.0)
    """

    def __init__(self, trial: Any, metric: str, epochs: int | None = None):
        self.trial, self.metric, self.epochs = trial, metric, epochs
        self.values: list[float] = []
        self.pruned = False

    def on_epoch_end(self, state: TrainingState, record: dict[str, float]) -> None:
        """Report the epoch's metric as the trial's intermediate value; stop if the pruner prunes the trial."""
        if self.metric not in record:
            raise DescendValueError(
                f"metric={self.metric!r} is not in what fit records each epoch; it records {', '.join(record)}"
                + (" (a val_ metric needs validation=)" if self.metric.startswith("val_") else ""))
        value = float(record[self.metric])
        self.values.append(value)
        self.trial.report(value, step=state.epoch)
        if state.epoch != self.epochs and self.trial.should_prune():
            self.pruned = state.stop = True

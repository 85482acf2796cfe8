"""One trial, wherever it runs (this process, a worker process, a Spark task): build, train with pruning, report.

The driver (descend.tune.driver) asks Optuna's sampler for a trial's parameters and sends a `TrialTask`;
`run_trial` builds the model from them, trains it with `fit` and a `PruningCallback` that reports each
epoch's metric to the study's storage (so the pruner, reading the same storage, compares it with every
other trial's), and returns a `TrialResult`. The driver then tells the study how the trial ended.

A trial that the build function refuses, or whose metric fit does not record, is a mistake in the
search itself: it ends the search (`result.fatal`). A trial whose training diverges (NaN, infinity) is
one bad point of the space: the trial fails and the search goes on.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from descend.errors import DescendError, DescendTypeError, DescendValueError, NonFiniteError
from descend.tune.pruning import PruningCallback, make_pruner

#: a trial's end as Optuna names it (a fatal trial is told FAIL too)
COMPLETE, PRUNED, FAIL = "COMPLETE", "PRUNED", "FAIL"


@dataclass
class Objective:
    """What every trial of a search shares: the build function, the data, the metric, the budget, the storage.

    It travels to worker processes and Spark tasks (pickled), so it holds settings, never a live
    storage or study. `models` is the folder where a trial that beats the best so far saves its model
    (None: the model comes back in the result as bytes, for a Spark task on another machine).
    """

    build: Callable[[dict[str, Any]], Any]
    train: Any
    validation: Any
    metric: str
    direction: str
    epochs: int
    batch_size: int
    study_name: str
    storage_url: str
    pruner: str
    models: str | None
    fit_options: dict[str, Any] = field(default_factory=dict)

    def without_data(self) -> Objective:
        """This objective with no data in it: what a Spark task gets, the data coming by broadcast."""
        return replace(self, train=None, validation=None)


@dataclass
class TrialTask:
    """One trial to run: Optuna's trial id and number, its parameters, and the seed of its weights and shuffling."""

    trial_id: int
    number: int
    params: dict[str, Any]
    seed: int | None


@dataclass
class TrialResult:
    """How a trial ended: state (COMPLETE, PRUNED, FAIL), its value (the metric of its last epoch), the epochs
    it ran, its seconds, why it failed (`error`; `fatal` when the search must stop), and the model's bytes when
    it beat the best so far and no `models` folder was given."""

    number: int
    state: str
    value: float | None = None
    epochs: int = 0
    seconds: float = 0.0
    error: str | None = None
    fatal: bool = False
    model_bytes: bytes | None = None

    def record(self) -> dict[str, Any]:
        """The result as JSON-ready values (what a worker process sends back), without the model's bytes."""
        return {"number": self.number, "state": self.state, "value": self.value, "epochs": self.epochs,
                "seconds": self.seconds, "error": self.error, "fatal": self.fatal}


def build_trial(build: Callable[[dict[str, Any]], Any], params: dict[str, Any], number: int) -> tuple[Any, Any, Any]:
    """`build(params)` checked: (model, loss, optimizer); the build function's own error is re-raised as a
    DescendValueError that names the trial and its parameters (a misspelt name in the space shows there).

    >>> build_trial(lambda params: (1, 2, 3), {"lr": 0.1}, 0)
    (1, 2, 3)
    """
    try:
        built = build(dict(params))
    except Exception as error:
        raise DescendValueError(f"build failed for trial {number} with parameters {params}: "
                                f"{type(error).__name__}: {error}") from error
    if not isinstance(built, tuple) or len(built) != 3:
        raise DescendTypeError(f"build must return (model, loss, optimizer) for the trial's parameters; for trial "
                               f"{number} with parameters {params} it returned {type(built).__name__} {built!r:.100}")
    return built


def run_trial(objective: Objective, task: TrialTask, study: Any = None) -> TrialResult:
    """Run `task` to its end under `objective`: build, fit with pruning, keep the model if it is the best so far.

    `study` is the Optuna study over the objective's storage (loaded here when None: a worker or a
    Spark task). Errors in the search's own setup (the build function's, a metric fit does not record)
    come back as a fatal result; a diverging run as a failed trial.
    """
    import optuna

    from descend.seeding import manual_seed
    from descend.training.fit import fit

    started = time.perf_counter()
    if study is None:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.load_study(study_name=objective.study_name, storage=open_storage(objective.storage_url),
                                  pruner=make_pruner(objective.pruner, objective.epochs))
    trial = optuna.trial.Trial(study, task.trial_id)
    callback = PruningCallback(trial, objective.metric, objective.epochs)
    try:
        if task.seed is not None:
            manual_seed(task.seed)  # layers built without rng= draw their weights from the trial's seed
        model, loss, optimizer = build_trial(objective.build, task.params, task.number)
        batch_size = task.params.get("batch_size", objective.batch_size)
        fit(model, loss, optimizer, objective.train, epochs=objective.epochs, batch_size=batch_size,
            validation=objective.validation, seed=task.seed, callbacks=[callback], progress=False,
            **objective.fit_options)
    except NonFiniteError as error:
        return TrialResult(task.number, FAIL, epochs=len(callback.values), seconds=time.perf_counter() - started,
                           error=f"NonFiniteError: {str(error).splitlines()[0]}")
    except DescendError as error:
        return TrialResult(task.number, FAIL, epochs=len(callback.values), seconds=time.perf_counter() - started,
                           error=str(error), fatal=True)
    value = callback.values[-1]
    result = TrialResult(task.number, PRUNED if callback.pruned else COMPLETE, value, len(callback.values),
                         time.perf_counter() - started)
    if result.state == COMPLETE and improves(study, value):
        keep_model(objective, task.number, model, result)
    return result


def improves(study: Any, value: float) -> bool:
    """Whether `value` is at least as good as every finished trial's in `study` (so its model may be the best)."""
    import optuna

    finished = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    values = [trial.value for trial in finished]
    if not values:
        return True
    return value >= max(values) if study.direction == optuna.study.StudyDirection.MAXIMIZE else value <= min(values)


def model_path(models: str | os.PathLike, number: int) -> Path:
    """Where trial `number`'s model is kept while the search runs.

    >>> model_path("runs/tune/models", 7).name
    'trial-7.dsc'
    """
    return Path(models) / f"trial-{number}.dsc"


def keep_model(objective: Objective, number: int, model: Any, result: TrialResult) -> None:
    """Save the trial's model into the objective's models folder, or as bytes in `result` when there is none."""
    from descend.io import save

    if objective.models is not None:
        save(model, model_path(objective.models, number))
        return
    with tempfile.TemporaryDirectory() as folder:
        path = save(model, Path(folder) / "model.dsc")
        result.model_bytes = path.read_bytes()


def open_storage(url: str) -> Any:
    """Optuna's RDBStorage over `url`, failing fast (a DescendValueError naming `storage`) when it cannot be reached.

    SQLite waits up to a minute for a lock (parallel trials write the same file); a server is given ten
    seconds to answer.

    >>> import tempfile, os
    >>> storage = open_storage("sqlite:///" + os.path.join(tempfile.mkdtemp(), "study.db"))
    >>> type(storage).__name__
    'RDBStorage'
    """
    import optuna

    connect = {"timeout": 60} if url.startswith("sqlite") else {"connect_timeout": 10}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": connect})
    except ImportError as error:
        raise DescendValueError(f"storage={url!r} needs a database driver that is not installed: {error}") from None
    except Exception as error:
        reason = str(error).splitlines()[0]
        raise DescendValueError(f"storage={url!r} cannot be reached: {type(error).__name__}: {reason}; expected a "
                                "database URL that answers, e.g. sqlite:///runs/tune/study.db or "
                                "postgresql://user:password@host/database") from None

"""`search`: Bayesian hyperparameter search over descend models, on Optuna, with pruning, in parallel, resumable.

Optuna does the sampling (TPE or random) and the pruning (ASHA, Hyperband, median); descend builds each
trial's model from its parameters, trains it with `fit`, reports the metric every epoch, and keeps the
study in a run folder (descend.tune.storage) from which a killed search resumes.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from descend.checks import check_integer
from descend.data.dataset import as_dataset
from descend.errors import DescendTypeError, DescendValueError
from descend.tune.driver import Driver
from descend.tune.objective import Objective
from descend.tune.pruning import PRUNERS, SAMPLERS, make_pruner, make_sampler
from descend.tune.space import check_space, describe
from descend.tune.storage import recover_lost_trials, sqlite_url, study_folder

BACKENDS = ("local", "spark")
DIRECTIONS = ("maximize", "minimize")
#: the study's name in its storage when the storage is the run folder's own SQLite file
STUDY_NAME = "descend-tune"


@dataclass
class Study:
    """What a search found: the best trial's parameters, value and model, every trial, and the run folder.

    `best_model` loads run/best.dsc; `trials` are trials.csv's rows; `optuna_study` is Optuna's own
    study over the same storage, for anything else Optuna offers.

    >>> study = Study(Path("runs/tune"), {"lr": 0.1}, 0.93, 4, [], None)
    >>> study.best_params, study.best_value
    ({'lr': 0.1}, 0.93)
    """

    run: Path
    best_params: dict[str, Any]
    best_value: float
    best_number: int
    trials: list[dict[str, Any]]
    optuna_study: Any
    direction: str = "maximize"

    @property
    def best_model(self) -> Any:
        """The best trial's model, loaded from run/best.dsc."""
        from descend.io import load

        return load(self.run / "best.dsc")

    def best_so_far(self) -> tuple[list[int], list[float]]:
        """After each finished trial: the epochs trained so far and the best value so far (results.best_so_far)."""
        from descend.tune.results import best_so_far

        return best_so_far(self.trials, self.direction)

    def trials_dataframe(self) -> Any:
        """The trials as a pandas DataFrame (trials.csv's rows)."""
        import pandas as pd

        return pd.DataFrame(self.trials)


def search(build: Callable[[dict[str, Any]], Any], space: dict[str, Any], train: Any, validation: Any = None,
           metric: str = "val_accuracy", direction: str = "maximize", trials: int = 20, epochs: int = 3,
           batch_size: int = 32, sampler: str = "tpe", pruner: str = "asha", parallel: int | None = 1,
           backend: str = "local", run: str | os.PathLike | None = None, storage: str | None = None,
           resume: bool = False, seed: int | None = 0, retries: int = 2, spark: Any = None,
           progress: bool = True, fit_options: dict[str, Any] | None = None) -> Study:
    """Search `space` for the parameters whose model, built by `build(params)`, scores best on `metric`.

    `build` takes one trial's parameters (a dict keyed as `space`) and returns (model, loss, optimizer).
    Each trial trains for at most `epochs` epochs with `fit` (batches of `batch_size`, or of the
    parameter "batch_size" when the space has one) and reports `metric` after each epoch (a key of
    fit's records: "val_accuracy", "val_loss", ...), where `pruner` ("asha", "hyperband", "median",
    "none") may stop it. Optuna's `sampler` ("tpe" or "random", seeded by `seed`) picks each trial's
    parameters from the trials so far. The trial's value is its last epoch's metric.

    `parallel` trials run at once (None: 1 locally): in this process when 1 (with a seed, the same trials, values and
    best model bit for bit, run after run), else in worker processes of one BLAS thread each; with
    backend="spark", each trial is one Spark task of `spark` (a SparkSession; default: the active one),
    at most `parallel` in flight (default: the cluster's default parallelism).

    The study lives in the folder `run` (default: a new temporary folder): study.db (SQLite; or the
    database URL `storage`, e.g. PostgreSQL, that every worker reaches), and at the end trials.csv,
    best.dsc and history.png, parameters.png, importances.png. `resume=True` goes on with the study
    in `run`: finished trials are kept, trials that were running when it was killed run again (a trial
    whose process or task is lost is retried up to `retries` times). `fit_options` go to every `fit`.

    >>> import descend as dc
    >>> from descend import tune
    >>> train, validation = dc.data.load_digits()
    >>> def build(params):
    ...     model = dc.nn.MLP([64, params["hidden"], 10], rng=0)
    ...     return model, dc.nn.CrossEntropyLoss(), dc.optim.SGD(model.parameters(), lr=params["lr"])
    >>> study = tune.search(build, {"lr": tune.loguniform(0.01, 0.5), "hidden": tune.int(8, 32)}, train,
    ...                     validation=validation, trials=3, epochs=2, progress=False)
    >>> len(study.trials), study.best_value == max(t["value"] for t in study.trials if t["state"] == "COMPLETE")
    (3, True)
    """
    if not callable(build):
        raise DescendTypeError(f"build must be a function of one trial's parameters returning (model, loss, "
                               f"optimizer); got {type(build).__name__} {build!r:.100}")
    space = check_space(space)
    trials = check_integer("trials", trials, low=1)
    epochs = check_integer("epochs", epochs, low=1)
    batch_size = check_integer("batch_size", batch_size, low=1)
    retries = check_integer("retries", retries, low=0)
    _check_choice("direction", direction, DIRECTIONS)
    _check_choice("sampler", sampler, SAMPLERS)
    _check_choice("pruner", pruner, PRUNERS)
    _check_choice("backend", backend, BACKENDS)
    if parallel is not None:
        parallel = check_integer("parallel", parallel, low=1)
    elif backend == "local":
        parallel = 1
    if not isinstance(metric, str) or not metric:
        raise DescendTypeError(f"metric must name a key of fit's epoch records, e.g. 'val_accuracy'; got {metric!r}")
    if metric.startswith("val_") and validation is None:
        raise DescendValueError(f"metric={metric!r} is measured on validation data; pass validation= "
                                "(or choose a training metric such as 'accuracy')")
    if storage is not None and not isinstance(storage, str):
        raise DescendTypeError(f"storage must be a database URL such as 'sqlite:///study.db'; got {storage!r}")
    train = as_dataset(train, "train")
    validation = None if validation is None else as_dataset(validation, "validation")
    if run is None:
        if resume:
            raise DescendValueError("resume=True needs run=, the folder of the study to go on with")
        run = tempfile.mkdtemp(prefix="descend-tune-")
    run = Path(run)
    if backend == "spark":  # before the run folder is made: a refused search leaves nothing behind
        from descend.tune.spark import check_storage_reaches_executors, session

        spark = session(spark)
        check_storage_reaches_executors(storage or sqlite_url(run), spark.sparkContext.master)
    settings = {"metric": metric, "direction": direction, "space": describe(space), "storage": storage,
                "study_name": STUDY_NAME if storage is None else f"descend-{run.absolute()}",
                "sampler": sampler, "pruner": pruner, "epochs": epochs, "seed": seed}
    with study_folder(run, settings, resume) as (optuna_storage, study_name):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(storage=optuna_storage, study_name=study_name, direction=direction,
                                    sampler=make_sampler(sampler, seed), pruner=make_pruner(pruner, epochs),
                                    load_if_exists=resume)
        if resume:
            # a sampler seeded as before would draw the first trials' parameters again: go on from a new seed
            later = None if seed is None else seed + len(study.get_trials(deepcopy=False))
            study = optuna.load_study(storage=optuna_storage, study_name=study_name,
                                      sampler=make_sampler(sampler, later), pruner=make_pruner(pruner, epochs))
            recover_lost_trials(study, retries)
        objective = Objective(build, train, validation, metric, direction, epochs, batch_size, study_name,
                              optuna_storage.url, pruner, str(run.absolute() / "models"), dict(fit_options or {}))
        (run / "models").mkdir(exist_ok=True)
        driver = Driver(study, space, objective, trials, seed, retries, progress)
        try:
            _run_backend(driver, objective, backend, parallel, spark)
        finally:
            driver.close()
        if driver.error is not None:
            raise driver.error
        return finish(study, run, metric, direction)


def finish(study: Any, run: Path, metric: str, direction: str) -> Study:
    """Write trials.csv, best.dsc and the pictures into `run`; the Study that describes them."""
    from descend.tune.plots import draw_all
    from descend.tune.results import best_trial, keep_best, trial_rows, write_trials

    rows = trial_rows(study)
    write_trials(rows, run / "trials.csv")
    best = best_trial(study, direction)
    keep_best(run, best.number)
    draw_all(study, rows, metric, direction, run)
    return Study(run, dict(best.params), best.value, best.number, rows, study, direction)


def _run_backend(driver: Driver, objective: Objective, backend: str, parallel: int | None, spark: Any) -> None:
    if backend == "spark":
        from descend.tune.spark import run_on_spark

        run_on_spark(driver, objective, spark, parallel)
    elif parallel == 1:
        from descend.tune.local import run_in_process

        run_in_process(driver, objective)
    else:
        from descend.tune.local import run_in_workers

        run_in_workers(driver, objective, parallel)


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise DescendValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")

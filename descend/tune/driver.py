"""The driver of a search: asks Optuna for trials, tells it how they ended, retries lost ones, draws progress.

Every backend (this process, worker processes, Spark tasks) runs the same loop against one `Driver`:

    while (task := driver.next_task()) is not None:
        result = <run task somewhere>            # or: the worker or task was lost
        driver.finish(task, result)             #     driver.lost(task, reason)

`next_task` asks the sampler for a new trial the moment a slot is free, so trials run asynchronously,
never in waves. The budget is `trials` finished trials (complete, pruned, or failed for good), counting
those a resumed study already holds. A trial whose process or task was lost is marked failed with the
reason in its `lost` attribute and its parameters are enqueued again (`retry_of` names it), up to
`retries` times; a trial that still fails then counts as failed, and is in trials.csv, never lost silently.
Methods are safe to call from several threads (the Spark backend runs one per slot).
"""

from __future__ import annotations

import threading
from typing import Any

from descend.errors import DescendValueError
from descend.tune.objective import COMPLETE, FAIL, PRUNED, Objective, TrialResult, TrialTask, model_path
from descend.tune.space import Distribution


class Driver:
    """Hands out trials of `study` until `trials` have finished, with at most `slots` running at once.

    >>> import optuna, tempfile, descend as dc
    >>> from descend import tune
    >>> study = optuna.create_study(direction="maximize")
    >>> objective = Objective(build=None, train=None, validation=None, metric="val_accuracy", direction="maximize",
    ...                       epochs=1, batch_size=32, study_name=study.study_name, storage_url="", pruner="none",
    ...                       models=None)
    >>> driver = Driver(study, {"lr": tune.loguniform(0.01, 1.0)}, objective, trials=1, seed=0, progress=False)
    >>> task = driver.next_task()
    >>> driver.finish(task, TrialResult(task.number, COMPLETE, 0.5, 1)); driver.next_task() is None
    True
    """

    def __init__(self, study: Any, space: dict[str, Distribution], objective: Objective, trials: int,
                 seed: int | None, retries: int = 2, progress: bool = True):
        self.study, self.objective, self.trials, self.seed, self.retries = study, objective, trials, seed, retries
        self.distributions = {name: distribution.optuna() for name, distribution in space.items()}
        self.lock = threading.RLock()
        self.running: dict[int, TrialTask] = {}
        #: set when the search must end (a fatal trial, an interrupt): next_task hands out nothing more
        self.stopped = False
        self.error: BaseException | None = None
        self.bar = _progress_bar(trials, self.finished_count(), progress)
        self.update_bar()

    def finished_count(self) -> int:
        """The trials that count against the budget: complete, pruned, and failed other than lost-and-retried."""
        import optuna

        states = optuna.trial.TrialState
        finished = self.study.get_trials(deepcopy=False, states=(states.COMPLETE, states.PRUNED, states.FAIL))
        return sum(1 for trial in finished if trial.state != states.FAIL or trial.user_attrs.get("retried") is not True)

    def next_task(self) -> TrialTask | None:
        """A new trial to run (a retry first, else the sampler's next), or None once the budget is spoken for."""
        with self.lock:
            if self.stopped or self.finished_count() + len(self.running) >= self.trials:
                return None
            trial = self.study.ask(fixed_distributions=self.distributions)
            seed = trial.user_attrs.get("seed")
            if seed is None and self.seed is not None:
                seed = self.seed + trial.number
                trial.set_user_attr("seed", seed)
            task = TrialTask(trial._trial_id, trial.number, dict(trial.params), seed)
            self.running[task.number] = task
            self.update_bar()
            return task

    def finish(self, task: TrialTask, result: TrialResult) -> None:
        """Tell the study how `task` ended; a fatal result stops the search and keeps its error for the caller."""
        import optuna

        states = {COMPLETE: optuna.trial.TrialState.COMPLETE, PRUNED: optuna.trial.TrialState.PRUNED,
                  FAIL: optuna.trial.TrialState.FAIL}
        with self.lock:
            storage, trial_id = self.study._storage, task.trial_id
            storage.set_trial_user_attr(trial_id, "epochs", result.epochs)
            storage.set_trial_user_attr(trial_id, "seconds", result.seconds)
            if result.error is not None:
                storage.set_trial_user_attr(trial_id, "error", result.error)
            if result.model_bytes is not None and self.objective.models is not None:
                path = model_path(self.objective.models, task.number)
                path.parent.mkdir(parents=True, exist_ok=True)
                from descend.files import write_atomically

                write_atomically(path, lambda stream: stream.write(result.model_bytes))
            # a pruned trial's value is its last reported one, which Optuna takes from the storage itself
            value = result.value if result.state == COMPLETE else None
            self.study.tell(task.number, value, state=states[result.state])
            self.running.pop(task.number, None)
            if result.fatal and self.error is None:
                self.stopped = True
                self.error = DescendValueError(result.error)
            self.update_bar()

    def lost(self, task: TrialTask, reason: str) -> None:
        """Mark `task`'s trial failed because its process or task was lost, and enqueue its parameters again
        (until `retries` retries of the same parameters have been lost too)."""
        with self.lock:
            self.running.pop(task.number, None)
            fail_and_retry(self.study, task.trial_id, task.params, reason, self.retries)
            self.update_bar()

    def stop(self, error: BaseException | None = None) -> None:
        """End the search: hand out no more trials; keep the first error for the caller."""
        with self.lock:
            self.stopped = True
            if error is not None and self.error is None:
                self.error = error

    def update_bar(self) -> None:
        """The progress bar's count and its note: trials done, pruned, running, and the best value so far."""
        if self.bar is None:
            return
        import optuna

        states = optuna.trial.TrialState
        trials = self.study.get_trials(deepcopy=False)
        done = sum(trial.state == states.COMPLETE for trial in trials)
        pruned = sum(trial.state == states.PRUNED for trial in trials)
        values = [trial.value for trial in trials if trial.state == states.COMPLETE]
        best = (max if self.objective.direction == "maximize" else min)(values) if values else float("nan")
        self.bar.n = self.finished_count()
        self.bar.set_postfix_str(f"done {done}, pruned {pruned}, running {len(self.running)}, "
                                 f"best {self.objective.metric} {best:.4g}", refresh=True)

    def close(self) -> None:
        """Close the progress bar."""
        if self.bar is not None:
            self.bar.close()


def fail_and_retry(study: Any, trial_id: int, params: dict[str, Any], reason: str, retries: int) -> None:
    """Mark the unfinished trial `trial_id` failed with `reason` (`lost`), and enqueue its parameters again unless
    they have been lost `retries` times already (`retry_of` names the trial a retry repeats)."""
    import optuna

    storage = study._storage
    frozen = storage.get_trial(trial_id)
    attempts = frozen.user_attrs.get("attempt", 0)
    storage.set_trial_user_attr(trial_id, "lost", reason)
    again = attempts < retries
    storage.set_trial_user_attr(trial_id, "retried", again)
    storage.set_trial_state_values(trial_id, optuna.trial.TrialState.FAIL)
    if again:
        attrs = {"retry_of": frozen.number, "attempt": attempts + 1}
        if "seed" in frozen.user_attrs:
            attrs["seed"] = frozen.user_attrs["seed"]  # the retry repeats the lost trial, weights and order too
        study.enqueue_trial(params, user_attrs=attrs)


def _progress_bar(total: int, done: int, progress: bool) -> Any:
    """A tqdm bar over the trials (None without `progress` or without tqdm)."""
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=done, unit="trial", desc="tune", dynamic_ncols=True)

"""The local backends: trials in this process (parallel=1), or in worker processes, one trial each at a time.

Why processes: a trial runs Python (the model, the tape, the optimizer), which holds the GIL. Each worker
is a fresh interpreter (`python -m descend.tune.worker`, as HOGWILD!'s workers are: safe whatever threads
this process runs, and the caller's script needs no `if __name__ == "__main__"` guard) started with one
BLAS, OpenMP and numba thread, so N workers use N cores and do not oversubscribe them. The objective
(build function and data) reaches the workers as one pickle file written by this process for its own
children (cloudpickle where installed, so a build function defined in a script or a notebook travels
too); tasks and results are JSON lines over pipes. A worker that dies loses its trial, which the driver
marks failed and runs again; a new worker takes the dead one's place.
"""

from __future__ import annotations

import json
import os
import pickle
import selectors
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from descend.errors import DescendValueError
from descend.tune.driver import Driver
from descend.tune.objective import Objective, TrialResult, TrialTask, run_trial

#: the variables NumPy's BLAS, OpenMP and numba read when they load: one thread each per worker
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
#: a worker that loses this many trials in a row while starting is not restarted again
MAX_STARTS_WITHOUT_RESULT = 3


def run_in_process(driver: Driver, objective: Objective) -> None:
    """Run every trial here, one after another: the reproducible path (parallel=1).

    >>> callable(run_in_process)
    True
    """
    while (task := driver.next_task()) is not None:
        try:
            result = run_trial(objective, task, driver.study)
        except BaseException as error:
            driver.lost(task, f"{type(error).__name__}: {error}")
            raise
        driver.finish(task, result)


def run_in_workers(driver: Driver, objective: Objective, workers: int) -> None:
    """Run the trials in `workers` processes, a new trial asked for as soon as any worker is free.

    >>> callable(run_in_workers)
    True
    """
    with tempfile.TemporaryDirectory(prefix="descend-tune-") as folder:
        payload = Path(folder) / "objective.pickle"
        payload.write_bytes(_pickle(objective))
        pool = _Pool(payload)
        try:
            pool.run(driver, workers)
        finally:
            pool.close()


def _pickle(objective: Objective) -> bytes:
    """The objective as bytes a worker can load: by cloudpickle when installed (functions of a script or a
    notebook travel by value), else by pickle (the build function must then be importable by name)."""
    try:
        import cloudpickle
    except ImportError:
        cloudpickle = None
    try:
        return (cloudpickle or pickle).dumps(objective, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, AttributeError, TypeError) as error:
        raise DescendValueError(f"build cannot be sent to the worker processes ({error}); define it at the top "
                                "level of a module, or install cloudpickle (pip install descend[tune])") from None


class _Pool:
    """The worker processes, the trial each one runs, and the JSON lines to and from them."""

    def __init__(self, payload: Path):
        self.payload = payload
        self.selector = selectors.DefaultSelector()
        self.tasks: dict[subprocess.Popen, TrialTask | None] = {}
        self.failed_starts = 0

    def start(self) -> subprocess.Popen:
        environment = dict(os.environ, **{variable: "1" for variable in THREAD_VARIABLES})
        # the worker must import what this process imports (a build function pickled by reference)
        environment["PYTHONPATH"] = os.pathsep.join(path for path in sys.path if path)
        process = subprocess.Popen([sys.executable, "-m", "descend.tune.worker", str(self.payload)],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=environment, text=True,
                                   bufsize=1)
        self.tasks[process] = None
        self.selector.register(process.stdout, selectors.EVENT_READ, process)
        return process

    def give(self, process: subprocess.Popen, driver: Driver) -> bool:
        """Send `process` the next trial; False when there is none left to run."""
        task = driver.next_task()
        self.tasks[process] = task
        if task is None:
            return False
        message = {"trial_id": task.trial_id, "number": task.number, "params": task.params, "seed": task.seed}
        try:
            process.stdin.write(json.dumps(message) + "\n")
            process.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the worker died: its pipe's end of file says so below, and the trial is retried
        return True

    def run(self, driver: Driver, workers: int) -> None:
        for _ in range(workers):
            process = self.start()
            if not self.give(process, driver):
                break
        while not driver.stopped and any(task is not None for task in self.tasks.values()):
            for key, _ in self.selector.select(timeout=1.0):
                process = key.data
                line = process.stdout.readline()
                task = self.tasks[process]
                if not line:
                    self._lost(process, task, driver)
                    continue
                message = json.loads(line)
                self.failed_starts = 0
                driver.finish(task, TrialResult(**message))
                if driver.stopped or not self.give(process, driver):
                    self.tasks[process] = None
        for process, task in self.tasks.items():
            if task is not None:  # the search stopped with these running: a resume runs them again
                driver.lost(task, "the search stopped while this trial ran")
                process.kill()
                self.tasks[process] = None
        if driver.error is not None:
            raise driver.error

    def _lost(self, process: subprocess.Popen, task: TrialTask | None, driver: Driver) -> None:
        """A worker ended: its trial is lost (failed, enqueued again) and a new worker takes its place."""
        self.selector.unregister(process.stdout)
        code = process.wait()
        del self.tasks[process]
        if task is None:
            return
        driver.lost(task, f"its worker process ended (exit code {code})")
        self.failed_starts += 1
        if self.failed_starts >= MAX_STARTS_WITHOUT_RESULT:
            driver.stop(DescendValueError(
                f"parallel: {self.failed_starts} worker processes in a row ended before finishing a trial "
                f"(the last with exit code {code}); see their error output above"))
            return
        if not driver.stopped:
            replacement = self.start()
            if not self.give(replacement, driver):
                self.tasks[replacement] = None

    def close(self) -> None:
        """Tell every worker to stop (its stdin closes) and wait; kill one that still runs a trial."""
        for process, task in self.tasks.items():
            if task is not None:  # an error or an interrupt in this process: stop the trial at once
                process.kill()
            try:
                process.stdin.close()
            except OSError:
                pass
        for process in self.tasks:
            process.wait()
            process.stdout.close()
        self.selector.close()

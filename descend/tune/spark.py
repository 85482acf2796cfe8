"""The Spark backend: each trial is one Spark task, run asynchronously, at most one per task slot.

The driver keeps `slots` threads; each asks the sampler for a trial, runs it as a one-task Spark job
(its own job group, so a failed search cancels what is still running), tells the study how it ended,
and asks again at once: a new trial starts the moment any finishes, never in synchronous waves. The
data reaches the executors once, as a broadcast; the study's storage is reached from the executors
too (the run folder's SQLite file in local mode or on a shared file system, else a database URL), so
each task reports its epochs there and Optuna's pruner decides there. A task that fails after Spark's
own retries (`spark.task.maxFailures`), or whose executor is lost, fails its trial, which the driver
enqueues again (up to `retries`). The model of a trial that beats the best so far comes back to the
driver as bytes with the result and is written into the run folder here.
"""

from __future__ import annotations

import re
import sys
import threading
import uuid
from typing import Any

from descend.errors import DescendError, DescendValueError
from descend.tune.driver import Driver
from descend.tune.objective import Objective, TrialResult, TrialTask


def run_on_spark(driver: Driver, objective: Objective, spark: Any = None, slots: int | None = None) -> None:
    """Run the search's trials as Spark tasks of `spark` (default: the active session), `slots` at once
    (default: the cluster's default parallelism, one task per core).

    >>> callable(run_on_spark)
    True
    """
    context = session(spark).sparkContext
    check_storage_reaches_executors(objective.storage_url, context.master)
    slots = slots or context.defaultParallelism
    data = context.broadcast((objective.train, objective.validation))
    # on the executors the model comes back as bytes: the run folder may not be on their machines
    shipped = objective.without_data()
    shipped.models = None
    group = f"descend-tune-{uuid.uuid4().hex[:8]}"

    def slot(index: int) -> None:
        while (task := driver.next_task()) is not None:
            context.setJobGroup(f"{group}-{index}", f"descend tune: trial {task.number}", interruptOnCancel=True)
            try:
                result = context.parallelize([task], 1).map(
                    lambda one: _run_task(shipped, data, one)).collect()[0]
            except Exception as error:
                driver.lost(task, f"its Spark task failed: {_reason(error)}")
                continue
            driver.finish(task, result)
            if driver.stopped:
                for other in range(slots):
                    context.cancelJobGroup(f"{group}-{other}")

    by_value = _ship_by_value(objective.build)
    threads = [threading.Thread(target=_guarded, args=(driver, slot, index), daemon=True) for index in range(slots)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        data.unpersist()
        if by_value is not None:
            from pyspark import cloudpickle

            cloudpickle.unregister_pickle_by_value(by_value)
    if driver.error is not None:
        raise driver.error


def session(spark: Any = None) -> Any:
    """`spark`, else the active SparkSession; a DescendError when there is none."""
    from pyspark.sql import SparkSession

    spark = spark or SparkSession.getActiveSession()
    if spark is None:
        raise DescendError("backend='spark' needs a SparkSession: pass spark=, or start one "
                           "(descend.spark.session.spark_session)")
    return spark


def check_storage_reaches_executors(storage_url: str, master: str) -> None:
    """Refuse an SQLite storage for a Spark master that is not local: executors on other machines would each
    open a file of their own (and SQLite's locks do not hold over a network file system).

    >>> check_storage_reaches_executors("sqlite:////runs/tune/study.db", "local[2]")
    >>> check_storage_reaches_executors("sqlite:////runs/tune/study.db", "yarn")
    Traceback (most recent call last):
    ...
    descend.errors.DescendValueError: storage: the study is kept in the SQLite file /runs/tune/study.db, which Spark's executors on other machines cannot share (master 'yarn'); pass storage= a database server they all reach, e.g. postgresql://user:password@host/database
    """
    if storage_url.startswith("sqlite") and not master.startswith("local"):
        raise DescendValueError(
            f"storage: the study is kept in the SQLite file {storage_url.removeprefix('sqlite:///')}, which Spark's "
            f"executors on other machines cannot share (master {master!r}); pass storage= a database server they "
            "all reach, e.g. postgresql://user:password@host/database")


def _ship_by_value(build: Any) -> Any:
    """Send the module that defines `build` to the executors by value, unless it is descend's or an installed
    package's: the executors may not have the user's own module (a script, a notebook, a test file). Returns the
    module registered (to unregister after the search), or None."""
    from pyspark import cloudpickle

    module = sys.modules.get(getattr(build, "__module__", None) or "")
    if module is None or module.__name__ == "__main__" or module.__name__.split(".")[0] == "descend":
        return None  # __main__ already travels by value; descend is on every executor
    path = getattr(module, "__file__", None) or ""
    if "site-packages" in path or "dist-packages" in path:
        return None
    cloudpickle.register_pickle_by_value(module)
    return module


def _reason(error: Exception) -> str:
    """A failed job's error in one line: the Python exception an executor raised when the message holds one."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    raised = [line for line in lines if re.match(r"^[\w.]+(Error|Exception|Exit|Interrupt)\b", line)]
    return ((raised or lines or [type(error).__name__])[-1])[:300]


def _guarded(driver: Driver, slot: Any, index: int) -> None:
    """Run one slot's loop; an error in the driver's own work stops the search and is raised by the caller."""
    try:
        slot(index)
    except BaseException as error:
        driver.stop(error)


def _run_task(objective: Objective, data: Any, task: TrialTask) -> TrialResult:
    """On an executor: run one trial with one BLAS and kernel thread (the task's slot is one core)."""
    from dataclasses import replace

    from descend import kernels
    from descend.tune.objective import run_trial

    kernels.set_threads(1)
    train, validation = data.value
    return run_trial(replace(objective, train=train, validation=validation), task)

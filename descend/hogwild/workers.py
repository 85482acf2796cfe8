"""What the lock-free estimators share: checked settings, each epoch's shares of the examples, the worker threads."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from descend.checks import check_integer, check_real
from descend.errors import DescendValueError
from descend.hogwild.locks import LockState

SCHEDULES = ("constant", "inverse-time")


def max_workers() -> int:
    """The most workers allowed: eight per core of this machine (more only queue for the same cores)."""
    return 8 * (os.cpu_count() or 1)


def check_workers(workers: int) -> int:
    """`workers` as an int in [1, max_workers()], or an error that says the bound."""
    workers = check_integer("workers", workers, low=1)
    if workers > max_workers():
        raise DescendValueError(
            f"workers must be at most {max_workers()} (8 per core on this {os.cpu_count()}-core machine); got {workers}"
        )
    return workers


def check_schedule(schedule: str, decay: float) -> float:
    """The decay the kernels apply: `decay` for "inverse-time", 0 for "constant"."""
    if schedule not in SCHEDULES:
        raise DescendValueError(f"schedule must be one of {', '.join(map(repr, SCHEDULES))}; got {schedule!r}")
    decay = check_real("decay", decay, low=0.0)
    return decay if schedule == "inverse-time" else 0.0


@dataclass(frozen=True)
class Span:
    """When one worker ran during one epoch: time.perf_counter() seconds for the sparse models' threads,
    time.monotonic() seconds for the dense engine's processes (a clock every process shares)."""

    worker: int
    start: float
    stop: float


def epoch_shares(n_examples: int, workers: int, seed: int | None, epoch: int) -> list[np.ndarray]:
    """A fresh permutation of the examples for this epoch, cut into one contiguous share per worker."""
    order = np.random.default_rng(None if seed is None else [seed, epoch]).permutation(n_examples)
    bounds = [n_examples * k // workers for k in range(workers + 1)]
    return [order[bounds[k] : bounds[k + 1]] for k in range(workers)]


def run_workers(work: Callable[[int], float], workers: int) -> tuple[list[float], list[Span]]:
    """work(k) for k = 0..workers − 1, each in its own thread; their results and when each ran.

    The kernels release the GIL, so the threads run at once; an error in any thread is raised here.
    """
    results: list[float] = [0.0] * workers
    spans: list[Span | None] = [None] * workers
    errors: list[BaseException] = []

    def run(k: int) -> None:
        start = time.perf_counter()
        try:
            results[k] = work(k)
        except BaseException as error:  # re-raised in the calling thread below
            errors.append(error)
        spans[k] = Span(k, start, time.perf_counter())

    threads = [threading.Thread(target=run, args=(k,), name=f"hogwild-{k}") for k in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results, spans


def train_epochs(
    n_examples: int,
    epochs: int,
    workers: int,
    seed: int | None,
    one_pass: Callable[[int, np.ndarray, int, LockState], float],
) -> list[dict[str, float]]:
    """Run `epochs` lock-free epochs; returns one record per epoch (loss, seconds, updates per second).

    one_pass(k, share, first_update, lock_state) runs worker k's kernel over its share of this epoch
    (first_update: the run-wide number of its first update) and returns the sum of its losses.
    """
    history = []
    one_pass(0, np.empty(0, dtype=np.int64), 0, LockState(workers))  # compile the kernel outside the clock
    for epoch in range(epochs):
        shares = epoch_shares(n_examples, workers, seed, epoch)
        state = LockState(workers)
        started = time.perf_counter()
        losses, spans = run_workers(lambda k: one_pass(k, shares[k], epoch * n_examples + k, state), workers)
        seconds = time.perf_counter() - started
        history.append({
            "epoch": epoch + 1,
            "loss": float(sum(losses)) / n_examples,
            "seconds": seconds,
            "updates_per_second": n_examples / seconds,
            "spans": spans,
        })
    return history

"""One dense HOGWILD! worker process: `python -m descend.hogwild.worker`, started by descend.hogwild.dense.

It reads its setup as one JSON line on stdin, opens the shared arrays, rebuilds the model on the
shared parameter buffer, and then runs one share of an epoch per "epoch" command, reporting each as
a JSON line on stdout. Anything else the model prints goes to stderr, so it cannot garble a report.
It ends with its parent: killed by the kernel on Linux (PR_SET_PDEATHSIG), elsewhere by a thread
that watches the parent's process id.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, TextIO

import numpy as np

_PR_SET_PDEATHSIG = 1  # prctl's option: the signal this process gets when its parent ends
_WATCH_SECONDS = 0.5


def main() -> None:
    """Serve the parent until it says stop (or closes the pipe)."""
    reports = sys.stdout
    sys.stdout = sys.stderr
    setup = json.loads(sys.stdin.readline())
    worker = setup["worker"]
    die_with_parent(setup["parent"])
    try:
        serve(setup, sys.stdin, reports)
    except BaseException as error:  # the parent raises it
        send(reports, {"kind": "error", "worker": worker, "class": type(error).__name__, "message": str(error),
                       "traceback": traceback.format_exc()})


def die_with_parent(parent: int) -> None:
    """End this process as soon as `parent` is gone: an orphaned worker would go on writing shared memory."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
            raise OSError(ctypes.get_errno(), "prctl")
    except (OSError, AttributeError):  # not Linux: watch the parent instead

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(_WATCH_SECONDS)
            os._exit(1)

        threading.Thread(target=watch, daemon=True, name="watch-parent").start()
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def send(reports: TextIO, message: dict[str, Any]) -> None:
    reports.write(json.dumps(message) + "\n")
    reports.flush()


def serve(setup: dict[str, Any], commands: TextIO, reports: TextIO) -> None:
    """Rebuild the model on the shared buffer, then train one share per epoch command.

    Each epoch's report lists the worker's steps as [iteration, loss, scores, rows]: the parent
    counts them in the order of the run's updates, as the local engine counts its own.
    """
    from descend.hogwild.dense import restore_statistics, statistics
    from descend.hogwild.workers import epoch_shares
    from descend.memory import reuse_freed_memory
    from descend.nn.module import build_module
    from descend.optim import build_optimizer
    from descend.training.loop import History, TrainingState
    from descend.training.step import Clipping, make_step, seed_module_generators, train_on_batch

    reuse_freed_memory()
    folder, worker, workers = Path(setup["folder"]), setup["worker"], setup["workers"]
    # plain ndarray views of the mappings: np.memmap's subclass hooks would run on every operation of every step
    shared = {name: np.asarray(np.load(folder / f"{name}.npy", mmap_mode="r+"))
              for name in ("params", "state", "counters", "sums")}
    x, y = (np.asarray(np.load(folder / f"{name}.npy", mmap_mode="r")) for name in ("x", "y"))
    model = build_module(setup["model"]).astype(np.dtype(setup["dtype"]))
    restore_statistics(model, setup["statistics"])
    loss_fn = build_module(setup["loss"])
    buffer = model.flat_buffer()
    buffer.rebind(shared["params"])  # every parameter is now a view of the shared buffer
    optimizer = build_optimizer(setup["optimizer"], model.parameters())
    for index, name in enumerate(setup["state_names"]):
        optimizer.state[name] = shared["state"][worker, index]
    first_iteration = setup["iterations"]
    optimizer.iterations = first_iteration + worker
    step = make_step(model, loss_fn, setup["metrics"])
    state = TrainingState(model, loss_fn, optimizer, History())
    batch_size, seed, score_names = setup["batch_size"], setup["seed"], setup["score_names"]
    sums = shared["sums"][worker]  # the epoch's loss·rows, rows and metric sums so far: a checkpoint's tally
    clipping = Clipping(setup["clip_grad_norm"], setup["clip_grad_value"])
    send(reports, {"kind": "ready", "worker": worker})
    model.train()
    for line in commands:
        command = json.loads(line)
        if command["command"] == "stop":
            break
        epoch = command["epoch"]
        optimizer.epochs = command["epochs_ended"]  # a schedule per="epoch" gives this epoch's rate
        seed_module_generators(model, [seed, epoch, worker])
        share = epoch_shares(len(x), workers, seed, epoch)[worker]
        start = time.monotonic()
        state.epoch = epoch
        steps = []
        for begin in range(command["skip"][worker] * batch_size, len(share), batch_size):  # a resumed epoch's rest
            rows = np.sort(share[begin : begin + batch_size])  # in order: the gather reads memory forwards
            iteration = optimizer.iterations
            state.step = iteration - first_iteration  # the run's updates before this one: the error names the next
            result = train_on_batch(state, step, buffer.data, x[rows], y[rows], clipping)  # into the shared buffer
            optimizer.iterations += workers - 1  # the schedule follows the run's total number of updates
            steps.append([iteration, result.loss, result.scores, len(rows)])
            sums[0] += result.loss * len(rows)
            sums[1] += len(rows)
            for column, name in enumerate(score_names, start=2):
                sums[column] += result.scores[name]
            shared["counters"][worker] = len(steps)
        send(reports, {"kind": "epoch", "worker": worker, "steps": steps, "start": start, "stop": time.monotonic(),
                       "statistics": statistics(model)})


if __name__ == "__main__":
    main()

"""One dense HOGWILD! worker process: `python -m descend.hogwild.worker`, started by descend.hogwild.dense.

It reads its setup as one JSON line on stdin, opens the shared arrays, rebuilds the model on the
shared parameter buffer, and then runs one share of an epoch per "epoch" command, reporting each as
a JSON line on stdout. Anything else the model prints goes to stderr, so it cannot garble a report.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any, TextIO

import numpy as np


def main() -> None:
    """Serve the parent until it says stop (or closes the pipe)."""
    reports = sys.stdout
    sys.stdout = sys.stderr
    setup = json.loads(sys.stdin.readline())
    worker = setup["worker"]
    try:
        serve(setup, sys.stdin, reports)
    except BaseException as error:  # the parent raises it
        send(reports, {"kind": "error", "worker": worker, "class": type(error).__name__, "message": str(error),
                       "traceback": traceback.format_exc()})


def send(reports: TextIO, message: dict[str, Any]) -> None:
    reports.write(json.dumps(message) + "\n")
    reports.flush()


def serve(setup: dict[str, Any], commands: TextIO, reports: TextIO) -> None:
    """Rebuild the model on the shared buffer, then train one share per epoch command."""
    from descend.hogwild.dense import module_state, restore_module_state
    from descend.hogwild.workers import epoch_shares
    from descend.memory import reuse_freed_memory
    from descend.nn.module import build_module
    from descend.optim import build_optimizer
    from descend.train import History, TrainingState, _check_finite_step, _seed_module_generators, make_step
    from descend.train import clip_gradients

    reuse_freed_memory()
    folder, worker, workers = Path(setup["folder"]), setup["worker"], setup["workers"]
    # plain ndarray views of the mappings: np.memmap's subclass hooks would run on every operation of every step
    shared = {name: np.asarray(np.load(folder / f"{name}.npy", mmap_mode="r+")) for name in ("params", "state", "counters")}
    x, y = (np.asarray(np.load(folder / f"{name}.npy", mmap_mode="r")) for name in ("x", "y"))
    model = build_module(setup["model"]).astype(np.dtype(setup["dtype"]))
    restore_module_state(model, setup["module_state"])
    loss_fn = build_module(setup["loss"])
    buffer = model.flat_buffer()
    buffer.rebind(shared["params"])  # every parameter is now a view of the shared buffer
    optimizer = build_optimizer(setup["optimizer"], model.parameters())
    for index, name in enumerate(setup["state_names"]):
        optimizer.state[name] = shared["state"][worker, index]
    optimizer.iterations = setup["iterations"] + worker
    step = make_step(model, loss_fn)
    state = TrainingState(model, loss_fn, optimizer, History())
    batch_size, seed, clipping = setup["batch_size"], setup["seed"], (setup["clip_grad_norm"], setup["clip_grad_value"])
    send(reports, {"kind": "ready", "worker": worker})
    model.train()
    for line in commands:
        command = json.loads(line)
        if command["command"] == "stop":
            break
        epoch = command["epoch"]
        _seed_module_generators(model, [seed, epoch, worker])
        share = epoch_shares(len(x), workers, seed, epoch)[worker]
        start = time.monotonic()
        loss_sum, correct_sum, seen, steps = 0.0, 0.0, 0, 0
        state.epoch = epoch
        for begin in range(0, len(share), batch_size):
            rows = np.sort(share[begin : begin + batch_size])  # in order: the gather reads memory forwards
            loss, grads, correct = step(buffer.data, x[rows], y[rows])
            state.step += 1
            _check_finite_step(model, loss, grads, state)
            clip_gradients(grads, *clipping)
            optimizer.step()  # straight into the shared buffer, no lock
            optimizer.iterations += workers - 1  # the schedule follows the run's total number of updates
            loss_sum += loss * len(rows)
            seen += len(rows)
            steps += 1
            correct_sum = None if correct is None or correct_sum is None else correct_sum + correct
            shared["counters"][worker] = steps
        send(reports, {"kind": "epoch", "worker": worker, "loss_sum": loss_sum, "correct": correct_sum,
                       "seen": seen, "steps": steps, "start": start, "stop": time.monotonic(),
                       "module_state": module_state(model)})


if __name__ == "__main__":
    main()

"""The dense HOGWILD! engine: any descend model, trained by worker processes on one shared parameter buffer.

Why processes here and threads for the sparse models: a dense step runs Python (the model's forward,
the tape, the optimizer), which holds the GIL, so threads would take turns. Each worker is a process
with one BLAS thread; the model's flat parameter buffer (DESIGN.md) lives in shared memory, every
worker's parameters are views of it, and each worker's optimizer writes its updates straight into it
with no lock. The training data sits in shared memory too, read by all without copies.

Each epoch shuffles the rows with a generator keyed by (seed, epoch), gives each worker a contiguous
share, and each worker cuts its share into minibatches. A worker keeps its own gradient buffer and
optimizer state (momentum, Adam's moments); its step counter advances by the number of workers per
step, so a learning-rate schedule follows the run's total number of updates. The parent process
validates after each epoch on the live shared weights, keeps the History, runs the callbacks and
draws the progress bar from counters the workers write after every step.

A worker is a fresh interpreter (`python -m descend.hogwild.worker`): safe whatever threads the
parent runs (forking a process with BLAS or torch threads can deadlock), and no need for the
caller's script to guard its top level as multiprocessing's spawn would. The shared arrays are
memory-mapped .npy files in /dev/shm (RAM) where it exists; the worker rebuilds the model, loss and
optimizer from their JSON descriptions; parent and workers talk in JSON lines over pipes. No model
or object is pickled.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from descend import errors
from descend.errors import DescendError
from descend.hogwild.workers import Span, check_workers

_POLL_SECONDS = 0.1  # how often the parent looks at the workers' step counters while it waits
_START_SECONDS = 120.0  # a worker that has not started by then (imports, shared memory) is reported


def _shared_folder() -> Path:
    """A fresh folder for the shared arrays: in RAM (/dev/shm) on Linux, the temporary folder elsewhere."""
    ram = Path("/dev/shm")
    return Path(tempfile.mkdtemp(prefix="descend-hogwild-", dir=ram if ram.is_dir() else None))


def _share(folder: Path, name: str, like: np.ndarray) -> np.ndarray:
    """A memory-mapped copy of `like` that other processes open by its path."""
    mapped = np.lib.format.open_memmap(folder / f"{name}.npy", mode="w+", dtype=like.dtype, shape=like.shape)
    mapped[...] = like
    return np.asarray(mapped)  # a plain ndarray view: np.memmap's subclass hooks would slow every operation


def fit_hogwild(
    model: Any,
    loss_fn: Any,
    optimizer: Any,
    x: np.ndarray,
    y: np.ndarray,
    epochs: int,
    batch_size: int,
    workers: int = 2,
    seed: int | None = 0,
    validation: Any = None,
    callbacks: Sequence[Any] = (),
    progress: Any = False,
    clip_grad_norm: float | None = None,
    clip_grad_value: float | None = None,
    threads_per_worker: int = 1,
) -> Any:
    """Train `model` with `workers` lock-free processes; returns a History like `fit`'s.

    x (N, ...) and y (N, ...) are the checked training arrays (fit prepares them). Each epoch's record
    holds loss and accuracy (over all workers' minibatches), the val_ metrics, lr and seconds;
    `history.worker_spans[e]` says when each worker ran in epoch e (time.monotonic seconds).
    Callbacks get on_train_begin, on_epoch_end and on_train_end (the batches run in other processes).
    Modules' running statistics (batch norm) are worker 0's after each epoch; the optimizer's state
    (momentum, moments) is the mean of the workers' at the end.
    """
    from descend.nn.module import module_spec
    from descend.train import History, TrainingState, _progress_bar, end_epoch, evaluate

    workers = check_workers(workers)
    if seed is None:  # the workers must cut the same permutation: draw one seed for them all
        seed = int(np.random.default_rng().integers(2**62))
    buffer = model.flat_buffer()
    bounds = [len(x) * k // workers for k in range(workers + 1)]
    steps_per_epoch = sum(-(-(stop - start) // batch_size) for start, stop in zip(bounds[:-1], bounds[1:]))
    history = History()
    state = TrainingState(model, loss_fn, optimizer, history)
    bar = _progress_bar(progress, steps_per_epoch, epochs)
    everyone = [*([bar] if bar else []), *callbacks]
    state_names = sorted(optimizer.state)
    folder = _shared_folder()
    original_data = buffer.data
    pool = None
    try:
        # the parent's parameters become views of the shared buffer too: it validates on the live weights
        buffer.rebind(_share(folder, "params", buffer.data), buffer.grad)
        _share(folder, "x", x)
        _share(folder, "y", y)
        states = np.stack([optimizer.state[name] for name in state_names]) if state_names else np.zeros((0, buffer.size))
        shared_state = _share(folder, "state", np.stack([states.astype(buffer.dtype)] * workers))
        counters = _share(folder, "counters", np.zeros(workers, dtype=np.int64))
        setup = {
            "folder": str(folder), "model": module_spec(model), "loss": module_spec(loss_fn),
            "optimizer": optimizer.describe(), "dtype": buffer.dtype.str, "state_names": state_names,
            "workers": workers, "batch_size": batch_size, "seed": seed, "clip_grad_norm": clip_grad_norm,
            "clip_grad_value": clip_grad_value, "iterations": optimizer.iterations,
            "module_state": module_state(model),
        }
        pool = _Pool(workers, threads_per_worker, setup)
        pool.collect("ready", _START_SECONDS)
        for callback in everyone:
            callback.on_train_begin(state)
        model.train()
        for epoch in range(1, epochs + 1):
            state.epoch = epoch
            started = time.perf_counter()
            if bar:
                bar.start_epoch(epoch)
            counters[:] = 0
            pool.tell({"command": "epoch", "epoch": epoch})
            done = pool.collect("epoch", None, lambda: bar and bar.advance_to(int(counters.sum())))
            seen = sum(message["seen"] for message in done)
            record = {"epoch": epoch, "loss": sum(message["loss_sum"] for message in done) / seen}
            if all(message["correct"] is not None for message in done):
                record["accuracy"] = sum(message["correct"] for message in done) / seen
            steps = sum(message["steps"] for message in done)
            state.step += steps
            optimizer.iterations += steps
            restore_module_state(model, done[0]["module_state"])  # running statistics: worker 0's
            if validation is not None:
                record.update({f"val_{k}": v for k, v in evaluate(model, loss_fn, validation).items()})
            record["lr"] = float(optimizer.lr)
            history.worker_spans.append([Span(m["worker"], m["start"], m["stop"]) for m in done])
            if end_epoch(state, record, started, everyone):
                break
        for index, name in enumerate(state_names):  # one optimizer state for the parent: the workers' mean
            optimizer.state[name][...] = shared_state[:, index].mean(axis=0)
        for callback in everyone:
            callback.on_train_end(state)
    finally:
        if pool is not None:
            pool.close()
        trained = np.array(buffer.data)
        buffer.rebind(original_data, buffer.grad)
        buffer.data[...] = trained
        shutil.rmtree(folder, ignore_errors=True)
    return history


class _Pool:
    """The worker processes, and the JSON lines to and from them (setup, commands, reports)."""

    def __init__(self, workers: int, threads: int, setup: dict[str, Any]):
        environment = dict(os.environ)
        for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # read when NumPy loads
            environment[variable] = str(threads)
        self.processes = [
            subprocess.Popen([sys.executable, "-m", "descend.hogwild.worker"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, env=environment, text=True, bufsize=1)
            for _ in range(workers)
        ]
        self.selector = selectors.DefaultSelector()
        for k, process in enumerate(self.processes):
            self.selector.register(process.stdout, selectors.EVENT_READ, k)
            process.stdin.write(json.dumps({**setup, "worker": k}) + "\n")
            process.stdin.flush()

    def tell(self, command: dict[str, Any]) -> None:
        for process in self.processes:
            process.stdin.write(json.dumps(command) + "\n")
            process.stdin.flush()

    def collect(self, kind: str, timeout: float | None, while_waiting: Any = None) -> list[dict[str, Any]]:
        """One message of `kind` from every worker, in worker order; a worker's error is raised here."""
        received: dict[int, dict[str, Any]] = {}
        waited = 0.0
        while len(received) < len(self.processes):
            events = self.selector.select(timeout=_POLL_SECONDS)
            if not events:
                waited += _POLL_SECONDS
                if while_waiting is not None:
                    while_waiting()
                if timeout is not None and waited > timeout:
                    raise DescendError(f"HOGWILD! workers did not report '{kind}' within {timeout:.0f} s")
                continue
            for key, _ in events:
                line = key.fileobj.readline()
                if not line:
                    code = self.processes[key.data].wait()
                    raise DescendError(f"HOGWILD! worker {key.data} ended (exit code {code}) before reporting '{kind}'")
                message = json.loads(line)
                if message["kind"] == "error":
                    raise _worker_error(message)
                received[message["worker"]] = message
        if while_waiting is not None:
            while_waiting()
        return [received[k] for k in sorted(received)]

    def close(self) -> None:
        for process in self.processes:
            try:
                process.stdin.write(json.dumps({"command": "stop"}) + "\n")
                process.stdin.close()
            except (BrokenPipeError, OSError):
                pass
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            process.stdout.close()
        self.selector.close()


def _worker_error(message: dict[str, Any]) -> Exception:
    """The worker's error as the same descend error class where it is one, else with its traceback."""
    error_class = getattr(errors, message["class"], None)
    if isinstance(error_class, type) and issubclass(error_class, DescendError):
        return error_class(f"in HOGWILD! worker {message['worker']}: {message['message']}")
    return DescendError(f"HOGWILD! worker {message['worker']} failed:\n{message['traceback']}")


def module_state(model: Any) -> dict[str, Any]:
    """JSON-ready: the non-trained arrays of every module (batch norm's running statistics) by module index."""
    return {f"{index}.{name}": {"values": np.asarray(getattr(module, name)).tolist(),
                                "dtype": np.asarray(getattr(module, name)).dtype.str}
            for index, module in enumerate(model.modules()) for name in module.state}


def restore_module_state(model: Any, saved: dict[str, Any]) -> None:
    """Write `module_state` output back into the model's arrays, in place."""
    for index, module in enumerate(model.modules()):
        for name in module.state:
            entry = saved[f"{index}.{name}"]
            getattr(module, name)[...] = np.asarray(entry["values"], dtype=np.dtype(entry["dtype"]))

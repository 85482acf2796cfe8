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
from pathlib import Path
from typing import Any

import numpy as np

from descend import errors
from descend.errors import DescendError
from descend.hogwild.workers import Span, check_workers
from descend.nn.module import Module, module_spec
from descend.training.evaluate import evaluate
from descend.training.metrics import metric_names
from descend.training.loop import History, Run, TrainingState, progress_bar
from descend.training.step import ModelSnapshot, TrainingJob, job_arrays, run_seed

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


def run(job: TrainingJob) -> History:
    """Train `job.model` with `job.options["workers"]` lock-free processes; returns a History like the local engine's.

    Each epoch's record holds loss and accuracy (over all workers' minibatches), the val_ metrics, lr
    (the rate of the epoch's last update) and seconds; `history.worker_spans[e]` says when each
    worker ran in epoch e (time.monotonic seconds). The batches run in other processes, so the
    callbacks' on_batch_end calls come when the epoch's workers report, one per step in the order
    of the run's updates. Modules' running statistics (batch norm) are worker 0's after each epoch;
    the optimizer's state (momentum, moments) is the mean of the workers' at the end.
    """
    model, loss_fn, optimizer = job.model, job.loss_fn, job.optimizer
    x, y, validation = job_arrays(job)
    workers = check_workers(job.options["workers"])
    seed = run_seed(job.seed, optimizer.iterations)  # the workers must cut the same permutation: one seed for all
    buffer = model.flat_buffer()
    bounds = [len(x) * k // workers for k in range(workers + 1)]
    steps_per_epoch = sum(-(-(stop - start) // job.batch_size) for start, stop in zip(bounds[:-1], bounds[1:]))
    state = TrainingState(model, loss_fn, optimizer, History())
    training = Run(state, job.callbacks, progress_bar(job.progress, steps_per_epoch, job.epochs))
    state_names = sorted(optimizer.state)
    folder = _shared_folder()
    original_data = buffer.data
    pool = _Pool()
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
            "workers": workers, "batch_size": job.batch_size, "seed": seed,
            "clip_grad_norm": job.clipping.max_norm, "clip_grad_value": job.clipping.max_value,
            "iterations": optimizer.iterations, "statistics": statistics(model),
            "metrics": metric_names(job.metrics, "hogwild"),
        }
        pool.start(workers, setup)
        pool.collect("ready", _START_SECONDS)
        training.begin()
        model.train()
        for epoch in range(1, job.epochs + 1):
            training.start_epoch(epoch)
            counters[:] = 0
            pool.tell({"command": "epoch", "epoch": epoch, "epochs_ended": optimizer.epochs})
            done = pool.collect("epoch", None, lambda: training.bar and training.bar.advance_to(int(counters.sum())))
            steps = sorted(step for message in done for step in message["steps"])
            for iteration, loss, scores, rows in steps:  # a step's rate follows from its place in the run
                training.step_done(loss, scores, rows, optimizer.lr_at(iteration))
            optimizer.iterations += len(steps)
            restore_statistics(model, done[0]["statistics"])  # running statistics: worker 0's
            state.history.worker_spans.append([Span(m["worker"], m["start"], m["stop"]) for m in done])
            if training.end_epoch(None if validation is None else evaluate(model, loss_fn, validation,
                                                                                  metrics=job.metrics)):
                break
        for index, name in enumerate(state_names):  # one optimizer state for the parent: the workers' mean
            optimizer.state[name][...] = shared_state[:, index].mean(axis=0)
        training.end()
    except BaseException:
        pool.close(abort=True)  # the other workers stop writing into the buffer before it is copied back
        raise
    else:
        pool.close()
    finally:
        trained = np.array(buffer.data)
        buffer.rebind(original_data, buffer.grad)
        buffer.data[...] = trained
        shutil.rmtree(folder, ignore_errors=True)
    return state.history


class _Pool:
    """The worker processes, and the JSON lines to and from them (setup, commands, reports)."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen] = []
        self.selector = selectors.DefaultSelector()

    def start(self, workers: int, setup: dict[str, Any]) -> None:
        """Start `workers` processes, each with one BLAS thread and one kernel thread (the workers are the
        parallelism), and send each its setup; one that fails to start leaves the others to `close`."""
        environment = dict(os.environ)
        # read when NumPy and numba load: BLAS's threads, and the compiled kernels' (descend.kernels)
        for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
            environment[variable] = "1"
        for k in range(workers):
            process = subprocess.Popen([sys.executable, "-m", "descend.hogwild.worker"], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, env=environment, text=True, bufsize=1)
            self.processes.append(process)
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

    def close(self, abort: bool = False) -> None:
        """Tell every worker to stop and wait for it; with `abort` (the run failed), kill them at once."""
        for process in self.processes:
            try:
                if not abort:
                    process.stdin.write(json.dumps({"command": "stop"}) + "\n")
                process.stdin.close()
            except (BrokenPipeError, OSError):
                pass
        for process in self.processes:
            if abort:
                process.kill()
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


def statistics(model: Module) -> dict[str, Any]:
    """JSON-ready: the model's running statistics (batch norm), as a ModelSnapshot keys them."""
    return {key: {"values": values.tolist(), "dtype": values.dtype.str}
            for key, values in ModelSnapshot.take(model, weights=False).statistics.items()}


def restore_statistics(model: Module, saved: dict[str, Any]) -> None:
    """Put the running statistics that `statistics` described back into the model."""
    arrays = {key: np.asarray(entry["values"], dtype=np.dtype(entry["dtype"])) for key, entry in saved.items()}
    ModelSnapshot(statistics=arrays).restore(model)

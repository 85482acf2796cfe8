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
memory-mapped .npy files in /dev/shm (RAM) where it exists, unlinked as soon as every worker has
mapped them (a folder left by a parent killed before that is removed at the next run's start); a
worker dies with its parent (Linux's parent-death signal), so a killed run leaves neither process
nor file. The worker rebuilds the model, loss and optimizer from their JSON descriptions; parent
and workers talk in JSON lines over pipes. No model or object is pickled.
"""

from __future__ import annotations

import copy
import json
import os
import selectors
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from descend import errors
from descend.checkpoint import Checkpoints, fingerprint, resume_run
from descend.errors import CheckpointError, DescendError
from descend.hogwild.workers import Span, check_workers
from descend.nn.module import Module, module_spec
from descend.training.evaluate import evaluate
from descend.training.metrics import metric_names, resolve_metrics
from descend.training.loop import History, Run, TrainingState, progress_bar
from descend.training.step import ModelSnapshot, TrainingJob, job_arrays, run_seed

_POLL_SECONDS = 0.1  # how often the parent looks at the workers' step counters while it waits
_START_SECONDS = 120.0  # a worker that has not started by then (imports, shared memory) is reported
_FOLDER_PREFIX = "descend-hogwild-"  # then the parent's process id: a folder whose process is gone is an orphan


def _shared_folder() -> Path:
    """A fresh folder for the shared arrays, named by this process's id: in RAM (/dev/shm) on Linux, the temporary
    folder elsewhere."""
    return Path(tempfile.mkdtemp(prefix=f"{_FOLDER_PREFIX}{os.getpid()}-", dir=_shared_root()))


def _shared_root() -> Path | None:
    ram = Path("/dev/shm")
    return ram if ram.is_dir() else None


def remove_orphaned_folders() -> list[Path]:
    """Remove the shared folders of runs whose process is gone (a parent killed before its workers had mapped the
    arrays, after which the folder is unlinked at once); returns those removed. Only this user's folders are
    touched, and never through a link."""
    root = Path(_shared_root() or tempfile.gettempdir())
    removed = []
    for path in root.glob(f"{_FOLDER_PREFIX}*-*"):
        owner = path.name[len(_FOLDER_PREFIX):].split("-", 1)[0]
        try:
            status = path.lstat()
        except OSError:
            continue
        if not owner.isdigit() or not stat.S_ISDIR(status.st_mode) or status.st_uid != os.getuid():
            continue
        if not _process_alive(int(owner)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process, or no process id at all
        return pid < 2**22
    return True


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

    With `job.checkpoint`, the parent writes a checkpoint at the end of every epoch, or every N steps
    (copied from the shared buffer while the workers go on), holding each worker's optimizer state and
    its minibatches done in the epoch; a resumed run goes on from there.
    """
    model, loss_fn, optimizer = job.model, job.loss_fn, job.optimizer
    x, y, validation = job_arrays(job)
    workers = check_workers(job.options["workers"])
    remove_orphaned_folders()
    # the workers must cut the same permutations: one seed for all, kept by a checkpoint as this generator's state
    rng = np.random.default_rng(run_seed(job.seed, optimizer.iterations))
    buffer = model.flat_buffer()
    bounds = [len(x) * k // workers for k in range(workers + 1)]
    batches = np.array([-(-(stop - start) // job.batch_size) for start, stop in zip(bounds[:-1], bounds[1:])])
    state = TrainingState(model, loss_fn, optimizer, History())
    training = Run(state, job.callbacks, progress_bar(job.progress, int(batches.sum()), job.epochs))
    state_names = sorted(optimizer.state)
    score_names = [metric.name for metric in resolve_metrics(job.metrics, loss_fn)]
    settings = {"engine": "hogwild", "workers": workers, "batch_size": job.batch_size, "seed": job.seed,
                "data": fingerprint(x, y)}
    checkpoints, found = resume_run(job, training, rng, settings, "fit")
    seed = _seed_of(rng)
    states = np.stack([optimizer.state[name] for name in state_names]) if state_names else np.zeros((0, buffer.size))
    worker_states = np.stack([states.astype(buffer.dtype)] * workers)
    batches_done = np.zeros(workers, dtype=np.int64)
    if found is not None:
        worker_states, batches_done = _resumed_workers(found, worker_states, batches, training.tally.epoch_done)
    folder = _shared_folder()
    original_data = buffer.data
    pool = _Pool()
    try:
        # the parent's parameters become views of the shared buffer too: it validates on the live weights
        buffer.rebind(_share(folder, "params", buffer.data), buffer.grad)
        _share(folder, "x", x)
        _share(folder, "y", y)
        shared = {"state": _share(folder, "state", worker_states),
                  "counters": _share(folder, "counters", np.zeros(workers, dtype=np.int64)),
                  "sums": _share(folder, "sums", np.zeros((workers, 2 + len(score_names))))}
        setup = {
            "folder": str(folder), "model": module_spec(model), "loss": module_spec(loss_fn),
            "optimizer": optimizer.describe(), "dtype": buffer.dtype.str, "state_names": state_names,
            "workers": workers, "batch_size": job.batch_size, "seed": seed,
            "clip_grad_norm": job.clipping.max_norm, "clip_grad_value": job.clipping.max_value,
            "iterations": optimizer.iterations, "statistics": statistics(model),
            "metrics": metric_names(job.metrics, "hogwild"), "score_names": score_names, "parent": os.getpid(),
        }
        pool.start(workers, setup)
        pool.collect("ready", _START_SECONDS)
        shutil.rmtree(folder, ignore_errors=True)  # every worker has mapped the arrays: a killed run leaves no file
        snapshots = _Snapshots(checkpoints, training, rng, shared, score_names)
        model.train()
        tally = training.tally
        for epoch in range(tally.epoch + 1 if tally.epoch_done else tally.epoch, job.epochs + 1):
            if state.stop:
                break
            fresh = tally.epoch_done
            training.start_epoch(epoch, rng, fresh=fresh)
            snapshots.skipped = np.zeros(workers, dtype=np.int64) if fresh else batches_done
            shared["counters"][:] = 0
            shared["sums"][:] = 0.0
            pool.tell({"command": "epoch", "epoch": epoch, "epochs_ended": optimizer.epochs,
                       "skip": snapshots.skipped.tolist()})
            done = pool.collect("epoch", None, snapshots.while_waiting)
            steps = sorted(step for message in done for step in message["steps"])
            for iteration, loss, scores, rows in steps:  # a step's rate follows from its place in the run
                training.step_done(loss, scores, rows, optimizer.lr_at(iteration))
            optimizer.iterations += len(steps)
            restore_statistics(model, done[0]["statistics"])  # running statistics: worker 0's
            state.history.worker_spans.append([Span(m["worker"], m["start"], m["stop"]) for m in done])
            stop = training.end_epoch(None if validation is None else evaluate(model, loss_fn, validation,
                                                                                metrics=job.metrics))
            snapshots.skipped = np.zeros(workers, dtype=np.int64)
            if checkpoints is not None and (checkpoints.every == "epoch" or epoch == job.epochs or stop
                                            or checkpoints.due(state.step, since=snapshots.written_at)):
                snapshots.write(np.zeros(workers, dtype=np.int64))
        _mean_state(optimizer, state_names, shared["state"])
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


def _seed_of(rng: np.random.Generator) -> int:
    """The integer seed of the workers' permutations and dropout masks, drawn from a copy of `rng` (which a
    checkpoint keeps as it was at the run's start)."""
    twin = np.random.default_rng()
    twin.bit_generator.state = rng.bit_generator.state
    return int(twin.integers(2**62))


def _mean_state(optimizer: Any, state_names: list[str], worker_states: np.ndarray) -> None:
    """One optimizer state for the parent: the workers' mean."""
    for index, name in enumerate(state_names):
        optimizer.state[name][...] = worker_states[:, index].mean(axis=0)


def _resumed_workers(found: Any, like: np.ndarray, batches: np.ndarray, epoch_done: bool) -> tuple[np.ndarray, np.ndarray]:
    """The workers' optimizer states and minibatches done in the epoch from the checkpoint `found`, checked against
    this run (`like`: the states' shape and dtype; `batches`: each worker's minibatches per epoch)."""
    states, done = found.tensors.get("engine/worker_states"), found.tensors.get("engine/batches_done")
    if states is None or states.shape != like.shape or states.dtype != like.dtype:
        raise CheckpointError(f"{found.path}: its engine/worker_states are "
                              f"{'missing' if states is None else f'{states.dtype} {states.shape}'}; this HOGWILD! "
                              f"run needs {like.dtype} {like.shape} (workers, optimizer states, parameters)")
    if (done is None or done.shape != batches.shape or done.dtype.kind != "i" or (done < 0).any()
            or (done > batches).any() or epoch_done and done.any()):
        raise CheckpointError(f"{found.path}: its engine/batches_done are {None if done is None else done.tolist()}; "
                              f"expected each worker's minibatches done in the epoch, at most {batches.tolist()}"
                              + (", all 0 as the epoch is done" if epoch_done else ""))
    return states, done.astype(np.int64)


class _Snapshots:
    """The parent's checkpoints of a HOGWILD! run: at the end of an epoch, or every N steps while the workers run,
    copied from the shared buffer (the workers go on writing: the copy holds at least the steps counted)."""

    def __init__(self, checkpoints: Checkpoints | None, training: Run, rng: np.random.Generator,
                 shared: dict[str, np.ndarray], score_names: list[str]):
        self.checkpoints, self.training, self.rng, self.shared = checkpoints, training, rng, shared
        self.score_names = score_names
        #: each worker's minibatches of the epoch done before its workers began (a resumed epoch)
        self.skipped = np.zeros(len(shared["counters"]), dtype=np.int64)
        self.written_at = training.state.step

    def while_waiting(self) -> None:
        """While the workers run: move the bar, and write a checkpoint when N more steps are done."""
        done = int(self.shared["counters"].sum())
        if self.training.bar:
            self.training.bar.advance_to(int(self.skipped.sum()) + done)
        steps = self.training.state.step + done
        if self.checkpoints is not None and self.checkpoints.due(steps, since=self.written_at):
            self.write(self.shared["counters"].copy())

    def write(self, counted: np.ndarray) -> None:
        """A checkpoint of the run with `counted` steps per worker done in the epoch beyond those the parent has
        counted (the workers' counters; zeros at an epoch's end)."""
        training, optimizer = self.training, self.training.state.optimizer
        sums = self.shared["sums"].copy() if counted.any() else np.zeros_like(self.shared["sums"])
        tally = copy.deepcopy(training.tally)
        steps = int(counted.sum())
        if steps:
            tally.batch += steps
            tally.loss_sum += float(sums[:, 0].sum())
            tally.seen += int(sums[:, 1].sum())
            if tally.score_sums is not None and self.score_names:
                for column, name in enumerate(self.score_names, start=2):
                    tally.score_sums[name] = tally.score_sums.get(name, 0.0) + float(sums[:, column].sum())
            else:
                tally.score_sums = None
            tally.lr = optimizer.lr_at(optimizer.iterations + steps - 1)
        worker_states = self.shared["state"].copy()
        state = TrainingState(training.state.model, training.state.loss_fn, optimizer, training.state.history)
        state.step, state.stop = training.state.step + steps, training.state.stop
        counted_iterations = optimizer.iterations
        _mean_state(optimizer, sorted(optimizer.state), worker_states)
        optimizer.iterations += steps
        try:
            self.checkpoints.write(state.model, optimizer, state, tally, self.rng, training.callbacks,
                                   engine_arrays={"worker_states": worker_states,
                                                  "batches_done": self.skipped + counted})
        finally:
            optimizer.iterations = counted_iterations
        self.written_at = state.step


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

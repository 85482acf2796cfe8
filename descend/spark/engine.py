"""fit_spark: data-parallel SGD over a Spark DataFrame, with the same model, loss and optimizer as `fit`.

Two ways to keep the partitions' models together:

- sync="gradient": every step broadcasts the flat parameter buffer; each partition computes the
  gradient summed over its rows of the global minibatch (the same minibatches the local engine
  draws); the driver adds the partitions' sums in partition order, divides by the batch size and
  applies the optimizer. N steps give the local engine's weights (for a model without dropout: a
  task draws its dropout masks from a generator keyed by the seed, the step and its partition, so
  runs repeat, but not the local engine's masks).
- sync="average": each round broadcasts the weights and optimizer state; each partition runs
  `sync_every` local steps on its own rows, then the driver averages weights and state (the
  model averaging of H2O and Elephas). Far fewer jobs, so far faster on a cluster.

Determinism under retries: a task's randomness is keyed by (seed, round, partition), and results are
combined in partition order, never arrival order, so a retried task changes nothing, bit for bit.
The lineage stays fixed: every job reads the one cached RDD of row counts, the weights live on the
driver, and each round's broadcast is destroyed when the round is done.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from descend.checkpoint import Checkpoints, resume_run
from descend.checks import check_integer, naming_arguments
from descend.data import batches
from descend.errors import DescendError, DescendTypeError, DescendValueError
from descend.nn.losses import CLASS_LABEL_LOSSES
from descend.nn.module import Module
from descend.optim.optimizer import Optimizer
from descend.spark.blocks import Blocks, make_blocks
from descend.training.loop import Callback, History, Run, TrainingState, progress_bar
from descend.training.step import (
    Clipping, StepFunction, TrainingJob, check_optimizer_holds, checked_checkpoint, make_step, run_seed,
    seed_module_generators, train_on_batch,
)
from descend.training.metrics import metric_names, resolve_metrics, score_batch

SYNCS = ("gradient", "average")
#: the oldest Spark that fit_spark is tested on (mapInPandas, pandas UDFs over Arrow, Java 17)
SUPPORTED_SPARK = (3, 5)

#: on each executor's Python worker: run key -> (model, loss, step function), rebuilt once per run
_MODELS: dict[str, tuple[Module, Module, StepFunction]] = {}


@dataclass(frozen=True)
class TaskInfo:
    """What a training task is: the round (a step for sync="gradient"), the partition and Spark's attempt number."""

    round: int
    partition: int
    attempt: int


def _executor_model(setup: dict[str, Any]) -> tuple[Module, Module, StepFunction]:
    from descend.nn.module import build_module

    found = _MODELS.get(setup["key"])
    if found is None:
        from descend import kernels

        kernels.set_threads(1)  # Spark runs a task per core: its kernels and BLAS get one thread each
        _MODELS.clear()  # one run at a time per worker: let an earlier run's model go
        model = build_module(json.loads(setup["model"])).astype(np.dtype(setup["dtype"]))
        loss_fn = build_module(json.loads(setup["loss"]))
        found = _MODELS[setup["key"]] = (model, loss_fn, make_step(model, loss_fn, setup["metrics"]))
    return found


def _inputs(x: np.ndarray, y: Any, model: Module) -> tuple[np.ndarray, Any]:
    return (x, x) if model.target_is_input else (x, y)


def _run_hook(hook: Callable[[TaskInfo], None] | None, round_index: int, partition: int) -> None:
    if hook is not None:
        from pyspark import TaskContext

        hook(TaskInfo(round_index, partition, TaskContext.get().attemptNumber()))


@naming_arguments
def fit_spark(
    model: Module,
    loss_fn: Module,
    optimizer: Optimizer,
    df: Any,
    features: str = "features",
    label: str | None = "label",
    epochs: int = 1,
    batch_size: int = 128,
    sync: str = "average",
    sync_every: int = 50,
    seed: int = 0,
    clip_grad_norm: float | None = None,
    clip_grad_value: float | None = None,
    validation: Any = None,
    callbacks: Sequence[Callback] = (),
    task_hook: Callable[[TaskInfo], None] | None = None,
    metrics: Sequence[Any] | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int | str = "epoch",
    resume: bool = False,
) -> History:
    """Train `model` on the rows of `df` (features: vector or array<float> column; label: class index or target).

    Returns a History like `fit`'s (loss, the `metrics` as fit names them, by default accuracy for classifiers;
    val_ ones when `validation`, a DataFrame of the same columns, is given; lr, the rate of the epoch's last
    step; seconds) with
    `history.driver_bytes`, what the executors sent the driver per epoch. An autoencoder
    (target_is_input) needs no label column. `task_hook(TaskInfo)` runs at the start of every
    training task (instrumentation, fault injection). Callbacks see one on_batch_end per step of the
    driver's model: each minibatch with sync="gradient"; each round's j-th local step, averaged over
    the partitions, with sync="average".

    With `checkpoint` (a folder) the driver writes the run's whole state there (weights, optimizer state,
    the epoch and the steps done in it, the History, the callbacks) at the end of every epoch, or with
    `checkpoint_every=N` after the step (sync="gradient") or the round (sync="average") that reaches each
    multiple of N steps. A driver that dies goes on with `resume=True` from the newest checkpoint, to the
    bits an uninterrupted run reaches, on the same data in the same partitions.
    """
    checkpoint, checkpoint_every = checked_checkpoint(checkpoint, checkpoint_every, resume, "fit_spark")
    job = TrainingJob(model, loss_fn, optimizer, df, validation=validation, epochs=epochs, batch_size=batch_size,
                      seed=seed, callbacks=callbacks, progress=False, metrics=metrics,
                      clipping=Clipping(clip_grad_norm, clip_grad_value),
                      checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                      resume=resume, options={"features": features, "label": label, "sync": sync, "sync_every": sync_every,
                               "task_hook": task_hook})
    return run(job)


def run(job: TrainingJob) -> History:
    """The Spark engine: train `job.model` on the DataFrame `job.train` (fit_spark's options in `job.options`)."""
    from descend.nn.module import module_spec

    model, loss_fn, optimizer, df = job.model, job.loss_fn, job.optimizer, job.train
    if not hasattr(df, "sparkSession"):
        raise DescendTypeError(f"the Spark engine trains on a Spark DataFrame; got train of type {type(df).__name__} "
                               "(descend.spark.to_dataframe makes one from arrays; engine='local' trains on them)")
    options = {"features": "features", "label": "label", "sync": "average", "sync_every": 50, "task_hook": None,
               **job.options}
    check_spark_version(df.sparkSession.version)
    sync = options["sync"]
    if sync not in SYNCS:
        raise DescendValueError(f"sync must be one of {', '.join(map(repr, SYNCS))}; got {sync!r}")
    sync_every = check_integer("sync_every", options["sync_every"], low=1)
    check_optimizer_holds(model, optimizer, "fit_spark")
    features, classes = options["features"], _classes(model, loss_fn)
    label = None if model.target_is_input else options["label"]
    width = input_width(model)
    check_executors_have_descend(df.sparkSession.sparkContext)
    if width is None:
        raise DescendValueError(f"fit_spark trains models whose first layer is dense (a row's features as one "
                                f"vector); this {type(model).__name__} begins with another layer")
    blocks = make_blocks(df, features, label, width, classes)
    held_out = None
    try:  # from here on, the blocks are released whatever happens
        if job.validation is not None:
            held_out = make_blocks(job.validation, features, label, width, classes, argument="validation")
        buffer = model.flat_buffer()
        setup = {"key": blocks.key, "model": json.dumps(module_spec(model)),
                 "loss": json.dumps(module_spec(loss_fn)), "dtype": buffer.dtype.str,
                 "metrics": metric_names(job.metrics, "spark")}
        context = df.sparkSession.sparkContext
        state = TrainingState(model, loss_fn, optimizer, History())
        if sync == "gradient":
            epoch_of = _GradientEpochs(context, blocks, setup, job, options["task_hook"])
        else:
            epoch_of = _AveragingEpochs(context, blocks, setup, job, sync_every,
                                        run_seed(job.seed, optimizer.iterations), options["task_hook"])
        training = Run(state, job.callbacks, progress_bar(job.progress, epoch_of.steps_per_epoch(), job.epochs))
        settings = {"engine": "spark", "sync": sync, "batch_size": job.batch_size, "seed": job.seed,
                    "partition_rows": ",".join(str(int(rows)) for rows in blocks.rows)}
        if sync == "average":
            settings["sync_every"] = sync_every
        checkpoints, _ = resume_run(job, training, epoch_of.rng, settings, "fit_spark")
        tally = training.tally
        for epoch in range(tally.epoch + 1 if tally.epoch_done else tally.epoch, job.epochs + 1):
            if state.stop:
                break
            fresh = tally.epoch_done
            if not fresh:  # resumed within this epoch: its order of minibatches again, the steps done skipped
                epoch_of.rng.bit_generator.state = tally.epoch_rng
            training.start_epoch(epoch, epoch_of.rng, fresh=fresh)
            state.history.driver_bytes.append(epoch_of.run(epoch, training, tally.batch, checkpoints))
            validation = None if held_out is None else evaluate_blocks(context, held_out, setup, model)
            stop = training.end_epoch(validation)
            if checkpoints is not None and (checkpoints.every == "epoch" or epoch == job.epochs or stop):
                checkpoints.write(model, optimizer, state, tally, epoch_of.rng, job.callbacks)
    finally:
        blocks.release()
        if held_out is not None:
            held_out.release()
    training.end()
    return state.history


def check_executors_have_descend(context: Any) -> None:
    """Refuse a cluster whose executors' Python cannot import this descend (one task that imports it), naming
    the Python they run (PYSPARK_PYTHON) and what it said: every training task would fail the same way."""
    from descend.version import __version__

    try:
        found = context.parallelize([0], 1).map(lambda _: __import__("descend.version").version.__version__).collect()
    except Exception as error:  # a task's ImportError reaches the driver as a Py4J or Python exception
        lines = [line.strip() for line in str(error).splitlines() if "Error" in line and "descend" in line]
        reason = lines[-1] if lines else type(error).__name__
        raise DescendError(f"the executors' Python ({context.pythonExec}, PYSPARK_PYTHON) cannot import descend: "
                           f"{reason[:300]}; install descend {__version__} there, or point PYSPARK_PYTHON at a Python "
                           "that has it") from None
    if found != [__version__]:
        raise DescendError(f"the executors' Python ({context.pythonExec}, PYSPARK_PYTHON) has descend {found[0]}, "
                           f"the driver {__version__}: install the same version on both")


def check_spark_version(version: str) -> None:
    """Refuse a Spark older than SUPPORTED_SPARK, naming both."""
    try:
        found = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        raise DescendValueError(f"cannot read the Spark version {version!r}") from None
    if found < SUPPORTED_SPARK:
        raise DescendValueError(f"Spark {version} is below the supported {'.'.join(map(str, SUPPORTED_SPARK))}; "
                                "upgrade pyspark and the cluster's Spark")


def _classes(model: Module, loss_fn: Module) -> int | None:
    """The classifier's class count (its output width) for the losses that take class labels; None otherwise."""
    return output_width(model) if isinstance(loss_fn, CLASS_LABEL_LOSSES) else None


def output_width(model: Any) -> int:
    """The model's outputs: the last weight's fan-out ((in, out) layout)."""
    last = [p for name, p in model.named_parameters() if name.endswith("weight")][-1]
    return int(last.shape[-1])


def input_width(model: Module) -> int | None:
    """The features a model of flat inputs takes: its first weight's fan-in ((in, out) layout); None when its
    first layer is not dense (the Spark front carries each row's features as one flat vector)."""
    first = next((p for name, p in model.named_parameters() if name.endswith("weight")), None)
    return int(first.shape[0]) if first is not None and first.ndim == 2 else None


class _GradientEpochs:
    """sync="gradient": the local engine's minibatches, each one Spark job summing the partitions' gradients."""

    def __init__(self, context: Any, blocks: Blocks, setup: dict[str, Any], job: TrainingJob,
                 hook: Callable[[TaskInfo], None] | None):
        self.context, self.blocks, self.setup, self.job, self.hook = context, blocks, setup, job, hook
        # the local engine's order of minibatches: a generator keyed by the seed and the step count
        self.rng = np.random.default_rng(None if job.seed is None else [job.seed, job.optimizer.iterations])
        #: keys each task's dropout masks by (seed, step, partition), whichever Python worker runs it
        self.seed = run_seed(job.seed, job.optimizer.iterations)

    def steps_per_epoch(self) -> int:
        """Minibatches per epoch."""
        return -(-self.blocks.n_rows // self.job.batch_size)

    def run(self, epoch: int, training: Run, done: int = 0, checkpoints: Checkpoints | None = None) -> int:
        """Train one epoch after its first `done` steps, reporting each step to `training` and writing the
        checkpoints due; the bytes the executors sent the driver."""
        buffer = self.job.model.flat_buffer()
        sent = 0

        def distributed_step(params: np.ndarray, rows: np.ndarray, _: Any) -> tuple[float, np.ndarray,
                                                                                    dict[str, float] | None]:
            """make_step's contract over the cluster: `params` are broadcast, `rows` are the minibatch's row
            numbers across the partitions, and the returned gradient is their mean."""
            nonlocal sent
            weights = self.context.broadcast(params)
            (loss_sum, grad_sum, scores, total_rows), received = self.blocks.total(
                _gradient_task(self.setup, self.blocks, weights, np.sort(rows), training.state.optimizer.iterations,
                               self.seed, self.hook))
            weights.destroy()
            sent += received
            buffer.grad[...] = grad_sum / total_rows
            return loss_sum / total_rows, buffer.grad, scores

        for rows in itertools.islice(batches(self.blocks.n_rows, self.job.batch_size, rng=self.rng), done, None):
            result = train_on_batch(training.state, distributed_step, buffer.data, rows, None,
                                    self.job.clipping)
            training.step_done(result.loss, result.scores, len(rows), result.lr)
            if checkpoints is not None and checkpoints.due(training.state.step):
                checkpoints.write(self.job.model, self.job.optimizer, training.state, training.tally, self.rng,
                                  self.job.callbacks)
        return sent


def _gradient_task(setup: dict[str, Any], blocks: Blocks, weights: Any, picked: np.ndarray, step_index: int,
                   seed: int, hook: Callable[[TaskInfo], None] | None) -> Callable[[int, np.ndarray, Any], Any]:
    """The task of one synchronous step: the gradient summed over this partition's rows of the minibatch."""
    offsets, sizes = blocks.offsets, blocks.rows

    def task(partition: int, x: np.ndarray, y: Any) -> tuple[float, np.ndarray | None, dict[str, float] | None, int]:
        _run_hook(hook, step_index, partition)
        mine = picked[(picked >= offsets[partition]) & (picked < offsets[partition] + sizes[partition])]
        if mine.size == 0:
            return 0.0, None, None, 0
        model_here, _, step = _executor_model(setup)
        model_here.train()  # the worker's cached model may come from evaluating the held-out blocks, in eval mode
        seed_module_generators(model_here, [seed, step_index, partition])
        x, y = _inputs(x, y, model_here)
        local = mine - offsets[partition]
        loss, grads, scores = step(weights.value, x[local], y[local])
        return loss * local.size, grads * local.size, scores, int(local.size)

    return task


class _AveragingEpochs:
    """sync="average": rounds of `sync_every` local steps on every partition, then the mean of weights and state."""

    def __init__(self, context: Any, blocks: Blocks, setup: dict[str, Any], job: TrainingJob, sync_every: int,
                 seed: int, hook: Callable[[TaskInfo], None] | None):
        self.context, self.blocks, self.setup, self.job, self.hook = context, blocks, setup, job, hook
        self.seed = seed
        # each task keys its own randomness by (seed, epoch, partition): the driver draws nothing, and this
        # generator only fills the checkpoint's field for the shuffling state
        self.rng = np.random.default_rng(seed)
        self.rows_per_round = sync_every * job.batch_size
        self.rounds = max(1, -(-max(blocks.rows) // self.rows_per_round))

    def round_shares(self, round_in_epoch: int) -> list[int]:
        """How many rows each partition trains on in a round (0 for one whose rows have run out)."""
        return [min(max(count - round_in_epoch * self.rows_per_round, 0), self.rows_per_round)
                for count in self.blocks.rows]

    def step_rows(self, round_in_epoch: int) -> list[int]:
        """The rows of each of a round's steps, over all partitions: the j-th step is every partition's j-th
        minibatch, and there are as many steps as the busiest partition has minibatches."""
        shares, batch_size = self.round_shares(round_in_epoch), self.job.batch_size
        steps = max(-(-share // batch_size) for share in shares)
        return [sum(min(batch_size, max(share - j * batch_size, 0)) for share in shares) for j in range(steps)]

    def steps_per_epoch(self) -> int:
        """The driver's steps per epoch: the rounds' steps added up."""
        return sum(len(self.step_rows(round_in_epoch)) for round_in_epoch in range(self.rounds))

    def run(self, epoch: int, training: Run, done: int = 0, checkpoints: Checkpoints | None = None) -> int:
        """Train one epoch after the rounds of its first `done` steps, reporting each of the averaged model's steps
        to `training` and writing the checkpoints due (at a round's end); the bytes sent the driver."""
        model, optimizer = self.job.model, self.job.optimizer
        buffer = model.flat_buffer()
        state_names = sorted(optimizer.state)
        sent = 0
        for round_in_epoch in range(self.rounds):
            step_rows = self.step_rows(round_in_epoch)
            if done >= len(step_rows):  # a round the run had done before its checkpoint
                done -= len(step_rows)
                continue
            busy = sum(share > 0 for share in self.round_shares(round_in_epoch))
            shared = self.context.broadcast((buffer.data, {name: optimizer.state[name] for name in state_names},
                                             optimizer.iterations, optimizer.epochs, training.state.step))
            task = _averaging_task(self.setup, optimizer.describe(), state_names, shared, epoch,
                                   (epoch - 1) * self.rounds + round_in_epoch, round_in_epoch, self.rows_per_round,
                                   len(step_rows), self.job.batch_size, self.job.clipping, self.seed, self.hook)
            (weights_sum, states_sum, loss_sums, score_sums), received = self.blocks.total(task)
            shared.destroy()
            sent += received
            buffer.data[...] = weights_sum / busy
            for name in state_names:
                optimizer.state[name][...] = states_sum[name] / busy
            first = optimizer.iterations
            optimizer.iterations += len(step_rows)
            for j, rows in enumerate(step_rows):  # the averaged model's j-th step: every partition's j-th minibatch
                scores = None if score_sums is None else {name: float(sums[j]) for name, sums in score_sums.items()}
                training.step_done(loss_sums[j] / rows, scores, rows,
                                   optimizer.lr_at(first + j))
            step = training.state.step
            if checkpoints is not None and checkpoints.due(step, since=step - len(step_rows)):
                checkpoints.write(model, optimizer, training.state, training.tally, self.rng, self.job.callbacks)
        return sent


def _averaging_task(setup: dict[str, Any], description: dict[str, Any], state_names: list[str], shared: Any,
                    epoch: int, round_index: int, round_in_epoch: int, rows_per_round: int, steps: int,
                    batch_size: int, clipping: Clipping, seed: int, hook: Callable[[TaskInfo], None] | None,
                    ) -> Callable[[int, np.ndarray, Any], Any]:
    """The task of one averaging round: local steps on this partition's rows of the round, then its weights.

    It returns its weights and optimizer state, and per-step sums of length `steps` (loss × rows, and each
    metric's sum by name), so the driver can report the averaged model's steps one by one; the rows of each step the
    driver knows from the partitions' sizes.
    """

    def task(partition: int, x: np.ndarray, y: Any) -> tuple[Any, ...]:
        from descend.optim import build_optimizer

        _run_hook(hook, round_index, partition)
        # this epoch's order of the partition's rows, the same in every round of the epoch
        order = np.random.default_rng([seed, epoch, partition]).permutation(len(x))
        mine = order[round_in_epoch * rows_per_round : (round_in_epoch + 1) * rows_per_round]
        if mine.size == 0:  # this partition's rows ran out: it sits the round out
            return None, None, None, None
        model_here, loss_here, step = _executor_model(setup)
        x, y = _inputs(x, y, model_here)
        weights, states, iterations, epochs, first_step = shared.value
        here = model_here.flat_buffer()
        here.data[...] = weights
        local_optimizer = build_optimizer(description, model_here.parameters())
        for name in state_names:
            local_optimizer.state[name][...] = states[name]
        local_optimizer.iterations, local_optimizer.epochs = iterations, epochs  # where the schedule is
        seed_module_generators(model_here, [seed, round_index, partition])
        local = TrainingState(model_here, loss_here, local_optimizer, History(), epoch=epoch, step=first_step)
        loss_sums = np.zeros(steps)
        score_sums = None
        model_here.train()
        for j, begin in enumerate(range(0, len(mine), batch_size)):
            rows = np.sort(mine[begin : begin + batch_size])
            result = train_on_batch(local, step, here.data, x[rows], y[rows], clipping)
            local.step += 1
            loss_sums[j] = result.loss * len(rows)
            if result.scores is not None:
                score_sums = score_sums or {name: np.zeros(steps) for name in result.scores}
                for name, value in result.scores.items():
                    score_sums[name][j] = value
        states = {name: local_optimizer.state[name].copy() for name in state_names}
        return here.data.copy(), states, loss_sums, score_sums

    return task


def evaluate_blocks(context, blocks: Blocks, setup: dict[str, Any], model: Any) -> dict[str, float]:
    """Mean loss and the run's metrics (setup's, by name) of the driver's current weights over cached blocks."""
    from descend.tensor import Tensor, no_grad

    weights = context.broadcast(model.flat_buffer().data)

    def task(partition, x, y):
        if len(x) == 0:
            return 0.0, None, 0
        model_here, loss_fn, _ = _executor_model(setup)
        x, y = _inputs(x, y, model_here)
        model_here.flat_buffer().data[...] = weights.value
        model_here.eval()
        with no_grad():
            output = model_here(Tensor(x))
            loss = float(loss_fn(output, y).data) * len(x)
            scores = score_batch(output.data, y, resolve_metrics(setup["metrics"], loss_fn))
        return loss, scores, len(x)

    (loss, score_sums, rows), _ = blocks.total(task)
    weights.destroy()
    return {"loss": loss / rows, **{name: total / rows for name, total in (score_sums or {}).items()}}

"""fit_spark: data-parallel SGD over a Spark DataFrame, with the same model, loss and optimizer as `fit`.

Two ways to keep the partitions' models together:

- sync="gradient": every step broadcasts the flat parameter buffer; each partition computes the
  gradient summed over its rows of the global minibatch (the same minibatches the local engine
  draws); the driver adds the partitions' sums in partition order, divides by the batch size and
  applies the optimizer. N steps give the local engine's weights.
- sync="average": each round broadcasts the weights and optimizer state; each partition runs
  `sync_every` local steps on its own rows, then the driver averages weights and state (the
  model averaging of H2O and Elephas). Far fewer jobs, so far faster on a cluster.

Determinism under retries: a task's randomness is keyed by (seed, round, partition), and results are
combined in partition order, never arrival order, so a retried task changes nothing, bit for bit.
The lineage stays fixed: every job reads the one cached RDD of row counts, the weights live on the
driver, and each round's broadcast is destroyed when the round is done.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from descend.checks import check_integer
from descend.errors import DescendValueError
from descend.spark.blocks import Blocks, make_blocks

SYNCS = ("gradient", "average")
#: the oldest Spark that fit_spark is tested on (mapInPandas, pandas UDFs over Arrow, Java 17)
SUPPORTED_SPARK = (3, 5)

#: on each executor's Python worker: run key -> (model, loss, step function), rebuilt once per run
_MODELS: dict[str, tuple[Any, Any, Any]] = {}


@dataclass(frozen=True)
class TaskInfo:
    """What a training task is: the round (a step for sync="gradient"), the partition and Spark's attempt number."""

    round: int
    partition: int
    attempt: int


def _executor_model(setup: dict[str, Any]) -> tuple[Any, Any, Any]:
    from descend.nn.module import build_module
    from descend.train import make_step

    found = _MODELS.get(setup["key"])
    if found is None:
        _MODELS.clear()  # one run at a time per worker: let an earlier run's model go
        model = build_module(json.loads(setup["model"])).astype(np.dtype(setup["dtype"]))
        loss_fn = build_module(json.loads(setup["loss"]))
        found = _MODELS[setup["key"]] = (model, loss_fn, make_step(model, loss_fn))
    return found


def _inputs(x: np.ndarray, y: Any, model: Any) -> tuple[np.ndarray, Any]:
    return (x, x) if model.target_is_input else (x, y)


def _run_hook(hook: Callable[[TaskInfo], None] | None, round_index: int, partition: int) -> None:
    if hook is not None:
        from pyspark import TaskContext

        hook(TaskInfo(round_index, partition, TaskContext.get().attemptNumber()))


def fit_spark(
    model: Any,
    loss_fn: Any,
    optimizer: Any,
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
    callbacks: Sequence[Any] = (),
    task_hook: Callable[[TaskInfo], None] | None = None,
) -> Any:
    """Train `model` on the rows of `df` (features: vector or array<float> column; label: class index or target).

    Returns a History like `fit`'s (loss, accuracy for classifiers, val_ metrics when `validation`, a
    DataFrame of the same columns, is given; lr; seconds) with `history.driver_bytes`, what the
    executors sent the driver per epoch. An autoencoder (target_is_input) needs no label column.
    `task_hook(TaskInfo)` runs at the start of every training task (instrumentation, fault injection).
    """
    from descend.nn.losses import CrossEntropyLoss
    from descend.nn.module import module_spec
    from descend.train import History, TrainingState, end_epoch

    check_spark_version(df.sparkSession.version)
    if sync not in SYNCS:
        raise DescendValueError(f"sync must be one of {', '.join(map(repr, SYNCS))}; got {sync!r}")
    epochs = check_integer("epochs", epochs, low=1)
    batch_size = check_integer("batch_size", batch_size, low=1)
    sync_every = check_integer("sync_every", sync_every, low=1)
    buffer = model.flat_buffer()
    if getattr(optimizer, "buffer", None) is not buffer:
        raise DescendValueError("fit_spark: the optimizer does not hold this model's parameters")
    classes = _classes(model, loss_fn)
    label = None if model.target_is_input else label
    blocks = make_blocks(df, features, label, _input_width(model), classes)
    try:
        held_out = None if validation is None else make_blocks(validation, features, label, _input_width(model),
                                                               classes, argument="validation")
    except Exception:
        blocks.release()  # no block files left behind by a run that never started
        raise
    setup = {"key": blocks.key, "model": json.dumps(module_spec(model)), "loss": json.dumps(module_spec(loss_fn)),
             "dtype": buffer.dtype.str}
    context = df.sparkSession.sparkContext
    history = History()
    history.driver_bytes = []
    state = TrainingState(model, loss_fn, optimizer, history)
    for callback in callbacks:
        callback.on_train_begin(state)
    counts_accuracy = isinstance(loss_fn, CrossEntropyLoss)
    # sync="gradient" draws the local engine's minibatches: a generator keyed by the seed and the step count
    rng = np.random.default_rng([seed, optimizer.iterations])
    try:
        for epoch in range(1, epochs + 1):
            state.epoch = epoch
            started = time.perf_counter()
            run = _gradient_epoch if sync == "gradient" else _average_epoch
            totals, sent = run(context, blocks, setup, model, optimizer, epoch, batch_size, sync_every, seed,
                               (clip_grad_norm, clip_grad_value), task_hook, state, rng)
            record = {"epoch": epoch, "loss": totals["loss"] / totals["rows"]}
            if counts_accuracy:
                record["accuracy"] = totals["correct"] / totals["rows"]
            if held_out is not None:
                record.update({f"val_{k}": v for k, v in evaluate_blocks(context, held_out, setup, model).items()})
            record["lr"] = float(optimizer.lr)
            history.driver_bytes.append(sent)
            if end_epoch(state, record, started, callbacks):
                break
    finally:
        blocks.release()
        if held_out is not None:
            held_out.release()
    for callback in callbacks:
        callback.on_train_end(state)
    return history


def check_spark_version(version: str) -> None:
    """Refuse a Spark older than SUPPORTED_SPARK, naming both."""
    try:
        found = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        raise DescendValueError(f"cannot read the Spark version {version!r}") from None
    if found < SUPPORTED_SPARK:
        raise DescendValueError(f"Spark {version} is below the supported {'.'.join(map(str, SUPPORTED_SPARK))}; "
                                "upgrade pyspark and the cluster's Spark")


def _classes(model: Any, loss_fn: Any) -> int | None:
    """The classifier's class count (its output width) for CrossEntropyLoss; None otherwise."""
    from descend.nn.losses import CrossEntropyLoss

    return output_width(model) if isinstance(loss_fn, CrossEntropyLoss) else None


def output_width(model: Any) -> int:
    """The model's outputs: the last weight's fan-out ((in, out) layout)."""
    last = [p for name, p in model.named_parameters() if name.endswith("weight")][-1]
    return int(last.shape[-1])


def _input_width(model: Any) -> int:
    """The model's input features: the first weight's fan-in ((in, out) layout)."""
    first = next(p for name, p in model.named_parameters() if name.endswith("weight"))
    return int(first.shape[0])


def _gradient_epoch(context, blocks: Blocks, setup, model, optimizer, epoch, batch_size, sync_every, seed,
                    clipping, hook, state, rng) -> tuple[dict[str, float], int]:
    """One epoch of synchronous steps: the local engine's minibatches, each a Spark job summing gradients."""
    from descend.data import batches
    from descend.train import _check_finite_step, clip_gradients

    buffer = model.flat_buffer()
    totals, sent = {"loss": 0.0, "correct": 0.0, "rows": 0}, 0
    offsets, sizes = blocks.offsets, blocks.rows
    for rows in batches(blocks.n_rows, batch_size, rng=rng):
        weights = context.broadcast(buffer.data)
        step_index = optimizer.iterations
        picked = np.sort(rows)

        def task(partition, x, y, weights=weights, picked=picked, step_index=step_index):
            _run_hook(hook, step_index, partition)
            mine = picked[(picked >= offsets[partition]) & (picked < offsets[partition] + sizes[partition])]
            if mine.size == 0:
                return 0.0, None, 0.0, 0
            model_here, _, step = _executor_model(setup)
            x, y = _inputs(x, y, model_here)
            local = mine - offsets[partition]
            loss, grads, correct = step(weights.value, x[local], y[local])
            return loss * local.size, grads * local.size, correct or 0.0, int(local.size)

        (loss_sum, grad_sum, correct, total_rows), received = blocks.total(task)
        weights.destroy()
        sent += received
        buffer.grad[...] = grad_sum / total_rows
        loss = loss_sum / total_rows
        state.step += 1
        _check_finite_step(model, loss, buffer.grad, state)
        clip_gradients(buffer.grad, *clipping)
        optimizer.step()
        totals["loss"] += loss_sum
        totals["correct"] += correct
        totals["rows"] += total_rows
    return totals, sent


def _average_epoch(context, blocks: Blocks, setup, model, optimizer, epoch, batch_size, sync_every, seed,
                   clipping, hook, state, rng) -> tuple[dict[str, float], int]:
    """One epoch of model averaging: rounds of `sync_every` local steps per partition, then the mean."""
    from descend.optim import build_optimizer
    from descend.train import _seed_module_generators, clip_gradients

    buffer = model.flat_buffer()
    description = optimizer.describe()
    state_names = sorted(optimizer.state)
    rows_per_round = sync_every * batch_size
    rounds = max(1, -(-max(blocks.rows) // rows_per_round))
    totals, sent = {"loss": 0.0, "correct": 0.0, "rows": 0}, 0
    for round_in_epoch in range(rounds):
        round_index = (epoch - 1) * rounds + round_in_epoch
        shared = context.broadcast((buffer.data, {name: optimizer.state[name] for name in state_names},
                                    optimizer.iterations))

        def task(partition, x, y, shared=shared, round_index=round_index, round_in_epoch=round_in_epoch):
            _run_hook(hook, round_index, partition)
            # this epoch's order of the partition's rows, the same in every round of the epoch
            order = np.random.default_rng([seed, epoch, partition]).permutation(len(x))
            mine = order[round_in_epoch * rows_per_round : (round_in_epoch + 1) * rows_per_round]
            if mine.size == 0:  # this partition's rows ran out: it sits the round out
                return None, None, 0, 0.0, 0.0, 0
            model_here, _, step = _executor_model(setup)
            x, y = _inputs(x, y, model_here)
            weights, states, iterations = shared.value
            here = model_here.flat_buffer()
            here.data[...] = weights
            local_optimizer = build_optimizer(description, model_here.parameters())
            for name in state_names:
                local_optimizer.state[name][...] = states[name]
            local_optimizer.iterations = iterations
            _seed_module_generators(model_here, [seed, round_index, partition])
            loss_sum, correct_sum = 0.0, 0.0
            model_here.train()
            for begin in range(0, len(mine), batch_size):
                rows = np.sort(mine[begin : begin + batch_size])
                loss, grads, correct = step(here.data, x[rows], y[rows])
                clip_gradients(grads, *clipping)
                local_optimizer.step()
                loss_sum += loss * len(rows)
                correct_sum += correct or 0.0
            return (here.data.copy(), {name: local_optimizer.state[name].copy() for name in state_names}, 1,
                    loss_sum, correct_sum, len(mine))

        (weights_sum, states_sum, busy, loss_sum, correct, rows), received = blocks.total(task)
        shared.destroy()
        sent += received
        buffer.data[...] = weights_sum / busy
        for name in state_names:
            optimizer.state[name][...] = states_sum[name] / busy
        # the round took as many steps as the busiest partition's
        steps = max(-(-min(max(count - round_in_epoch * rows_per_round, 0), rows_per_round) // batch_size)
                    for count in blocks.rows)
        optimizer.iterations += steps
        state.step += steps
        totals["loss"] += loss_sum
        totals["correct"] += correct
        totals["rows"] += rows
        if not np.isfinite(totals["loss"]):
            from descend.errors import NonFiniteError

            raise NonFiniteError(f"the loss became {totals['loss']} in round {round_index} (learning rate "
                                 f"{optimizer.lr:g}); lower the learning rate or clip gradients "
                                 "(clip_grad_norm= or clip_grad_value=)")
    return totals, sent


def evaluate_blocks(context, blocks: Blocks, setup: dict[str, Any], model: Any) -> dict[str, float]:
    """Mean loss (and accuracy for classifiers) of the driver's current weights over cached blocks."""
    from descend.tensor import Tensor, no_grad
    from descend.train import count_correct

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
            correct = count_correct(output.data, y, loss_fn)
        return loss, correct, len(x)

    (loss, correct, rows), _ = blocks.total(task)
    weights.destroy()
    metrics = {"loss": loss / rows}
    if correct is not None and blocks.label_kind == "class":
        metrics["accuracy"] = correct / rows
    return metrics

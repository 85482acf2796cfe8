"""fit: the local training loop, its step function, metrics and callbacks.

The training step is a plain function, `loss, grads, correct = step(params,
x, y)`, on arrays: the same step can run in the local loop here, in a
HOGWILD! worker or in a Spark task. `fit` adds the loop around it: shuffled
minibatches, the optimizer, validation, a History, callbacks and a progress
bar.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from descend.checkpoint import Checkpoints, Progress, fingerprint, restore_callbacks
from descend.checks import check_integer, check_real, naming_arguments
from descend.data import Dataset, as_dataset, batches
from descend.errors import DescendValueError, NonFiniteError
from descend.memory import reuse_freed_memory
from descend.nn.losses import BCEWithLogitsLoss, CrossEntropyLoss, MarginLoss
from descend.nn.module import Module, check_finite, random_modules
from descend.nonfinite import Origin, locate
from descend.tensor import Tensor, no_grad

ENGINES = ("local", "hogwild", "spark")

StepFunction = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[float, np.ndarray, float | None]]


def count_correct(output: np.ndarray, target: np.ndarray, loss_fn: Module) -> float | None:
    """How many rows a classifier got right; None for losses that are not classification.

    A row with several predictions (binary labels (N, k), a sequence's
    characters (N, T)) counts as the fraction of them that are right.
    """
    if isinstance(loss_fn, (CrossEntropyLoss, MarginLoss)):  # the longest capsule is a CapsNet's answer
        right = output.argmax(axis=-1) == target
    elif isinstance(loss_fn, BCEWithLogitsLoss):
        right = (output > 0) == (target > 0.5)
    else:
        return None
    return float(right.mean(axis=tuple(range(1, right.ndim))).sum()) if right.ndim > 1 else float(right.sum())


def as_model_input(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Float features in the model's dtype; integer token ids as they are."""
    return x.astype(dtype, copy=False) if x.dtype.kind == "f" else x


def with_penalties(model: Module, loss: Tensor) -> Tensor:
    """The loss plus every term the model's modules ask for (`penalty()`: a sparse code, a VAE's KL)."""
    for module in model.modules():
        term = module.penalty()
        if term is not None:
            loss = loss + term
    return loss


def make_step(model: Module, loss_fn: Module) -> StepFunction:
    """The training step as a function of arrays: (params, x, y) -> (loss, grads, correct).

    `params` is a flat parameter array of the model's layout (the model's
    own buffer, or a copy from elsewhere, which is then loaded first);
    `grads` is the model's flat gradient buffer, overwritten by the next call.
    """
    buffer = model.flat_buffer()

    def step(params: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray, float | None]:
        if params is not buffer.data:
            np.copyto(buffer.data, params)
        buffer.zero_grad()
        output = model(Tensor(x))
        loss = with_penalties(model, loss_fn(output, y))
        loss.backward()
        return float(loss.data), buffer.grad, count_correct(output.data, y, loss_fn)

    return step


def clip_grad_norm(grads: np.ndarray, max_norm: float) -> float:
    """Scale `grads` in place so their global L2 norm is at most `max_norm`; returns the norm before.

    `grads` is a flat gradient buffer (`model.flat_buffer().grad`).
    """
    if not max_norm > 0:
        raise DescendValueError(f"clip_grad_norm: max_norm must be positive; got {max_norm!r}")
    norm = float(np.sqrt(np.dot(grads, grads)))
    if norm > max_norm:
        grads *= max_norm / (norm + 1e-12)
    return norm


def clip_grad_value(grads: np.ndarray, max_value: float) -> None:
    """Limit every gradient in `grads` to [-max_value, max_value], in place.

    `grads` is a flat gradient buffer (`model.flat_buffer().grad`).
    """
    if not max_value > 0:
        raise DescendValueError(f"clip_grad_value: max_value must be positive; got {max_value!r}")
    np.clip(grads, -max_value, max_value, out=grads)


def clip_gradients(grads: np.ndarray, max_norm: float | None, max_value: float | None) -> None:
    """What fit's clip_grad_value= and clip_grad_norm= ask for, in that order (None: not that one)."""
    if max_value is not None:
        clip_grad_value(grads, max_value)
    if max_norm is not None:
        clip_grad_norm(grads, max_norm)


@dataclass
class History:
    """Per-epoch records of a training run: loss, accuracy, val_loss, val_accuracy, lr, seconds."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    #: engine="hogwild" only: per epoch, when each worker ran (descend.hogwild.workers.Span)
    worker_spans: list[list[Any]] = field(default_factory=list)

    def __getitem__(self, key: str) -> list[float]:
        if not self.epochs or key not in self.epochs[0]:
            known = ", ".join(self.epochs[0]) if self.epochs else "nothing yet"
            raise KeyError(f"history has no metric {key!r}; it has {known}")
        return [record.get(key, float("nan")) for record in self.epochs]

    def __len__(self) -> int:
        return len(self.epochs)

    def last(self) -> dict[str, float]:
        """The newest epoch's record."""
        return self.epochs[-1]


@dataclass
class TrainingState:
    """What callbacks see: the run's objects and where it is. Set `stop = True` to end after this epoch."""

    model: Module
    loss_fn: Module
    optimizer: Any
    history: History
    epoch: int = 0
    step: int = 0
    stop: bool = False


class Callback:
    """Hooks into fit; override what you need."""

    def on_train_begin(self, state: TrainingState) -> None:
        """Called once, before the first epoch."""

    def on_batch_end(self, state: TrainingState, loss: float) -> None:
        """Called after each optimizer step, with that minibatch's loss."""

    def on_epoch_end(self, state: TrainingState, record: dict[str, float]) -> None:
        """Called after each epoch (and its validation) with its History record; may set `state.stop`."""

    def on_train_end(self, state: TrainingState) -> None:
        """Called once, after the last epoch or an early stop."""

    def state_dict(self) -> dict[str, dict[str, Any]]:
        """What a checkpoint keeps of this callback so a resumed run goes on as if never stopped.

        {"scalars": JSON-ready values, "arrays": NumPy arrays}; nothing by default.
        """
        return {"scalars": {}, "arrays": {}}

    def load_state_dict(self, state: dict[str, dict[str, Any]]) -> None:
        """Take back what `state_dict()` gave; called after `on_train_begin` when a run resumes."""


class EarlyStopping(Callback):
    """Stop after `patience` epochs in a row in which `monitor` did not improve by more than `min_delta`.

    Losses are minimised and accuracies maximised. With
    `restore_best_weights`, the model ends with the weights of its best epoch.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 3, min_delta: float = 0.0, restore_best_weights: bool = True):
        self.monitor = monitor
        self.patience = check_integer("patience", patience, low=1)
        self.min_delta = check_real("min_delta", min_delta, low=0.0)
        self.restore_best_weights = restore_best_weights
        self.sign = 1.0 if "accuracy" in monitor else -1.0

    def on_train_begin(self, state: TrainingState) -> None:
        """Forget any earlier run: no best score yet, no epochs waited."""
        self.best, self.best_epoch, self.best_weights, self.waited = -np.inf, -1, None, 0

    def on_epoch_end(self, state: TrainingState, record: dict[str, float]) -> None:
        """Keep the best score (and weights); set `state.stop` after `patience` epochs without improvement."""
        if self.monitor not in record:
            raise DescendValueError(
                f"EarlyStopping monitors {self.monitor!r}, which this run does not record; it has {', '.join(record)}"
                + (" (pass validation= to fit for val_ metrics)" if self.monitor.startswith("val_") else "")
            )
        score = self.sign * record[self.monitor]
        if score > self.best + self.min_delta:
            self.best, self.best_epoch, self.waited = score, record["epoch"], 0
            if self.restore_best_weights:
                self.best_weights = state.model.flat_buffer().data.copy()
        else:
            self.waited += 1
            if self.waited >= self.patience:
                state.stop = True

    def on_train_end(self, state: TrainingState) -> None:
        """Load the best epoch's weights back into the model, with `restore_best_weights`."""
        if self.restore_best_weights and self.best_weights is not None:
            state.model.flat_buffer().data[...] = self.best_weights

    def state_dict(self) -> dict[str, dict[str, Any]]:
        """The best score and epoch, the epochs waited, and the best weights."""
        scalars = {"best": float(self.best), "best_epoch": self.best_epoch, "waited": self.waited}
        return {"scalars": scalars, "arrays": {} if self.best_weights is None else {"best_weights": self.best_weights}}

    def load_state_dict(self, state: dict[str, dict[str, Any]]) -> None:
        """Take back the best score, epoch, weights and the epochs waited."""
        scalars = state["scalars"]
        self.best, self.best_epoch, self.waited = scalars["best"], scalars["best_epoch"], scalars["waited"]
        self.best_weights = state["arrays"].get("best_weights")


class _ProgressBar(Callback):
    """One tqdm bar per epoch, with the running loss and accuracy."""

    def __init__(self, steps_per_epoch: int, epochs: int):
        from tqdm.auto import tqdm

        self.tqdm, self.steps_per_epoch, self.epochs, self.bar = tqdm, steps_per_epoch, epochs, None

    def start_epoch(self, epoch: int) -> None:
        self.bar = self.tqdm(total=self.steps_per_epoch, desc=f"epoch {epoch}/{self.epochs}", unit="batch", leave=True)

    def advance(self, loss: float, accuracy: float | None) -> None:
        self.bar.update(1)
        if self.bar.n % 20 == 0:
            postfix = {"loss": f"{loss:.4f}"}
            if accuracy is not None:
                postfix["acc"] = f"{accuracy:.4f}"
            self.bar.set_postfix(postfix, refresh=False)

    def advance_to(self, steps: int) -> None:
        """Show `steps` steps done this epoch (the HOGWILD! engine counts its workers' steps)."""
        self.bar.update(steps - self.bar.n)

    def on_epoch_end(self, state: TrainingState, record: dict[str, float]) -> None:
        shown = {key: f"{value:.4f}" for key, value in record.items() if key not in ("epoch", "seconds", "lr")}
        self.bar.set_postfix(shown, refresh=False)
        self.bar.close()


def _progress_bar(progress: bool | str, steps: int, epochs: int) -> _ProgressBar | None:
    if progress is False:
        return None
    try:
        return _ProgressBar(steps, epochs)
    except ImportError:
        if progress == "auto":
            return None
        raise ImportError("fit(progress=True) needs tqdm: pip install 'descend[cli]', or pass progress=False") from None


@naming_arguments
def evaluate(model: Module, loss_fn: Module, data: Any, batch_size: int = 1024) -> dict[str, float]:
    """Mean loss (and accuracy for classifiers) over a data set, in eval mode without a tape."""
    x_all, y_all = _inputs_and_targets(as_dataset(data, "data"), model, loss_fn, "data")
    batch_size = check_integer("batch_size", batch_size, low=1)
    was_training = model.training
    model.eval()
    total_loss, total_correct = 0.0, 0
    try:
        with no_grad():
            for start in range(0, len(x_all), batch_size):
                x, y = x_all[start : start + batch_size], y_all[start : start + batch_size]
                output = model(Tensor(x))
                total_loss += float(loss_fn(output, y).data) * len(x)
                correct = count_correct(output.data, y, loss_fn)
                total_correct = None if correct is None else total_correct + correct
    finally:
        model.train(was_training)
    metrics = {"loss": total_loss / len(x_all)}
    if total_correct is not None:
        metrics["accuracy"] = total_correct / len(x_all)
    return metrics


@naming_arguments
def predict(model: Module, x: Any, batch_size: int = 1024) -> np.ndarray:
    """The model's outputs for every row of x, in eval mode, batched: x (N, ...) -> (N, ...).

    x is cast to the model's dtype, so a float32 model runs in float32 whatever it is given.
    """
    batch_size = check_integer("batch_size", batch_size, low=1)
    array = as_dataset(x if isinstance(x, Dataset) else (x.data if isinstance(x, Tensor) else x,), "x").x
    array = as_model_input(array, model.flat_buffer().dtype)
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            parts = [model(Tensor(array[start : start + batch_size])).data for start in range(0, len(array), batch_size)]
    finally:
        model.train(was_training)
    return np.concatenate(parts) if parts else np.zeros((0,))


def _inputs_and_targets(dataset: Dataset, model: Module, loss_fn: Module, argument: str) -> tuple[np.ndarray, np.ndarray]:
    """Checked x in the model's dtype, and what the model should output: y, or x itself for an autoencoder."""
    check_finite(dataset.x, f"{argument}.x")
    x = as_model_input(dataset.x, model.flat_buffer().dtype)
    if model.target_is_input:
        return x, x
    if dataset.y is None:
        raise DescendValueError(f"{argument} has no targets (y); fit needs (x, y) unless the model reconstructs x")
    if isinstance(loss_fn, (CrossEntropyLoss, MarginLoss)) and dataset.y.dtype.kind not in "iu":
        raise DescendValueError(
            f"{argument}.y must hold integer class labels for {type(loss_fn).__name__}; got dtype {dataset.y.dtype}"
        )
    if dataset.y.dtype.kind != "f":
        return x, dataset.y
    check_finite(dataset.y, f"{argument}.y")
    return x, dataset.y.astype(model.flat_buffer().dtype, copy=False)


def _seed_module_generators(model: Module, key: list[int]) -> None:
    """Give every random module (dropout, input noise, a VAE's sampling) a generator derived from the run's seed."""
    for index, module in random_modules(model):
        module.rng = np.random.default_rng([*key, index])


@naming_arguments
def fit(
    model: Module,
    loss_fn: Module,
    optimizer: Any,
    train: Any,
    epochs: int = 1,
    batch_size: int = 32,
    validation: Any = None,
    shuffle: bool = True,
    seed: int | None = 0,
    callbacks: Sequence[Callback] = (),
    progress: bool | str = "auto",
    clip_grad_norm: float | None = None,
    clip_grad_value: float | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int | str = "epoch",
    resume: bool = False,
    engine: str = "local",
    workers: int | None = None,
) -> History:
    """Train `model` to lower `loss_fn` on `train` with `optimizer`; returns a History.

    `train` and `validation` are Datasets or (x, y) pairs: x (N, ...) float,
    y (N,) integer labels for classifiers or (N, k) targets. Each epoch
    draws a fresh permutation from a generator keyed by `seed` and the
    optimizer's step count at the start, so runs with the same seed repeat
    exactly and a second call continues rather than replays the first.
    `clip_grad_value` limits every gradient to ±that value and
    `clip_grad_norm` scales all of them together to at most that L2 norm.

    Training stops with a NonFiniteError if the loss or a gradient becomes
    NaN or infinite; the message names the step, the op and layer where the
    first bad value appeared (the step is run again, checked value by value),
    the first parameter whose gradient it reached and the last good checkpoint.

    With `checkpoint` (a folder), the run's whole state is written there
    every `checkpoint_every` steps, or at the end of every epoch with
    "epoch" (descend.checkpoint); the newest three files are kept. With
    `resume=True` the run goes on from the newest checkpoint that reads back
    whole (from the start if there is none), and ends with the same weights,
    bit for bit, as a run that was never interrupted. Resuming needs the same
    model, optimizer, callbacks, data, batch size, seed and shuffling; epochs
    may grow.

    engine="hogwild" trains the same model with `workers` processes (default:
    one per core) that update one shared parameter buffer without locks
    (descend.hogwild.fit_hogwild); engine="spark" takes `train` (and
    `validation`) as Spark DataFrames with "features" and "label" columns and
    averages models across the partitions (descend.spark.fit_spark, which has
    the other settings); "local" is this process's loop, the reference.
    """
    if engine not in ENGINES:
        raise DescendValueError(f"fit: unknown engine {engine!r}; available engines: {', '.join(ENGINES)}")
    if workers is not None and engine == "local":
        raise DescendValueError(f"fit: workers={workers!r} is for engine='hogwild'; the local engine is one process")
    if workers is not None and engine == "spark":
        raise DescendValueError("fit: engine='spark' runs a task per core of the cluster; workers= is for 'hogwild'")
    if engine != "local" and not shuffle:
        raise DescendValueError(f"fit: engine={engine!r} shuffles every epoch; shuffle=False is for the local engine")
    if engine != "local" and (checkpoint is not None or resume):
        raise DescendValueError(
            f"fit: checkpoint= and resume= are for the local engine; engine={engine!r} cannot replay a run bit for bit"
        )
    if resume and checkpoint is None:
        raise DescendValueError("fit: resume=True needs checkpoint=, the folder of the run to go on with")
    if clip_grad_norm is not None:
        check_real("clip_grad_norm", clip_grad_norm, low=0.0, low_open=True)
    if clip_grad_value is not None:
        check_real("clip_grad_value", clip_grad_value, low=0.0, low_open=True)
    if engine == "spark":
        from descend.spark import fit_spark

        return fit_spark(model, loss_fn, optimizer, train, epochs=epochs, batch_size=batch_size,
                         seed=0 if seed is None else seed, clip_grad_norm=clip_grad_norm,
                         clip_grad_value=clip_grad_value, validation=validation, callbacks=callbacks)
    epochs = check_integer("epochs", epochs, low=1)
    batch_size = check_integer("batch_size", batch_size, low=1)
    x_train, y_train = _inputs_and_targets(as_dataset(train, "train"), model, loss_fn, "train")
    validation_set = None
    if validation is not None:
        validation_set = as_dataset(validation, "validation")
        _inputs_and_targets(validation_set, model, loss_fn, "validation")
    reuse_freed_memory()
    buffer = model.flat_buffer()
    if getattr(optimizer, "buffer", None) is not buffer:
        raise DescendValueError(
            "fit: the optimizer does not hold this model's parameters; make it with optimizer(model.parameters(), ...)"
        )

    if engine == "hogwild":
        from descend.hogwild import fit_hogwild

        return fit_hogwild(model, loss_fn, optimizer, x_train, y_train, epochs, batch_size,
                           workers=(os.cpu_count() or 1) if workers is None else workers,
                           seed=None if seed is None else seed + optimizer.iterations, validation=validation_set,
                           callbacks=callbacks, progress=progress, clip_grad_norm=clip_grad_norm,
                           clip_grad_value=clip_grad_value)

    checkpoints = None
    if checkpoint is not None:
        settings = {"batch_size": batch_size, "seed": seed, "shuffle": bool(shuffle),
                    "data": fingerprint(x_train, y_train)}
        checkpoints = Checkpoints(checkpoint, checkpoint_every, settings)
    # keyed by how far training has come, so a second fit() continues rather than replays the first
    progress_key = [seed, optimizer.iterations] if seed is not None else None
    rng = np.random.default_rng(progress_key)
    if progress_key is not None:
        _seed_module_generators(model, progress_key)
    step = make_step(model, loss_fn)
    state = TrainingState(model, loss_fn, optimizer, History())
    position = Progress()
    saved_callbacks = None
    if checkpoints is not None:
        found = checkpoints.start(resume)
        if found is not None:
            saved_callbacks = checkpoints.restore(found, model, optimizer, state, position, rng)
            if position.epoch > epochs:
                raise DescendValueError(
                    f"fit: epochs={epochs}, but the checkpoint {found.path} is already at epoch {position.epoch}; "
                    "pass at least as many epochs as the run has done"
                )
    steps_per_epoch = -(-len(x_train) // batch_size)
    bar = _progress_bar(progress, steps_per_epoch, epochs)
    everyone = [*([bar] if bar else []), *callbacks]  # the bar closes before callbacks print
    for callback in everyone:
        callback.on_train_begin(state)
    if saved_callbacks is not None:
        restore_callbacks(callbacks, saved_callbacks)
    replayable = _ReplayableModules(model)
    model.train()
    first_epoch = position.epoch + 1 if position.epoch_done else position.epoch
    for epoch in range(first_epoch, epochs + 1):
        if state.stop:
            break
        state.epoch = epoch
        if position.epoch_done:
            position.begin(epoch, rng)
        else:  # resumed within this epoch: draw its order of minibatches again and skip those done
            rng.bit_generator.state = position.epoch_rng
        started = time.perf_counter()
        if bar:
            bar.start_epoch(epoch)
            bar.advance_to(position.batch)
        for rows in itertools.islice(batches(len(x_train), batch_size, rng=rng, shuffle=shuffle), position.batch, None):
            before = replayable.snapshot()
            loss, grads, correct = step(buffer.data, x_train[rows], y_train[rows])
            state.step += 1
            _check_finite_step(
                model, loss, grads, state, checkpoint=None if checkpoints is None else checkpoints.last,
                locate=lambda: replayable.locate(before, loss_fn, x_train[rows], y_train[rows]),
            )
            clip_gradients(grads, clip_grad_norm, clip_grad_value)
            lr_used = optimizer.lr
            optimizer.step()
            position.add(loss, correct, len(rows), lr_used)
            if bar:
                bar.advance(position.loss_sum / position.seen,
                            None if position.correct_sum is None else position.correct_sum / position.seen)
            for callback in callbacks:
                callback.on_batch_end(state, loss)
            if checkpoints is not None and checkpoints.due(state.step):
                checkpoints.write(model, optimizer, state, position, rng, callbacks)
        record = {"epoch": epoch, "loss": position.loss_sum / position.seen}
        if position.correct_sum is not None:
            record["accuracy"] = position.correct_sum / position.seen
        if validation_set is not None:
            record.update({f"val_{k}": v for k, v in evaluate(model, loss_fn, validation_set).items()})
        record["lr"] = float(position.lr)  # the rate of the epoch's last step
        end_epoch(state, record, started, everyone)
        position.epoch_done = True
        if checkpoints is not None and (checkpoints.every == "epoch" or epoch == epochs or state.stop):
            checkpoints.write(model, optimizer, state, position, rng, callbacks)
    for callback in everyone:
        callback.on_train_end(state)
    return state.history


class _ReplayableModules:
    """What a step changes in a model besides its weights, kept before every step so a failed one can be undone.

    That is the random generators' states, the carried states of stateful
    models and the running statistics (batch normalisation). A step whose
    loss or gradient is not finite is then run again exactly by
    descend.nonfinite, and the model is left as the last good step left it.
    """

    def __init__(self, model: Module):
        self.model = model
        self.random = [module for _, module in random_modules(model)]
        self.carrying = [m for m in model.modules() if type(m).training_state is not Module.training_state]
        self.statistics = [(m, name) for m in model.modules() for name in m.state]

    def snapshot(self) -> tuple[list[Any], list[dict[str, np.ndarray]], list[np.ndarray]]:
        """The generators' states, the carried states and copies of the running statistics, as they are now."""
        return ([m.rng.bit_generator.state for m in self.random], [m.training_state() for m in self.carrying],
                [getattr(m, name).copy() for m, name in self.statistics])

    def restore(self, snapshot: tuple[list[Any], list[dict[str, np.ndarray]], list[np.ndarray]]) -> None:
        """Put the generators, carried states and running statistics back as `snapshot` found them."""
        generators, carried, statistics = snapshot
        for module, generator_state in zip(self.random, generators):
            module.rng.bit_generator.state = generator_state
        for module, arrays in zip(self.carrying, carried):
            module.load_training_state(arrays)
        for (module, name), values in zip(self.statistics, statistics):
            setattr(module, name, values.copy())

    def locate(self, before: Any, loss_fn: Module, x: np.ndarray, y: np.ndarray) -> Origin | None:
        """Replay the step that began at `before` on (x, y); where its first non-finite value came from.

        The model is left as it was before that step.
        """
        self.restore(before)
        try:
            return locate(self.model, loss_fn, x, y, with_penalties)
        finally:
            self.restore(before)


def end_epoch(state: TrainingState, record: dict[str, float], started: float, callbacks: Sequence[Callback]) -> bool:
    """What every engine does when an epoch ends: time it, keep its record, tell the callbacks; True to stop."""
    record["seconds"] = time.perf_counter() - started
    state.history.epochs.append(record)
    for callback in callbacks:
        callback.on_epoch_end(state, record)
    return state.stop


def _check_finite_step(
    model: Module, loss: float, grads: np.ndarray, state: TrainingState, checkpoint: Path | None = None,
    locate: Callable[[], Origin | None] | None = None,
) -> None:
    """Raise a NonFiniteError when a step's loss or gradient is NaN or infinite.

    The message names the step, where the first bad value came from (from
    `locate`, which replays the step; without it, the first parameter with a
    bad gradient) and the last good checkpoint.
    """
    loss_bad = not np.isfinite(loss)
    if not loss_bad and np.isfinite(np.dot(grads, grads)):
        return
    if not loss_bad and all(np.isfinite(parameter.grad).all() for parameter in model.parameters()):
        what = "the gradient norm overflowed"  # every gradient is finite, only their sum of squares is not
        origin = None
    else:
        what = f"the loss became {loss}" if loss_bad else "a gradient became NaN or infinite"
        origin = locate() if locate is not None else None
        if origin is None:
            bad = [name for name, parameter in model.named_parameters() if not np.isfinite(parameter.grad).all()]
            origin = Origin("backward", parameters=bad) if bad else None
    parts = [f"{what} at epoch {state.epoch}, step {state.step} (learning rate {state.optimizer.lr:g})"]
    if origin is not None and (origin.op is not None or origin.phase == "weights"):
        parts.append(origin.describe())
    elif origin is not None and origin.parameters:
        parts.append(f"the first parameter with a bad gradient is '{origin.parameters[0]}'")
    if checkpoint is not None:
        parts.append(f"the last good checkpoint is {checkpoint} (fit(..., resume=True) goes on from it)")
    parts.append("lower the learning rate, clip gradients (clip_grad_norm= or clip_grad_value=) "
                 "or check the data for extreme values")
    raise NonFiniteError(
        "; ".join(parts), step=state.step, epoch=state.epoch,
        layer=None if origin is None else origin.layer,
        parameter=origin.parameters[0] if origin is not None and origin.parameters else None,
        checkpoint=checkpoint,
    )

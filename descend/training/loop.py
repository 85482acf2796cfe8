"""What every engine's loop shares: the History, the callbacks, the progress bar and the epoch's tally.

An engine runs minibatches its own way (in this process, in worker
processes, on Spark executors) but reports them through one `Run`, so every
engine records the same keys with the same meanings and calls the callbacks
in the same order:

    on_train_begin
    for each epoch:  on_batch_end after every optimizer step (state.step counts them)
                     on_epoch_end with the epoch's record
    on_train_end

An epoch's record holds `epoch`, `loss` (the mean over its rows), each of the
run's metrics (fit's `metrics=`; by default `accuracy` for classification
losses), the `val_` ones when there is validation data,
`lr` (the rate the epoch's last step used) and `seconds`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from descend.checks import check_integer, check_real
from descend.errors import DescendValueError
from descend.nn.module import Module
from descend.optim.optimizer import Optimizer


@dataclass
class History:
    """Per-epoch records of a training run: loss, accuracy, val_loss, val_accuracy, lr, seconds.

    `fit` returns one; `history[key]` is that key's value for every epoch.

    >>> import descend as dc
    >>> model, data = dc.nn.Linear(2, 2, rng=0), (np.eye(2, dtype=np.float32), np.array([0, 1]))
    >>> history = dc.fit(model, dc.nn.CrossEntropyLoss(), dc.optim.SGD(model.parameters(), lr=0.5), data, epochs=3,
    ...                  validation=data, progress=False)
    >>> len(history), list(history.last())
    (3, ['epoch', 'loss', 'accuracy', 'val_loss', 'val_accuracy', 'lr', 'seconds'])
    >>> history["epoch"]
    [1, 2, 3]
    """

    epochs: list[dict[str, float]] = field(default_factory=list)
    #: engine="hogwild" only: per epoch, when each worker ran (descend.hogwild.workers.Span)
    worker_spans: list[list[Any]] = field(default_factory=list)
    #: engine="spark" only: per epoch, the bytes the executors sent the driver
    driver_bytes: list[int] = field(default_factory=list)

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
    """What callbacks see: the run's objects and where it is. Set `stop = True` to end after this epoch.

    `epoch` is the epoch in progress (1-based) and `step` the optimizer steps
    the run has taken so far (this call of fit, or the resumed run).

    >>> import descend as dc
    >>> class StopAtTwo(Callback):
    ...     def on_epoch_end(self, state, record):
    ...         state.stop = state.epoch == 2
    >>> model = dc.nn.Linear(2, 2, rng=0)
    >>> len(dc.fit(model, dc.nn.CrossEntropyLoss(), dc.optim.SGD(model.parameters(), lr=0.5),
    ...            (np.eye(2, dtype=np.float32), np.array([0, 1])), epochs=10, callbacks=[StopAtTwo()], progress=False))
    2
    """

    model: Module
    loss_fn: Module
    optimizer: Optimizer
    history: History
    epoch: int = 0
    step: int = 0
    stop: bool = False


class Callback:
    """Hooks into fit; override what you need.

    >>> import descend as dc
    >>> class PrintLoss(Callback):
    ...     def on_epoch_end(self, state, record):
    ...         print(state.epoch, state.step, round(record["loss"], 3))
    >>> model = dc.nn.Linear(2, 2, rng=0)
    >>> _ = dc.fit(model, dc.nn.CrossEntropyLoss(), dc.optim.SGD(model.parameters(), lr=0.5),
    ...            (np.eye(2, dtype=np.float32), np.array([0, 1])), epochs=2, callbacks=[PrintLoss()], progress=False)
    1 1 0.582
    2 2 0.489
    """

    def on_train_begin(self, state: TrainingState) -> None:
        """Called once, before the first epoch."""

    def on_batch_end(self, state: TrainingState, loss: float) -> None:
        """Called after each optimizer step, with that minibatch's loss.

        Where the steps run in other processes (HOGWILD!'s workers, Spark's model averaging), the calls
        come, one per step and in order, when those steps report back: at the end of the epoch or the round,
        with the model already past them.
        """

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

    >>> import descend as dc
    >>> model, data = dc.nn.Linear(2, 2, rng=0), (np.eye(2, dtype=np.float32), np.array([0, 1]))
    >>> stopping = EarlyStopping(monitor="val_loss", patience=2, min_delta=0.01)
    >>> history = dc.fit(model, dc.nn.CrossEntropyLoss(), dc.optim.SGD(model.parameters(), lr=0.5), data,
    ...                  validation=data, epochs=100, callbacks=[stopping], progress=False)
    >>> len(history) < 100  # stopped once val_loss fell by less than 0.01 twice in a row
    True
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
        weights = state.model.flat_buffer().data
        self.weights_layout = (weights.dtype, weights.shape)  # what a checkpoint's best weights must be

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
        """Take back the best score, epoch, weights and the epochs waited (after on_train_begin: the weights must
        be the model's); a state of other types or ranges is a DescendValueError."""
        scalars, best_weights = state["scalars"], state["arrays"].get("best_weights")
        fits = (set(scalars) == {"best", "best_epoch", "waited"}
                and type(scalars["best"]) in (int, float) and not math.isnan(scalars["best"])
                and type(scalars["best_epoch"]) is int and scalars["best_epoch"] >= -1
                and type(scalars["waited"]) is int and scalars["waited"] >= 0)
        if not fits:
            raise DescendValueError(f"EarlyStopping's state {scalars!r:.200} is not {{'best': a number, "
                                    "'best_epoch': a whole number >= -1, 'waited': a whole number >= 0}")
        if best_weights is not None and (best_weights.dtype, best_weights.shape) != self.weights_layout:
            raise DescendValueError(f"EarlyStopping's best weights are {best_weights.dtype} {best_weights.shape}; "
                                    f"the model's are {self.weights_layout[0]} {self.weights_layout[1]}")
        self.best, self.best_epoch, self.waited = scalars["best"], scalars["best_epoch"], scalars["waited"]
        self.best_weights = best_weights


@dataclass
class EpochTally:
    """Where a run is within its epoch, with the epoch's running sums: what a checkpoint records as JSON.

    `epoch` is the epoch in progress (1-based) and `batch` its minibatches
    done; `epoch_done` says its end (validation, History, callbacks) has
    run too. `lr` is the rate the latest step used. `epoch_rng` is the
    shuffling generator's state when the epoch began, from which the local
    engine draws its order of minibatches again on resuming.
    """

    epoch: int = 0
    batch: int = 0
    epoch_done: bool = True
    loss_sum: float = 0.0
    score_sums: dict[str, float] | None = field(default_factory=dict)
    seen: int = 0
    lr: float = math.nan
    epoch_rng: dict[str, Any] | None = None

    def begin(self, epoch: int, rng: np.random.Generator | None = None) -> None:
        """Start `epoch`: no minibatches done, sums at zero, the shuffling generator's state kept."""
        epoch_rng = None if rng is None else rng.bit_generator.state
        vars(self).update(asdict(EpochTally(epoch=epoch, epoch_done=False, epoch_rng=epoch_rng)))

    def add(self, loss: float, scores: dict[str, float] | None, rows: int, lr: float) -> None:
        """Count one minibatch of `rows` rows: its mean loss, its metrics' sums over its rows (None: no metric),
        its rate."""
        self.batch += 1
        self.loss_sum += loss * rows
        self.seen += rows
        if scores is None or self.score_sums is None:
            self.score_sums = None
        else:
            self.score_sums = {name: self.score_sums.get(name, 0.0) + value for name, value in scores.items()}
        self.lr = lr

    def loss(self) -> float:
        """The mean loss over the epoch's rows so far."""
        return self.loss_sum / self.seen

    def metrics(self) -> dict[str, float]:
        """Each metric's mean over the epoch's rows so far, by name; {} when the run has none."""
        return {name: total / self.seen for name, total in (self.score_sums or {}).items()}


class ProgressBar(Callback):
    """One tqdm bar per epoch, with the running loss and accuracy."""

    def __init__(self, steps_per_epoch: int, epochs: int):
        from tqdm.auto import tqdm

        self.tqdm, self.steps_per_epoch, self.epochs, self.bar = tqdm, steps_per_epoch, epochs, None

    def start_epoch(self, epoch: int) -> None:
        """Open the bar of `epoch`."""
        self.bar = self.tqdm(total=self.steps_per_epoch, desc=f"epoch {epoch}/{self.epochs}", unit="batch", leave=True)

    def show(self, tally: EpochTally) -> None:
        """Show the tally's minibatches done, with its running loss and accuracy every 20 of them."""
        self.advance_to(tally.batch)
        if tally.batch % 20 == 0:
            postfix = {"loss": f"{tally.loss():.4f}"}
            postfix.update({name: f"{value:.4f}" for name, value in tally.metrics().items()})
            self.bar.set_postfix(postfix, refresh=False)

    def advance_to(self, steps: int) -> None:
        """Show `steps` steps done this epoch (never back: HOGWILD!'s workers count theirs live)."""
        if steps > self.bar.n:
            self.bar.update(steps - self.bar.n)

    def on_epoch_end(self, state: TrainingState, record: dict[str, float]) -> None:
        """Show the epoch's record and close its bar."""
        shown = {key: f"{value:.4f}" for key, value in record.items() if key not in ("epoch", "seconds", "lr")}
        self.bar.set_postfix(shown, refresh=False)
        self.bar.close()


def progress_bar(progress: bool | str, steps_per_epoch: int, epochs: int) -> ProgressBar | None:
    """fit's `progress=`: a bar for True, none for False, a bar if tqdm is installed for "auto"."""
    if progress is False:
        return None
    try:
        return ProgressBar(steps_per_epoch, epochs)
    except ImportError:
        if progress == "auto":
            return None
        raise ImportError("fit(progress=True) needs tqdm: pip install 'descend[cli]', or pass progress=False") from None


class Run:
    """One training run as every engine reports it: the state callbacks see, the tally, the bar, the History.

    An engine calls `begin()`, then per epoch `start_epoch(epoch)`, `step_done(...)`
    after each optimizer step and `end_epoch(validation_metrics)`, and `end()`
    at last; the records, the meaning of `lr` and the callbacks' order are
    then the same whatever the engine.
    """

    def __init__(self, state: TrainingState, callbacks: Sequence[Callback], bar: ProgressBar | None,
                 tally: EpochTally | None = None):
        self.state = state
        self.callbacks = list(callbacks)
        self.bar = bar
        self.tally = EpochTally() if tally is None else tally
        self.started = time.perf_counter()

    @property
    def everyone(self) -> list[Callback]:
        """The bar first (it closes before the callbacks print), then the user's callbacks."""
        return [*([self.bar] if self.bar else []), *self.callbacks]

    def begin(self) -> None:
        """Tell every callback the run begins."""
        for callback in self.everyone:
            callback.on_train_begin(self.state)

    def start_epoch(self, epoch: int, rng: np.random.Generator | None = None, fresh: bool = True) -> None:
        """Start timing `epoch`; with `fresh`, a new tally (else the resumed one goes on)."""
        self.state.epoch = epoch
        if fresh:
            self.tally.begin(epoch, rng)
        self.started = time.perf_counter()
        if self.bar:
            self.bar.start_epoch(epoch)
            self.bar.advance_to(self.tally.batch)

    def step_done(self, loss: float, scores: dict[str, float] | None, rows: int, lr: float) -> None:
        """Count an optimizer step: its minibatch of `rows` rows, mean loss, metric sums and the rate it used."""
        self.state.step += 1
        self.tally.add(loss, scores, rows, lr)
        if self.bar:
            self.bar.show(self.tally)
        for callback in self.callbacks:
            callback.on_batch_end(self.state, loss)

    def end_epoch(self, validation_metrics: dict[str, float] | None = None) -> bool:
        """Record the epoch, end it for the optimizer (`Optimizer.end_epoch`), tell the callbacks; True when the run
        should stop (a callback set `state.stop`)."""
        record: dict[str, float] = {"epoch": self.state.epoch, "loss": self.tally.loss(), **self.tally.metrics()}
        record.update({f"val_{key}": value for key, value in (validation_metrics or {}).items()})
        record["lr"] = float(self.tally.lr)
        record["seconds"] = time.perf_counter() - self.started
        self.state.history.epochs.append(record)
        self.tally.epoch_done = True
        self.state.optimizer.end_epoch()  # PyTorch's scheduler.step(): a schedule per="epoch" moves on
        for callback in self.everyone:
            callback.on_epoch_end(self.state, record)
        return self.state.stop

    def end(self) -> None:
        """Tell every callback the run has ended."""
        for callback in self.everyone:
            callback.on_train_end(self.state)

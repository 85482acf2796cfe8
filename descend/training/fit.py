"""fit: check the arguments once, then hand the run to an engine looked up by name.

The engines are siblings (DESIGN.md): each is a function `run(job) -> History`
in its own module, imported only when asked for, so no engine imports fit
and fit imports no engine at load time.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from typing import Any

from descend.checks import naming_arguments
from descend.errors import DescendValueError
from descend.nn.module import Module
from descend.training.loop import Callback, History
from descend.training.step import Clipping, TrainingJob, checked_checkpoint

#: engine name -> "module:function" taking a TrainingJob and returning a History
ENGINES: dict[str, str] = {
    "local": "descend.training.local:run",
    "hogwild": "descend.hogwild.dense:run",
    "spark": "descend.spark.engine:run",
}


def find_engine(name: str) -> Callable[[TrainingJob], History]:
    """The engine called `name` (one of ENGINES), imported now."""
    if not isinstance(name, str) or name not in ENGINES:
        raise DescendValueError(f"fit: unknown engine {name!r}; available engines: {', '.join(ENGINES)}")
    module, function = ENGINES[name].split(":")
    return getattr(importlib.import_module(module), function)


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
    metrics: Sequence[Any] | None = None,
) -> History:
    """Train `model` to lower `loss_fn` on `train` with `optimizer`; returns a History.

    `train` and `validation` are Datasets or (x, y) pairs: x (N, ...) float,
    y (N,) integer labels for classifiers or (N, k) targets. Each epoch
    draws a fresh permutation from a generator keyed by `seed` and the
    optimizer's step count at the start, so runs with the same seed repeat
    exactly and a second call continues rather than replays the first.
    `clip_grad_value` limits every gradient to ±that value and
    `clip_grad_norm` scales all of them together to at most that L2 norm.

    Each epoch's record holds loss, the metrics, the val_ ones, lr (the rate
    the epoch's last step used) and seconds, whatever the engine
    (descend.training.loop). `metrics` names what to report beside the loss,
    whatever the loss class: "accuracy", "top5_accuracy" (any k) or Metrics
    from descend.training.metrics; None reports accuracy for classification
    losses, so a loss of your own still reports accuracy when asked.

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
    may grow. Every engine checkpoints; HOGWILD!'s resume restores every
    state (each worker's optimizer state, its place in the epoch) but not
    the same bits, as its workers race by design.

    engine="hogwild" trains the same model with `workers` processes (default:
    one per core) that update one shared parameter buffer without locks
    (descend.hogwild.dense); engine="spark" takes `train` (and `validation`)
    as Spark DataFrames with "features" and "label" columns and averages
    models across the partitions (descend.spark.fit_spark has the other
    settings); "local" is this process's loop, the reference.

    >>> import numpy as np, descend as dc
    >>> model, x, y = dc.nn.Linear(2, 2, rng=0), np.eye(2, dtype=np.float32), np.array([0, 1])
    >>> history = fit(model, dc.nn.CrossEntropyLoss(), dc.optim.SGD(model.parameters(), lr=0.5), (x, y), epochs=20,
    ...               progress=False)
    >>> len(history), history.last()["accuracy"]
    (20, 1.0)
    """
    run = find_engine(engine)
    if workers is not None and engine != "hogwild":
        raise DescendValueError(
            f"fit: workers={workers!r} is for engine='hogwild'; "
            + ("the local engine is one process" if engine == "local" else "engine='spark' runs a task per core of the cluster")
        )
    if engine != "local" and not shuffle:
        raise DescendValueError(f"fit: engine={engine!r} shuffles every epoch; shuffle=False is for the local engine")
    checkpoint, checkpoint_every = checked_checkpoint(checkpoint, checkpoint_every, resume, "fit")
    options = {}
    if engine == "hogwild":
        options["workers"] = (os.cpu_count() or 1) if workers is None else workers
    job = TrainingJob(
        model, loss_fn, optimizer, train, validation=validation, epochs=epochs, batch_size=batch_size,
        shuffle=shuffle, seed=seed, callbacks=callbacks, progress=progress,
        clipping=Clipping(clip_grad_norm, clip_grad_value),
        checkpoint=checkpoint, checkpoint_every=checkpoint_every,
        resume=resume, options=options, metrics=metrics,
    )
    return run(job)

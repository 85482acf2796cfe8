"""The learning-rate range test: how to pick a learning rate before training (Smith, 2017).

Train for a few hundred minibatches while the learning rate grows geometrically from tiny to
huge, and record the loss. Too small a rate leaves the loss flat; a good one makes it fall
fastest; too large a one makes it explode. Two readings are common: the rate where the smoothed
loss falls fastest against log(learning rate), and a tenth of the rate where it is lowest. The
suggestion is the smaller, the safer for a long run (a short ramp rewards boldness that a long run
at one fixed rate does not). The model and the optimizer are put back as they were.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from descend.checks import check_integer, check_real, naming_arguments
from descend.data import as_dataset, batches
from descend.errors import DescendValueError
from descend.nn.module import Module
from descend.training.step import ModelSnapshot, check_optimizer_holds, inputs_and_targets, make_step

#: points skipped at each end when looking for the steepest fall: the smoothed loss's start-up and blow-up
_EDGE = 3


@dataclass(frozen=True)
class LearningRateRange:
    """What lr_find measured: rates (steps,), the loss of each step and its centred moving average (steps,),
    the rate of steepest fall, a tenth of the rate of lowest loss, and the suggestion (the smaller).

    >>> import descend as dc
    >>> model = dc.nn.Linear(2, 2, rng=0)
    >>> found = lr_find(model, dc.nn.CrossEntropyLoss(), dc.optim.SGD(model.parameters(), lr=0.1),
    ...                 (np.eye(2), np.array([0, 1])), steps=20)
    >>> found.learning_rates.shape, found.losses.shape, found.suggestion == min(found.steepest, found.tenth_of_lowest)
    ((20,), (20,), True)
    """

    learning_rates: np.ndarray
    losses: np.ndarray
    smoothed_losses: np.ndarray
    steepest: float
    tenth_of_lowest: float

    @property
    def suggestion(self) -> float:
        return min(self.steepest, self.tenth_of_lowest)

    def __repr__(self) -> str:
        return (f"LearningRateRange({len(self.learning_rates)} steps from {self.learning_rates[0]:.1e} to "
                f"{self.learning_rates[-1]:.1e}; steepest fall at {self.steepest:.2e}, a tenth of the lowest "
                f"loss's rate {self.tenth_of_lowest:.2e}: suggested learning rate {self.suggestion:.2e})")


@naming_arguments
def lr_find(
    model: Module,
    loss_fn: Module,
    optimizer: Any,
    train: Any,
    start_lr: float = 1e-6,
    end_lr: float = 10.0,
    steps: int = 100,
    batch_size: int = 64,
    smoothing: float = 0.9,
    diverge: float = 4.0,
    seed: int = 0,
) -> LearningRateRange:
    """Run the range test: `steps` minibatch steps at rates start_lr · (end_lr / start_lr)^(k / (steps − 1)).

    `train` is a Dataset or (x, y) as `fit` takes it. The test stops early once a running mean of the
    loss (weight `smoothing`, bias-corrected) passes `diverge` times its best so far, or is no longer
    finite; the two readings are taken off a centred moving average of the losses. Afterwards the
    model (weights, running statistics, random generators, training mode) and the optimizer (state,
    step count, learning rate) are exactly as before.

    >>> import descend as dc
    >>> model = dc.nn.Linear(2, 2, rng=0)
    >>> optimizer = dc.optim.SGD(model.parameters(), lr=0.1)
    >>> found = lr_find(model, dc.nn.CrossEntropyLoss(), optimizer, (np.eye(2), np.array([0, 1])), steps=20)
    >>> found  # doctest: +ELLIPSIS
    LearningRateRange(20 steps from 1.0e-06 to 1.0e+01; steepest fall at ...: suggested learning rate ...)
    >>> optimizer.lr = found.suggestion  # then fit
    """
    start_lr = check_real("start_lr", start_lr, low=0.0, low_open=True)
    end_lr = check_real("end_lr", end_lr, low=0.0, low_open=True)
    if end_lr <= start_lr:
        raise DescendValueError(f"end_lr must be above start_lr; got start_lr={start_lr:g}, end_lr={end_lr:g}")
    steps = check_integer("steps", steps, low=2 * _EDGE + 2)
    batch_size = check_integer("batch_size", batch_size, low=1)
    smoothing = check_real("smoothing", smoothing, low=0.0, high=1.0, high_open=True)
    diverge = check_real("diverge", diverge, low=1.0, low_open=True)
    dataset = as_dataset(train, "train")
    x, y = inputs_and_targets(dataset, model, loss_fn, "train")
    check_optimizer_holds(model, optimizer, "lr_find")
    buffer = model.flat_buffer()
    model_before = ModelSnapshot.take(model)
    saved = ({name: state.copy() for name, state in optimizer.state.items()},
             optimizer.iterations, optimizer.schedule, optimizer.defaults["lr"],
             [group["lr"] for group in optimizer.param_groups])
    rates = start_lr * (end_lr / start_lr) ** (np.arange(steps) / (steps - 1))
    step = make_step(model, loss_fn)
    losses = []
    average, best = 0.0, np.inf
    was_training = model.training
    model.train()
    try:
        optimizer.schedule = None
        for rate, rows in zip(rates, _endless_batches(len(x), batch_size, seed), strict=False):
            loss, _, _ = step(buffer.data, x[rows], y[rows])
            average = smoothing * average + (1 - smoothing) * loss
            corrected = average / (1 - smoothing ** (len(losses) + 1))
            losses.append(loss)
            if not np.isfinite(corrected) or corrected > diverge * best:
                break
            best = min(best, corrected)
            optimizer.lr = float(rate)
            optimizer.step()
    finally:
        model_before.restore(model)
        model.train(was_training)
        for name, state in saved[0].items():
            optimizer.state[name][...] = state
        optimizer.iterations, optimizer.schedule = saved[1:3]
        optimizer.lr = saved[3]
        for group, rate in zip(optimizer.param_groups, saved[4]):  # each group's own rate back
            group["lr"] = rate
    tried, losses = rates[: len(losses)], np.array(losses)
    centred = _centred_average(losses, width=max(3, len(losses) // 15))
    steepest = _steepest_fall(tried, centred)
    return LearningRateRange(tried, losses, centred, steepest, float(tried[np.nanargmin(centred)]) / 10)


def _centred_average(losses: np.ndarray, width: int) -> np.ndarray:
    """A moving average centred on each step (shorter windows at the ends): smooth without the running mean's lag.

    The running mean that decides when to stop trails the raw losses by several steps, which on a
    geometric ramp is a large factor in the rate; the suggestion is read off this curve instead.
    """
    half = width // 2
    finite = np.where(np.isfinite(losses), losses, np.nan)
    return np.array([np.nanmean(finite[max(0, k - half) : k + half + 1]) for k in range(len(losses))])


def _endless_batches(n_rows: int, batch_size: int, seed: int):
    """Shuffled minibatches, epoch after epoch, as many as the test takes."""
    for epoch in itertools.count():
        yield from batches(n_rows, batch_size, rng=[seed, epoch])


def _steepest_fall(rates: np.ndarray, smoothed: np.ndarray) -> float:
    """The rate where the smoothed loss falls fastest per unit of log(rate), before its minimum."""
    finite = np.isfinite(smoothed)
    if finite.sum() < 2 * _EDGE + 2:
        raise DescendValueError(
            f"the loss diverged after {finite.sum()} steps, too soon to suggest a learning rate; "
            f"lower start_lr (now {rates[0]:.1e})"
        )
    rates, smoothed = rates[finite], smoothed[finite]
    lowest = int(np.argmin(smoothed))
    window = slice(_EDGE, max(lowest, 2 * _EDGE + 1))
    slopes = np.gradient(smoothed, np.log(rates))[window]
    return float(rates[window][int(np.argmin(slopes))])

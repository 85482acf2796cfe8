"""evaluate and predict: a trained model over a whole data set, batched, in eval mode without a tape."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from descend.checks import check_integer, naming_arguments
from descend.data import Dataset, as_dataset
from descend.errors import ShapeError
from descend.nn.module import Module
from descend.tensor import Tensor, array_of, no_grad
from descend.training.metrics import resolve_metrics, score_batch
from descend.training.step import as_model_input, check_mean_loss, inputs_and_targets


@naming_arguments
def evaluate(model: Module, loss_fn: Module, data: Any, batch_size: int = 1024,
             metrics: Sequence[Any] | None = None) -> dict[str, float]:
    """Mean loss and metrics over a data set, in eval mode without a tape.

    `data` is a Dataset or (x, y) as fit takes it. `metrics` names what to
    report beside the loss ("accuracy", "top5_accuracy" or Metrics from
    descend.training.metrics), whatever the loss; None reports accuracy for
    classification losses. Returns {"loss": ..., "accuracy": ..., ...}.

    >>> import numpy as np, descend as dc
    >>> model = dc.nn.Linear(2, 3, rng=0)
    >>> x, y = np.eye(2, dtype=np.float32), np.array([0, 1])
    >>> sorted(evaluate(model, dc.nn.CrossEntropyLoss(), (x, y), metrics=["accuracy", "top3_accuracy"]))
    ['accuracy', 'loss', 'top3_accuracy']
    """
    check_mean_loss(loss_fn, "evaluate")
    x_all, y_all = inputs_and_targets(as_dataset(data, "data"), model, loss_fn, "data")
    batch_size = check_integer("batch_size", batch_size, low=1)
    metrics = resolve_metrics(metrics, loss_fn)
    was_training = model.training
    model.eval()
    total_loss, sums = 0.0, dict.fromkeys((m.name for m in metrics), 0.0)
    try:
        with no_grad():
            for start in range(0, len(x_all), batch_size):
                x, y = x_all[start : start + batch_size], y_all[start : start + batch_size]
                output = model(Tensor(x))
                total_loss += float(loss_fn(output, y).data) * len(x)
                for name, value in (score_batch(output.data, y, metrics) or {}).items():
                    sums[name] += value
    finally:
        model.train(was_training)
    return {"loss": total_loss / len(x_all), **{name: total / len(x_all) for name, total in sums.items()}}


@naming_arguments
def predict(model: Module, x: Any, batch_size: int = 1024) -> np.ndarray:
    """The model's outputs for every row of x, in eval mode, batched: x (N, ...) -> (N, ...).

    x is cast to the model's dtype, so a float32 model runs in float32 whatever it is given. A 1-D x
    is refused: whether it is one example or N examples of one feature is the caller's to say.

    >>> import descend as dc
    >>> scores = predict(dc.nn.Linear(3, 2, rng=0), np.ones((5, 3)))
    >>> scores.shape, scores.dtype, scores.argmax(axis=1).shape  # logits; argmax gives the classes
    ((5, 2), dtype('float32'), (5,))
    """
    batch_size = check_integer("batch_size", batch_size, low=1)
    array = as_dataset(x if isinstance(x, Dataset) else (array_of(x),), "x").x
    if array.ndim < 2:
        raise ShapeError(
            f"x has shape {array.shape}; expected one row per example, (N, ...) with at least 2 dimensions: "
            f"for one example of {array.size} features pass x[None] (shape (1, {array.size})), "
            f"for {array.size} examples of one feature x[:, None] (shape ({array.size}, 1))"
        )
    array = as_model_input(array, model.flat_buffer().dtype)
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            parts = [model(Tensor(array[start : start + batch_size])).data for start in range(0, len(array), batch_size)]
    finally:
        model.train(was_training)
    return np.concatenate(parts) if parts else np.zeros((0,))

"""evaluate and predict: a trained model over a whole data set, batched, in eval mode without a tape."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from descend.checks import check_integer, naming_arguments
from descend.data import Dataset, StreamingDataset, as_dataset
from descend.errors import ShapeError
from descend.nn.module import Module
from descend.tensor import Tensor, array_of, no_grad
from descend.training.metrics import resolve_metrics, score_batch
from descend.training.step import as_model_input, check_mean_loss, checking_chunks, inputs_and_targets


@naming_arguments
def evaluate(model: Module, loss_fn: Module, data: Any, batch_size: int = 1024,
             metrics: Sequence[Any] | None = None) -> dict[str, float]:
    """Mean loss and metrics over a data set, in eval mode without a tape.

    `data` is a Dataset or (x, y) as fit takes it, or a ParquetDataset or
    NpyDataset read from disk in order. `metrics` names what to
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
    batch_size = check_integer("batch_size", batch_size, low=1)
    if isinstance(data, StreamingDataset):  # read from disk in order, each chunk checked as it comes
        rows = len(data)
        pieces = data.batches(batch_size, shuffle=False, prepare=checking_chunks(model, loss_fn, "data"))
    else:
        x_all, y_all = inputs_and_targets(as_dataset(data, "data"), model, loss_fn, "data")
        rows = len(x_all)
        pieces = ((x_all[start : start + batch_size], y_all[start : start + batch_size])
                  for start in range(0, rows, batch_size))
    metrics = resolve_metrics(metrics, loss_fn)
    was_training = model.training
    model.eval()
    total_loss, sums = 0.0, dict.fromkeys((m.name for m in metrics), 0.0)
    try:
        with no_grad():
            for x, y in pieces:
                output = model(Tensor(x))
                total_loss += float(loss_fn(output, y).data) * len(x)
                for name, value in (score_batch(output.data, y, metrics) or {}).items():
                    sums[name] += value
    finally:
        model.train(was_training)
    return {"loss": total_loss / rows, **{name: total / rows for name, total in sums.items()}}


@naming_arguments
def predict(model: Module, x: Any, batch_size: int = 1024) -> np.ndarray:
    """The model's outputs for every row of x, in eval mode, batched: x (N, ...) -> (N, ...).

    x is cast to the model's dtype, so a float32 model runs in float32 whatever it is given. A 1-D x
    is refused: whether it is one example or N examples of one feature is the caller's to say. x may
    be a ParquetDataset or NpyDataset, read from disk in order.

    >>> import descend as dc
    >>> scores = predict(dc.nn.Linear(3, 2, rng=0), np.ones((5, 3)))
    >>> scores.shape, scores.dtype, scores.argmax(axis=1).shape  # logits; argmax gives the classes
    ((5, 2), dtype('float32'), (5,))
    """
    batch_size = check_integer("batch_size", batch_size, low=1)
    if isinstance(x, StreamingDataset):  # read from disk in order: only the outputs are kept
        dtype = model.flat_buffer().dtype
        pieces = (rows for rows, _ in x.batches(batch_size, shuffle=False, prepare=lambda rows, y, where: (
            as_model_input(Dataset(rows, name=where).x, dtype), None)))
        return _outputs(model, pieces)
    array = as_dataset(x if isinstance(x, Dataset) else (array_of(x),), "x").x
    if array.ndim < 2:
        raise ShapeError(
            f"x has shape {array.shape}; expected one row per example, (N, ...) with at least 2 dimensions: "
            f"for one example of {array.size} features pass x[None] (shape (1, {array.size})), "
            f"for {array.size} examples of one feature x[:, None] (shape ({array.size}, 1))"
        )
    array = as_model_input(array, model.flat_buffer().dtype)
    return _outputs(model, (array[start : start + batch_size] for start in range(0, len(array), batch_size)))


def _outputs(model: Module, pieces: Iterator[np.ndarray]) -> np.ndarray:
    """The model's outputs for each piece of rows, in eval mode without a tape, joined."""
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            parts = [model(Tensor(rows)).data for rows in pieces]
    finally:
        model.train(was_training)
    return np.concatenate(parts) if parts else np.zeros((0,))

"""The local engine: this process's training loop, the reference the other engines are tested against.

Each epoch draws a fresh permutation from a generator keyed by the seed and
the optimizer's step count at the start of the call, so runs with the same
seed repeat exactly and a second call continues rather than replays the first.
With a checkpoint folder the whole run is saved as it goes, and resumed to
the same bits (descend.checkpoint).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np

from descend.checkpoint import fingerprint, resume_run
from descend.data import batches
from descend.data.streaming import StreamingDataset
from descend.errors import DescendValueError
from descend.memory import reuse_freed_memory
from descend.training.evaluate import evaluate
from descend.training.loop import History, Run, TrainingState, progress_bar
from descend.training.step import (
    ModelSnapshot, TrainingJob, check_optimizer_holds, checking_chunks, job_arrays, job_validation, locate_nonfinite,
    make_step, seed_module_generators, train_on_batch,
)


def run(job: TrainingJob) -> History:
    """Train `job.model` in this process, on arrays or on a StreamingDataset read from disk; returns the History."""
    model, loss_fn, optimizer = job.model, job.loss_fn, job.optimizer
    rows, validation_set = _training_rows(job)
    # keyed by how far training has come, so a second fit() continues rather than replays the first
    progress_key = [job.seed, optimizer.iterations] if job.seed is not None else None
    rng = np.random.default_rng(progress_key)
    if progress_key is not None:
        seed_module_generators(model, progress_key)
    step = make_step(model, loss_fn, job.metrics)
    buffer, modules = model.flat_buffer(), list(model.modules())
    state = TrainingState(model, loss_fn, optimizer, History())
    training = Run(state, job.callbacks, progress_bar(job.progress, -(-rows.count // job.batch_size), job.epochs))
    settings = {"batch_size": job.batch_size, "seed": job.seed, "shuffle": bool(job.shuffle),
                "data": rows.fingerprint}
    checkpoints, _ = resume_run(job, training, rng, settings, "fit")
    model.train()
    tally = training.tally
    for epoch in range(tally.epoch + 1 if tally.epoch_done else tally.epoch, job.epochs + 1):
        if state.stop:
            break
        fresh = tally.epoch_done
        if not fresh:  # resumed within this epoch: draw its order of minibatches again and skip those done
            rng.bit_generator.state = tally.epoch_rng
        training.start_epoch(epoch, rng, fresh=fresh)
        for x, y in itertools.islice(rows.epoch(rng), tally.batch, None):
            before = ModelSnapshot.take(model, weights=False, modules=modules)
            result = train_on_batch(state, step, buffer.data, x, y, job.clipping,
                                    checkpoint=None if checkpoints is None else checkpoints.last,
                                    locate_origin=lambda: locate_nonfinite(model, loss_fn, before, x, y))
            training.step_done(result.loss, result.scores, len(x), result.lr)
            if checkpoints is not None and checkpoints.due(state.step):
                checkpoints.write(model, optimizer, state, tally, rng, job.callbacks)
        training.end_epoch(None if validation_set is None else evaluate(model, loss_fn, validation_set,
                                                                         metrics=job.metrics))
        if checkpoints is not None and (checkpoints.every == "epoch" or epoch == job.epochs or state.stop):
            checkpoints.write(model, optimizer, state, tally, rng, job.callbacks)
    training.end()
    return state.history


class _Rows(NamedTuple):
    """The training data as the loop walks it: its row count, its fingerprint for checkpoints, and one epoch's
    minibatches (x, y) drawn with a generator."""

    count: int
    fingerprint: str
    epoch: Callable[[np.random.Generator], Iterator[tuple[np.ndarray, np.ndarray]]]


def _training_rows(job: TrainingJob) -> tuple[_Rows, Any]:
    """The job's training rows, in memory or read from disk (a StreamingDataset, checked chunk by chunk as it is
    read), and its validation data (arrays as a Dataset, or a StreamingDataset)."""
    if not isinstance(job.train, StreamingDataset):
        x_train, y_train, validation = job_arrays(job)

        def in_memory(rng: np.random.Generator) -> Iterator[tuple[np.ndarray, np.ndarray]]:
            for rows in batches(len(x_train), job.batch_size, rng=rng, shuffle=job.shuffle):
                yield x_train[rows], y_train[rows]

        return _Rows(len(x_train), fingerprint(x_train, y_train), in_memory), validation
    streamed, model, loss_fn = job.train, job.model, job.loss_fn
    if not (streamed.has_targets or model.target_is_input):
        raise DescendValueError(f"train ({streamed.name}) has no label column; fit needs targets unless the model "
                                "reconstructs its input")
    check_optimizer_holds(model, job.optimizer, "fit")
    reuse_freed_memory()  # each window's arrays reuse the last one's pages
    prepare = checking_chunks(model, loss_fn, "train")
    return _Rows(len(streamed), streamed.fingerprint(),
                 lambda rng: streamed.batches(job.batch_size, rng, job.shuffle, prepare=prepare)), job_validation(job)

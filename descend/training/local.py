"""The local engine: this process's training loop, the reference the other engines are tested against.

Each epoch draws a fresh permutation from a generator keyed by the seed and
the optimizer's step count at the start of the call, so runs with the same
seed repeat exactly and a second call continues rather than replays the first.
With a checkpoint folder the whole run is saved as it goes, and resumed to
the same bits (descend.checkpoint).
"""

from __future__ import annotations

import itertools

import numpy as np

from descend.checkpoint import fingerprint, resume_run
from descend.data import batches
from descend.training.evaluate import evaluate
from descend.training.loop import History, Run, TrainingState, progress_bar
from descend.training.step import (
    ModelSnapshot, TrainingJob, job_arrays, locate_nonfinite, make_step, seed_module_generators, train_on_batch,
)


def run(job: TrainingJob) -> History:
    """Train `job.model` in this process; returns the History."""
    model, loss_fn, optimizer = job.model, job.loss_fn, job.optimizer
    x_train, y_train, validation_set = job_arrays(job)
    # keyed by how far training has come, so a second fit() continues rather than replays the first
    progress_key = [job.seed, optimizer.iterations] if job.seed is not None else None
    rng = np.random.default_rng(progress_key)
    if progress_key is not None:
        seed_module_generators(model, progress_key)
    step = make_step(model, loss_fn, job.metrics)
    buffer, modules = model.flat_buffer(), list(model.modules())
    state = TrainingState(model, loss_fn, optimizer, History())
    training = Run(state, job.callbacks, progress_bar(job.progress, -(-len(x_train) // job.batch_size), job.epochs))
    settings = {"batch_size": job.batch_size, "seed": job.seed, "shuffle": bool(job.shuffle),
                "data": fingerprint(x_train, y_train)}
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
        for rows in itertools.islice(batches(len(x_train), job.batch_size, rng=rng, shuffle=job.shuffle),
                                     tally.batch, None):
            x, y = x_train[rows], y_train[rows]
            before = ModelSnapshot.take(model, weights=False, modules=modules)
            result = train_on_batch(state, step, buffer.data, x, y, job.clipping,
                                    checkpoint=None if checkpoints is None else checkpoints.last,
                                    locate_origin=lambda: locate_nonfinite(model, loss_fn, before, x, y))
            training.step_done(result.loss, result.scores, len(rows), result.lr)
            if checkpoints is not None and checkpoints.due(state.step):
                checkpoints.write(model, optimizer, state, tally, rng, job.callbacks)
        training.end_epoch(None if validation_set is None else evaluate(model, loss_fn, validation_set,
                                                                         metrics=job.metrics))
        if checkpoints is not None and (checkpoints.every == "epoch" or epoch == job.epochs or state.stop):
            checkpoints.write(model, optimizer, state, tally, rng, job.callbacks)
    training.end()
    return state.history

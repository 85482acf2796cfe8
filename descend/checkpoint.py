"""Checkpoints: all a training run needs to go on after a crash, one file each, and finding the newest good one.

A checkpoint is a descend model file (descend.io: `descend.load` opens one
as a model) that also holds the optimizer's state (momentum, moment
estimates, step count and so the schedule's place), the random generators'
states (shuffling, dropout), where the run is within its epoch with that
epoch's running sums, the History so far and the callbacks' state. `fit`
writes one every `checkpoint_every` steps or at the end of every epoch into
the run's folder, atomically (a temporary file, flushed to disk, renamed),
and keeps the newest few, by the order they were written. Every file carries
the SHA-256 of its data, and every field of its training record is checked
by type and range on reading, so resuming tells a damaged file from a good
one: it takes the newest that reads back whole, warning about each one it
skips and moving it into the folder's damaged/ (never deleting it), so that
it can neither be taken again nor crowd out the run's new checkpoints.

Resuming replays nothing approximately: the weights, the optimizer and
every generator continue from exactly where the checkpoint left them, and
the epoch in progress continues with the same order of minibatches, so a
run killed at any moment and resumed ends with the same bits as one that
was never interrupted.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from descend.errors import (
    CheckpointError, CheckpointWarning, DescendTypeError, DescendValueError, ModelFileError, warn,
)
from descend.files import checked_path
from descend.io import parse_json, read_architecture, read_header, read_tensors, under, write_file
from descend.nn.module import Module, module_spec
from descend.optim.optimizer import Optimizer
from descend.training.loop import Callback, EpochTally, Run, TrainingState
from descend.training.step import ModelSnapshot, TrainingJob, check_every

#: how many checkpoints a folder keeps: the newest, and older ones to fall back on if it is damaged
KEEP = 3
#: rows of the training data whose bytes the fingerprint hashes (spread evenly, first and last included)
FINGERPRINT_ROWS = 64

#: the sub-folder where resuming moves the checkpoints it cannot read
DAMAGED = "damaged"

_FILE = re.compile(r"checkpoint-(\d+)\.dsc")


def fingerprint(x: np.ndarray, y: np.ndarray) -> str:
    """A short hash of a data set's shapes, dtypes and a spread of its rows: resuming on other data is refused."""
    digest = hashlib.sha256()
    rows = np.unique(np.linspace(0, len(x) - 1, min(len(x), FINGERPRINT_ROWS)).astype(np.int64))
    for array in (x, y):
        digest.update(f"{array.shape} {array.dtype}".encode())
        digest.update(np.ascontiguousarray(array[rows]).data)
    return digest.hexdigest()[:16]


def checkpoint_files(folder: Path) -> list[Path]:
    """The checkpoint files (checkpoint-<step>.dsc) in `folder`, by step, oldest first; none if it is no folder."""
    if not folder.is_dir():
        return []
    found = [(int(match.group(1)), path) for path in folder.iterdir() if (match := _FILE.fullmatch(path.name))]
    return [path for _, path in sorted(found)]


class Checkpoints:
    """The checkpoints of one run in one folder: when they are due, writing them, and finding the newest good one.

    Files are named checkpoint-<step>.dsc; the `KEEP` written last stay: this
    run's, newest last, after those it found in the folder, by step.
    """

    def __init__(self, folder: str | os.PathLike, every: Any, settings: dict[str, Any]):
        if not isinstance(folder, (str, os.PathLike)):
            raise DescendTypeError(f"checkpoint must be a folder path; got {type(folder).__name__} {folder!r}")
        self.folder = checked_path("checkpoint", folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise DescendValueError(f"checkpoint must be a folder; {str(self.folder)!r} is a file")
        self.every = check_every(every)
        #: the run's settings that must not change on resuming (batch size, seed, shuffling, data)
        self.settings = settings
        #: the newest checkpoint known to be good: written by this run, or resumed from
        self.last: Path | None = None
        #: the files this run wrote, in the order it wrote them
        self.written: list[Path] = []

    def files(self) -> list[Path]:
        """The folder's checkpoint files, oldest first."""
        return checkpoint_files(self.folder)

    def due(self, step: int, since: int | None = None) -> bool:
        """Whether a checkpoint is due at the run's `step`-th step (with a number of steps as `every`): a multiple
        of `every` lies in (since, step]; `since` is the step before unless an engine counts several steps at once
        (Spark's rounds, HOGWILD!'s workers)."""
        since = step - 1 if since is None else since
        return self.every != "epoch" and step // self.every > since // self.every

    def start(self, resume: bool) -> Checkpoint | None:
        """Prepare the folder; with `resume`, the newest checkpoint that reads back whole (None if there is none).

        Temporary files left by a write that was killed are removed. Without
        `resume`, a folder that already holds a run's checkpoints is refused:
        mixing two runs in one folder would resume the wrong one later. A
        checkpoint that does not read back whole is moved into damaged/, with
        a CheckpointWarning that points at the line that called fit.
        """
        if self.folder.is_dir():
            for leftover in self.folder.glob(".checkpoint-*.tmp"):
                leftover.unlink(missing_ok=True)
        existing = self.files()
        if not resume:
            if existing:
                raise DescendValueError(
                    f"checkpoint folder {str(self.folder)!r} already holds {len(existing)} checkpoints of a run "
                    f"(newest {existing[-1].name}); pass resume=True to go on with that run, or choose another folder"
                )
            return None
        for path in reversed(existing):
            try:
                found = read_checkpoint(path)
            except ModelFileError as error:
                warn(f"skipping a damaged checkpoint: {error}; {self._move_aside(path)}", CheckpointWarning)
                continue
            self.last = path
            return found
        return None

    def _move_aside(self, path: Path) -> str:
        """Move a damaged checkpoint into damaged/ (under a free name); what became of it, in words."""
        folder = self.folder / DAMAGED
        try:
            folder.mkdir(exist_ok=True)
            target, copies = folder / path.name, 0
            while os.path.lexists(target):
                copies += 1
                target = folder / f"{path.name}.{copies}"
            os.replace(path, target)
        except OSError as error:
            return f"it stays where it is, as it could not be moved aside ({error.strerror})"
        return f"moved it to {target}"

    def write(self, model: Module, optimizer: Optimizer, training: TrainingState, tally: EpochTally, rng: np.random.Generator,
              callbacks: Sequence[Callback], engine_arrays: dict[str, np.ndarray] | None = None) -> Path:
        """Write the run's whole state as checkpoint-<step>.dsc, then drop all but the `KEEP` written last.

        `engine_arrays` are an engine's own (HOGWILD!'s workers' optimizer states), kept under engine/.
        """
        tensors = {f"model/{name}": value for name, value in model.state_dict().items()}
        tensors.update({f"engine/{name}": value for name, value in (engine_arrays or {}).items()})
        optimizer_state = optimizer.state_dict()
        tensors.update({f"optimizer/{name}": value for name, value in optimizer_state["arrays"].items()})
        snapshot = ModelSnapshot.take(model, weights=False)
        for index, arrays in snapshot.carried.items():
            tensors.update({f"module/{index}/{name}": value for name, value in arrays.items()})
        callback_states = {}
        for key, callback in _keyed(callbacks):
            state = callback.state_dict()
            if state["scalars"] or state["arrays"]:
                tensors.update({f"callback/{key}/{name}": value for name, value in state["arrays"].items()})
                callback_states[key] = state["scalars"]
        run = {
            "progress": asdict(tally),
            "step": training.step,
            "stop": training.stop,
            "rng": rng.bit_generator.state,
            "module_generators": {str(index): state for index, state in snapshot.generators.items()},
            "history": training.history.epochs,
            "callbacks": callback_states,
            "settings": self.settings,
        }
        metadata = {
            "architecture": json.dumps(module_spec(model)),
            "dtype": model.flat_buffer().dtype.name,
            "optimizer": json.dumps(optimizer_state["scalars"]),
            "training": json.dumps(run),
        }
        path = write_file(self.folder / f"checkpoint-{training.step:09d}.dsc", tensors, metadata)
        self.last = path
        # by the order of writing, not by step: a file left with a higher step number never crowds out new ones
        self.written = [*(written for written in self.written if written != path), path]
        ours = set(self.written)
        order = [found for found in self.files() if found not in ours] + self.written
        for old in order[:-KEEP]:
            old.unlink(missing_ok=True)
        self.written = [written for written in self.written if written in order[-KEEP:]]
        return path

    def restore(self, found: Checkpoint, model: Module, optimizer: Optimizer, training: TrainingState, tally: EpochTally,
                rng: np.random.Generator) -> dict[str, dict[str, Any]]:
        """Put the run back as the checkpoint `found` (from `start`) left it; returns the callbacks' saved states.

        The model's architecture and the run's settings must be the
        checkpoint's; a file that does not fit raises ModelFileError.
        """
        path, run = found.path, found.run
        if found.architecture != module_spec(model):
            raise DescendValueError(
                f"the checkpoint {path} was written for another model: it holds {_short(found.architecture)}; "
                f"this run trains {_short(module_spec(model))}"
            )
        engines = [settings.get("engine", "local") for settings in (run["settings"], self.settings)]
        if engines[0] != engines[1]:
            raise DescendValueError(
                f"the checkpoint {path} was written by the {engines[0]} engine; this run trains with the {engines[1]} "
                "engine. Resume it with its own engine, or start a new run in another folder."
            )
        foreign = sorted(set(run["settings"]) - set(self.settings))
        if foreign:
            raise DescendValueError(
                f"the checkpoint {path} was written by a run with {foreign[0]}={run['settings'][foreign[0]]!r}, a "
                "setting this run has not. Resume it with its own settings, or start a new run in another folder."
            )
        for name, value in self.settings.items():
            saved = run["settings"].get(name)
            if None not in (saved, value) and type(saved) is not type(value):
                raise CheckpointError(
                    f"{path}: its training state's settings.{name} is {_shown(saved)} ({type(saved).__name__}); "
                    f"this run's is {value!r} ({type(value).__name__})"
                )
            if saved != value:
                differs = "other data" if name == "data" else f"{name}={saved!r}; this call has {name}={value!r}"
                raise DescendValueError(
                    f"the checkpoint {path} was written by a run with {differs}. "
                    "Resume with the run's own settings and data, or start a new run in another folder."
                )
        tensors = found.tensors
        try:
            model.load_state_dict(under(tensors, "model/"))
            optimizer.load_state_dict({"arrays": under(tensors, "optimizer/"), "scalars": found.optimizer})
            ModelSnapshot(
                generators={int(index): state for index, state in run["module_generators"].items()},
                carried={index: under(tensors, f"module/{index}/") for index in range(len(list(model.modules())))},
            ).restore(model)
            rng.bit_generator.state = run["rng"]
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
            raise CheckpointError(f"{path} does not fit this run: {error}") from None
        saved = {key: {"scalars": scalars, "arrays": under(tensors, f"callback/{key}/")}
                 for key, scalars in run["callbacks"].items()}
        vars(tally).update(run["progress"])
        training.step, training.stop = run["step"], run["stop"]
        training.history.epochs[:] = run["history"]
        return saved


def resume_run(job: TrainingJob, training: Run, rng: np.random.Generator, settings: dict[str, Any],
               caller: str) -> tuple[Checkpoints | None, Checkpoint | None]:
    """Begin `training`, first putting the run back as its newest good checkpoint left it when `job.resume`.

    Returns the run's Checkpoints (None when `job.checkpoint` is None) and
    the checkpoint it resumed from (None for a new run), whose arrays hold
    what an engine keeps of its own. Restored: the model, the optimizer,
    `training`'s tally, step and History, the generator `rng`, and (after
    the callbacks' on_train_begin) the callbacks' states. `settings` are
    what a resumed run must share with the checkpoint's; `caller` names
    the function in the errors.
    """
    if job.checkpoint is None:
        training.begin()
        return None, None
    checkpoints = Checkpoints(job.checkpoint, job.checkpoint_every, settings)
    found = checkpoints.start(job.resume)
    saved = None
    if found is not None:
        saved = checkpoints.restore(found, job.model, job.optimizer, training.state, training.tally, rng)
        if training.tally.epoch > job.epochs:
            raise DescendValueError(
                f"{caller}: epochs={job.epochs}, but the checkpoint {found.path} is already at epoch "
                f"{training.tally.epoch}; pass at least as many epochs as the run has done"
            )
    training.begin()
    if saved is not None:
        restore_callbacks(job.callbacks, saved, path=checkpoints.last)
    return checkpoints, found


def restore_callbacks(callbacks: Sequence[Callback], saved: dict[str, dict[str, Any]],
                      path: Path | None = None) -> None:
    """Give each callback back the state a checkpoint (at `path`) saved for it, matched by class and order.

    A callback that keeps no state (a logger) may come or go between runs;
    one that kept state (EarlyStopping) must be there again, as it steers the
    run. A state the callback cannot take is a CheckpointError.
    """
    keyed = dict(_keyed(callbacks))
    missing = sorted(set(saved) - set(keyed))
    if missing:
        raise DescendValueError(
            f"the checkpoint holds the state of the callbacks {missing}, which this run lacks "
            f"(it has {sorted(keyed) or 'none'}); pass the run's callbacks again, in the same order"
        )
    for key, state in saved.items():
        try:
            keyed[key].load_state_dict(state)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
            raise CheckpointError(f"{path or 'the checkpoint'}: the state it saved for the callback {key} does not "
                                  f"fit it: {type(error).__name__}: {error}") from None


def _keyed(callbacks: Sequence[Callback]) -> Iterator[tuple[str, Callback]]:
    """Each callback with a key made of its class and its place among those of its class: EarlyStopping.0."""
    seen: dict[str, int] = {}
    for callback in callbacks:
        name = type(callback).__name__
        yield f"{name}.{seen.get(name, 0)}", callback
        seen[name] = seen.get(name, 0) + 1


class Checkpoint(NamedTuple):
    """A checkpoint file that read back whole: its arrays by name, and its header's JSON parts already parsed."""

    path: Path
    tensors: dict[str, np.ndarray]
    run: dict[str, Any]
    architecture: dict[str, Any]
    optimizer: dict[str, Any]


def read_checkpoint(path: Path) -> Checkpoint:
    """Check a checkpoint file (sizes, SHA-256, training state) and parse its header; ModelFileError if it fails.

    Every field of the training record and the optimizer's scalars is
    checked by type and range (a CheckpointError names the first wrong one),
    so a record that reads back is one a run can go on from.
    """
    header, raw = read_header(path)
    metadata = header["__metadata__"]
    if "training" not in metadata or "optimizer" not in metadata:
        raise CheckpointError(f"{path} is a model file but not a checkpoint: it holds no readable training state")
    run = parse_json(path, metadata["training"], "training state")
    optimizer = parse_json(path, metadata["optimizer"], "optimizer state")
    architecture = read_architecture(path, metadata)
    _check_record(path, run)
    _check(path, "optimizer state", optimizer, isinstance(optimizer, dict) and isinstance(optimizer.get("class"), str)
           and _whole(optimizer.get("iterations")) and isinstance(optimizer.get("hyperparameters"), dict)
           and (optimizer.get("schedule") is None or isinstance(optimizer.get("schedule"), dict)),
           "{'class': a name, 'iterations': a whole number >= 0, 'hyperparameters': {...}, 'schedule': null or {...}}")
    tensors = read_tensors(header, raw)
    bad = [name for name, value in tensors.items() if name.startswith(("model/", "optimizer/", "module/", "engine/"))
           and not np.isfinite(value).all()]
    if bad:
        raise CheckpointError(f"{path}: its arrays {', '.join(bad[:3])} hold NaN or infinite values; a run never "
                              "saves a step that made one, so the file is damaged")
    return Checkpoint(path, tensors, run, architecture, optimizer)


#: the fields of a checkpoint's training record
RECORD = ("progress", "step", "stop", "rng", "module_generators", "history", "callbacks", "settings")
#: the bit generators whose states a checkpoint may hold (NumPy's)
BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")
#: the run's shuffling generator is always np.random.default_rng's: a state of another kind cannot be its
RUN_GENERATOR = type(np.random.default_rng().bit_generator).__name__
_CALLBACK_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\.[0-9]{1,6}")
_SCALARS = (str, int, float, bool, type(None))


def _check_record(path: Path, run: Any) -> None:
    """Each field of a training record (as Checkpoints.write makes it) by type and range, or a CheckpointError."""
    _check(path, "training state", run, isinstance(run, dict) and set(run) == set(RECORD),
           f"a dict of {', '.join(RECORD)}")
    tally = run["progress"]
    names = [field.name for field in fields(EpochTally)]
    _check(path, "progress", tally, isinstance(tally, dict) and set(tally) == set(names),
           f"a dict of {', '.join(names)}")
    for name in ("epoch", "batch", "seen"):
        _check(path, f"progress.{name}", tally[name], _whole(tally[name]), "a whole number >= 0")
    _check(path, "progress.epoch_done", tally["epoch_done"], type(tally["epoch_done"]) is bool, "true or false")
    _check(path, "progress.loss_sum", tally["loss_sum"], _real(tally["loss_sum"]) and math.isfinite(tally["loss_sum"]),
           "a finite number")
    sums = tally["score_sums"]
    _check(path, "progress.score_sums", sums, sums is None or isinstance(sums, dict) and len(sums) <= 64 and all(
        isinstance(name, str) and len(name) <= 64 and _real(value) and math.isfinite(value)
        for name, value in sums.items()), "null or a dict of at most 64 metric names to finite numbers")
    lr = tally["lr"]
    _check(path, "progress.lr", lr, _real(lr) and (math.isnan(lr) or 0 <= lr < math.inf),
           "NaN (no step yet) or a finite number >= 0")
    _check(path, "progress.seen", tally["seen"], tally["seen"] >= tally["batch"],
           f"at least progress.batch ({tally['batch']}): a minibatch has rows")
    _check(path, "progress.epoch_rng", tally["epoch_rng"], tally["epoch_rng"] is None and tally["epoch_done"]
           or _generator(tally["epoch_rng"], RUN_GENERATOR), f"a {RUN_GENERATOR} generator's state, or null "
           "once the epoch is done: an epoch in progress draws its minibatches again from it")
    _check(path, "progress.epoch", tally["epoch"], tally["epoch_done"] or tally["epoch"] >= 1,
           "at least 1 while an epoch is in progress (epochs count from 1)")
    _check(path, "step", run["step"], _whole(run["step"]), "a whole number >= 0")
    _check(path, "stop", run["stop"], type(run["stop"]) is bool, "true or false")
    _check(path, "rng", run["rng"], _generator(run["rng"], RUN_GENERATOR), f"a {RUN_GENERATOR} generator's state")
    generators = run["module_generators"]
    _check(path, "module_generators", generators, isinstance(generators, dict) and all(
        re.fullmatch("[0-9]{1,6}", index) and _generator(state) for index, state in generators.items()),
        "a dict of module indices (0, 1, ...) to generators' states")
    history = run["history"]
    _check(path, "history", history, isinstance(history, list) and all(
        isinstance(record, dict) and _whole(record.get("epoch"), low=1)
        and all(isinstance(value, _SCALARS) for value in record.values()) for record in history),
        "a list of epoch records {'epoch': 1, 'loss': ..., ...} of numbers and strings")
    done = tally["epoch"] - (not tally["epoch_done"])
    _check(path, "history", f"{len(history)} epochs", len(history) == max(done, 0),
           f"{max(done, 0)} epochs, as progress.epoch is {tally['epoch']} and epoch_done {tally['epoch_done']}")
    callbacks = run["callbacks"]
    _check(path, "callbacks", callbacks, isinstance(callbacks, dict) and all(
        _CALLBACK_KEY.fullmatch(key) and isinstance(state, dict) for key, state in callbacks.items()),
        "a dict of 'Class.index' keys to dicts of a callback's scalars")
    settings = run["settings"]
    _check(path, "settings", settings, isinstance(settings, dict) and all(
        isinstance(value, _SCALARS) for value in settings.values()), "a dict of names to numbers, strings or flags")


def _check(path: Path, field: str, value: Any, ok: Any, expected: str) -> None:
    """A CheckpointError naming the checkpoint, the field, what it holds and what was expected, unless `ok`."""
    if not ok:
        raise CheckpointError(f"{path}: its training state's {field} is {_shown(value)}; expected {expected}")


def _whole(value: Any, low: int = 0) -> bool:
    """Whether `value` is an int (not a bool) >= `low`."""
    return type(value) is int and value >= low


def _real(value: Any) -> bool:
    """Whether `value` is an int or a float (not a bool)."""
    return type(value) in (int, float)


def _generator(state: Any, kind: str | None = None) -> bool:
    """Whether `state` is a bit generator's state (of `kind`, when named) that NumPy takes back (checked on a
    scratch generator)."""
    if not (isinstance(state, dict) and state.get("bit_generator") in ((kind,) if kind else BIT_GENERATORS)):
        return False
    try:
        getattr(np.random, state["bit_generator"])().state = state
    except Exception:  # NumPy's own check of the state's parts; whatever it refuses, the file is at fault
        return False
    return True


def _shown(value: Any) -> str:
    """A value from a file, cut to a readable length."""
    text = repr(value)
    return text if len(text) <= 80 else text[:80] + "..."


def _short(spec: dict[str, Any]) -> str:
    """A module description cut to a readable length for an error message."""
    text = json.dumps(spec)
    return text if len(text) <= 300 else text[:300] + "..."

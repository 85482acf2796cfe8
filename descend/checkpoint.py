"""Checkpoints: all a training run needs to go on after a crash, one file each, and finding the newest good one.

A checkpoint is a descend model file (descend.io: `descend.load` opens one
as a model) that also holds the optimizer's state (momentum, moment
estimates, step count and so the schedule's place), the random generators'
states (shuffling, dropout), where the run is within its epoch with that
epoch's running sums, the History so far and the callbacks' state. `fit`
writes one every `checkpoint_every` steps or at the end of every epoch into
the run's folder, atomically (a temporary file, flushed to disk, renamed),
and keeps the newest few. Every file carries the SHA-256 of its data, so
resuming tells a damaged file from a good one: it takes the newest that reads
back whole, warning about each one it skips.

Resuming replays nothing approximately: the weights, the optimizer and
every generator continue from exactly where the checkpoint left them, and
the epoch in progress continues with the same order of minibatches, so a
run killed at any moment and resumed ends with the same bits as one that
was never interrupted.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from descend.errors import CheckpointWarning, DescendTypeError, DescendValueError, ModelFileError
from descend.io import read_header, read_tensors, under, write_file
from descend.nn.module import Module, module_spec
from descend.optim.optimizer import Optimizer
from descend.training.loop import Callback, EpochTally, TrainingState
from descend.training.step import ModelSnapshot, check_every

#: how many checkpoints a folder keeps: the newest, and older ones to fall back on if it is damaged
KEEP = 3
#: rows of the training data whose bytes the fingerprint hashes (spread evenly, first and last included)
FINGERPRINT_ROWS = 64

_FILE = re.compile(r"checkpoint-(\d+)\.dsc")


def fingerprint(x: np.ndarray, y: np.ndarray) -> str:
    """A short hash of a data set's shapes, dtypes and a spread of its rows: resuming on other data is refused."""
    digest = hashlib.sha256()
    rows = np.unique(np.linspace(0, len(x) - 1, min(len(x), FINGERPRINT_ROWS)).astype(np.int64))
    for array in (x, y):
        digest.update(f"{array.shape} {array.dtype}".encode())
        digest.update(np.ascontiguousarray(array[rows]).data)
    return digest.hexdigest()[:16]


class Checkpoints:
    """The checkpoints of one run in one folder: when they are due, writing them, and finding the newest good one.

    Files are named checkpoint-<step>.dsc; the newest `KEEP` stay.
    """

    def __init__(self, folder: str | os.PathLike, every: Any, settings: dict[str, Any]):
        if not isinstance(folder, (str, os.PathLike)):
            raise DescendTypeError(f"checkpoint must be a folder path; got {type(folder).__name__} {folder!r}")
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise DescendValueError(f"checkpoint must be a folder; {str(self.folder)!r} is a file")
        self.every = check_every(every)
        #: the run's settings that must not change on resuming (batch size, seed, shuffling, data)
        self.settings = settings
        #: the newest checkpoint known to be good: written by this run, or resumed from
        self.last: Path | None = None

    def files(self) -> list[Path]:
        """The folder's checkpoint files, oldest first."""
        if not self.folder.is_dir():
            return []
        found = [(int(match.group(1)), path) for path in self.folder.iterdir() if (match := _FILE.fullmatch(path.name))]
        return [path for _, path in sorted(found)]

    def due(self, step: int) -> bool:
        """Whether a checkpoint is due after the run's `step`-th step (with a number of steps as `every`)."""
        return self.every != "epoch" and step % self.every == 0

    def start(self, resume: bool) -> Checkpoint | None:
        """Prepare the folder; with `resume`, the newest checkpoint that reads back whole (None if there is none).

        Temporary files left by a write that was killed are removed. Without
        `resume`, a folder that already holds a run's checkpoints is refused:
        mixing two runs in one folder would resume the wrong one later.
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
                warnings.warn(f"skipping a damaged checkpoint: {error}", CheckpointWarning, stacklevel=3)
                continue
            self.last = path
            return found
        return None

    def write(self, model: Module, optimizer: Optimizer, training: TrainingState, tally: EpochTally, rng: np.random.Generator,
              callbacks: Sequence[Callback]) -> Path:
        """Write the run's whole state as checkpoint-<step>.dsc, then drop all but the newest `KEEP`."""
        tensors = {f"model/{name}": value for name, value in model.state_dict().items()}
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
        for old in self.files()[:-KEEP]:
            old.unlink(missing_ok=True)
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
        for name, value in self.settings.items():
            saved = run["settings"].get(name)
            if saved != value:
                differs = "other data" if name == "data" else f"{name}={saved!r}; this call has {name}={value!r}"
                raise DescendValueError(
                    f"the checkpoint {path} was written by a run with {differs}. "
                    "Resume with the run's own settings and data, or start a new run in another folder."
                )
        tensors = read_tensors(path, found.raw)
        try:
            model.load_state_dict(under(tensors, "model/"))
            optimizer.load_state_dict({"arrays": under(tensors, "optimizer/"), "scalars": found.optimizer})
            ModelSnapshot(
                generators={int(index): state for index, state in run["module_generators"].items()},
                carried={index: under(tensors, f"module/{index}/") for index in range(len(list(model.modules())))},
            ).restore(model)
            rng.bit_generator.state = run["rng"]
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
            raise ModelFileError(f"{path} does not fit this run: {error}") from None
        vars(tally).update(run["progress"])
        training.step, training.stop = run["step"], run["stop"]
        training.history.epochs[:] = run["history"]
        return {key: {"scalars": scalars, "arrays": under(tensors, f"callback/{key}/")}
                for key, scalars in run["callbacks"].items()}


def restore_callbacks(callbacks: Sequence[Callback], saved: dict[str, dict[str, Any]]) -> None:
    """Give each callback back the state a checkpoint saved for it, matched by class and order of appearance.

    A callback that keeps no state (a logger) may come or go between runs;
    one that kept state (EarlyStopping) must be there again, as it steers the run.
    """
    keyed = dict(_keyed(callbacks))
    missing = sorted(set(saved) - set(keyed))
    if missing:
        raise DescendValueError(
            f"the checkpoint holds the state of the callbacks {missing}, which this run lacks "
            f"(it has {sorted(keyed) or 'none'}); pass the run's callbacks again, in the same order"
        )
    for key, state in saved.items():
        keyed[key].load_state_dict(state)


def _keyed(callbacks: Sequence[Callback]) -> Iterator[tuple[str, Callback]]:
    """Each callback with a key made of its class and its place among those of its class: EarlyStopping.0."""
    seen: dict[str, int] = {}
    for callback in callbacks:
        name = type(callback).__name__
        yield f"{name}.{seen.get(name, 0)}", callback
        seen[name] = seen.get(name, 0) + 1


class Checkpoint(NamedTuple):
    """A checkpoint file that read back whole: its bytes, and its header's JSON parts already parsed."""

    path: Path
    raw: bytes
    run: dict[str, Any]
    architecture: dict[str, Any]
    optimizer: dict[str, Any]


def read_checkpoint(path: Path) -> Checkpoint:
    """Check a checkpoint file (sizes, SHA-256, training state) and parse its header; ModelFileError if it fails."""
    header, raw = read_header(path)
    metadata = header["__metadata__"]
    try:
        run = json.loads(metadata["training"])
        optimizer = json.loads(metadata["optimizer"])
        architecture = json.loads(metadata["architecture"])
    except (KeyError, TypeError, json.JSONDecodeError):
        raise ModelFileError(
            f"{path} is a model file but not a checkpoint: it holds no readable training state"
        ) from None
    needed = ("progress", "step", "stop", "rng", "module_generators", "history", "callbacks", "settings")
    if not isinstance(run, dict) or any(key not in run for key in needed):
        raise ModelFileError(f"{path}: its training state lacks some of {', '.join(needed)}")
    return Checkpoint(path, raw, run, architecture, optimizer)


def _short(spec: dict[str, Any]) -> str:
    """A module description cut to a readable length for an error message."""
    text = json.dumps(spec)
    return text if len(text) <= 300 else text[:300] + "..."

"""Checkpoints and resuming: a run killed at any moment goes on to the same bits; damaged files are skipped.

The strongest check runs training in a child process, kills it with SIGKILL
at random moments (the seed is printed on failure), resumes it each time,
and compares the final weights with an uninterrupted run's, bit for bit.
"""

from __future__ import annotations

import json
import os
import random
import runpy
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import descend as dc
from descend import nn, optim
from descend.checkpoint import KEEP
from descend.errors import CheckpointWarning, DescendTypeError, DescendValueError, ModelFileError
from helpers import json_places, json_replaced

# A training run as its own program: argv = checkpoint folder ("-" for none), output model file.
TRAINING_PROGRAM = """
import sys
import numpy as np
import descend as dc
from descend import nn, optim

folder, out = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(0)
x = rng.standard_normal((4000, 32)).astype(np.float32)
y = x[:, :4].argmax(axis=1)
model = nn.MLP([32, 128, 128, 4], dropout=0.1, rng=0)
opt = optim.Adam(model.parameters(), lr=1e-3, schedule=optim.InverseTimeDecay(decay=1e-3))
dc.fit(model, nn.CrossEntropyLoss(), opt, (x, y), epochs=10, batch_size=32, validation=(x[:500], y[:500]),
       callbacks=[dc.EarlyStopping(patience=20)], seed=3, progress=False,
       checkpoint=None if folder == "-" else folder, checkpoint_every=25, resume=folder != "-")
dc.save(model, out, optimizer=opt)
"""


def _program(tmp_path: Path) -> Path:
    path = tmp_path / "train_run.py"
    path.write_text(TRAINING_PROGRAM)
    return path


def _start(program: Path, folder: str, out: Path, **environment: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(program), folder, str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONWARNINGS": "ignore", **environment})


def _finish(process: subprocess.Popen) -> None:
    _, errors = process.communicate(timeout=300)
    assert process.returncode == 0, errors.decode()


def _weights(path: Path) -> np.ndarray:
    return dc.load(path).flat_buffer().data


def test_a_run_killed_at_random_moments_resumes_to_the_same_bits(tmp_path):
    program = _program(tmp_path)
    # one BLAS thread: a busy machine then slows every run alike, and their timing stays comparable
    one_thread = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    started = time.perf_counter()
    _finish(_start(program, "-", tmp_path / "uninterrupted.dsc", **one_thread))
    duration = time.perf_counter() - started
    seed = random.randrange(2**32)
    chance = random.Random(seed)
    folder, kills = tmp_path / "run", []
    for attempt in range(3):
        process = _start(program, str(folder), tmp_path / "resumed.dsc", **one_thread)
        # the first kill lands after the first checkpoint, mid-training; later ones anywhere, startup included
        while not list(folder.glob("checkpoint-*.dsc")) and process.poll() is None:
            time.sleep(0.01)
        delay = chance.uniform(0.0, 0.5) * duration
        time.sleep(delay)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills.append((round(delay, 2), sorted(path.name for path in folder.glob("checkpoint-*.dsc"))[-1]))
        else:
            _finish(process)
    _finish(_start(program, str(folder), tmp_path / "resumed.dsc", **one_thread))
    where = f"(random seed {seed}; kills: seconds after the first checkpoint, the newest checkpoint then: {kills})"
    assert kills, f"no kill landed before the run ended {where}"
    np.testing.assert_array_equal(_weights(tmp_path / "resumed.dsc"), _weights(tmp_path / "uninterrupted.dsc"), where)
    # the optimizer's state (Adam's moments, its step count) ends the same too
    resumed, uninterrupted = (dc.io.read_header(tmp_path / name)[0]["__metadata__"]["optimizer"]
                              for name in ("resumed.dsc", "uninterrupted.dsc"))
    assert resumed == uninterrupted
    assert len(list(folder.glob("checkpoint-*.dsc"))) <= KEEP and not list(folder.glob(".*tmp"))
    assert not (folder / "damaged").exists(), "a kill damaged a checkpoint, or a good one was taken for damaged"


def test_the_same_seed_gives_the_same_bits_in_another_process(tmp_path, monkeypatch):
    program = _program(tmp_path)
    _finish(_start(program, "-", tmp_path / "child.dsc"))
    monkeypatch.setattr(sys, "argv", [str(program), "-", str(tmp_path / "here.dsc")])
    runpy.run_path(str(program), run_name="__main__")
    np.testing.assert_array_equal(_weights(tmp_path / "here.dsc"), _weights(tmp_path / "child.dsc"))


# -- in one process: an interruption is an exception from a callback ------------------------------------
class _Interrupt(dc.Callback):
    """Stops the run after step `at` as a crash would: by raising."""

    def __init__(self, at: int):
        self.at = at

    def on_batch_end(self, state, loss):
        if state.step == self.at:
            raise KeyboardInterrupt


def _moons_run(folder, every=7, interrupt_at=None, resume=False, epochs=6, batch_size=32, seed=0, hidden=16):
    data, validation = dc.data.make_moons(n=300, seed=0), dc.data.make_moons(n=100, seed=1)
    model = nn.MLP([2, hidden, hidden, 2], dropout=0.2, rng=0)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, schedule=optim.InverseTimeDecay(decay=0.01))
    callbacks = [dc.EarlyStopping(monitor="val_loss", patience=3)]
    if interrupt_at is not None:
        callbacks.append(_Interrupt(interrupt_at))
    history = dc.fit(model, nn.CrossEntropyLoss(), opt, data, epochs=epochs, batch_size=batch_size,
                     validation=validation, callbacks=callbacks, seed=seed, progress=False, checkpoint=folder,
                     checkpoint_every=every, resume=resume)
    return model, opt, history


@pytest.mark.parametrize("every", [7, 10, "epoch"])
def test_resuming_after_any_step_gives_the_uninterrupted_run(tmp_path, every):
    reference, reference_opt, reference_history = _moons_run(tmp_path / "reference", every=every)
    for interrupt_at in (1, 7, 10, 23, 40, 59):
        folder = tmp_path / f"at-{interrupt_at}"
        with pytest.raises(KeyboardInterrupt):
            _moons_run(folder, every=every, interrupt_at=interrupt_at)
        model, opt, history = _moons_run(folder, every=every, resume=True)
        np.testing.assert_array_equal(model.flat_buffer().data, reference.flat_buffer().data)
        np.testing.assert_array_equal(opt.state["momentum_buffer"], reference_opt.state["momentum_buffer"])
        assert opt.iterations == reference_opt.iterations
        assert [{k: v for k, v in r.items() if k != "seconds"} for r in history.epochs] == \
               [{k: v for k, v in r.items() if k != "seconds"} for r in reference_history.epochs]


def test_resuming_a_finished_run_changes_nothing_and_more_epochs_go_on(tmp_path):
    model, _, history = _moons_run(tmp_path, epochs=3)
    again, _, history_again = _moons_run(tmp_path, epochs=3, resume=True)
    np.testing.assert_array_equal(again.flat_buffer().data, model.flat_buffer().data)
    assert history_again["loss"] == history["loss"]
    longer, _, history_longer = _moons_run(tmp_path, epochs=5, resume=True)
    reference, _, _ = _moons_run(tmp_path / "straight", epochs=5)
    assert len(history_longer) == 5
    np.testing.assert_array_equal(longer.flat_buffer().data, reference.flat_buffer().data)


def _damage(path: Path, how: str) -> None:
    raw = bytearray(path.read_bytes())
    if how == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif how == "flipped data":
        raw[-100] ^= 0x01
        path.write_bytes(raw)
    elif how == "flipped header":  # a digit of the step count in the training state
        at = raw.index(b'\\"step\\": ') + len(b'\\"step\\": ')
        raw[at] = ord("9") if raw[at] != ord("9") else ord("8")
        path.write_bytes(raw)
    else:
        path.write_bytes(b"")


@pytest.mark.parametrize("how", ["truncated", "flipped data", "flipped header", "empty"])
def test_a_damaged_newest_checkpoint_is_detected_and_the_one_before_used(tmp_path, how):
    reference, _, _ = _moons_run(tmp_path / "reference")
    folder = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        _moons_run(folder, interrupt_at=45)
    newest = sorted(folder.glob("checkpoint-*.dsc"))[-1]
    _damage(newest, how)
    (folder / ".checkpoint-000000099.dsc.abc123.tmp").write_bytes(b"half a file")  # a write that was killed
    with pytest.warns(CheckpointWarning, match=newest.name):
        model, _, _ = _moons_run(folder, resume=True)
    np.testing.assert_array_equal(model.flat_buffer().data, reference.flat_buffer().data)
    assert not list(folder.glob(".*.tmp"))


def test_a_checkpoint_is_a_model_file(tmp_path):
    model, _, _ = _moons_run(tmp_path, epochs=2)
    loaded = dc.load(sorted(tmp_path.glob("checkpoint-*.dsc"))[-1])
    np.testing.assert_array_equal(loaded.flat_buffer().data, model.flat_buffer().data)


def test_a_stateful_char_model_resumes_mid_epoch_with_its_carried_state(tmp_path):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 12, (96, 9))
    data = (ids[:, :-1], ids[:, 1:])

    def run(folder, interrupt_at=None, resume=False):
        model = nn.CharRNN(12, embed=8, hidden=16, cell="lstm", stateful=True, rng=0)
        callbacks = [_Interrupt(interrupt_at)] if interrupt_at else []
        dc.fit(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=0.01), data, epochs=2, batch_size=16,
               shuffle=False, callbacks=callbacks, progress=False, checkpoint=folder, checkpoint_every=2,
               resume=resume)
        return model

    reference = run(tmp_path / "reference")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "run", interrupt_at=9)
    resumed = run(tmp_path / "run", resume=True)
    np.testing.assert_array_equal(resumed.flat_buffer().data, reference.flat_buffer().data)
    for mine, theirs in zip(resumed.carried, reference.carried):
        np.testing.assert_array_equal(mine.data, theirs.data)


@pytest.mark.parametrize("change, words", [
    ({"batch_size": 16}, ["batch_size=32", "batch_size=16"]),
    ({"seed": 1}, ["seed=0", "seed=1"]),
    ({"hidden": 8}, ["another model"]),
])
def test_resuming_with_other_settings_is_refused(tmp_path, change, words):
    with pytest.raises(KeyboardInterrupt):
        _moons_run(tmp_path, interrupt_at=12)
    with pytest.raises(DescendValueError) as raised:
        _moons_run(tmp_path, resume=True, **change)
    for word in words:
        assert word in str(raised.value)


def test_resuming_on_other_data_is_refused(tmp_path):
    x, y = np.random.default_rng(0).random((64, 2)).astype(np.float32), np.arange(64) % 2
    model = nn.MLP([2, 4, 2], rng=0)
    opt = optim.SGD(model.parameters(), lr=0.1)
    dc.fit(model, nn.CrossEntropyLoss(), opt, (x, y), epochs=1, progress=False, checkpoint=tmp_path)
    with pytest.raises(DescendValueError, match="other data"):
        dc.fit(model, nn.CrossEntropyLoss(), opt, (x[::-1].copy(), y), epochs=2, progress=False,
               checkpoint=tmp_path, resume=True)


def test_a_folder_of_another_run_is_refused_without_resume_and_resume_without_checkpoints_starts_afresh(tmp_path):
    _moons_run(tmp_path / "run", epochs=1)
    with pytest.raises(DescendValueError, match="already holds .* checkpoints.*resume=True"):
        _moons_run(tmp_path / "run", epochs=1)
    fresh, _, _ = _moons_run(tmp_path / "new", epochs=2, resume=True)
    straight, _, _ = _moons_run(tmp_path / "straight", epochs=2)
    np.testing.assert_array_equal(fresh.flat_buffer().data, straight.flat_buffer().data)


@pytest.mark.parametrize("arguments, error, words", [
    ({"checkpoint_every": 0}, DescendValueError, ["checkpoint_every", "0", "'epoch'"]),
    ({"checkpoint_every": "hourly"}, DescendValueError, ["checkpoint_every", "hourly"]),
    ({"checkpoint_every": 2.5}, DescendTypeError, ["checkpoint_every", "float"]),
    ({"checkpoint": 3}, DescendTypeError, ["checkpoint", "int"]),
    ({"checkpoint": None, "resume": True}, DescendValueError, ["resume=True", "checkpoint="]),
])
def test_bad_checkpoint_arguments_are_named(tmp_path, arguments, error, words):
    model = nn.MLP([2, 4, 2], rng=0)
    options = {"checkpoint": tmp_path / "run", **arguments}
    with pytest.raises(error) as raised:
        dc.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), dc.data.make_moons(n=40, seed=0),
               progress=False, **options)
    for word in words:
        assert word in str(raised.value)
    assert not (tmp_path / "run").exists()


def test_a_checkpoint_folder_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "taken").write_text("a file")
    with pytest.raises(DescendValueError, match="is a file"):
        _moons_run(tmp_path / "taken")


def test_a_model_file_is_not_taken_for_a_checkpoint(tmp_path):
    dc.save(nn.MLP([2, 16, 16, 2], rng=0), tmp_path / "checkpoint-000000001.dsc")
    with pytest.warns(CheckpointWarning, match="not a checkpoint"):
        _moons_run(tmp_path, epochs=1, resume=True)


def test_the_cli_resumes_a_killed_run_to_the_same_model(tmp_path):
    from click.testing import CliRunner

    from descend.cli import main

    runner = CliRunner()
    arguments = ["train", "--model", "mlp", "--data", "digits", "--epochs", "3", "--hidden", "32", "--quiet",
                 "--checkpoint-every", "9"]
    straight = runner.invoke(main, [*arguments, "--out", str(tmp_path / "straight")])
    assert straight.exit_code == 0, straight.output
    process = subprocess.Popen([sys.executable, "-c", "from descend.cli import main; main()", *arguments, "--out", str(tmp_path / "killed")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list((tmp_path / "killed" / "checkpoints").glob("checkpoint-*.dsc")) and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    resumed = runner.invoke(main, ["train", "--resume", str(tmp_path / "killed"), "--quiet"])
    assert resumed.exit_code == 0, resumed.output
    np.testing.assert_array_equal(_weights(tmp_path / "killed" / "model.dsc"),
                                  _weights(tmp_path / "straight" / "model.dsc"))
    lines = (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3
    changed = runner.invoke(main, ["train", "--resume", str(tmp_path / "killed"), "--lr", "0.5"])
    assert changed.exit_code == 2 and "--lr cannot change" in changed.output
    missing = runner.invoke(main, ["train", "--resume", str(tmp_path)])
    assert missing.exit_code == 2 and "run.json" in missing.output


def test_loading_a_damaged_checkpoint_directly_is_refused(tmp_path):
    _moons_run(tmp_path, epochs=1)
    newest = sorted(tmp_path.glob("checkpoint-*.dsc"))[-1]
    _damage(newest, "flipped data")
    with pytest.raises(ModelFileError, match="damaged"):
        dc.load(newest)


# -- a folder of damaged checkpoints: moved aside, never deleted, and new progress kept (issue 17) ------------
def _all_damaged(folder: Path) -> dict[str, bytes]:
    with pytest.raises(KeyboardInterrupt):
        _moons_run(folder, interrupt_at=45)
    damaged = {}
    for path in folder.glob("checkpoint-*.dsc"):
        _damage(path, "flipped data")
        damaged[path.name] = path.read_bytes()
    assert sorted(damaged) == [f"checkpoint-{step:09d}.dsc" for step in (28, 35, 42)]
    return damaged


def test_when_every_checkpoint_is_damaged_they_move_aside_and_the_first_new_one_is_kept(tmp_path):
    reference, _, _ = _moons_run(tmp_path / "reference")
    folder = tmp_path / "run"
    damaged = _all_damaged(folder)
    with pytest.warns(CheckpointWarning, match="moved it to .*damaged") as caught:
        with pytest.raises(KeyboardInterrupt):
            _moons_run(folder, resume=True, interrupt_at=10)
    assert len([w for w in caught if issubclass(w.category, CheckpointWarning)]) == 3
    # kept whole, never deleted; and out of the way of the run's new checkpoints
    assert {path.name: path.read_bytes() for path in (folder / "damaged").iterdir()} == damaged
    assert sorted(path.name for path in folder.glob("checkpoint-*.dsc")) == ["checkpoint-000000007.dsc"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", CheckpointWarning)  # nothing damaged is left to skip
        model, _, history = _moons_run(folder, resume=True)
    np.testing.assert_array_equal(model.flat_buffer().data, reference.flat_buffer().data)


def test_checkpoints_are_rotated_by_the_order_they_were_written_not_by_their_numbers(tmp_path):
    """Damaged files that cannot be moved aside (damaged/ is taken by a file) keep their higher numbers; the
    run's new checkpoints are still the ones kept."""
    folder = tmp_path / "run"
    _all_damaged(folder)
    (folder / "damaged").write_text("a file where the folder would go")
    with pytest.warns(CheckpointWarning, match="could not be moved aside"):
        with pytest.raises(KeyboardInterrupt):
            _moons_run(folder, resume=True, interrupt_at=22)
    names = sorted(path.name for path in folder.glob("checkpoint-*.dsc"))
    assert names == [f"checkpoint-{step:09d}.dsc" for step in (7, 14, 21)]


def test_a_checkpoint_warning_points_at_the_line_that_called_fit(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        _moons_run(tmp_path, interrupt_at=45)
    _damage(sorted(tmp_path.glob("checkpoint-*.dsc"))[-1], "truncated")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = dc.data.make_moons(n=300, seed=0)
        model = nn.MLP([2, 16, 16, 2], dropout=0.2, rng=0)
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, schedule=optim.InverseTimeDecay(decay=0.01))
        line = sys._getframe().f_lineno + 1
        dc.fit(model, nn.CrossEntropyLoss(), opt, data, epochs=6, batch_size=32, validation=dc.data.make_moons(
            n=100, seed=1), callbacks=[dc.EarlyStopping(monitor="val_loss", patience=3)], seed=0, progress=False,
            checkpoint=tmp_path, checkpoint_every=7, resume=True)
    [warning] = [w for w in caught if issubclass(w.category, CheckpointWarning)]
    assert (warning.filename, warning.lineno) == (__file__, line)


# -- crafted training records with valid checksums (issue 17): a CheckpointError, never a TypeError -----------------
def _tiny_run(folder: Path, resume: bool = False, interrupt_at: int | None = None) -> None:
    """2 epochs of 4 steps on 64 moons, a checkpoint every 3 steps, EarlyStopping keeping its best weights."""
    data = dc.data.make_moons(n=64, seed=0)
    model = nn.MLP([2, 4, 2], dropout=0.2, rng=0)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, schedule=optim.InverseTimeDecay(decay=0.01))
    callbacks = [dc.EarlyStopping(monitor="val_loss", patience=3)]
    callbacks += [_Interrupt(interrupt_at)] if interrupt_at else []
    dc.fit(model, nn.CrossEntropyLoss(), opt, data, epochs=2, batch_size=16, validation=data, callbacks=callbacks,
           seed=0, progress=False, checkpoint=folder, checkpoint_every=3, resume=resume)


def _tiny_checkpoint() -> tuple[dict, dict]:
    """The tensors and metadata (JSON parts parsed) of a checkpoint taken mid-epoch 2, after EarlyStopping's first
    best epoch: every field of the record holds something."""
    import tempfile

    from descend.io import read_header, read_tensors

    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        with pytest.raises(KeyboardInterrupt):
            _tiny_run(folder, interrupt_at=7)
        path = folder / "checkpoint-000000006.dsc"
        header, raw = read_header(path)
        metadata = {key: value for key, value in header["__metadata__"].items() if key in ("architecture", "dtype")}
        metadata.update({key: json.loads(header["__metadata__"][key]) for key in ("training", "optimizer")})
        return read_tensors(header, raw), metadata


TINY_CHECKPOINT = _tiny_checkpoint()


def _write_crafted(folder: Path, training: dict | None = None, optimizer: dict | None = None,
                   text: tuple[str, str] | None = None) -> Path:
    """The tiny checkpoint with its training record or optimizer scalars replaced, its checksum valid."""
    from descend.io import write_file

    tensors, metadata = TINY_CHECKPOINT
    metadata = {**metadata, "training": json.dumps(training or metadata["training"]),
                "optimizer": json.dumps(optimizer or metadata["optimizer"])}
    if text:
        metadata["training"] = metadata["training"].replace(*text)
    folder.mkdir(parents=True, exist_ok=True)
    return write_file(folder / "checkpoint-000000006.dsc", tensors, metadata)


def _record(**changes):
    """The tiny checkpoint's training record with `changes` ({"progress.epoch": -1}) made."""
    record = json.loads(json.dumps(TINY_CHECKPOINT[1]["training"]))
    for place, value in changes.items():
        *parents, last = place.split(".")
        holder = record
        for part in parents:
            holder = holder[int(part)] if isinstance(holder, list) else holder[part]
        holder[int(last) if isinstance(holder, list) else last] = value
    return record


CRAFTED_RECORDS = {
    "step of text": (_record(step="6"), ["step is '6'", "a whole number >= 0"]),
    "negative epoch": (_record(**{"progress.epoch": -1}), ["progress.epoch is -1"]),
    "epoch_done of 1": (_record(**{"progress.epoch_done": 1}), ["progress.epoch_done is 1", "true or false"]),
    "infinite loss sum": (_record(**{"progress.loss_sum": float("inf")}), ["progress.loss_sum is inf", "finite"]),
    "fewer rows than batches": (_record(**{"progress.seen": 1}), ["progress.seen is 1", "at least progress.batch"]),
    "no generator mid-epoch": (_record(**{"progress.epoch_rng": None}), ["progress.epoch_rng is None"]),
    "a generator of -1": (_record(**{"rng.state.state": -1}), ["rng is", "a PCG64 generator's state"]),
    "another kind of generator mid-epoch": (_record(**{"progress.epoch_rng": np.random.PCG64DXSM(0).state}),
                                            ["progress.epoch_rng is", "a PCG64 generator's state"]),
    "epoch 0 in progress": (_record(**{"progress.epoch": 0}), ["progress.epoch is 0", "at least 1"]),
    "an unknown generator": (_record(**{"rng.bit_generator": "Mersenne"}), ["rng is", "PCG64"]),
    "history of text": (_record(history="none"), ["history is 'none'", "a list of epoch records"]),
    "a history record without its epoch": (_record(**{"history.0": {"loss": 1.0}}), ["history is", "'epoch': 1"]),
    "history longer than the epochs": (_record(history=[{"epoch": 1}, {"epoch": 2}]),
                                       ["history is '2 epochs'", "expected 1 epochs"]),
    "callbacks of a list": (_record(callbacks=[]), ["callbacks is []", "'Class.index'"]),
    "settings of a list": (_record(settings={"batch_size": [16]}), ["settings is", "numbers, strings or flags"]),
    "a record missing its step": ({k: v for k, v in _record().items() if k != "step"}, ["training state is",
                                                                                      "progress, step, stop"]),
}


@pytest.mark.parametrize("case", list(CRAFTED_RECORDS))
def test_a_crafted_training_record_with_a_valid_checksum_is_a_checkpoint_error(tmp_path, case):
    from descend.checkpoint import read_checkpoint
    from descend.errors import CheckpointError

    record, words = CRAFTED_RECORDS[case]
    path = _write_crafted(tmp_path, training=record)
    with pytest.raises(CheckpointError) as raised:
        read_checkpoint(path)
    for word in [str(path), *words]:
        assert word in str(raised.value), f"{word!r} not in: {raised.value}"
    with pytest.warns(CheckpointWarning, match="moved it to"):  # resuming skips it and starts afresh
        _tiny_run(tmp_path, resume=True)


@pytest.mark.parametrize("optimizer, words", [
    ({"class": "SGD", "iterations": -1, "hyperparameters": {}, "schedule": None}, ["optimizer state is", "iterations"]),
    ({"class": "SGD", "iterations": 6, "hyperparameters": [], "schedule": None}, ["optimizer state is"]),
    ("SGD", ["optimizer state is 'SGD'"]),
])
def test_crafted_optimizer_scalars_are_a_checkpoint_error(tmp_path, optimizer, words):
    from descend.checkpoint import read_checkpoint
    from descend.errors import CheckpointError

    with pytest.raises(CheckpointError) as raised:
        read_checkpoint(_write_crafted(tmp_path, optimizer=optimizer))
    for word in words:
        assert word in str(raised.value)


def test_an_enormous_or_non_finite_number_in_the_record_is_a_model_file_error(tmp_path):
    from descend.checkpoint import read_checkpoint

    for old, new, words in [('"step": 6', '"step": ' + "9" * 5000, "integer of 5000 digits"),
                            ('"step": 6', '"step": Infinity', "step is inf"),
                            ('"epoch": 2', '"epoch": NaN', "progress.epoch is nan")]:
        with pytest.raises(ModelFileError, match=words):
            read_checkpoint(_write_crafted(tmp_path, text=(old, new)))


@pytest.mark.parametrize("change, words", [
    ({"settings.batch_size": "16"}, ["settings.batch_size is '16' (str)", "this run's is 16 (int)"]),
    ({"callbacks.EarlyStopping.0.best_epoch": "1"}, ["callback EarlyStopping.0 does not fit it", "'best_epoch': '1'"]),
    ({"callbacks.EarlyStopping.0.best": float("nan")}, ["callback EarlyStopping.0 does not fit it", "'best': nan"]),
    ({"module_generators.1": TINY_CHECKPOINT[1]["training"]["rng"]}, ["does not fit this run"]),
])
def test_a_crafted_record_that_does_not_fit_the_run_is_a_checkpoint_error_when_resuming(tmp_path, change, words):
    from descend.errors import CheckpointError

    (key, value), = change.items()
    record = _record()
    holder = record
    parts = key.split(".")
    if parts[0] == "callbacks":
        holder, parts = record["callbacks"], ["EarlyStopping.0", *parts[3:]]
    for part in parts[:-1]:
        holder = holder[part]
    holder[parts[-1]] = value
    _write_crafted(tmp_path, training=record)
    with pytest.raises(CheckpointError) as raised:
        _tiny_run(tmp_path, resume=True)
    for word in words:
        assert word in str(raised.value), f"{word!r} not in: {raised.value}"


def test_early_stopping_s_best_weights_must_be_the_model_s(tmp_path):
    from descend.errors import CheckpointError
    from descend.io import write_file

    tensors, metadata = TINY_CHECKPOINT
    [name] = [name for name in tensors if name.endswith("best_weights")]
    for wrong in (tensors[name][:-1], tensors[name].astype(np.float64)):
        write_file(tmp_path / "checkpoint-000000006.dsc", {**tensors, name: wrong},
                   {**metadata, "training": json.dumps(metadata["training"]),
                    "optimizer": json.dumps(metadata["optimizer"])})
        with pytest.raises(CheckpointError, match="EarlyStopping's best weights are .*; the model's are float32"):
            _tiny_run(tmp_path, resume=True)


def test_nan_in_a_checkpoint_s_weights_or_optimizer_state_is_a_checkpoint_error(tmp_path):
    from descend.checkpoint import read_checkpoint
    from descend.errors import CheckpointError
    from descend.io import write_file

    tensors, metadata = TINY_CHECKPOINT
    metadata = {**metadata, **{key: json.dumps(metadata[key]) for key in ("training", "optimizer")}}
    for name in ("model/network.layers.0.weight", "optimizer/momentum_buffer"):
        poisoned = tensors[name].copy()
        poisoned[0] = np.nan
        path = write_file(tmp_path / "checkpoint-000000006.dsc", {**tensors, name: poisoned}, metadata)
        with pytest.raises(CheckpointError, match=f"its arrays {name} hold NaN"):
            read_checkpoint(path)


def test_the_tiny_checkpoint_unchanged_resumes_without_a_warning(tmp_path):
    """The crafted cases above start from a good record: unchanged, it resumes without a warning."""
    _write_crafted(tmp_path / "run")
    with warnings.catch_warnings():
        warnings.simplefilter("error", CheckpointWarning)
        _tiny_run(tmp_path / "run", resume=True)


# -- fuzzing the training record: whatever a field becomes, a run goes on or stops with a descend error --------------
FUZZ_RECORD_CASES = 120


@settings(max_examples=FUZZ_RECORD_CASES, derandomize=True, deadline=None)
@given(st.data())
def test_fuzzed_training_records_with_valid_checksums_resume_or_stop_with_a_descend_error(tmp_path_factory, data):
    """A field of the record or of the optimizer's scalars (any depth) becomes another JSON value of any type,
    with a valid checksum: resuming goes on (the change was harmless), skips the file with a CheckpointWarning,
    or raises a descend error. Never a TypeError, KeyError, AttributeError or ZeroDivisionError."""
    from descend.errors import DescendError

    target = data.draw(st.sampled_from(["training", "training", "training", "optimizer"]), label="target")
    original = TINY_CHECKPOINT[1][target]
    place = data.draw(st.sampled_from(list(json_places(original))), label="place")
    new = data.draw(st.recursive(
        st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.floats() | st.text(max_size=8)
        | st.sampled_from([10**49, 10**51, 0, -1, 1]),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
        max_leaves=6), label="new value")
    folder = tmp_path_factory.mktemp("record")
    _write_crafted(folder, **{target: json_replaced(original, place, new)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            _tiny_run(folder, resume=True)
        except DescendError:
            pass

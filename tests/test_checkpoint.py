"""Checkpoints and resuming: a run killed at any moment goes on to the same bits; damaged files are skipped.

The strongest check runs training in a child process, kills it with SIGKILL
at random moments (the seed is printed on failure), resumes it each time,
and compares the final weights with an uninterrupted run's, bit for bit.
"""

from __future__ import annotations

import os
import random
import runpy
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import descend as dc
from descend import nn, optim
from descend.checkpoint import KEEP
from descend.errors import CheckpointWarning, DescendTypeError, DescendValueError, ModelFileError

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
    ({"engine": "hogwild"}, DescendValueError, ["checkpoint=", "local engine", "hogwild"]),
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

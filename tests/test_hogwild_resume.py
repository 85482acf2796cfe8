"""HOGWILD!'s dense engine checkpoints and resumes; a killed parent leaves no worker and no shared file behind."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import descend as dc
from descend import nn, optim
from descend.checkpoint import checkpoint_files, read_checkpoint
from descend.errors import DescendValueError
from descend.hogwild.dense import remove_orphaned_folders

SHARED = Path("/dev/shm") if Path("/dev/shm").is_dir() else None


def _model_and_optimizer(seed: int = 0):
    """Dropout (generators), batch norm (running statistics) and momentum (optimizer state): every kind of state."""
    model = nn.Sequential(nn.Linear(2, 32, rng=seed), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.2, rng=seed),
                          nn.Linear(32, 2, rng=seed + 1))
    return model, optim.SGD(model.parameters(), lr=0.05, momentum=0.9)


def _fit(folder, epochs, resume=False, workers=1, checkpoint_every="epoch"):
    model, optimizer = _model_and_optimizer()
    history = dc.fit(model, nn.CrossEntropyLoss(), optimizer, dc.data.make_moons(n=600, noise=0.2, seed=0),
                     epochs=epochs, batch_size=16, engine="hogwild", workers=workers, progress=False, seed=3,
                     checkpoint=folder, checkpoint_every=checkpoint_every, resume=resume)
    return model, optimizer, history


def test_a_one_worker_run_resumes_to_the_bits_of_one_run_through(tmp_path):
    # one worker races with no one: its run repeats exactly, so a resumed run must give the same bits
    _fit(tmp_path / "run", epochs=2)
    resumed, resumed_optimizer, history = _fit(tmp_path / "run", epochs=4, resume=True)
    straight, straight_optimizer, straight_history = _fit(None, epochs=4)
    np.testing.assert_array_equal(resumed.flat_buffer().data, straight.flat_buffer().data)
    np.testing.assert_array_equal(resumed_optimizer.state["momentum_buffer"], straight_optimizer.state["momentum_buffer"])
    np.testing.assert_array_equal(resumed[1].running_mean, straight[1].running_mean)
    assert resumed_optimizer.iterations == straight_optimizer.iterations == 4 * 38
    assert [r["loss"] for r in history.epochs] == [r["loss"] for r in straight_history.epochs]


def test_a_checkpoint_of_another_engine_or_worker_count_is_refused(tmp_path):
    _fit(tmp_path / "run", epochs=1, workers=2)
    with pytest.raises(DescendValueError, match="workers=2; this call has workers=3"):
        _fit(tmp_path / "run", epochs=2, resume=True, workers=3)
    model, optimizer = _model_and_optimizer()
    with pytest.raises(DescendValueError, match="written by the hogwild engine; this run trains with the local engine"):
        dc.fit(model, nn.CrossEntropyLoss(), optimizer, dc.data.make_moons(n=600, noise=0.2, seed=0), epochs=2,
               batch_size=16, progress=False, seed=3, checkpoint=tmp_path / "run", resume=True)
    local = tmp_path / "local"
    dc.fit(model, nn.CrossEntropyLoss(), optimizer, dc.data.make_moons(n=600, noise=0.2, seed=0), epochs=1,
           batch_size=16, progress=False, seed=3, checkpoint=local)
    with pytest.raises(DescendValueError, match="written by the local engine; this run trains with the hogwild engine"):
        _fit(local, epochs=2, resume=True, workers=2)


# The child trains with two workers and a checkpoint every 300 steps, taken while the workers run; after the
# second such checkpoint taken within an epoch it writes its workers' process ids and SIGKILLs itself.
_CHILD = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    import descend as dc
    from descend import checkpoint, nn, optim

    folder, pids = Path(sys.argv[1]), Path(sys.argv[2])
    write, within_epoch = checkpoint.Checkpoints.write, []

    def write_then_die(self, *arguments, engine_arrays=None, **options):
        path = write(self, *arguments, engine_arrays=engine_arrays, **options)
        if engine_arrays["batches_done"].any():
            within_epoch.append(path)
        if len(within_epoch) == 2:
            children = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split()
            pids.write_text(" ".join(children))
            os.kill(os.getpid(), signal.SIGKILL)
        return path

    checkpoint.Checkpoints.write = write_then_die
    model = nn.MLP([2, 256, 256, 2], rng=0)
    dc.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
           dc.data.make_moons(n=48000, noise=0.2, seed=0), epochs=2, batch_size=8, engine="hogwild", workers=2,
           seed=5, progress=False, checkpoint=folder, checkpoint_every=300)
""")


def _alive(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the workers through /proc")
def test_a_killed_parent_leaves_no_worker_or_shared_file_and_the_run_resumes_within_its_epoch(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    folder, pids = tmp_path / "run", tmp_path / "pids"
    # output to a file: a pipe would hold this test until the workers closed their inherited end
    with open(tmp_path / "child.log", "w") as log:
        child = subprocess.Popen([sys.executable, str(script), str(folder), str(pids)], stdout=log, stderr=log)
        returncode = child.wait(timeout=300)
    assert returncode == -signal.SIGKILL, (tmp_path / "child.log").read_text()[-2000:]
    workers = [int(pid) for pid in pids.read_text().split()]
    assert len(workers) == 2
    # within half a second: a worker that only noticed at its epoch's end (a broken pipe) would take longer
    deadline = time.monotonic() + 0.5
    while any(map(_alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(map(_alive, workers)), "a HOGWILD! worker outlived its killed parent"
    if SHARED is not None:
        assert not list(SHARED.glob(f"descend-hogwild-{child.pid}-*")), "the killed run left its arrays in /dev/shm"

    newest = read_checkpoint(checkpoint_files(folder)[-1])
    done = newest.tensors["engine/batches_done"]
    assert done.sum() > 0 and not newest.run["progress"]["epoch_done"]  # killed within an epoch
    assert newest.run["step"] == newest.optimizer["iterations"] == done.sum() + 6000 * (newest.run["progress"]["epoch"] - 1)
    assert newest.tensors["engine/worker_states"].shape[0] == 2

    model = nn.MLP([2, 256, 256, 2], rng=0)
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    history = dc.fit(model, nn.CrossEntropyLoss(), optimizer, dc.data.make_moons(n=48000, noise=0.2, seed=0),
                     epochs=2, batch_size=8, engine="hogwild", workers=2, seed=5, progress=False, checkpoint=folder,
                     checkpoint_every=300, resume=True)
    # the epoch in progress went on from each worker's place: every minibatch of every epoch ran exactly once
    assert optimizer.iterations == 2 * 6000
    assert len(history.epochs) == 2
    assert history.epochs[:len(newest.run["history"])] == newest.run["history"]
    assert history.last()["accuracy"] > 0.9
    evaluated = dc.evaluate(model, nn.CrossEntropyLoss(), dc.data.make_moons(n=2000, noise=0.2, seed=1))
    assert evaluated["accuracy"] > 0.9


@pytest.mark.skipif(SHARED is None, reason="the shared arrays live in /dev/shm on Linux")
def test_a_shared_folder_left_by_a_dead_run_is_removed_at_the_next_start_and_a_live_runs_is_not():
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    orphan = SHARED / f"descend-hogwild-{finished.pid}-left"
    live = SHARED / f"descend-hogwild-{os.getpid()}-live"
    for folder in (orphan, live):
        folder.mkdir()
        (folder / "params.npy").write_bytes(b"\0" * 64)
    try:
        removed = remove_orphaned_folders()
        assert orphan in removed and live not in removed
        assert not orphan.exists() and live.exists()
    finally:
        for folder in (orphan, live):
            if folder.exists():
                (folder / "params.npy").unlink()
                folder.rmdir()

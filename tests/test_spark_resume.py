"""fit_spark(checkpoint=DIR, resume=True): a driver killed by SIGKILL mid-training goes on from its newest
checkpoint to the bits of a run that was never interrupted (run in this process's local session, the data in
the same partitions), with either sync; a checkpoint of another run is refused naming what differs."""

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from descend.errors import DescendValueError

pytest.importorskip("pyspark")

JOB = Path(__file__).parent / "spark_resume_job.py"


def job(sync, checkpoint, out, *extra):
    return subprocess.run([sys.executable, str(JOB), sync, str(checkpoint), str(out), *extra], capture_output=True,
                          text=True, timeout=400)


@pytest.mark.parametrize("sync", ["gradient", "average"])
def test_a_driver_killed_mid_training_resumes_to_the_bits_of_an_uninterrupted_run(sync, spark, tmp_path):
    from spark_resume_job import train

    expected = train(spark, sync, tmp_path / "whole")  # in this process's session: the same 4 partitions
    # into the second epoch, after a checkpoint taken mid-epoch: 20 of 30 steps, or 15 of 16
    killed = job(sync, tmp_path / "run", tmp_path / "unused.npz", "--die-at", "20" if sync == "gradient" else "15")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert list((tmp_path / "run").glob("checkpoint-*.dsc"))  # what the killed driver left
    if sync == "gradient":  # a checkpoint of another run is refused, naming what differs, and left as it was
        left = sorted((tmp_path / "run").iterdir())
        with pytest.raises(DescendValueError, match="was written by a run with sync='gradient'; this call has "
                                                    "sync='average'"):
            train(spark, "average", tmp_path / "run", resume=True)
        assert sorted((tmp_path / "run").iterdir()) == left
    found = train(spark, sync, tmp_path / "run", resume=True)  # a new driver: this process, its own JVM
    assert 0 < found.pop("steps_run") < expected.pop("steps_run")  # it went on, it did not start again
    assert sorted(found) == sorted(expected)
    for name, value in expected.items():
        assert found[name].tobytes() == value.tobytes(), name

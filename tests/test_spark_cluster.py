"""A real Spark standalone cluster on 127.0.0.1 (a Master and two one-core Workers from pyspark's own Spark):
training, prediction and spark.ml on it give local mode's bits for the same partitioning; an executor killed by
SIGKILL mid-training changes no bit; the cluster leaves no process behind; a master that does not answer is
refused at once."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from descend.errors import DescendValueError

pytest.importorskip("pyspark")

JOB = Path(__file__).parent / "spark_cluster_job.py"


def processes_in_groups(groups):
    """Every live process on this machine in one of the process groups `groups` (a daemon's holds its executors)."""
    from descend.spark.cluster import group_members

    return [pid for group in groups for pid in group_members(group)]


def wait_for_no_process_in(groups):
    deadline = time.monotonic() + 20
    while processes_in_groups(groups) and time.monotonic() < deadline:
        time.sleep(0.2)
    return processes_in_groups(groups)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from descend.spark.cluster import StandaloneCluster

    folder = tmp_path_factory.mktemp("spark-cluster")
    with StandaloneCluster(folder, workers=2, cores=1, memory="1g") as running:
        groups = set(running.record()["pids"])
        yield running
    assert wait_for_no_process_in(groups) == [], "the cluster left processes behind"


def run_job(master, out, *extra, env=None):
    done = subprocess.run([sys.executable, str(JOB), master, str(out), *extra], capture_output=True, text=True,
                          timeout=400, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(np.load(out))


@pytest.fixture(scope="module")
def local_results(spark):
    """The same work in local mode, in this process's session (local[2]; the data in the same 4 partitions)."""
    from spark_cluster_job import results

    return results(spark)


def test_the_cluster_has_two_one_core_workers_and_their_executors_run_apart(cluster):
    status = cluster.status()
    assert status["aliveworkers"] == 2 and [worker["cores"] for worker in status["workers"]] == [1, 1]
    assert cluster.master_url.startswith("spark://127.0.0.1:")


def test_training_prediction_and_spark_ml_on_the_cluster_give_local_modes_bits(cluster, local_results, tmp_path):
    ours = run_job(cluster.master_url, tmp_path / "cluster.npz")
    assert sorted(ours) == sorted(local_results)
    for name, value in local_results.items():
        assert ours[name].tobytes() == value.tobytes(), name


def test_an_executor_killed_mid_training_changes_no_bit(cluster, local_results, tmp_path):
    process = subprocess.Popen([sys.executable, str(JOB), cluster.master_url, str(tmp_path / "killed.npz"),
                                "--pause-at", "6", "--folder", str(tmp_path)], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not (tmp_path / "paused").exists():
            assert process.poll() is None and time.monotonic() < deadline, "the job never reached step 6"
            time.sleep(0.1)
        executors = cluster.executor_pids()
        assert len(executors) == 2  # one per Worker
        os.kill(executors[0], signal.SIGKILL)
        (tmp_path / "go").write_text("")
        _, errors = process.communicate(timeout=400)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, errors[-3000:]
    killed = dict(np.load(tmp_path / "killed.npz"))
    assert killed["gradient"].tobytes() == local_results["gradient"].tobytes()
    assert killed["gradient_loss"].tobytes() == local_results["gradient_loss"].tobytes()
    logs = "".join(path.read_text() for path in cluster.folder.glob("worker-*.log"))
    assert "Command exited with code 137" in logs  # the Worker saw its executor die of SIGKILL, and replaced it


def test_executors_whose_python_lacks_descend_are_refused_naming_pyspark_python(cluster, tmp_path):
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    python = bare / "bin" / "python"
    done = subprocess.run([sys.executable, str(JOB), cluster.master_url, str(tmp_path / "out.npz")],
                          capture_output=True, text=True, timeout=400, env={**os.environ, "PYSPARK_PYTHON": str(python)})
    assert done.returncode == 1
    assert f"the executors' Python ({python}, PYSPARK_PYTHON) cannot import descend: " in done.stderr
    assert "No module named 'descend'" in done.stderr and not (tmp_path / "out.npz").exists()


def test_a_master_that_does_not_answer_is_refused_at_once():
    from descend.spark.cluster import check_master, free_port

    started = time.monotonic()
    with pytest.raises(DescendValueError) as raised:
        check_master(f"spark://127.0.0.1:{free_port()}")
    assert "does not answer" in str(raised.value) and "descend spark-cluster up" in str(raised.value)
    assert time.monotonic() - started < 10
    with pytest.raises(DescendValueError, match="not of the form spark://host:port"):
        check_master("spark://nowhere")


def test_the_command_starts_a_cluster_and_stops_every_process_of_it(tmp_path):
    from click.testing import CliRunner

    from descend.cli import main

    folder = tmp_path / "cluster"
    started = CliRunner().invoke(main, ["spark-cluster", "up", "--workers", "1", "--folder", str(folder)])
    try:
        assert started.exit_code == 0, started.output
        assert started.output.splitlines()[0].startswith("spark://127.0.0.1:")
        groups = set(json.loads((folder / "cluster.json").read_text())["pids"])
        assert len(groups) == 2 and len(processes_in_groups(groups)) == 2  # the Master and one Worker
    finally:
        stopped = CliRunner().invoke(main, ["spark-cluster", "down", str(folder)])
    assert stopped.exit_code == 0, stopped.output
    assert "stopped 2 Spark daemons" in stopped.output and not (folder / "cluster.json").exists()
    assert wait_for_no_process_in(groups) == []
    again = CliRunner().invoke(main, ["spark-cluster", "down", str(folder)])
    assert again.exit_code == 1 and "holds no running cluster" in again.output

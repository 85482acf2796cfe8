"""A Spark standalone cluster on this machine: a Master and Workers started from the Spark the pyspark wheel ships.

Local mode runs the driver and the executors in one JVM; a standalone cluster has what a user's cluster has:
a Master, Workers that launch each application's executors as JVMs of their own, with their own Python
workers and work directories, which can die and be replaced. Every process listens on 127.0.0.1 only.

Each daemon is started in a process group of its own (an executor is a child of its Worker and stays in the
Worker's group), so `stop` ends each group whole: SIGTERM, then SIGKILL for what is left after a grace period.
The cluster's folder holds the daemons' logs, the Workers' work directories and `cluster.json` (the URLs and
process ids), which `descend spark-cluster down FOLDER` reads to stop a cluster that `up` left running.

>>> cluster = StandaloneCluster("runs/spark-cluster", workers=2, cores=1)
>>> cluster.workers, cluster.cores, cluster.memory
(2, 1, '1g')
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from descend.checks import check_integer
from descend.errors import DescendError, DescendTypeError, DescendValueError
from descend.files import write_text

#: the record of a running cluster in its folder
RECORD = "cluster.json"
#: the JVM main classes of the daemons, and of the executors a Worker launches
MASTER_CLASS, WORKER_CLASS = "org.apache.spark.deploy.master.Master", "org.apache.spark.deploy.worker.Worker"
EXECUTOR_CLASS = "org.apache.spark.executor.CoarseGrainedExecutorBackend"
#: how long the Master and the Workers have to come up, and the daemons to end on SIGTERM
START_SECONDS, STOP_SECONDS = 120.0, 15.0
HOST = "127.0.0.1"
#: Workers one machine may hold (each is a JVM of its own, with its executors)
MAX_WORKERS = 64


def spark_home() -> Path:
    """The Spark the pyspark wheel ships (its bin/spark-class starts the daemons).

    >>> (spark_home() / "bin" / "spark-class").is_file()
    True
    """
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the daemon binds it a moment later).

    >>> 1024 <= free_port() <= 65535
    True
    """
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


class StandaloneCluster:
    """A Master and `workers` Workers of `cores` cores and `memory` each on 127.0.0.1, kept in `folder`.

    `start()` returns the master URL (spark://127.0.0.1:PORT) once every Worker has registered; `stop()`
    ends every daemon and executor. As a context manager it does both. `executor_pids()` lists the
    executor JVMs the Workers run now (what a test kills to lose an executor).
    """

    def __init__(self, folder: str | os.PathLike, workers: int = 2, cores: int = 1, memory: str = "1g"):
        self.folder = Path(folder)
        self.workers = check_integer("workers", workers, low=1)
        self.cores = check_integer("cores", cores, low=1)
        if self.workers > MAX_WORKERS:
            raise DescendValueError(f"workers must be at most {MAX_WORKERS} on one machine; got {workers}")
        if not isinstance(memory, str) or not re.fullmatch(r"[1-9][0-9]*[mg]", memory):
            raise DescendValueError(f"memory must be a Spark size such as '512m' or '1g'; got {memory!r}")
        self.memory = memory
        self.processes: list[subprocess.Popen] = []
        self.master_url: str | None = None
        self.web_url: str | None = None

    def start(self) -> str:
        """Start the Master, then the Workers; wait until all are registered. Returns the master URL."""
        if self.processes:
            raise DescendError(f"the cluster in {self.folder} is already started ({self.master_url})")
        if (self.folder / RECORD).exists():
            raise DescendValueError(f"{self.folder} holds a running cluster's {RECORD}; stop it first "
                                    f"(descend spark-cluster down {self.folder}) or choose another folder")
        self.folder.mkdir(parents=True, exist_ok=True)
        port, web_port = free_port(), free_port()
        self.master_url, self.web_url = f"spark://{HOST}:{port}", f"http://{HOST}:{web_port}"
        try:
            self._launch("master", MASTER_CLASS, "--host", HOST, "--port", str(port), "--webui-port", str(web_port))
            self._wait(lambda status: status is not None, "the Master to answer")
            for index in range(self.workers):
                work = self.folder / f"worker-{index}"
                work.mkdir(exist_ok=True)
                self._launch(f"worker-{index}", WORKER_CLASS, "--host", HOST, "--webui-port", str(free_port()),
                             "--cores", str(self.cores), "--memory", self.memory, "--work-dir", str(work),
                             self.master_url)
            self._wait(lambda status: status is not None and status.get("aliveworkers", 0) >= self.workers,
                       f"{self.workers} Workers to register")
        except BaseException:
            self.stop()
            raise
        write_text(self.folder / RECORD, json.dumps(self.record(), indent=1) + "\n")
        return self.master_url

    def record(self) -> dict[str, Any]:
        """What cluster.json keeps: the URLs, and each daemon's process id (its process group's id too)."""
        return {"master": self.master_url, "web": self.web_url, "workers": self.workers, "cores": self.cores,
                "pids": [process.pid for process in self.processes]}

    def status(self) -> dict[str, Any] | None:
        """The Master's own account of the cluster (its web UI's /json/), or None when it does not answer."""
        try:
            with urllib.request.urlopen(f"{self.web_url}/json/", timeout=2) as answer:
                return json.loads(answer.read())
        except (OSError, ValueError, urllib.error.URLError):
            return None

    def executor_pids(self) -> list[int]:
        """The process ids of the executor JVMs that this cluster's Workers run now."""
        groups = {process.pid for process in self.processes}
        return [pid for pid, command in _java_processes() if EXECUTOR_CLASS in command and _group(pid) in groups]

    def stop(self) -> None:
        """End every daemon and executor of the cluster (SIGTERM, then SIGKILL); remove cluster.json."""
        stop_groups([process.pid for process in self.processes])
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=STOP_SECONDS)
        self.processes = []
        (self.folder / RECORD).unlink(missing_ok=True)

    def __enter__(self) -> StandaloneCluster:
        self.start()
        return self

    def __exit__(self, *exception: Any) -> None:
        self.stop()

    def _launch(self, name: str, main_class: str, *arguments: str) -> None:
        environment = dict(os.environ, SPARK_LOCAL_IP=HOST, SPARK_HOME=str(spark_home()),
                           SPARK_LOG_DIR=str(self.folder), SPARK_NO_DAEMONIZE="1",
                           PYSPARK_PYTHON=os.environ.get("PYSPARK_PYTHON", sys.executable))
        log = open(self.folder / f"{name}.log", "ab")  # noqa: SIM115 - the daemon writes it; closed below
        try:
            self.processes.append(subprocess.Popen(
                [str(spark_home() / "bin" / "spark-class"), main_class, *arguments], stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, env=environment, start_new_session=True))
        finally:
            log.close()

    def _wait(self, ready: Any, what: str) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            dead = [process for process in self.processes if process.poll() is not None]
            if dead:
                raise DescendError(f"a Spark daemon of the cluster in {self.folder} ended while waiting for {what} "
                                   f"(exit code {dead[0].returncode}); see the logs in {self.folder}")
            if ready(self.status()):
                return
            time.sleep(0.5)
        raise DescendError(f"waited {START_SECONDS:.0f} s for {what} at {self.web_url}; see the logs in {self.folder}")


def stop_groups(pids: list[int]) -> None:
    """SIGTERM the process groups led by `pids`, then SIGKILL what is left of them after STOP_SECONDS."""
    for sent in (signal.SIGTERM, signal.SIGKILL):
        alive = []
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, sent)
                alive.append(pid)
        if not alive or sent == signal.SIGKILL:
            return
        deadline = time.monotonic() + STOP_SECONDS
        while time.monotonic() < deadline and any(_group_alive(pid) for pid in alive):
            time.sleep(0.2)


def stop_recorded(folder: str | os.PathLike) -> list[int]:
    """Stop the cluster that `descend spark-cluster up` left running in `folder` (its cluster.json); returns the
    process ids it stopped. Only processes that are still Spark daemons are signalled."""
    record_path = Path(folder) / RECORD
    if not record_path.is_file():
        raise DescendValueError(f"{folder} holds no running cluster ({RECORD} is missing)")
    try:
        record = json.loads(record_path.read_text())
        pids = [int(pid) for pid in record["pids"]]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise DescendValueError(f"{record_path} is not the record `descend spark-cluster up` wrote") from None
    ours = [pid for pid in pids if any(name in _command(pid) for name in (MASTER_CLASS, WORKER_CLASS))]
    stop_groups(ours)
    record_path.unlink()
    return ours


#: a standalone master's URL: its host and port
_STANDALONE_MASTER = re.compile(r"spark://([^:/]+):(\d+)")


def check_master(master: Any) -> str:
    """`master` as a Spark master URL; a spark:// one must answer within a few seconds (no hang on a dead host).

    >>> check_master("local[2]")
    'local[2]'
    """
    if not isinstance(master, str) or not master:
        raise DescendTypeError(f"master must be a Spark master URL such as 'local[2]' or 'spark://host:7077'; "
                               f"got {master!r}")
    found = _STANDALONE_MASTER.fullmatch(master)
    if master.startswith("spark://") and found is None:
        raise DescendValueError(f"master {master!r} is not of the form spark://host:port")
    if found is not None:
        try:
            socket.create_connection((found[1], int(found[2])), timeout=5).close()
        except OSError as error:
            raise DescendValueError(f"master {master!r} does not answer ({error.strerror or error}); is the "
                                    "cluster started (descend spark-cluster up)?") from None
    return master


def on_loopback(master: str) -> bool:
    """Whether `master` is a standalone master on this machine's loopback address.

    >>> on_loopback("spark://127.0.0.1:7077"), on_loopback("spark://cluster:7077"), on_loopback("local[2]")
    (True, False, False)
    """
    found = _STANDALONE_MASTER.fullmatch(master)
    return found is not None and found[1] in ("127.0.0.1", "localhost")


def _java_processes() -> list[tuple[int, str]]:
    """(pid, command line) of every process on this machine that runs Java."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            command = _command(int(entry.name))
            if "java" in command:
                found.append((int(entry.name), command))
    return found


def _command(pid: int) -> str:
    with contextlib.suppress(OSError):
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    return ""


def _group(pid: int) -> int | None:
    with contextlib.suppress(OSError):
        return os.getpgid(pid)
    return None


def group_members(group: int) -> list[int]:
    """The live processes of the process group `group` (a zombie, dead but not yet waited for, is not one).

    >>> group_members(os.getpgid(0)) != []
    True
    """
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if fields[0] not in ("Z", "X") and int(fields[2]) == group:
                members.append(int(entry.name))
    return members


def _group_alive(group: int) -> bool:
    return bool(group_members(group))

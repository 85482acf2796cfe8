"""Shared test setup: the op table (tests/op_table.py) imports as `op_table` under any import mode, and one
local Spark session for every test file that needs one."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import os

import pytest


def skip_outside_ci(reason: str) -> None:
    """Skip for a missing outside resource (PyPI, pip, torch) on a developer's machine; fail in CI.

    .ci/run installs torch and pip and reaches PyPI, so there a missing one is a fault to see, not a skip.
    Callable at a module's top level too, where it skips (or fails) the whole module.
    """
    if os.environ.get("CI") == "true":
        pytest.fail(f"in CI this must not happen: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


@pytest.fixture(scope="session")
def spark():
    """A local SparkSession shared by the whole run (starting one takes ~10 s): two threads, a failed task tried
    again once, executors running this Python so they import descend."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        skip_outside_ci("pyspark is not installed (make test installs it)")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = (SparkSession.builder.master("local[2,2]")
               .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()

"""Shared test setup: the op table (tests/op_table.py) and the shared helpers (tests/helpers.py) import as
`op_table` and `helpers` under any import mode, and one local Spark session for every test file that needs one."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import os

import pytest
from helpers import skip_outside_ci


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

"""A Spark session for descend, and NumPy data as a DataFrame: what the CLI, the benchmark and the course use."""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np


def spark_session(master: str = "local[*]", app_name: str = "descend", **config: str) -> Any:
    """getOrCreate a SparkSession on `master` whose executors run this Python (so they import descend).

    On a cluster, pass the master spark-submit would (e.g. "yarn") or run under spark-submit, where the
    session it made is returned. Extra `config` entries are Spark settings ("spark.executor.memory": "4g").
    """
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    # Spark runs one task per core: each task's NumPy gets one BLAS thread, or the tasks fight for the cores.
    # In local mode the executors' Python workers inherit this process's environment.
    if master.startswith("local"):
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    builder = SparkSession.builder.master(master).appName(app_name)
    builder = builder.config("spark.sql.execution.arrow.pyspark.enabled", "true")
    builder = builder.config("spark.executorEnv.OPENBLAS_NUM_THREADS", "1")
    for key, value in config.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def to_dataframe(spark: Any, dataset: Any, partitions: int | None = None, features: str = "features",
                 label: str = "label") -> Any:
    """A descend Dataset (x (N, d), y (N,)) as a DataFrame of array<float> features and a label, through Arrow.

    `dataset` may also be an (x, y) tuple or an array, as `fit` takes them; `partitions` defaults to Spark's
    default parallelism (the cores of local mode).
    """
    import pandas as pd

    from descend.checks import check_integer
    from descend.data import as_dataset
    from descend.errors import DescendValueError

    dataset = as_dataset(dataset, "dataset")
    if partitions is not None:
        partitions = check_integer("partitions", partitions, low=1)
    if dataset.y is not None and features == label:
        raise DescendValueError(f"features and label must name two columns; got {features!r} for both")
    x = np.asarray(dataset.x, dtype=np.float32).reshape(len(dataset.x), -1)
    columns = {features: list(x)}
    if dataset.y is not None:
        columns[label] = np.asarray(dataset.y)
    frame = spark.createDataFrame(pd.DataFrame(columns))
    return frame.repartition(partitions or spark.sparkContext.defaultParallelism)

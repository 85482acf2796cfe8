"""A Spark session for descend, and NumPy data as a DataFrame: what the CLI, the benchmark and the course use."""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

#: the helper columns that place each row (dropped before the frame is returned)
_ROW, _RUN = "__descend_row", "__descend_run"


def spark_session(master: str = "local[*]", app_name: str = "descend", **config: str) -> Any:
    """getOrCreate a SparkSession on `master` whose executors run this Python (so they import descend).

    On a cluster, pass the master spark-submit would (e.g. "yarn") or run under spark-submit, where the
    session it made is returned. A spark://host:port master must answer within seconds (else a
    DescendValueError, not a hang); for one on 127.0.0.1 the driver listens on 127.0.0.1 too. Extra `config` entries are Spark settings ("spark.executor.memory": "4g").
    """
    from pyspark.sql import SparkSession

    from descend.spark.cluster import check_master, on_loopback

    master = check_master(master)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    # Spark runs one task per core: each task's NumPy gets one BLAS thread, or the tasks fight for the cores.
    # In local mode the executors' Python workers inherit this process's environment.
    if master.startswith("local"):
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    builder = SparkSession.builder.master(master).appName(app_name)
    builder = builder.config("spark.sql.execution.arrow.pyspark.enabled", "true")
    builder = builder.config("spark.executorEnv.OPENBLAS_NUM_THREADS", "1")
    if on_loopback(master):  # a cluster on this machine only (descend spark-cluster up): the driver listens there too
        builder = builder.config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
    for key, value in config.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def to_dataframe(spark: Any, dataset: Any, partitions: int | None = None, features: str = "features",
                 label: str = "label") -> Any:
    """A descend Dataset (x (N, d), y (N,)) as a DataFrame of array<float> features and a label, through Arrow.

    `dataset` may also be an (x, y) tuple or an array, as `fit` takes them. The rows are cut into `partitions`
    runs of consecutive rows (default: Spark's default parallelism, the cores of local mode), the same on
    every cluster, so what is trained on them is too.
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
    y = None if dataset.y is None else np.asarray(dataset.y)
    count = partitions or spark.sparkContext.defaultParallelism
    row = np.arange(len(x))
    # run j of the consecutive runs goes to partition j: repartitioning by a key whose hash Spark sends to j, then
    # sorting each partition by row, so every partition holds the same rows in the same order on any cluster (a
    # plain repartition's order within a partition depends on which executor's shuffle blocks arrive first)
    keys = _keys_by_partition(spark, count)
    columns = {features: list(x), _ROW: row, _RUN: keys[row * count // max(len(x), 1)]}
    if y is not None:
        columns[label] = y
    frame = spark.createDataFrame(pd.DataFrame(columns)).repartition(count, _RUN).sortWithinPartitions(_ROW)
    return frame.drop(_ROW, _RUN)


def _keys_by_partition(spark: Any, partitions: int) -> np.ndarray:
    """For each partition j < `partitions`, an integer key that `repartition(partitions, key)` sends to j."""
    from pyspark.sql import functions

    found: dict[int, int] = {}
    candidates = 64 * partitions
    while len(found) < partitions:
        # Spark's hash partitioning: pmod(murmur3 hash of the key, partitions), as `functions.hash` computes it
        rows = spark.range(candidates).select("id", functions.pmod(functions.hash("id"), functions.lit(partitions))
                                              .alias("partition")).collect()
        for one in rows:
            found.setdefault(one["partition"], one["id"])
        candidates *= 4
    return np.array([found[j] for j in range(partitions)], dtype=np.int64)

"""A DataFrame's rows as float32 blocks, one per partition, built once and kept on the executors.

The features column may be a Spark ML vector or an array of numbers; the label column integers
(classes) or numbers (regression targets). Each partition is turned into one (rows, features) block
through Arrow (`mapInPandas`), the blocks are persisted in Spark's memory, and each executor's
Python worker keeps the decoded NumPy arrays between jobs, so a training step reads memory, not
Spark rows. Nothing but the per-partition row counts comes back to the driver here.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from descend.errors import DataError, DescendTypeError, DescendValueError

#: on each executor's Python worker: (run key, partition) -> (x, y) decoded blocks of the current runs
_DECODED: dict[tuple[str, int], tuple[np.ndarray, np.ndarray | None]] = {}
_KEYS = itertools.count()
_KEPT_DATASETS = 4  # a run's training and validation blocks, and a little room


def _column_kind(df: Any, name: str, role: str) -> str:
    """'vector', 'array' or 'number' for a column, or an error naming it and what came."""
    from pyspark.ml.linalg import VectorUDT
    from pyspark.sql import types

    if name not in df.columns:
        raise DescendValueError(f"the DataFrame has no {role} column {name!r}; its columns are {df.columns}")
    data_type = df.schema[name].dataType
    if isinstance(data_type, VectorUDT):
        return "vector"
    if isinstance(data_type, types.ArrayType) and isinstance(data_type.elementType, types.NumericType):
        return "array"
    if isinstance(data_type, types.NumericType):
        return "number"
    raise DescendTypeError(
        f"{role} column {name!r} has type {data_type.simpleString()}; expected "
        + ("a vector (pyspark.ml.linalg) or array<float|double>" if role == "features" else "a number")
    )


def feature_arrays(df: Any, features: str) -> Any:
    """`df` with the features column as array<float> (a vector column converted on the executors)."""
    from pyspark.ml.functions import vector_to_array

    kind = _column_kind(df, features, "features")
    if kind == "number":
        raise DescendTypeError(f"features column {features!r} holds single numbers; assemble a vector first "
                               "(pyspark.ml.feature.VectorAssembler)")
    return df.withColumn(features, vector_to_array(features, "float32")) if kind == "vector" else df


def stack_features(column: Any, n_features: int | None, name: str) -> np.ndarray:
    """A pandas column of per-row arrays as one (rows, n_features) float32 block; nulls, NaN and lengths checked."""
    if column.isna().any():
        raise DataError(f"features column {name!r} has a null row; drop or impute it before training")
    if len(column) == 0:
        return np.zeros((0, n_features or 0), dtype=np.float32)
    lengths = {len(value) for value in column}
    if len(lengths) != 1 or (n_features is not None and lengths != {n_features}):
        expected = f"{n_features}" if n_features is not None else "one length"
        raise DataError(f"features column {name!r} has rows of length {sorted(lengths)[:5]}; expected {expected}")
    block = np.stack(column.to_numpy()).astype(np.float32, copy=False)
    if not np.isfinite(block).all():
        raise DataError(f"features column {name!r} holds NaN or infinite values; clean them before training")
    return block


@dataclass
class Blocks:
    """The cached per-partition blocks of one DataFrame: the RDD, its partitions' row counts and where each starts."""

    rdd: Any
    key: str
    rows: list[int]
    offsets: list[int]
    n_features: int
    label_kind: str | None

    @property
    def n_rows(self) -> int:
        return sum(self.rows)

    def release(self) -> None:
        self.rdd.unpersist()


def make_blocks(df: Any, features: str, label: str | None, n_features: int, classes: int | None) -> Blocks:
    """Turn `df` into cached float32 blocks, checking the columns; only row counts reach the driver.

    `n_features`: the model's input width; `classes`: the classifier's class count (labels must lie in
    0..classes − 1), None for regression targets or no label.
    """
    from pyspark.sql import types

    _column_kind(df, features, "features")
    kind = None if label is None else _column_kind(df, label, "label")
    if kind is not None and kind != "number":
        raise DescendTypeError(f"label column {label!r} must hold numbers (class indices or targets); got {kind}")
    columns = [features] + ([label] if label else [])
    source = feature_arrays(df.select(*columns), features)
    key = f"descend-{next(_KEYS)}-{id(df)}"

    def encode(frames):
        from pyspark import TaskContext

        import pandas as pd

        frames = list(frames)
        frame = pd.concat(frames) if frames else pd.DataFrame({name: [] for name in columns})
        x = stack_features(frame[features], n_features, features)
        y = None
        if label is not None:
            if frame[label].isna().any():
                raise DataError(f"label column {label!r} has a null row; drop it before training")
            y = frame[label].to_numpy()
            if classes is not None:
                outside = (np.mod(y, 1) != 0) | (y < 0) | (y >= classes)
                if outside.any():
                    raise DataError(f"label column {label!r} holds {y[outside][:5].tolist()}, outside the "
                                    f"model's classes 0..{classes - 1}")
                y = y.astype(np.int64)
            else:
                y = y.astype(np.float32)
        yield pd.DataFrame({"partition": [TaskContext.get().partitionId()], "rows": [len(x)],
                            "x": [x.tobytes()], "y": [None if y is None else y.tobytes()]})

    schema = types.StructType([
        types.StructField("partition", types.IntegerType()), types.StructField("rows", types.LongType()),
        types.StructField("x", types.BinaryType()), types.StructField("y", types.BinaryType()),
    ])
    rdd = source.mapInPandas(encode, schema).rdd.map(tuple).persist()
    counts = sorted(rdd.map(lambda block: (block[0], block[1])).collect())
    rows = [count for _, count in counts]
    if sum(rows) == 0:
        rdd.unpersist()
        raise DataError("the DataFrame has no rows to train on")
    offsets = np.concatenate([[0], np.cumsum(rows)[:-1]]).astype(int).tolist()
    return Blocks(rdd, key, rows, offsets, n_features, None if label is None else ("class" if classes else "target"))


def decoded(blocks_key: str, block: tuple, n_features: int, label_kind: str | None) -> tuple[np.ndarray, Any]:
    """The NumPy (x, y) of a cached block, decoded once per Python worker and kept for later jobs."""
    partition, rows, x_bytes, y_bytes = block
    found = _DECODED.get((blocks_key, partition))
    if found is None:
        kept = list(dict.fromkeys(key for key, _ in _DECODED))
        for old in kept[: max(0, len(kept) - _KEPT_DATASETS + 1)]:  # earlier runs' blocks: let them go
            for stale in [entry for entry in _DECODED if entry[0] == old]:
                del _DECODED[stale]
        x = np.frombuffer(x_bytes, dtype=np.float32).reshape(rows, n_features)
        y = None if y_bytes is None else np.frombuffer(y_bytes, dtype=np.int64 if label_kind == "class" else np.float32)
        if label_kind == "target":
            y = y.reshape(rows, 1)  # one target per row, shaped like a one-output model's predictions
        found = _DECODED[(blocks_key, partition)] = (x, y)
    return found

"""A DataFrame's rows as float32 blocks, one per partition, built once and kept on the executors.

The features column may be a Spark ML vector or an array of numbers; the label column integers
(classes) or numbers (regression targets). Each partition is turned into one (rows, features) block
through Arrow (`mapInPandas`) and stored as .npy files in the executor's Spark work directory, where
every Python worker of that executor memory-maps it. The RDD that Spark caches holds only each
partition's row count, so a training job ships nothing but weights to its tasks: re-reading a
cached block of bytes from the JVM in every round would cost more than the round's arithmetic.

Spark still owns recovery. A lost executor takes its cached row counts with it, and Spark
recomputes them (and so the block files) from the DataFrame's lineage on another executor; a task
that finds no file for its partition reports it, and `Blocks.run` runs that partition again on the
block rebuilt from the lineage. Nothing but row counts and each task's results reaches the driver.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from descend import errors
from descend.errors import DataError, DescendError, DescendTypeError, DescendValueError

#: on each executor's Python worker: (blocks key, partition) -> the memory-mapped (x, y) of the current runs
_OPENED: dict[tuple[str, int], tuple[np.ndarray, np.ndarray | None]] = {}
_KEYS = itertools.count()
_KEPT_DATASETS = 4  # a run's training and validation blocks, and a little room
_STORE = "descend-blocks"  # under the Spark work directory (SparkFiles' root) of each executor
#: the last line of an executor's Python traceback, as Spark hands it to the driver inside its own exception
_EXECUTOR_ERROR = re.compile(r"descend\.errors\.(\w+): (.*)")


def raise_executor_error(error: Exception) -> None:
    """Raise again, with its own class and message, a descend error that an executor raised and Spark brought
    back to the driver as text inside its own exception; return when `error` carries none."""
    found = _EXECUTOR_ERROR.findall(str(error))
    cls = getattr(errors, found[-1][0], None) if found else None
    if isinstance(cls, type) and issubclass(cls, DescendError):
        raise cls(found[-1][1]) from None


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
    """One DataFrame's blocks: the cached RDD of row counts, the lineage that rebuilds a block, and the layout.

    `rows[p]` is partition p's row count and `offsets[p]` the index of its first row in the whole dataset.
    """

    rdd: Any
    source: Any
    key: str
    rows: list[int]
    offsets: list[int]
    n_features: int
    label_kind: str | None

    @property
    def n_rows(self) -> int:
        return sum(self.rows)

    def total(self, task: Callable[[int, np.ndarray, Any], Any]) -> tuple[Any, int]:
        """The sum over partitions of `task(partition, x, y)`, run on the executors, and the bytes the driver got.

        A task's result is a number, an array, None (adds nothing), or a tuple or dict of those. The sum's
        order is fixed by the partitions alone, never by which task finished first, so a retried task
        changes no bit of it. With many partitions the executors first add them in runs of about
        √partitions, so the driver receives √partitions results, not one per partition (the shape of
        Spark's treeAggregate, whose shuffle would add in arrival order). The task must not capture
        this object, which holds RDDs. Where an executor has lost a block's file, the blocks are rebuilt
        from the lineage and the job runs again.
        """
        for _ in range(2):
            try:
                collected = self._partial_sums(task).collect()
            except Exception as error:
                raise_executor_error(error)  # a task's descend error (a NaN step, bad data) with its own class
                raise
            if all(found for _, found, _ in collected):
                results = [result for _, _, result in sorted(collected, key=lambda entry: entry[0])]
                return sum_in_order(results), sum(array_bytes(result) for result in results)
            self._rebuild()
        raise DataError("the executors lost the training blocks twice in a row; check their local disks")

    def _partial_sums(self, task: Callable[[int, np.ndarray, Any], Any]) -> Any:
        """An RDD of (group, all blocks found, the group's sum): groups of consecutive partitions, in order."""
        key, label_kind, partitions = self.key, self.label_kind, len(self.rows)

        def on_stored(partition, counts):
            for _ in counts:
                found = opened_block(key, partition, label_kind)
                yield (partition, False, None) if found is None else (partition, True, task(partition, *found))

        per_partition = self.rdd.mapPartitionsWithIndex(on_stored)
        group = max(2, math.ceil(math.sqrt(partitions)))
        if partitions <= group + partitions / group:  # as treeAggregate: too few partitions to gain from a level
            return per_partition
        groups = -(-partitions // group)

        def add_group(entries):
            entries = [entry for _, entry in sorted(entries, key=lambda keyed: keyed[1][0])]
            if entries:
                yield (entries[0][0] // group, all(found for _, found, _ in entries),
                       sum_in_order([result for _, _, result in entries]))

        return (per_partition.map(lambda entry: (entry[0] // group, entry))
                .partitionBy(groups, lambda index: index).mapPartitions(add_group))

    def _rebuild(self) -> None:
        """Encode every block again from the lineage and cache fresh row counts (the block files come with them)."""
        self.rdd.unpersist()
        self.rdd = _stored_counts(self.source, self.key, self.n_features, self.label_kind)

    def release(self) -> None:
        """Let the cached row counts go, and the block files too where the driver shares the executors' disk."""
        context = self.rdd.context
        self.rdd.unpersist()
        if context.master.startswith("local"):
            from pyspark import SparkFiles

            shutil.rmtree(Path(SparkFiles.getRootDirectory(), _STORE, self.key), ignore_errors=True)


def make_blocks(df: Any, features: str, label: str | None, n_features: int, classes: int | None,
                argument: str = "df") -> Blocks:
    """Turn `df` into float32 blocks stored on the executors, checking the columns; only row counts reach the driver.

    `n_features`: the model's input width; `classes`: the classifier's class count (labels must lie in
    0..classes − 1), None for regression targets or no label; `argument`: the caller's name for `df`.
    """
    from pyspark.sql import types

    _column_kind(df, features, "features")
    kind = None if label is None else _column_kind(df, label, "label")
    if kind is not None and kind != "number":
        raise DescendTypeError(f"label column {label!r} must hold numbers (class indices or targets); got {kind}")
    columns = [features] + ([label] if label else [])
    frames = feature_arrays(df.select(*columns), features)
    key = f"descend-{next(_KEYS)}-{id(df)}"
    label_kind = None if label is None else ("class" if classes else "target")

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
                if not np.isfinite(y).all():
                    raise DataError(f"label column {label!r} holds NaN or infinite targets "
                                    f"({y[~np.isfinite(y)][:5].tolist()}); clean them before training")
        yield pd.DataFrame({"partition": [TaskContext.get().partitionId()], "rows": [len(x)],
                            "x": [x.tobytes()], "y": [None if y is None else y.tobytes()]})

    schema = types.StructType([
        types.StructField("partition", types.IntegerType()), types.StructField("rows", types.LongType()),
        types.StructField("x", types.BinaryType()), types.StructField("y", types.BinaryType()),
    ])
    source = frames.mapInPandas(encode, schema).rdd.map(tuple)
    rdd = _stored_counts(source, key, n_features, label_kind)
    try:
        counts = sorted(rdd.collect())
    except Exception as error:
        # the blocks of partitions that were stored before one failed its checks go too
        Blocks(rdd, source, key, [], [], n_features, label_kind).release()
        raise_executor_error(error)
        raise
    rows = [rows for _, rows in counts]
    if sum(rows) == 0:
        Blocks(rdd, source, key, rows, [], n_features, label_kind).release()
        raise DataError(f"{argument} has no rows; expected a DataFrame with at least one row to train on")
    offsets = np.concatenate([[0], np.cumsum(rows)[:-1]]).astype(int).tolist()
    return Blocks(rdd, source, key, rows, offsets, n_features, label_kind)


def _stored_counts(source: Any, key: str, n_features: int, label_kind: str | None) -> Any:
    """The cached RDD of (partition, rows); computing a partition stores its block on the executor that ran it."""

    def count(block):
        store_block(key, block, n_features, label_kind)
        return block[0], block[1]

    return source.map(count).persist()


def sum_in_order(results: list[Any]) -> Any:
    """results[0] + results[1] + ..., left to right (see add_results)."""
    total = None
    for result in results:
        total = add_results(total, result)
    return total


def add_results(total: Any, result: Any) -> Any:
    """total + result for numbers, arrays, and tuples or dicts of them; None adds nothing."""
    if total is None:
        return result
    if result is None:
        return total
    if isinstance(total, tuple):
        return tuple(add_results(a, b) for a, b in zip(total, result, strict=True))
    if isinstance(total, dict):
        return {name: add_results(total[name], result[name]) for name in total}
    return total + result


def array_bytes(result: Any) -> int:
    """The bytes of the arrays in a task's result (what it sends the driver, numbers aside)."""
    if isinstance(result, np.ndarray):
        return result.nbytes
    if isinstance(result, tuple | list):
        return sum(map(array_bytes, result))
    if isinstance(result, dict):
        return sum(map(array_bytes, result.values()))
    return 0


def _store_directory(key: str) -> Path:
    from pyspark import SparkFiles

    return Path(SparkFiles.getRootDirectory(), _STORE, key)


def _forget_old_blocks(directory: Path) -> None:
    """Delete the block files of all but the newest few runs on this executor (a cluster's driver cannot)."""
    runs = []
    for entry in directory.parent.iterdir():
        try:
            runs.append((entry.stat().st_mtime, entry))
        except FileNotFoundError:  # another worker has just deleted it
            continue
    runs = [entry for _, entry in sorted(runs) if entry != directory]
    for old in runs[: max(0, len(runs) - _KEPT_DATASETS + 1)]:
        shutil.rmtree(old, ignore_errors=True)


def store_block(key: str, block: tuple, n_features: int, label_kind: str | None) -> tuple[np.ndarray, Any]:
    """Write an encoded block (partition, rows, x bytes, y bytes) to this executor's store; its (x, y) arrays."""
    partition, rows, x_bytes, y_bytes = block
    directory = _store_directory(key)
    directory.mkdir(parents=True, exist_ok=True)
    _forget_old_blocks(directory)
    x = np.frombuffer(x_bytes, dtype=np.float32).reshape(rows, n_features)
    y = None if y_bytes is None else np.frombuffer(y_bytes, dtype=np.int64 if label_kind == "class" else np.float32)
    for name, array in (("y", y), ("x", x)):  # x last: its file says the block is whole
        if array is not None:
            # another worker of this executor may be storing the same block: write aside, then rename at once
            aside = directory / f"{name}{partition}.{os.getpid()}.{time.monotonic_ns()}.npy"
            np.save(aside, array)
            os.replace(aside, directory / f"{name}{partition}.npy")
    return _shaped(x, y, label_kind)


def opened_block(key: str, partition: int, label_kind: str | None) -> tuple[np.ndarray, Any] | None:
    """A stored block's (x, y), memory-mapped once per Python worker; None where this executor has no file for it."""
    directory = _store_directory(key)
    if not (directory / f"x{partition}.npy").exists():  # deleted, or never stored on this executor
        _OPENED.pop((key, partition), None)
        return None
    found = _OPENED.get((key, partition))
    if found is None:
        kept = list(dict.fromkeys(entry for entry, _ in _OPENED))
        for old in kept[: max(0, len(kept) - _KEPT_DATASETS + 1)]:  # earlier runs' blocks: let them go
            for stale in [entry for entry in _OPENED if entry[0] == old]:
                del _OPENED[stale]
        x = np.load(directory / f"x{partition}.npy", mmap_mode="r")
        y = None if label_kind is None else np.load(directory / f"y{partition}.npy", mmap_mode="r")
        found = _OPENED[(key, partition)] = _shaped(x, y, label_kind)
    return found


def _shaped(x: np.ndarray, y: Any, label_kind: str | None) -> tuple[np.ndarray, Any]:
    # plain arrays over the mapped memory; one target per row, shaped like a one-output model's predictions
    x, y = np.asarray(x), None if y is None else np.asarray(y)
    return x, (y.reshape(len(y), 1) if label_kind == "target" else y)

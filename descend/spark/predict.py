"""predict_spark: a model's outputs as new DataFrame columns, computed on the executors in Arrow batches."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from descend.checks import check_integer
from descend.errors import DataError, DescendTypeError, DescendValueError
from descend.spark.blocks import _column_kind, stack_features
from descend.spark.engine import input_width, output_width

_SCORED = "__descend_outputs"


def predict_spark(model: Any, df: Any, features: str = "features", output: str = "prediction",
                  probability: str | None = None, score: str | None = None, batch_size: int = 4096) -> Any:
    """`df` with the model's outputs added as columns, row for row, by a pandas UDF; nothing is collected.

    `output`: the class index (double) for a classifier (a last layer of several outputs trained
    as logits), the output itself otherwise (double for one output, else array<float>);
    `probability`: softmax probabilities (array<double>) of a classifier, when named;
    `score`: an autoencoder's reconstruction error (double, higher is more anomalous), when named.
    The features of a DataFrame that is not a stream are checked first, in one Spark SQL pass (nulls,
    NaN or infinity, rows of the wrong length): bad data is a DataError here, not a failed task when
    the result is read.
    """
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions, types

    from descend.nn.module import module_spec

    batch_size = check_integer("batch_size", batch_size, low=1)
    for name in filter(None, (output, probability, score)):
        if name in df.columns:
            raise DescendValueError(f"column {name!r} already exists in the DataFrame; name the output otherwise")
    if score is not None and not model.target_is_input:
        raise DescendValueError("score= is the reconstruction error of an autoencoder; this model is not one")
    kind = _column_kind(df, features, "features")
    if kind == "number":
        raise DescendTypeError(f"features column {features!r} holds single numbers; expected a vector or an array "
                               "per row (assemble one with pyspark.ml.feature.VectorAssembler)")
    if not df.isStreaming:  # a stream has no end to check before it runs: its tasks check each batch
        _check_features(df, features, kind, input_width(model))
    spec, dtype = json.dumps(module_spec(model)), model.flat_buffer().dtype.str
    weights = df.sparkSession.sparkContext.broadcast(model.flat_buffer().data.copy())
    width = output_width(model)
    classifier = width > 1 and not model.target_is_input
    fields = [types.StructField(output, types.DoubleType() if classifier or width == 1
                                else types.ArrayType(types.FloatType()))]
    if probability is not None:
        fields.append(types.StructField(probability, types.ArrayType(types.DoubleType())))
    if score is not None:
        fields.append(types.StructField(score, types.DoubleType()))
    models: dict[str, Any] = {}

    @functions.pandas_udf(types.StructType(fields))
    def outputs_of(rows):
        import pandas as pd

        from descend.nn.module import build_module
        from descend.training.evaluate import predict

        if "model" not in models:  # once per Python worker
            models["model"] = build_module(json.loads(spec)).astype(np.dtype(dtype))
            models["model"].flat_buffer().data[...] = weights.value
        x = stack_features(rows, None, features)
        values = predict(models["model"], x, batch_size=batch_size) if len(x) else np.zeros((0, width), np.float32)
        columns = {}
        if classifier:
            columns[output] = values.argmax(axis=1).astype(np.float64)
        elif width == 1:
            columns[output] = values.reshape(len(x)).astype(np.float64)
        else:
            columns[output] = list(values.astype(np.float32))
        if probability is not None:
            shifted = np.exp(values - values.max(axis=1, keepdims=True))
            columns[probability] = list((shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float64))
        if score is not None:
            columns[score] = ((values - x) ** 2).mean(axis=1).astype(np.float64)
        return pd.DataFrame(columns)

    source = vector_to_array(features, "float32") if kind == "vector" else functions.col(features)
    scored = df.withColumn(_SCORED, outputs_of(source))
    return scored.select("*", *(functions.col(f"{_SCORED}.{field.name}").alias(field.name) for field in fields)) \
        .drop(_SCORED)


def _check_features(df: Any, features: str, kind: str, width: int | None) -> None:
    """Refuse a features column with nulls, NaN or infinite values, or rows of another length than `width`."""
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions

    values = vector_to_array(features, "float64") if kind == "vector" else functions.col(features)
    found = df.select(
        functions.sum(functions.col(features).isNull().cast("long")).alias("nulls"),
        functions.sum(functions.exists(values, lambda v: functions.isnan(v) | (functions.abs(v) == float("inf")))
                      .cast("long")).alias("not_finite"),
        functions.min(functions.size(values)).alias("shortest"),
        functions.max(functions.size(values)).alias("longest"),
    ).first()
    if found["nulls"]:
        raise DataError(f"features column {features!r} has {found['nulls']} null rows; drop or impute them first")
    if found["not_finite"]:
        raise DataError(f"features column {features!r} has {found['not_finite']} rows with NaN or infinite values; "
                        "clean them first")
    lengths = {found["shortest"], found["longest"]} - {None}
    if width is not None and lengths and lengths != {width}:
        raise DataError(f"features column {features!r} has rows of length {sorted(lengths)}; "
                        f"the model takes {width} features")

"""descend on Spark against Spark MLlib's MultilayerPerceptronClassifier, on MNIST in one run.

1. descend MLP [784, 256, 10] with fit_spark(sync="average", sync_every=50) on local[2], SGD lr 0.05
   momentum 0.9, batch 128, --epochs epochs: test accuracy after each epoch and the wall time since
   fit_spark was called (block building included), the time to 97%.
2. MLlib's MultilayerPerceptronClassifier(layers=[784, 256, 10]) with its defaults (L-BFGS, 100
   iterations) on the same DataFrame: fit time and test accuracy; descend's time to MLlib's accuracy.
3. Overhead: the local engine (one process, 2 BLAS threads) against fit_spark on local[2] (two tasks of
   one BLAS thread), the same epochs, no validation: median seconds per epoch over --repeats runs.
4. Driver memory: the driver Python process's peak resident memory while fit_spark trains one epoch
   on MNIST and on MNIST ten times over (600,000 rows, partitions of the same size).
5. Scaling: fit_spark's seconds per epoch on local[1] against local[2] (medians over --repeats runs).

    python benchmarks/spark_mnist.py [--epochs 10] [--skip mllib,memory,scaling]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from blas_kernel import describe_blas

LAYERS = [784, 256, 10]
SETTINGS = {"spark.driver.memory": "8g", "spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false"}


def resident_peak_megabytes() -> float:
    """This process's peak resident memory since the last reset_resident_peak (Linux's VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def reset_resident_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # 5: reset the peak resident set size to the current one


def seconds(values: list[float]) -> str:
    return "(" + ", ".join(f"{value:.2f}" for value in values) + ")"


def train_on_spark(train_df, epochs: int, validation=None, sync_every: int = 50):
    """(history, model, wall seconds since the call at the end of each epoch) of fit_spark on `train_df`."""
    import descend as dc
    from descend import nn, optim
    from descend.spark import fit_spark

    model = nn.MLP(LAYERS, rng=0)
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    started, elapsed = time.perf_counter(), []

    class Clock(dc.Callback):
        def on_epoch_end(self, state, record):
            elapsed.append(time.perf_counter() - started)
            if "val_accuracy" in record:
                print(f"    epoch {record['epoch']:>2}: test accuracy {record['val_accuracy']:.4f} at "
                      f"{elapsed[-1]:.1f} s", flush=True)

    history = fit_spark(model, nn.CrossEntropyLoss(), optimizer, train_df, epochs=epochs, batch_size=128,
                        sync="average", sync_every=sync_every, validation=validation, callbacks=[Clock()])
    return history, elapsed


def cached_frames(spark, out: Path):
    train = spark.read.parquet(str(out / "train.parquet")).repartition(2).cache()
    test = spark.read.parquet(str(out / "test.parquet")).repartition(2).cache()
    train.count(), test.count()
    return train, test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--timing-epochs", type=int, default=4, help="epochs of the overhead and scaling runs")
    parser.add_argument("--repeats", type=int, default=3, help="runs of the overhead and scaling timings")
    parser.add_argument("--skip", default="", help="comma-separated parts to leave out: mllib, memory, scaling")
    parser.add_argument("--out", default="runs/bench-spark")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    import descend as dc
    from descend import nn, optim
    from descend.spark import spark_session, to_dataframe

    train, test = dc.data.load_mnist()
    out = Path(args.out)
    spark = spark_session("local[2]", **SETTINGS)
    print(f"Spark {spark.version}, local[2]; MNIST {len(train):,} training and {len(test):,} test images; "
          f"{describe_blas()}")
    if not (out / "test.parquet").exists():  # the DataFrames come from Parquet files, as on a cluster
        to_dataframe(spark, train).write.mode("overwrite").parquet(str(out / "train.parquet"))
        to_dataframe(spark, test).write.mode("overwrite").parquet(str(out / "test.parquet"))
    train_df, test_df = cached_frames(spark, out)

    print(f"\n1. descend on Spark local[2], sync='average', sync_every=50, {args.epochs} epochs")
    history, elapsed = train_on_spark(train_df, args.epochs, validation=test_df)
    accuracies = history["val_accuracy"]
    to_97 = next((at for at, value in zip(elapsed, accuracies) if value >= 0.97), None)
    print(f"  final test accuracy {accuracies[-1]:.4f} after {elapsed[-1]:.1f} s; 97% after "
          f"{f'{to_97:.1f} s' if to_97 else 'not reached'}")

    if "mllib" not in skip:
        from pyspark.ml.classification import MultilayerPerceptronClassifier
        from pyspark.ml.evaluation import MulticlassClassificationEvaluator
        from pyspark.ml.functions import array_to_vector

        vectors = {name: frame.withColumn("features", array_to_vector("features")).cache()
                   for name, frame in (("train", train_df), ("test", test_df))}
        vectors["train"].count(), vectors["test"].count()
        started = time.perf_counter()
        mllib = MultilayerPerceptronClassifier(layers=LAYERS, seed=0).fit(vectors["train"])
        mllib_seconds = time.perf_counter() - started
        mllib_accuracy = MulticlassClassificationEvaluator(metricName="accuracy").evaluate(
            mllib.transform(vectors["test"]))
        print(f"\n2. MLlib MultilayerPerceptronClassifier {LAYERS} (L-BFGS, defaults): fit {mllib_seconds:.1f} s, "
              f"test accuracy {mllib_accuracy:.4f}")
        reach = next((at for at, value in zip(elapsed, accuracies) if value >= mllib_accuracy), None)
        if reach:
            print(f"  descend reached it after {reach:.1f} s: {reach / mllib_seconds:.2f} of MLlib's fit time")
        else:
            print("  descend did not reach MLlib's accuracy in these epochs")
        for frame in vectors.values():
            frame.unpersist()

    local_epochs, spark_epochs = [], []
    for _ in range(args.repeats):  # interleaved, so a slow spell of the machine hits both
        local_model = nn.MLP(LAYERS, rng=0)
        local = dc.fit(local_model, nn.CrossEntropyLoss(),
                       optim.SGD(local_model.parameters(), lr=0.05, momentum=0.9), train,
                       epochs=args.timing_epochs, batch_size=128, progress=False)
        local_epochs.append(float(np.median(local["seconds"])))
        spark_epochs.append(float(np.median(train_on_spark(train_df, args.timing_epochs)[0]["seconds"])))
    local_epoch, spark_epoch = float(np.median(local_epochs)), float(np.median(spark_epochs))
    print(f"\n3. seconds per epoch, no validation, median of {args.repeats} runs: local engine (2 BLAS threads) "
          f"{local_epoch:.2f} {seconds(local_epochs)}, Spark local[2] {spark_epoch:.2f} {seconds(spark_epochs)}: "
          f"overhead {spark_epoch / local_epoch:.2f}x")

    if "memory" not in skip:
        print("\n4. driver (Python) peak resident memory while fit_spark trains one epoch")
        for copies in (1, 10):
            data = train_df if copies == 1 else (
                train_df.crossJoin(spark.range(copies).withColumnRenamed("id", "copy")).drop("copy")
                .repartition(2 * copies))
            reset_resident_peak()
            before = resident_peak_megabytes()
            started = time.perf_counter()
            train_on_spark(data, 1)
            print(f"  {copies * len(train):>9,} rows: peak {resident_peak_megabytes():.0f} MB (at the start "
                  f"{before:.0f} MB), {time.perf_counter() - started:.1f} s", flush=True)

    if "scaling" not in skip:
        spark.stop()
        one = spark_session("local[1]", **SETTINGS)
        train_one = cached_frames(one, out)[0]
        one_epochs = [float(np.median(train_on_spark(train_one, args.timing_epochs)[0]["seconds"]))
                      for _ in range(args.repeats)]
        one_epoch = float(np.median(one_epochs))
        print(f"\n5. seconds per epoch, median of {args.repeats} runs: local[1] {one_epoch:.2f} {seconds(one_epochs)}, "
              f"local[2] {spark_epoch:.2f}: {one_epoch / spark_epoch:.2f}x faster on two cores")

if __name__ == "__main__":
    main()

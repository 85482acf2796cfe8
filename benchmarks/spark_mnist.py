"""descend on Spark against Spark MLlib's MultilayerPerceptronClassifier, on MNIST in one run.

1. descend MLP [784, 256, 10] with fit_spark(sync="average", sync_every=50) on local[2], SGD lr 0.05
   momentum 0.9, batch 128, --epochs epochs: test accuracy after each epoch, wall time to 97%.
2. MLlib's MultilayerPerceptronClassifier(layers=[784, 256, 10]) with its defaults (L-BFGS, 100
   iterations) on the same DataFrame: fit time and test accuracy; descend's time to MLlib's accuracy.
3. Scaling: descend's seconds per epoch on local[1] against local[2].
4. Overhead: descend's local engine (2 BLAS threads, the same epochs) against fit_spark on local[2].
5. Driver memory: the driver Python process's peak resident memory while fit_spark trains one epoch
   on MNIST and on MNIST ten times over (600,000 rows).

    python benchmarks/spark_mnist.py [--epochs 5] [--skip mllib,scaling,memory]
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np

LAYERS = [784, 256, 10]


def peak_megabytes() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def descend_on_spark(spark, train_df, test_df, epochs: int):
    """(history, seconds per epoch, seconds until test accuracy first reached 97% or None)."""
    import descend as dc
    from descend import nn, optim
    from descend.spark import fit_spark

    model = nn.MLP(LAYERS, rng=0)
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    started, reached = time.perf_counter(), {}

    class Clock(dc.Callback):
        def on_epoch_end(self, state, record):
            elapsed = time.perf_counter() - started
            print(f"    epoch {record['epoch']}: test accuracy {record['val_accuracy']:.4f} at {elapsed:.1f} s",
                  flush=True)
            if record["val_accuracy"] >= 0.97 and "at" not in reached:
                reached["at"] = elapsed

    history = fit_spark(model, nn.CrossEntropyLoss(), optimizer, train_df, epochs=epochs, batch_size=128,
                        sync="average", sync_every=50, validation=test_df, callbacks=[Clock()])
    return history, float(np.median(history["seconds"])), reached.get("at")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--skip", default="", help="comma-separated parts to leave out: mllib, scaling, memory")
    parser.add_argument("--out", default="runs/bench-spark")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    import descend as dc
    from descend import nn, optim
    from descend.spark import spark_session, to_dataframe

    train, test = dc.data.load_mnist()
    out = Path(args.out)
    spark = spark_session("local[2]", **{"spark.driver.memory": "8g", "spark.ui.enabled": "false"})
    print(f"Spark {spark.version}, local[2]; MNIST {len(train):,} training and {len(test):,} test images")
    if not (out / "train.parquet").exists():  # the DataFrames come from Parquet files, as on a cluster
        to_dataframe(spark, train).write.mode("overwrite").parquet(str(out / "train.parquet"))
        to_dataframe(spark, test).write.mode("overwrite").parquet(str(out / "test.parquet"))
    train_df = spark.read.parquet(str(out / "train.parquet")).repartition(2).cache()
    test_df = spark.read.parquet(str(out / "test.parquet")).repartition(2).cache()
    train_df.count(), test_df.count()

    print("\n1. descend on Spark local[2], sync='average', sync_every=50")
    history, spark_epoch, to_97 = descend_on_spark(spark, train_df, test_df, args.epochs)
    accuracies = history["val_accuracy"]
    print(f"  final test accuracy {accuracies[-1]:.4f}; {spark_epoch:.1f} s per epoch; 97% after "
          f"{'%.1f s' % to_97 if to_97 else 'not reached'}")

    if "mllib" not in skip:
        from pyspark.ml.classification import MultilayerPerceptronClassifier
        from pyspark.ml.evaluation import MulticlassClassificationEvaluator
        from pyspark.ml.functions import array_to_vector

        vectors = {name: frame.withColumn("features", array_to_vector("features")).cache()
                   for name, frame in (("train", train_df), ("test", test_df))}
        vectors["train"].count()
        started = time.perf_counter()
        mllib = MultilayerPerceptronClassifier(layers=LAYERS, seed=0).fit(vectors["train"])
        mllib_seconds = time.perf_counter() - started
        mllib_accuracy = MulticlassClassificationEvaluator(metricName="accuracy").evaluate(
            mllib.transform(vectors["test"]))
        epochs_needed = next((k + 1 for k, value in enumerate(accuracies) if value >= mllib_accuracy), None)
        print(f"\n2. MLlib MultilayerPerceptronClassifier {LAYERS} (L-BFGS, defaults): {mllib_seconds:.1f} s, "
              f"test accuracy {mllib_accuracy:.4f}")
        if epochs_needed:
            reach = sum(history["seconds"][:epochs_needed])
            print(f"  descend reached it after {epochs_needed} epoch(s), {reach:.1f} s: "
                  f"{reach / mllib_seconds:.2f} of MLlib's fit time")
        else:
            print("  descend did not reach MLlib's accuracy in these epochs")

    local_model = nn.MLP(LAYERS, rng=0)
    local = dc.fit(local_model, nn.CrossEntropyLoss(), optim.SGD(local_model.parameters(), lr=0.05, momentum=0.9),
                   train, epochs=min(args.epochs, 2), batch_size=128, progress=False)
    local_epoch = float(np.median(local["seconds"]))
    print(f"\n4. local engine (2 BLAS threads): {local_epoch:.2f} s per epoch; Spark local[2] {spark_epoch:.2f} s: "
          f"overhead {spark_epoch / local_epoch:.2f}x")

    if "memory" not in skip:
        from descend.spark import fit_spark

        print("\n5. driver memory while training one epoch")
        for copies in (1, 10):
            data = train_df if copies == 1 else train_df.crossJoin(spark.range(copies).withColumnRenamed("id", "copy")) \
                .drop("copy").repartition(2)
            before = peak_megabytes()
            model = nn.MLP(LAYERS, rng=0)
            started = time.perf_counter()
            fit_spark(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.05, momentum=0.9), data,
                      epochs=1, batch_size=128, sync="average", sync_every=50)
            print(f"  {copies * len(train):>9,} rows: driver peak {peak_megabytes():.0f} MB (was {before:.0f} MB "
                  f"before), {time.perf_counter() - started:.1f} s", flush=True)

    if "scaling" not in skip:
        spark.stop()
        one = spark_session("local[1]", **{"spark.driver.memory": "8g", "spark.ui.enabled": "false"})
        train_one = one.read.parquet(str(out / "train.parquet")).repartition(2).cache()
        test_one = one.read.parquet(str(out / "test.parquet")).repartition(2).cache()
        _, one_epoch, _ = descend_on_spark(one, train_one, test_one, 2)
        print(f"\n3. local[1] {one_epoch:.1f} s per epoch, local[2] {spark_epoch:.1f} s: "
              f"{one_epoch / spark_epoch:.2f}x faster on two cores")


if __name__ == "__main__":
    main()

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
6. A standalone cluster: MNIST ten times over (600,000 rows, partitions of 30,000) trained for
   --cluster-epochs epochs on a cluster of 1 and of 2 one-core Workers that the benchmark starts on
   127.0.0.1 (or on the cluster at --master, as it is), and on local[2]: seconds per epoch, rows per
   second and their ratios, the test accuracy after each epoch, and the peak resident memory of the
   driver (Python and JVM, for 60,000 rows and for 600,000) and of each executor (its JVM, and the sum
   over its Python workers, which share the pages they forked with).

MLlib multiplies through netlib's BLAS: with a native libblas.so.3 on the machine (Debian's
`apt-get install libopenblas0-pthread`) it uses OpenBLAS, else Java's fallback; the benchmark prints
which one MLlib and NumPy use.

    python benchmarks/spark_mnist.py [--epochs 10] [--skip descend,mllib,overhead,memory,scaling,cluster]
    python benchmarks/spark_mnist.py --skip descend,mllib,overhead,memory,scaling --master spark://HOST:7077
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from blas_kernel import describe_blas

LAYERS = [784, 256, 10]
SETTINGS = {"spark.driver.memory": "8g", "spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false"}
#: the cluster runs' executors: the Workers offer 6g each
CLUSTER_SETTINGS = {"spark.executor.memory": "4g"}


def resident_peak_megabytes() -> float:
    """This process's peak resident memory since the last reset_resident_peak (Linux's VmHWM)."""
    return peak_megabytes(os.getpid())


def reset_resident_peak() -> None:
    reset_peaks([os.getpid()])


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


def describe_mllib_blas(spark) -> str:
    """One line: the BLAS that MLlib's products go to (netlib's choice) and the library behind libblas.so.3."""
    import ctypes.util

    netlib = spark._jvm.dev.ludovic.netlib.blas
    chosen = netlib.BLAS.getInstance().getClass().getSimpleName()
    if chosen != "JNIBLAS":
        return f"MLlib BLAS: {chosen}, Java's fallback (no native libblas.so.3: apt-get install libopenblas0-pthread)"
    library = next((Path(folder) / "libblas.so.3" for folder in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
                                                                  "/lib/aarch64-linux-gnu", "/usr/lib64")
                    if (Path(folder) / "libblas.so.3").exists()), None)
    where = library.resolve() if library else ctypes.util.find_library("blas")
    return f"MLlib BLAS: JNIBLAS, native, libblas.so.3 -> {where}"


def process_tree() -> dict[int, int]:
    """Every live process's parent, by process id (Linux's /proc)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    return parents


def descendants(pid: int, parents: dict[int, int]) -> list[int]:
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def peak_megabytes(pid: int) -> float:
    """A process's peak resident memory (VmHWM), 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def is_python(pid: int) -> bool:
    """Whether the process runs a Python interpreter (by its program's name: a JVM's class path names python too)."""
    return os.path.basename(_cmdline(pid).split(b"\0")[0]).startswith(b"python")


def driver_jvms() -> list[int]:
    """This driver's JVM (py4j's gateway, started by spark-submit), a child of this process: not the daemons and
    executors of a cluster this process started."""
    return [pid for pid in descendants(os.getpid(), process_tree()) if b"SparkSubmit" in _cmdline(pid)]


def reset_peaks(pids: list[int]) -> None:
    """Set each process's peak resident memory back to its current one (5 into /proc/PID/clear_refs)."""
    for pid in pids:
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        except OSError:
            pass


def executor_peaks(executors: list[int]) -> list[tuple[float, float]]:
    """(JVM, Python workers) peak resident megabytes of each executor JVM and of the Python processes under it."""
    parents = process_tree()
    return [(peak_megabytes(pid), sum(peak_megabytes(child) for child in descendants(pid, parents) if is_python(child)))
            for pid in executors]


def executor_jvms() -> list[int]:
    """The executor JVMs on this machine (all of them: a cluster at --master may run others' too)."""
    from descend.spark.cluster import EXECUTOR_CLASS

    return [pid for pid in process_tree() if EXECUTOR_CLASS.encode() in _cmdline(pid)]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def ten_times(spark, out: Path, copies: int = 10) -> Path:
    """MNIST's training rows `copies` times over as a Parquet folder (written once), for the cluster runs."""
    path = out / f"train{copies}x.parquet"
    if not path.exists():
        train = spark.read.parquet(str(out / "train.parquet"))
        (train.crossJoin(spark.range(copies).withColumnRenamed("id", "copy")).drop("copy")
         .repartition(2).write.mode("overwrite").parquet(str(path)))
    return path


def on_cluster(master: str, label: str, out: Path, epochs: int, copies: int, executors_of) -> dict[str, object]:
    """Train on 60,000 rows for an epoch, then on `copies` times as many for `epochs` epochs, on `master`; the
    figures."""
    from descend.spark import spark_session

    spark = spark_session(master, **SETTINGS, **CLUSTER_SETTINGS)
    try:
        test = spark.read.parquet(str(out / "test.parquet")).repartition(2)
        figures: dict[str, object] = {"label": label}
        for name, path, runs in (("x1", out / "train.parquet", 1), ("xN", ten_times(spark, out, copies), epochs)):
            # partitions of MNIST's size (30,000 rows): one of 300,000 rows outgrows an executor's heap in the shuffle
            frame = spark.read.parquet(str(path)).repartition(2 if name == "x1" else 2 * copies)
            reset_resident_peak()
            reset_peaks(driver_jvms())
            print(f"  {label}: {name} rows, {runs} epochs", flush=True)
            history, _ = train_on_spark(frame, runs, validation=test if name == "xN" else None)
            figures[f"driver_{name}"] = (resident_peak_megabytes(), max(map(peak_megabytes, driver_jvms()), default=0))
            if name == "xN":
                figures["seconds"] = history["seconds"]
                figures["accuracy"] = history["val_accuracy"]
                figures["executors"] = executor_peaks(executors_of())
        return figures
    finally:
        spark.stop()


def cluster_scaling(args, out: Path) -> None:
    """Section 6: 1 and 2 Workers (or the cluster at --master), then local[2], on MNIST --copies times over."""
    from descend.spark.cluster import StandaloneCluster

    results = []
    if args.master:
        results.append(on_cluster(args.master, args.master, out, args.cluster_epochs, args.copies, executor_jvms))
    else:
        for workers in (1, 2):
            with StandaloneCluster(out / f"cluster-{workers}", workers=workers, cores=1, memory="6g") as cluster:
                results.append(on_cluster(cluster.master_url, f"{workers} worker{'s' * (workers > 1)}", out,
                                          args.cluster_epochs, args.copies, cluster.executor_pids))
    results.append(on_cluster("local[2]", "local[2]", out, args.cluster_epochs, args.copies, lambda: []))
    rows = 60_000 * args.copies
    print(f"\n6. MNIST x{args.copies} ({rows:,} rows, {2 * args.copies} partitions), {args.cluster_epochs} epochs, "
          "sync='average'")
    driver_heading = f"driver MB x1/x{args.copies} (Python, JVM)"
    print(f"  {'where':>12} {'s/epoch':>8} {'rows/s':>8} {driver_heading:>34}  "
          "executors' peak MB (JVM + Python)  test accuracy by epoch")
    medians = {}
    for figures in results:
        seconds_per_epoch = float(np.median(figures["seconds"][1:] or figures["seconds"]))
        medians[figures["label"]] = seconds_per_epoch
        driver = " / ".join(f"({python:.0f}, {jvm:.0f})" for python, jvm in (figures["driver_x1"],
                                                                              figures["driver_xN"]))
        executors = ", ".join(f"{jvm:.0f} + {python:.0f}" for jvm, python in figures["executors"]) or "(in the driver)"
        accuracy = ", ".join(f"{value:.4f}" for value in figures["accuracy"])
        print(f"  {figures['label']:>12} {seconds_per_epoch:>8.1f} {rows / seconds_per_epoch:>8.0f} {driver:>34}  "
              f"{executors}  {accuracy}")
    if "1 worker" in medians and "2 workers" in medians:
        print(f"  2 workers: {medians['1 worker'] / medians['2 workers']:.2f}x the throughput of 1; "
              f"{medians['2 workers'] / medians['local[2]']:.2f}x local[2]'s epoch time")


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
    parser.add_argument("--skip", default="",
                        help="comma-separated parts to leave out: descend, mllib, overhead, memory, scaling, cluster")
    parser.add_argument("--cluster-epochs", type=int, default=3, help="epochs of the cluster runs on MNIST x --copies")
    parser.add_argument("--copies", type=int, default=10, help="the cluster runs' data: MNIST's rows this many times")
    parser.add_argument("--master", default=None,
                        help="a standalone cluster (spark://HOST:PORT) to measure as it is, instead of starting one "
                             "of 1 and one of 2 Workers on 127.0.0.1")
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
          f"{describe_blas()}; {describe_mllib_blas(spark)}")
    if not (out / "test.parquet").exists():  # the DataFrames come from Parquet files, as on a cluster
        to_dataframe(spark, train).write.mode("overwrite").parquet(str(out / "train.parquet"))
        to_dataframe(spark, test).write.mode("overwrite").parquet(str(out / "test.parquet"))
    train_df, test_df = cached_frames(spark, out)

    elapsed, accuracies = [], []
    if "descend" not in skip:
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
        if not accuracies:
            pass  # section 1 was skipped: nothing of descend's to set beside it
        elif reach:
            print(f"  descend reached it after {reach:.1f} s: {reach / mllib_seconds:.2f} of MLlib's fit time")
        else:
            print("  descend did not reach MLlib's accuracy in these epochs")
        for frame in vectors.values():
            frame.unpersist()

    local_epochs, spark_epochs = [], []
    for _ in range(0 if "overhead" in skip and "scaling" in skip else args.repeats):  # interleaved: a slow spell hits both
        local_model = nn.MLP(LAYERS, rng=0)
        local = dc.fit(local_model, nn.CrossEntropyLoss(),
                       optim.SGD(local_model.parameters(), lr=0.05, momentum=0.9), train,
                       epochs=args.timing_epochs, batch_size=128, progress=False)
        local_epochs.append(float(np.median(local["seconds"])))
        spark_epochs.append(float(np.median(train_on_spark(train_df, args.timing_epochs)[0]["seconds"])))
    local_epoch, spark_epoch = (float(np.median(local_epochs)), float(np.median(spark_epochs))) if local_epochs else (0, 0)
    if local_epochs and "overhead" not in skip:
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
        one.stop()

    if "cluster" not in skip:
        spark.stop()  # one SparkContext per process: each cluster run opens its own
        cluster_scaling(args, out)


if __name__ == "__main__":
    main()

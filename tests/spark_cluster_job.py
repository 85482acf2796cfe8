"""The Spark work tests/test_spark_cluster.py runs against a master, in a process of its own (a process holds one
SparkContext, and the test process's is local mode's):

    python tests/spark_cluster_job.py MASTER OUT.npz [--pause-at STEP --folder DIR]

On 480 rows of the digits in 4 partitions: fit_spark with sync="gradient" and with sync="average",
predict_spark's probabilities, and a spark.ml NeuralNetClassifier's; every result into OUT.npz. With
--pause-at, the gradient run stops after that step, writes DIR/paused, and waits for DIR/go (the test kills
an executor meanwhile).
"""

import argparse
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("master")
    parser.add_argument("out")
    parser.add_argument("--pause-at", type=int, default=None)
    parser.add_argument("--folder", default=None)
    args = parser.parse_args()

    from descend.spark.session import spark_session

    spark = spark_session(args.master, **{"spark.ui.enabled": "false"})
    np.savez(args.out, **results(spark, args.pause_at, args.folder))
    spark.stop()


def results(spark, pause_at=None, folder=None) -> dict:
    """Every result of the work on `spark`'s cluster, by name (with `pause_at`: the gradient run's only)."""
    import descend as dc
    from descend import nn, optim
    from descend.spark import fit_spark, predict_spark
    from descend.spark.ml import NeuralNetClassifier
    from descend.spark.session import to_dataframe
    from descend.training.loop import Callback

    class Pause(Callback):
        """After step `step`, say so in `folder` and wait until the test has done its harm."""

        def __init__(self, step, folder):
            self.step, self.folder = step, Path(folder)

        def on_batch_end(self, state, loss):
            if state.step == self.step:
                (self.folder / "paused").write_text(str(state.step))
                while not (self.folder / "go").exists():
                    time.sleep(0.1)

    train, _ = dc.data.load_digits(seed=0)
    frame = to_dataframe(spark, train[:480], partitions=4).cache()  # 15 steps of 32 rows an epoch
    found = {}
    model = nn.MLP([64, 16, 10], rng=0)
    callbacks = [] if pause_at is None else [Pause(pause_at, folder)]
    history = fit_spark(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1, momentum=0.9), frame,
                        epochs=1, batch_size=32, sync="gradient", seed=3, callbacks=callbacks)
    found["gradient"] = model.flat_buffer().data.copy()
    found["gradient_loss"] = np.array(history["loss"])
    if pause_at is None:
        averaged = nn.MLP([64, 16, 10], rng=0)
        fit_spark(averaged, nn.CrossEntropyLoss(), optim.SGD(averaged.parameters(), lr=0.1, momentum=0.9), frame,
                  epochs=1, batch_size=32, sync="average", sync_every=5, seed=3)
        found["average"] = averaged.flat_buffer().data.copy()
        scored = predict_spark(model, frame, output="prediction", probability="probability")
        rows = scored.select("features", "probability").collect()
        order = np.lexsort(np.array([row["features"] for row in rows]).T)
        found["probability"] = np.array([row["probability"] for row in rows], dtype=np.float32)[order]
        estimator = NeuralNetClassifier(layers=[64, 16, 10], maxEpochs=1, batchSize=32, seed=3)
        fitted = estimator.fit(frame)
        transformed = fitted.transform(frame).select("features", "prediction").collect()
        order = np.lexsort(np.array([row["features"] for row in transformed]).T)
        found["ml_prediction"] = np.array([row["prediction"] for row in transformed])[order]
    return found


if __name__ == "__main__":
    main()

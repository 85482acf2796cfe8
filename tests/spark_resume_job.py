"""A fit_spark run with checkpoints whose driver can be killed, for tests/test_spark_resume.py:

    python tests/spark_resume_job.py SYNC CHECKPOINT_DIR OUT.npz [--die-at STEP]

On 240 or 480 rows of the digits in 4 partitions (local[2]), 2 epochs of an MLP with momentum SGD and a
learning-rate decay. With --die-at, the driver SIGKILLs itself after that step, as a crashed or killed driver
would end (its Spark JVM ends with it). Otherwise the final weights, optimizer state and History go into OUT.npz.
"""

import argparse
import os
import signal

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("sync")
    parser.add_argument("checkpoint")
    parser.add_argument("out")
    parser.add_argument("--die-at", type=int, default=None)
    args = parser.parse_args()

    from descend.spark.session import spark_session

    spark = spark_session("local[2]", **{"spark.ui.enabled": "false"})
    np.savez(args.out, **train(spark, args.sync, args.checkpoint, args.die_at))
    spark.stop()


def train(spark, sync, checkpoint, die_at=None, resume=False) -> dict:
    """The run on `spark`'s cluster: its final weights, optimizer state, History and the steps this process ran."""
    import descend as dc
    from descend import nn, optim
    from descend.spark import fit_spark
    from descend.spark.session import to_dataframe
    from descend.training.loop import Callback

    class Die(Callback):
        def __init__(self, step):
            self.step = step

        def on_batch_end(self, state, loss):
            if state.step >= self.step:
                os.kill(os.getpid(), signal.SIGKILL)

    class Count(Callback):
        """The steps this process ran."""

        def __init__(self):
            self.steps = 0

        def on_batch_end(self, state, loss):
            self.steps += 1

    rows, test = dc.data.load_digits(seed=0)
    # batches of 16 from 4 partitions: 240 rows give 15 steps an epoch with sync="gradient" (a Spark job each),
    # 480 rows 8 steps with "average" (a job every 5 steps and at the epoch's end)
    size = 240 if sync == "gradient" else 480
    frame, held_out = to_dataframe(spark, rows[:size], partitions=4), to_dataframe(spark, test[:200], partitions=2)
    model = nn.MLP([64, 16, 10], rng=0)
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, schedule=optim.InverseTimeDecay(decay=1e-3))
    count = Count()
    callbacks = [dc.EarlyStopping(patience=5), count] + ([] if die_at is None else [Die(die_at)])
    history = fit_spark(model, nn.CrossEntropyLoss(), optimizer, frame, epochs=2, batch_size=16, sync=sync,
                        sync_every=5, seed=3, validation=held_out, callbacks=callbacks, checkpoint=checkpoint,
                        checkpoint_every=7, resume=resume)
    state = optimizer.state_dict()
    return {"weights": model.flat_buffer().data.copy(), "iterations": np.array(optimizer.iterations),
            "steps_run": np.array(count.steps), "loss": np.array(history["loss"]),
            "val_loss": np.array(history["val_loss"]), "accuracy": np.array(history["accuracy"]),
            **{f"state_{name}": value.copy() for name, value in state["arrays"].items()}}


if __name__ == "__main__":
    main()

# %% [markdown]
# # 13. Training on a Spark cluster
#
# When the data outgrows one machine it lives in a cluster, and the training goes to it. Spark
# splits a DataFrame into partitions spread over executors; descend turns each partition into one
# float32 block kept on its executor and trains by model averaging: every executor takes
# `sync_every` SGD steps on its own rows from the same weights, then the driver averages the
# weights (and momentum) and sends them out again. Only weights travel, never data.
#
# Local mode runs the same code on this machine's cores, with no cluster: `local[2]` is two
# executors' worth of task slots. On a real cluster, pass its master (`yarn`, `spark://host:7077`).
#
# Run as a script or open as a notebook with jupytext. `DESCEND_QUICK=1` makes every part small for
# a smoke run; `DESCEND_OUT` says where the pictures go (default `runs/examples`).

# %%
import os
from pathlib import Path

import descend as dc
from descend import nn, optim, viz
from descend.spark import fit_spark, predict_spark, spark_session, to_dataframe

quick = os.environ.get("DESCEND_QUICK") == "1"
out = Path(os.environ.get("DESCEND_OUT", "runs/examples"))

spark = spark_session("local[2]", **{"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false"})
if quick:
    train, test = dc.data.load_digits()
else:
    train, test = dc.data.load_mnist()
train_df, test_df = to_dataframe(spark, train), to_dataframe(spark, test)
print(f"Spark {spark.version}: {train_df.count():,} training rows in {train_df.rdd.getNumPartitions()} partitions")

# %% [markdown]
# ## The same model, the local loop and Spark
# Model averaging every 10 steps on two partitions against the ordinary loop, epoch by epoch.

# %%
epochs = 5 if quick else 10
sizes = [train.n_features, 128, train.n_classes]
accuracy = {}
local_model = nn.MLP(sizes, rng=0)
accuracy["local loop"] = dc.fit(local_model, nn.CrossEntropyLoss(),
                                optim.SGD(local_model.parameters(), lr=0.05, momentum=0.9), train, epochs=epochs,
                                batch_size=64, validation=test, progress=False)["val_accuracy"]
model = nn.MLP(sizes, rng=0)
history = fit_spark(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.05, momentum=0.9), train_df,
                    epochs=epochs, batch_size=64, sync="average", sync_every=10, validation=test_df)
accuracy["Spark local[2], averaging every 10 steps"] = history["val_accuracy"]
for name, values in accuracy.items():
    print(f"{name:42s} test accuracy {values[-1]:.4f}")
print(f"weights and momentum sent to the driver per epoch: {history.driver_bytes[-1] / 1e6:.1f} MB")
print(viz.plot_curves(accuracy, out / "spark_training.png", "The local loop and model averaging on Spark",
                      "epoch", "test accuracy"))

# %% [markdown]
# ## Predictions as DataFrame columns
# `predict_spark` adds the predicted class and the probabilities to every row, on the executors.

# %%
scored = predict_spark(model, test_df, output="prediction", probability="probability")
scored.select("label", "prediction", "probability").show(5, truncate=60)
spark.stop()

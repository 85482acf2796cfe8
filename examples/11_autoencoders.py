# %% [markdown]
# # 11. Autoencoders and anomaly detection
#
# An autoencoder is trained to reproduce its input through a narrow middle layer, the code. It
# cannot copy the input, so it has to learn what typical inputs have in common. Two things follow:
# the code is a compressed description of the input (it can even be drawn, when it has two
# numbers), and an input unlike the training data is rebuilt badly. A large reconstruction error
# is therefore an anomaly score that needs no labelled anomalies: train on normal data only.
#
# Run as a script or open as a notebook with jupytext. `DESCEND_QUICK=1` makes every part small for
# a smoke run; `DESCEND_OUT` says where the pictures go (default `runs/examples`).

# %%
import os
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

import descend as dc
from descend import nn, optim, viz
from descend.anomaly import AnomalyDetector, feature_errors, reconstruction_error

import course_figures  # the course's own figures, beside this script

quick = os.environ.get("DESCEND_QUICK") == "1"
out = Path(os.environ.get("DESCEND_OUT", "runs/examples"))
train, test = dc.data.load_mnist()
if quick:
    train, test = train[:3000], test[:1000]

# %% [markdown]
# ## Novelty detection on MNIST: which digit has the network never seen?
# The autoencoder 784-256-64-256-784 trains on the digits 0 to 8 only. On the test set, the 9s are
# the novelty: the network has never had to rebuild a 9, so it rebuilds them worse than the digits
# it knows. ROC AUC says how well the score ranks the 9s above the rest (1 is perfect, 0.5 chance).
#
# A detector needs a threshold. `AnomalyDetector(contamination=0.01)` puts it where 1% of the
# normal training images would be flagged, the way scikit-learn's outlier detectors do.

# %%
novel = 9
normal_train = train[train.y != novel]
autoencoder = nn.Autoencoder([784, 256, 64], rng=0)
print(autoencoder)
history = dc.fit(autoencoder, nn.MSELoss(), optim.Adam(autoencoder.parameters(), lr=1e-3), normal_train,
                 epochs=1 if quick else 5, batch_size=128, progress=not quick)
print(f"training reconstruction error by epoch: {np.round(history['loss'], 4).tolist()}")

scores = reconstruction_error(autoencoder, test.x)
is_novel = test.y == novel
auc = roc_auc_score(is_novel, scores)
print(f"ROC AUC of the reconstruction error for the unseen digit {novel}: {auc:.3f}")

detector = AnomalyDetector(autoencoder, contamination=0.01).fit(normal_train.x)
flagged = detector.predict(test.x) == -1
print(f"\nthreshold {detector.threshold_:.4f}; test images flagged as anomalies:")
print(f"{'':>14} {'kept':>7} {'flagged':>8}")
for name, rows in ((f"digits 0-{novel - 1}", ~is_novel), (f"digit {novel}", is_novel)):
    print(f"{name:>14} {int((rows & ~flagged).sum()):>7} {int((rows & flagged).sum()):>8}")

viz.plot_score_histogram(scores[~is_novel], scores[is_novel], out / "11_autoencoders_mnist_scores.png",
                         threshold=detector.threshold_,
                         title=f"Reconstruction error: digits the network knows vs the unseen {novel}")
worst = np.argsort(-scores)[:10]
viz.plot_reconstructions(test.x[worst], dc.predict(autoencoder, test.x[worst]),
                         out / "11_autoencoders_mnist_worst.png",
                         labels=[f"{test.y[i]}: {scores[i]:.3f}" for i in worst],
                         title="The ten worst-rebuilt test images (digit: error), and their reconstructions")

# %% [markdown]
# The worst-rebuilt images are not all 9s: thick, slanted or oddly written digits of the known
# classes are rebuilt badly too. An autoencoder finds what is unusual, not what is of a given kind.

# %% [markdown]
# ## Why the 9s are hard, and what a narrower code does
# A 9 is much like a 4 with a closed top or a 7 with a loop, so a network that rebuilds 4s and 7s
# rebuilds many 9s well too: of the ten digits, 9 is among the hardest to hold out
# (`benchmarks/anomaly_mnist.py` scores each of them). A code of 64 numbers is also generous: it
# leaves room to rebuild strokes the network has never seen together. A code of 16 numbers has to
# specialise on the digits it knows, and the 9s stand out more.

# %%
narrow = nn.Autoencoder([784, 256, 16], rng=0)
dc.fit(narrow, nn.MSELoss(), optim.Adam(narrow.parameters(), lr=1e-3), normal_train, epochs=1 if quick else 5,
       batch_size=128, progress=False)
narrow_auc = roc_auc_score(is_novel, reconstruction_error(narrow, test.x))
print(f"ROC AUC for the unseen {novel}s: code of 64 numbers {auc:.3f}, code of 16 numbers {narrow_auc:.3f}")

# %% [markdown]
# ## Anomalies in a table: card transactions
# `make_transactions` draws a table of card payments (amount, hour, distance from home, the
# merchant's risk, items, the account's age, amount per item) and plants anomalies: an amount far
# too large for its items and price, a payment thousands of kilometres from home, a high-risk
# merchant in the middle of the night, a price per item that does not match the amount.
#
# **Scale first.** The columns live on very different scales: account age in thousands of days,
# merchant risk between 0 and 1. The mean squared error adds the columns' errors together, so
# unscaled, an error of 1% on the account age (tens of days) would outweigh any error on the risk,
# and the network would spend its capacity on the large columns. Standardising each column to mean
# 0 and standard deviation 1 makes an error of one standard deviation count the same in every
# column. The mean and standard deviation come from the normal training rows only: the anomalies
# must not shift the yardstick they are measured with, and the test rows must be scaled exactly
# like the training rows.
#
# The hidden layers use tanh. An anomaly can lie hundreds of standard deviations out (8,000 km from
# home); tanh saturates there, so the wild value does not spill into the reconstruction of the
# other columns, and the error lands on the column that is wrong. (With ReLU, whose response grows
# without bound, the scores rank the anomalies as well, but the largest error is often on another
# column: on this table, the planted column for only about a third of the anomalies.)

# %%
table, columns, planted = dc.data.make_transactions(n=4000 if quick else 20_000, contamination=0.02, seed=0)
order = np.random.default_rng(0).permutation(len(table))
train_rows, test_rows = order[: len(order) * 7 // 10], order[len(order) * 7 // 10:]
normal_rows = train_rows[table.y[train_rows] == 0]
mean, std = table.x[normal_rows].mean(axis=0), table.x[normal_rows].std(axis=0)
scaled = (table.x - mean) / std
print("column                 mean of the normal rows   standard deviation")
for name, m, s in zip(columns, mean, std):
    print(f"{name:<22} {m:>24.3f} {s:>20.3f}")

tabular = nn.Autoencoder([len(columns), 16, 4], activation="tanh", output="linear", rng=0)
dc.fit(tabular, nn.MSELoss(), optim.Adam(tabular.parameters(), lr=1e-3), scaled[normal_rows],
       epochs=3 if quick else 30, batch_size=64, progress=False)
x_test, y_test, planted_test = scaled[test_rows], table.y[test_rows], planted[test_rows]
print(f"\nROC AUC on the held-out rows: {roc_auc_score(y_test, reconstruction_error(tabular, x_test)):.3f}")

transactions = AnomalyDetector(tabular, contamination=0.02).fit(scaled[normal_rows])
flagged = transactions.predict(x_test) == -1
print(f"flagged {int(flagged[y_test == 1].sum())} of {int(y_test.sum())} planted anomalies "
      f"and {int(flagged[y_test == 0].sum())} of {int((y_test == 0).sum())} normal rows")

# %% [markdown]
# ## Which column is wrong?
# The error of each column says where the row breaks. For each planted anomaly, the column with
# the largest error (`AnomalyDetector.explain`) should be the column that was broken.

# %%
anomalous = np.flatnonzero(y_test == 1)
top_columns = np.array([row[0][0] for row in transactions.explain(x_test[anomalous], top=1)])
hits = top_columns == planted_test[anomalous]
print(f"the largest error is on the planted column for {hits.mean():.0%} of {len(anomalous)} anomalies")
for column in np.unique(planted_test[anomalous]):
    rows = planted_test[anomalous] == column
    print(f"  {columns[column]:<22} {int(hits[rows].sum())} of {int(rows.sum())}")
print(f"e.g. row {test_rows[anomalous[0]]}: " + ", ".join(
    f"{columns[j]} {error:.1f}" for j, error in transactions.explain(x_test[anomalous[:1]], top=3)[0]))

errors = feature_errors(tabular, x_test)
mean_errors = {"normal rows": errors[y_test == 0].mean(axis=0), "anomalous rows": errors[y_test == 1].mean(axis=0)}

course_figures.plot_grouped_bars(mean_errors, columns, out / "11_autoencoders_transaction_errors.png",
                                 "Mean reconstruction error per column", "squared error (standardised units)")

# %% [markdown]
# ## The code as a picture
# With a code of two numbers, every image becomes a point in the plane. Nobody told the network
# the labels, yet images of the same digit land near each other: the code has learned what tells
# the digits apart.

# %%
flat = nn.Autoencoder([784, 256, 64, 2], rng=0)
dc.fit(flat, nn.MSELoss(), optim.Adam(flat.parameters(), lr=1e-3), train, epochs=1 if quick else 10,
       batch_size=128, progress=not quick)
flat.eval()
with dc.no_grad():
    codes = flat.encode(dc.Tensor(test.x)).data
viz.plot_codes(codes, test.y, out / "11_autoencoders_codes.png",
               title="The 2-D code of each test image, coloured by digit (labels unseen in training)")
print(f"reconstruction error through two numbers: {reconstruction_error(flat, test.x).mean():.4f}")

# %% [markdown]
# ## Five autoencoders side by side
# The same budget of training for each: the plain dense one; a denoising one, which rebuilds the
# clean image from a noisy copy; a sparse one, whose code is pushed towards zeros; a variational
# one, whose code is a distribution (its KL term trades reconstruction for a smooth code); and a
# convolutional one, which reads (1, 28, 28) images with 3x3 filters.

# %%
images_train, images_test = dc.data.load_mnist(shape="images")
subset = 1000 if quick else 20_000
images_train, images_test = images_train[:subset], images_test[:1000 if quick else 10_000]
models = {
    "Autoencoder": nn.Autoencoder([784, 256, 64], rng=0),
    "DenoisingAutoencoder": nn.DenoisingAutoencoder([784, 256, 64], noise=0.2, rng=0),
    "SparseAutoencoder": nn.SparseAutoencoder([784, 256, 64], sparsity=1e-3, rng=0),
    "VariationalAutoencoder": nn.VariationalAutoencoder([784, 256, 64], rng=0),
    "ConvAutoencoder": nn.ConvAutoencoder(1, channels=(16, 32), rng=0),
}
print(f"{'model':<24} {'parameters':>10} {'seconds':>8} {'test reconstruction error':>26}")
for name, model in models.items():
    convolutional = isinstance(model, nn.ConvAutoencoder)
    data, held_out = (images_train, images_test) if convolutional else (train[:subset], test[:len(images_test)])
    started = time.perf_counter()
    dc.fit(model, nn.MSELoss(), optim.Adam(model.parameters(), lr=1e-3), data, epochs=1 if quick else 3,
           batch_size=128, progress=False)
    seconds = time.perf_counter() - started
    error = reconstruction_error(model, held_out.x).mean()
    print(f"{name:<24} {model.parameter_count():>10,} {seconds:>8.1f} {error:>26.4f}")

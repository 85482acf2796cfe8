# %% [markdown]
# # 12. HOGWILD!: lock-free parallel SGD on every core
#
# SGD is a loop of tiny steps, each reading and writing the weights; running it on several cores at
# once seems to need a lock around every step, and the lock costs more than the step. Niu, Recht, Ré
# and Wright (NIPS 2011) showed that for sparse problems the lock can simply go: each step touches
# a handful of the weights, two cores rarely touch the same one at the same moment, and the rare
# clash barely disturbs the descent. Here we measure that on this machine.
#
# Run as a script or open as a notebook with jupytext. `DESCEND_QUICK=1` makes every part small for
# a smoke run; `DESCEND_OUT` says where the pictures go (default `runs/examples`).

# %%
import os
from pathlib import Path

import descend as dc
from descend import hogwild, nn, optim, viz
from descend.hogwild.compare import compare_ratings, compare_sparse, format_table

quick = os.environ.get("DESCEND_QUICK") == "1"
out = Path(os.environ.get("DESCEND_OUT", "runs/examples"))
cores = os.cpu_count() or 1
counts = sorted({1, 2, cores})

# %% [markdown]
# ## A sparse problem
# Every row has 20 of 100,000 features switched on, like the words of a short document; a hidden
# linear rule labels it, and 9% of the labels are flipped, so no model can beat 91%.

# %%
rows = 20_000 if quick else 1_000_000
X, y = dc.data.make_sparse_classification(n_rows=rows + rows // 10, n_features=100_000, nnz_per_row=20, seed=0)
train, test = (X[:rows], y[:rows]), (X[rows:], y[rows:])
print(f"{rows:,} training rows, {X.shape[1]:,} features, {X.nnz // X.shape[0]} per row")

# %% [markdown]
# ## One model, many workers
# `SGDClassifier` runs its workers as threads inside compiled kernels that release Python's lock,
# so they really do run at once, on one shared weight vector. With `workers=1` it is plain serial SGD.

# %%
clf = hogwild.SGDClassifier(loss="log", lr=0.5, schedule="inverse-time", epochs=2 if quick else 5,
                            workers=cores, lock="none").fit(*train)
print(f"{cores} lock-free workers: test accuracy {clf.score(*test):.4f}")
for record in clf.history_:
    print(f"  epoch {record['epoch']}: loss {record['loss']:.4f}, {record['updates_per_second']:,.0f} updates/s")

# %% [markdown]
# ## Lock-free against locked
# The same training with each worker count, once without locks and once taking a mutex around
# every update. Speed-up is against one lock-free worker. The final losses agree: the clashes that
# lock-free updates allow do not hurt the descent.

# %%
runs = compare_sparse(train, test, counts, ["none", "mutex"], epochs=1 if quick else 5)
print(format_table(runs))
print(viz.plot_speedup(runs, out / "hogwild_speedup.png", "Sparse logistic regression: speed-up over serial SGD"))

# %% [markdown]
# ## Matrix completion, the paper's second problem
# An entry (u, v) of a low-rank matrix touches only row u of one factor and row v of the other:
# again sparse updates, again no locks needed.

# %%
ratings, held_out = dc.data.make_low_rank_matrix(n_rows=500 if quick else 10_000, n_cols=250 if quick else 5_000,
                                                 rank=10, density=0.05 if quick else 0.02, seed=0)
factor_runs = compare_ratings(ratings, held_out, counts, ["none", "mutex"], rank=10, epochs=3 if quick else 20)
print(format_table(factor_runs, "test RMSE"))
print(viz.plot_speedup(factor_runs, out / "hogwild_factorization.png", "Matrix completion: speed-up over serial SGD"))

# %% [markdown]
# ## Dense networks too
# `fit(..., engine="hogwild")` trains any descend model with worker processes that share the
# model's one flat parameter buffer. Every step of a dense network touches every weight, so clashes
# are constant here. Each worker steps at the full learning rate, so the first epochs are noisier
# than the ordinary loop's; by the tenth the accuracy matches it.

# %%
digits, digits_test = dc.data.load_digits()
accuracy = {}
for engine, options in (("local", {}), ("hogwild", {"workers": cores})):
    model = nn.MLP([64, 64, 10], rng=0)
    history = dc.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.05, momentum=0.9), digits,
                     epochs=10 if quick else 20, batch_size=32, validation=digits_test, engine=engine, progress=False,
                     **options)
    accuracy[engine] = history["val_accuracy"]
    print(f"{engine:8s} test accuracy {history['val_accuracy'][-1]:.4f}")
print(viz.plot_curves(accuracy, out / "hogwild_dense.png", "8x8 digits MLP: the local loop and HOGWILD! workers",
                      "epoch", "test accuracy"))

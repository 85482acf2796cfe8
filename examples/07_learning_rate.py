# %% [markdown]
# # 7. How to set the learning rate: the range test
#
# Too small a learning rate and training crawls; too large and it diverges. Smith's range test
# (2017) finds the useful range in one short run: train for a hundred or so minibatches while the
# rate grows geometrically from 1e-6 to 10, and plot the loss against the rate. It stays flat,
# then falls, then explodes. Two readings are common: where it falls fastest, and a tenth of where it
# is lowest. `dc.lr_find` marks both, suggests the smaller (the safer for a long run at one rate),
# and puts the model and optimizer back as they were.
#
# Run as a script or open as a notebook with jupytext. `DESCEND_QUICK=1` makes every part small for
# a smoke run; `DESCEND_OUT` says where the pictures go (default `runs/examples`).

# %%
import os
from pathlib import Path

import descend as dc
from descend import nn, optim, viz

quick = os.environ.get("DESCEND_QUICK") == "1"
out = Path(os.environ.get("DESCEND_OUT", "runs/examples"))

train, test = dc.data.load_digits()
model = nn.MLP([64, 64, 10], rng=0)
optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
found = dc.lr_find(model, nn.CrossEntropyLoss(), optimizer, train, steps=60 if quick else 200, batch_size=32)
print(found)
print(viz.plot_lr_find(found, out / "lr_find.png", "Learning-rate range test: MLP 64-64-10 on 8x8 digits"))

# %% [markdown]
# ## Does the suggestion train well?
# The suggested rate against a tenth and ten times of it, the same epochs from the same start.

# %%
curves = {}
for rate in (found.suggestion / 10, found.suggestion, found.suggestion * 10):
    model = nn.MLP([64, 64, 10], rng=0)
    history = dc.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=rate, momentum=0.9), train,
                     epochs=5 if quick else 20, batch_size=32, validation=test, progress=False)
    curves[f"lr {rate:.2e}"] = history["val_accuracy"]
    print(f"lr {rate:.2e}: test accuracy {history['val_accuracy'][-1]:.4f}")
print(viz.plot_curves(curves, out / "lr_comparison.png", "Around the suggested learning rate", "epoch",
                      "test accuracy"))

# %% [markdown]
# ## Searching the knobs: random search against TPE with pruning
#
# The learning rate is one knob of many: momentum, width, dropout, weight decay. Bergstra and Bengio
# (2012) showed random search beats a grid on the same budget, since few knobs matter and a grid wastes
# trials on the rest. Two newer ideas spend the budget better still. A sampler that learns: TPE (the
# Tree-structured Parzen Estimator, Bergstra et al. 2011) models which values gave good trials and
# draws the next ones there. And early stopping of bad trials: successive halving (ASHA, Li et al. 2020)
# compares every trial after its first epoch with the others at that point and stops all but the best
# third, so the epochs go to the promising ones. `descend.tune` runs both on Optuna; the range test
# above narrows the learning rate's range first (`tune.lr_range`).
#
# Below: the same number of trials, of at most the same epochs, from the same seed. Each curve is the
# best test accuracy found so far against the epochs trained by all trials so far: its cost.

# %%
import shutil

from descend import tune

space = {"lr": tune.lr_range(found), "momentum": tune.uniform(0.0, 0.95), "hidden": tune.int(8, 128, log=True),
         "weight_decay": tune.loguniform(1e-6, 1e-2)}
print(f"search space: {space}")


def build(params):
    model = nn.MLP([64, params["hidden"], 10])
    optimizer = optim.SGD(model.parameters(), lr=params["lr"], momentum=params["momentum"],
                          weight_decay=params["weight_decay"])
    return model, nn.CrossEntropyLoss(), optimizer


searches = {}
shutil.rmtree(out / "search", ignore_errors=True)  # a run folder holds one study: each run of this cell starts anew
for name, sampler, pruner in (("random search", "random", "none"), ("TPE + ASHA pruning", "tpe", "asha")):
    study = tune.search(build, space, train, validation=test, trials=10 if quick else 30, epochs=3 if quick else 6,
                        batch_size=32, sampler=sampler, pruner=pruner, run=out / "search" / sampler, seed=0,
                        progress=False)
    searches[name] = study.best_so_far()
    print(f"{name}: best test accuracy {study.best_value:.4f} after {searches[name][0][-1]} epochs "
          f"in {len(study.trials)} trials")
print(viz.plot_curves(searches, out / "search_comparison.png", "Hyperparameter search on the same budget",
                      "epochs trained by all trials so far", "best test accuracy so far"))

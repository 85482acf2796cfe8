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

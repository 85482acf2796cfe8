# %% [markdown]
# # 6. What hidden layers learn
#
# Each unit of an MLP's first hidden layer computes a weighted sum of the 784 pixels. Drawn as a
# 28x28 image, its weights show what it responds to: strokes, blobs and edges in particular places,
# light where ink raises the unit's input and dark where ink lowers it. Before training they are
# noise; after one pass over MNIST they are already the parts that digits are made of.
#
# Run as a script or open as a notebook with jupytext. `DESCEND_QUICK=1` makes every part small for
# a smoke run; `DESCEND_OUT` says where the pictures go (default `runs/examples`).

# %%
import os
from pathlib import Path

import descend as dc
from descend import nn, optim

import course_figures  # the course's own figures, beside this script

quick = os.environ.get("DESCEND_QUICK") == "1"
out = Path(os.environ.get("DESCEND_OUT", "runs/examples"))

train, test = dc.data.load_mnist()
if quick:
    train, test = train[:3000], test[:1000]

# %% [markdown]
# ## Before and after
# One hidden layer of 64 ReLU units, drawn once at its random start and once trained.

# %%
model = nn.MLP([784, 64, 10], activation="relu", rng=0)
print(course_figures.plot_first_layer(model.layers[0].weight, (28, 28), out / "hidden_units_before.png",
                                      title="First-layer weights before training"))
history = dc.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.05, momentum=0.9,
                                                         weight_decay=1e-4),
                 train, epochs=2 if quick else 10, batch_size=64, validation=test, progress=not quick)
print(f"test accuracy {history['val_accuracy'][-1]:.4f}")
print(course_figures.plot_first_layer(model.layers[0].weight, (28, 28), out / "hidden_units.png",
                                      title="First-layer weights after training"))

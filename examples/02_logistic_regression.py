# %% [markdown]
# # 2. A softmax classifier on handwritten digits
#
# Logistic regression, grown to ten classes: each class gets a weighted sum of the 64 pixels of an
# 8x8 digit, softmax turns the ten sums into probabilities, and cross-entropy punishes a low
# probability on the right class. It is one layer, no hidden units: every class is a template.
#
# Run as a script or open as a notebook with jupytext. `DESCEND_QUICK=1` makes every part small for
# a smoke run; `DESCEND_OUT` says where the pictures go (default `runs/examples`).

# %%
import os
from pathlib import Path

import numpy as np

import descend as dc
from descend import nn, optim, viz

import course_figures  # the course's own figures, beside this script

quick = os.environ.get("DESCEND_QUICK") == "1"
out = Path(os.environ.get("DESCEND_OUT", "runs/examples"))

# %% [markdown]
# ## The data: scikit-learn's 8x8 digits, pixels scaled to [0, 1]

# %%
train, test = dc.data.load_digits()
print(f"{len(train)} training and {len(test)} test digits of {train.n_features} pixels, {train.n_classes} classes")

# %% [markdown]
# ## Training
# SGD on minibatches of 32; the loss and the accuracy on the held-out digits after each epoch.

# %%
model = nn.LogisticRegression(train.n_features, train.n_classes, rng=0)
history = dc.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1, momentum=0.9), train,
                 epochs=5 if quick else 30, batch_size=32, validation=test, progress=False)
print(f"test accuracy {history['val_accuracy'][-1]:.4f} after {len(history)} epochs")
print(viz.plot_curves({"training loss": history["loss"], "test loss": history["val_loss"]},
                      out / "logistic_loss.png", "Softmax classifier on 8x8 digits", "epoch", "cross-entropy"))

# %% [markdown]
# ## What each class's weights look for, and where the model errs
# Each column of W is an 8x8 template; light pixels push towards that class. The confusion table
# counts test digits by true class (rows) and predicted class (columns).

# %%
print(course_figures.plot_first_layer(model.linear.weight, (8, 8), out / "logistic_templates.png",
                                      title="The ten class templates"))
predicted = dc.predict(model, test.x).argmax(axis=1)
confusion = np.zeros((10, 10), dtype=int)
np.add.at(confusion, (test.y, predicted), 1)
print("true \\ predicted " + " ".join(f"{k:>3}" for k in range(10)))
for digit, row in enumerate(confusion):
    print(f"{digit:>16} " + " ".join(f"{count:>3}" for count in row))

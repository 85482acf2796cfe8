# %% [markdown]
# # 4. Why go deep: two moons
#
# Two interleaved half-circles. A linear model can only draw a straight boundary, so it must get
# some points wrong however long it trains. A network with hidden ReLU layers bends its boundary
# around each moon: every ReLU unit adds a fold, and the folds compose.
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

moons = dc.data.make_moons(n=400, noise=0.15, seed=0)
models = {"logistic regression": nn.LogisticRegression(2, 2, rng=0),
          "MLP 2-32-32-2, ReLU": nn.MLP([2, 32, 32, 2], activation="relu", rng=0)}
for name, model in models.items():
    history = dc.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1, momentum=0.9), moons,
                     epochs=30 if quick else 200, batch_size=32, progress=False)
    print(f"{name:22s} training accuracy {history['accuracy'][-1]:.3f}")

# %% [markdown]
# ## The boundaries
# The colour of each point of the plane is the class the model gives it.

# %%
classifiers = {name: (lambda points, model=model: dc.predict(model, points).argmax(axis=1))
               for name, model in models.items()}
print(course_figures.plot_decision_boundaries(classifiers, moons.x, moons.y, out / "moons_boundaries.png",
                                              "Two moons: a line cannot separate them, a ReLU network can"))

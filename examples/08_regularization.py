# %% [markdown]
# # 8. Regularization: L2, L1 and dropout against over-fitting
#
# A network with far more weights than training examples can memorise them: its training loss
# goes to zero while the validation loss turns and climbs. Three cures, each a few characters in
# descend:
#
# - L2 (weight decay): add λ·Σw² to the loss, so every step shrinks every weight a little;
# - L1: add λ·Σ|w|, which pushes unhelpful weights to exactly zero (a sparse model);
# - dropout: drop each hidden unit at random in training, so no unit can rely on another.
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

train, test = dc.data.load_digits()
small = train[:300]  # few examples, many weights: the recipe for over-fitting

# %% [markdown]
# ## One network, four ways
# The same MLP of 64-512-512-10 (about 300,000 weights for 300 digits), the same start and the same
# minibatches; only the penalty differs. L2 and L1 are arguments of the optimizer, dropout a layer.

# %%
variants = {
    "no penalty": ({}, 0.0),
    "L2 (weight decay 1e-3)": ({"weight_decay": 1e-3}, 0.0),
    "L1 (1e-4)": ({"l1": 1e-4}, 0.0),
    "dropout 0.5": ({}, 0.5),
}
histories, first_layers = {}, {}
for name, (penalty, dropout) in variants.items():
    model = nn.MLP([64, 512, 512, 10], dropout=dropout, rng=0)
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, **penalty)
    histories[name] = dc.fit(model, nn.CrossEntropyLoss(), optimizer, small, epochs=20 if quick else 150,
                             batch_size=32, validation=test, progress=False)
    first_layers[name] = model.layers[0].weight.data.copy()
    record = histories[name].last()
    print(f"{name:24s} training loss {record['loss']:.4f}, validation loss {record['val_loss']:.4f}, "
          f"validation accuracy {record['val_accuracy']:.4f}")

# %% [markdown]
# ## The curves, and the weights
# Without a penalty the validation loss stops falling while the training loss goes to zero. The
# histograms show what each cure did to the first layer: L2 shrinks every weight, L1 piles many
# exactly at zero, dropout spreads the work over more units.

# %%
print(course_figures.plot_learning_curves(histories, out / "regularization_curves.png",
                                          title="An MLP 64-512-512-10 on 300 digits, four ways"))
print(course_figures.plot_weight_histograms(first_layers, out / "regularization_weights.png"))

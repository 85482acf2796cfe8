# %% [markdown]
# # 14. Capsule networks: routing by agreement
#
# A convolutional network's feature detector says *whether* it saw a stroke; a capsule says it
# with a vector: its length is the probability that its entity is there, its direction encodes
# how it is posed (position, thickness, slant). Sabour, Frosst and Hinton's CapsNet (2017) turns
# 28x28 digits into 32x6x6 primary capsules of 8 numbers, and each of them predicts each of ten
# digit capsules of 16 numbers through its own 8x16 matrix. Routing by agreement then decides,
# three times over, how much of each primary capsule's vote goes to each digit: votes that agree
# with the emerging digit capsule get a larger share.
#
# Run as a script (`python examples/14_capsules.py`) or open as a notebook with jupytext.
# `DESCEND_QUICK=1` trains a tiny network on a small slice for a fast smoke run; `DESCEND_OUT` says
# where the pictures go (default `runs/examples`).

# %%
import os
from pathlib import Path

import numpy as np

import descend as dc
from descend import nn, optim, viz

quick = os.environ.get("DESCEND_QUICK") == "1"
out = Path(os.environ.get("DESCEND_OUT", "runs/examples"))
train, test = dc.data.load_mnist(shape="images")  # x of shape (N, 1, 28, 28)
if quick:
    train, test = train[:512], test[:256]

# %% [markdown]
# ## Squash: a vector's length becomes a probability
# v = |s|² / (1 + |s|²) · s / |s| keeps the direction and maps the length into [0, 1): short
# vectors shrink to almost nothing, long ones to just under 1.

# %%
for length in (0.1, 0.5, 1.0, 2.0, 10.0):
    s = dc.tensor(np.array([length, 0.0, 0.0]))
    print(f"|s| = {length:5.1f}  ->  |squash(s)| = {np.linalg.norm(dc.ops.squash(s).data):.4f}")

# %% [markdown]
# ## Routing by agreement, by hand
# Three input capsules vote the same way for output 0 and scatter their votes for output 1. With
# one iteration every vote is split equally; with three, the agreeing votes pull their couplings
# towards output 0, and its capsule grows longer.

# %%
rng = np.random.default_rng(0)
agree = np.tile([0.6, 0.0, 0.0, 0.0], (3, 1))
scatter = 0.6 * rng.standard_normal((3, 4))
votes = dc.tensor(np.stack([agree, scatter])[None])  # (N=1, J=2 outputs, I=3 inputs, D=4)
for iterations in (1, 2, 3):
    lengths = np.linalg.norm(dc.ops.dynamic_routing(votes, iterations).data[0], axis=1)
    print(f"{iterations} iteration(s): output capsule lengths {np.round(lengths, 3)}")

# %% [markdown]
# ## The network and its loss
# The paper's CapsNet has 8.2 million parameters; this one keeps its shape with 64 convolution
# channels and 8 primary capsule types, which trains on a laptop's CPU. The margin loss asks the
# true digit's capsule to be longer than 0.9 and every other shorter than 0.1; a decoder that
# must redraw the digit from its capsule alone (weight 0.0005) makes the capsule keep the pose.

# %%
model = nn.CapsNet(conv_channels=16 if quick else 64, primary_caps=4 if quick else 8, rng=0)
print(model)
print(f"{model.parameter_count():,} parameters (the paper's CapsNet: {nn.CapsNet(rng=0).parameter_count():,})")
opt = optim.Adam(model.parameters(), lr=1e-3)
history = dc.fit(model, nn.MarginLoss(reconstruction_weight=0.0005), opt, train, epochs=1 if quick else 3,
                 batch_size=64 if quick else 128, validation=test, progress=not quick)
print(f"test accuracy: {history['val_accuracy'][-1]:.4f}")

# %% [markdown]
# ## What a capsule holds
# Each test digit above what the decoder draws from its longest capsule; then the paper's
# figure 4: one digit's capsule with each of its 16 dimensions nudged from -0.25 to 0.25. On a
# trained network single dimensions change the stroke's thickness, width, skew or a part's place.

# %%
predicted, pictures = model.reconstructions(test.x[:10])
labels = [f"{truth} as {guess}" for truth, guess in zip(test.y[:10], predicted)]
reconstructions = viz.plot_reconstructions(test.x[:10], pictures, out / "14_capsule_reconstructions.png", labels,
                                           "Test digits (top) and what their longest capsule decodes to (bottom)")
digit, nudged = model.perturbations(test.x[0])
perturbations = viz.plot_capsule_perturbations(nudged, nn.capsules.PERTURBATION_STEPS,
                                               out / "14_capsule_perturbations.png", digit)
print(f"pictures: {reconstructions}, {perturbations}")

# %% [markdown]
# # 9. Convolutional networks
#
# A dense layer gives every pixel its own weight for every unit; a convolution slides one small
# filter over the whole image, so a 3x3 filter has 9 weights whatever the image size, and what it
# learns to find in one corner it finds everywhere. Pooling then keeps the strongest response in
# each 2x2 block, so later layers see larger parts of the image.
#
# Run as a script (`python examples/09_cnn.py`) or open as a notebook with jupytext.
# `DESCEND_QUICK=1` trains on a small slice for a fast smoke run; `DESCEND_OUT` says where the
# pictures go (default `runs/examples`).

# %%
import os
from pathlib import Path

import descend as dc
from descend import nn, optim, viz

quick = os.environ.get("DESCEND_QUICK") == "1"
out = Path(os.environ.get("DESCEND_OUT", "runs/examples"))
train, test = dc.data.load_mnist(shape="images")  # x of shape (N, 1, 28, 28)
if quick:
    train, test = train[:1024], test[:512]

# %% [markdown]
# ## The network
# Two blocks of convolution, ReLU and pooling turn a 28x28 image into 64 maps of 7x7; a dense
# head classifies them.

# %%
model = nn.Sequential(
    nn.Conv2d(1, 32, kernel_size=3, padding=1, rng=0), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(32, 64, kernel_size=3, padding=1, rng=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(64 * 7 * 7, 128, rng=2), nn.ReLU(), nn.Dropout(0.3, rng=3),
    nn.Linear(128, 10, rng=4),
)
print(model)
print(f"{model.parameter_count():,} parameters; a dense layer from 784 pixels to 32 units alone has 25,120")

# %% [markdown]
# ## Training
# Plain SGD with momentum; two epochs reach about 99% test accuracy on the full data.

# %%
opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
history = dc.fit(model, nn.CrossEntropyLoss(), opt, train, epochs=1 if quick else 2, batch_size=128,
                 validation=test, progress=not quick)
print(f"test accuracy: {history['val_accuracy'][-1]:.4f}")

# %% [markdown]
# ## What the filters learned, and what they see
# The first layer's 3x3 filters are edge and stroke detectors; the feature maps show where in one
# test image each filter responds.

# %%
filters = viz.plot_filters(model.layers[0], out / "09_cnn_filters.png")
maps = viz.plot_feature_maps(model, test.x[0], out / "09_cnn_feature_maps.png")
print(f"pictures: {filters}, {maps}")

# %% [markdown]
# # 3. Gradient descent, SGD, momentum and learning-rate decay on one loss surface
#
# Fit y = w1·x1 + w2·x2 where x1 and x2 are strongly correlated: the loss surface is a long narrow
# valley, the classic hard case. Four ways down it, from the same start:
#
# - gradient descent: the exact gradient over all the data, every step;
# - SGD: the gradient of a minibatch of 8, noisy but cheap;
# - SGD with momentum 0.9: a running average of past steps, which rolls along the valley floor;
# - SGD with inverse-time decay: lr / (1 + decay·t), large steps first, small ones later.
#
# Run as a script or open as a notebook with jupytext. `DESCEND_QUICK=1` makes every part small for
# a smoke run; `DESCEND_OUT` says where the pictures go (default `runs/examples`).

# %%
import os
from pathlib import Path

import numpy as np

import descend as dc
from descend import nn, optim

import course_figures  # the course's own figures, beside this script

quick = os.environ.get("DESCEND_QUICK") == "1"
out = Path(os.environ.get("DESCEND_OUT", "runs/examples"))

# %% [markdown]
# ## The problem
# The loss is a quadratic in (w1, w2); `surface` evaluates it on a grid for the contour plot.

# %%
rng = np.random.default_rng(0)
x1 = rng.standard_normal(512)
x = np.column_stack([x1, 0.8 * x1 + 0.3 * rng.standard_normal(512)]).astype(np.float32)
y = (x @ np.array([[1.5], [-0.5]]) + 0.1 * rng.standard_normal((512, 1))).astype(np.float32)
gram, cross, energy = x.T @ x / len(x), x.T @ y[:, 0] / len(x), float(np.mean(y ** 2))


def surface(w1, w2):
    """Mean squared error at every (w1, w2): a quadratic form in the weights."""
    return (gram[0, 0] * w1 ** 2 + 2 * gram[0, 1] * w1 * w2 + gram[1, 1] * w2 ** 2
            - 2 * (cross[0] * w1 + cross[1] * w2) + energy)


# %% [markdown]
# ## Four descents
# Each optimizer drives the same two-weight layer; the path records the weights after every step.

# %%
def descend_path(make_optimizer, batch_size, steps):
    model = nn.Linear(2, 1, bias=False, rng=0)
    buffer = model.flat_buffer()
    buffer.data[...] = [-1.0, 2.0]  # the same start for everyone, up on the valley's side
    optimizer = make_optimizer(model.parameters())
    step = dc.make_step(model, nn.MSELoss())
    path = [buffer.data.copy()]
    rows = dc.data.batches(len(x), batch_size, rng=0)
    for _ in range(steps):
        batch = next(rows, None)
        if batch is None:
            rows = dc.data.batches(len(x), batch_size, rng=len(path))
            batch = next(rows)
        step(buffer.data, x[batch], y[batch])
        optimizer.step()
        path.append(buffer.data.copy())
    return np.array(path)


steps = 60 if quick else 200
paths = {
    "gradient descent (lr 0.3)": descend_path(lambda p: optim.SGD(p, lr=0.3), len(x), steps),
    "SGD, batch 8 (lr 0.3)": descend_path(lambda p: optim.SGD(p, lr=0.3), 8, steps),
    "SGD + momentum 0.9 (lr 0.1)": descend_path(lambda p: optim.SGD(p, lr=0.1, momentum=0.9), 8, steps),
    "SGD + 1/t decay (lr 0.3, decay 0.01)": descend_path(
        lambda p: optim.SGD(p, lr=0.3, schedule=optim.InverseTimeDecay(decay=0.01)), 8, steps),
}
for name, path in paths.items():
    print(f"{name:38s} ends at w = ({path[-1, 0]:+.3f}, {path[-1, 1]:+.3f}), loss {surface(*path[-1]):.4f}")
best = np.linalg.solve(gram, cross)
print(f"{'the minimum (least squares)':38s}    at w = ({best[0]:+.3f}, {best[1]:+.3f}), loss {surface(*best):.4f}")
print(course_figures.plot_descent_paths(surface, paths, out / "optimizer_paths.png", minimum=best))

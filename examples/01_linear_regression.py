# %% [markdown]
# # 1. A line fitted by gradient descent
#
# The smallest learning problem: points scattered about a line y = mx + c, and two numbers to find.
# Gradient descent starts from m = c = 0, measures how wrong the line is (the mean squared error),
# asks autodiff which way each number should move to make it less wrong, and takes a small step
# that way. Repeat, and the line settles where the error is least.
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
# ## The data
# 200 points on y = 2x + 1 with noise of standard deviation 0.3.

# %%
data = dc.data.make_line(n=200, slope=2.0, intercept=1.0, noise=0.3, seed=0)
print(f"x {data.x.shape}, y {data.y.shape}")

# %% [markdown]
# ## Gradient descent by hand
# The loss is a Tensor; `backward()` fills `m.grad` and `c.grad` with d(loss)/dm and d(loss)/dc,
# which are 2·mean((mx + c − y)·x) and 2·mean(mx + c − y). Each step moves against them.

# %%
m, c = dc.tensor(0.0, requires_grad=True), dc.tensor(0.0, requires_grad=True)
x, y = dc.tensor(data.x[:, 0]), dc.tensor(data.y[:, 0])
learning_rate, losses = 0.1, []
for step in range(60 if quick else 200):
    loss = ((m * x + c - y) ** 2).mean()
    m.grad = c.grad = None
    loss.backward()
    m.data -= learning_rate * m.grad
    c.data -= learning_rate * c.grad
    losses.append(float(loss.data))
print(f"after {len(losses)} steps: m = {float(m.data):.3f}, c = {float(c.data):.3f}, loss {losses[-1]:.4f}")

# %% [markdown]
# ## The same with descend's parts
# `nn.LinearRegression` is that line as a layer, `optim.SGD` the update rule, `dc.fit` the loop.
# Least squares has an exact answer to check against.

# %%
model = nn.LinearRegression(1, 1, rng=0)
history = dc.fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.3), data, epochs=60 if quick else 200,
                 batch_size=len(data), progress=False)
exact = np.linalg.lstsq(np.column_stack([data.x[:, 0], np.ones(len(data))]), data.y[:, 0], rcond=None)[0]
print(f"fit: m = {model.linear.weight.data.item():.3f}, c = {model.linear.bias.data.item():.3f}; "
      f"least squares: m = {exact[0]:.3f}, c = {exact[1]:.3f}")
print(course_figures.plot_line_fit(data.x, data.y, float(m.data), float(c.data), losses, out / "line_fit.png"))

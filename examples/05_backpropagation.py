# %% [markdown]
# # 5. The chain rule and backpropagation
#
# Reverse-mode automatic differentiation, by the book. The forward pass evaluates
# f(x1, x2) = ln(x1) + x1·x2 − sin(x2) one primitive at a time and remembers each intermediate
# value; the reverse sweep then walks the same trace backwards, multiplying each adjoint by one
# local derivative (the chain rule), until it reaches the inputs. `dc.explain` prints both sweeps
# exactly as a textbook table does.
#
# Run as a script or open as a notebook with jupytext. `DESCEND_QUICK=1` makes every part small for
# a smoke run; `DESCEND_OUT` says where the pictures go (default `runs/examples`).

# %%
import os
from pathlib import Path

import numpy as np

import descend as dc
from descend import nn, viz

quick = os.environ.get("DESCEND_QUICK") == "1"
out = Path(os.environ.get("DESCEND_OUT", "runs/examples"))

# %% [markdown]
# ## One function, traced
# At (x1, x2) = (2, 5): df/dx1 = 1/x1 + x2 = 5.5 and df/dx2 = x1 − cos(x2) ≈ 1.716.

# %%
explanation = dc.explain(lambda x1, x2: dc.log(x1) + x1 * x2 - dc.sin(x2), x1=2.0, x2=5.0)
print(explanation)

# %% [markdown]
# ## A network's gradients, checked by finite differences
# Backpropagation through a small MLP gives every weight's gradient in one reverse sweep. Nudging
# each weight by ±h and re-evaluating the loss gives the same numbers the slow way:
# (L(w + h) − L(w − h)) / 2h. In float64 the two agree to about 1e-9.

# %%
train, _ = dc.data.load_digits()
model = nn.MLP([64, 8, 10], activation="tanh", rng=0).astype(np.float64)
x, y = train.x[:32].astype(np.float64), train.y[:32]
loss_fn = nn.CrossEntropyLoss()
buffer = model.flat_buffer()
_, gradient, _ = dc.make_step(model, loss_fn)(buffer.data, x, y)
gradient = gradient.copy()


def loss_at(weights):
    buffer.data[...] = weights
    return float(loss_fn(model(dc.tensor(x)), y).data)


weights = buffer.data.copy()
rng = np.random.default_rng(0)
checked = rng.choice(weights.size, size=40 if quick else 200, replace=False)
h = 1e-6
numeric = []
for index in checked:
    nudge = np.zeros_like(weights)
    nudge[index] = h
    numeric.append((loss_at(weights + nudge) - loss_at(weights - nudge)) / (2 * h))
buffer.data[...] = weights
numeric = np.array(numeric)
error = np.abs(numeric - gradient[checked]).max()
print(f"{len(checked)} of {weights.size} weights checked: largest difference {error:.2e} "
      f"(gradients up to {np.abs(numeric).max():.3f})")
print(viz.plot_curves({"backpropagation": (np.arange(len(checked)), gradient[checked]),
                       "finite differences": (np.arange(len(checked)), numeric)},
                      out / "gradient_check.png", "The same gradients two ways", "checked weight", "dL/dw"))

# %% [markdown]
# ## An op of your own, checked
# A new primitive is a subclass of `dc.Function`: `forward` on arrays saves what the derivative
# needs, `backward` turns the output's gradient into one gradient per input (the vector-Jacobian
# product). Here softsign(x) = x / (1 + |x|), whose derivative is 1 / (1 + |x|)². `dc.gradcheck`
# compares its backward with float64 central differences, number by number; a mistake in the
# derivative would be named with the input and the number where it shows.


# %%
class Softsign(dc.Function):
    """x / (1 + |x|); d/dx = 1 / (1 + |x|)²."""

    def forward(self, x):
        self.denominator = 1 + np.abs(x)
        return x / self.denominator

    def backward(self, grad):
        return (grad / self.denominator**2,)


points = np.linspace(-3, 3, 7)
print("softsign:", np.round(Softsign.apply(dc.tensor(points)).data, 3))
print("gradcheck:", dc.gradcheck(Softsign.apply, points))

# %% [markdown]
# # 10. Recurrent networks: RNN, LSTM, GRU
#
# A recurrent network reads a sequence one step at a time and carries a hidden state from step to
# step, so what it saw early can shape what it says late. A plain RNN squashes that state through
# the same matrix at every step, and its gradient fades over long gaps; the LSTM's cell and the
# GRU's update gate let information (and gradient) pass many steps unchanged.
#
# Run as a script or open as a notebook with jupytext. `DESCEND_QUICK=1` makes every part small for
# a smoke run; `DESCEND_OUT` says where the pictures go (default `runs/examples`).

# %%
import os
from pathlib import Path

import numpy as np

import descend as dc
from descend import nn, optim, viz

quick = os.environ.get("DESCEND_QUICK") == "1"
out = Path(os.environ.get("DESCEND_OUT", "runs/examples"))

# %% [markdown]
# ## A character-level language model
# The model reads 64 characters of Shakespeare and, at every position, predicts the next one.

# %%
text = dc.data.load_text("shakespeare")
print(text)
train = text.sequences(length=32 if quick else 64)
validation = text.sequences(length=32 if quick else 64, split="validation")
if quick:
    train, validation = train[:256], validation[:64]
model = nn.CharRNN(vocab_size=text.vocab_size, embed=16 if quick else 64, hidden=32 if quick else 256, cell="lstm", rng=0)


class BatchLosses(dc.Callback):
    """Keeps every step's loss, for the learning curve."""

    def __init__(self):
        self.losses = []

    def on_batch_end(self, state, loss):
        self.losses.append(loss)


losses = BatchLosses()
history = dc.fit(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=2e-3), train, epochs=1,
                 batch_size=64, validation=validation, clip_grad_norm=5.0, callbacks=[losses], progress=not quick)
print(f"validation cross-entropy: {history['val_loss'][-1]:.3f} nats per character")
print(model.generate(text, prompt="ROMEO:", length=300, temperature=0.8, seed=0))
viz.plot_curves({"training loss": losses.losses}, out / "10_rnn_char_loss.png",
                "Character LSTM on Shakespeare", "step", "cross-entropy (nats per character)")

# %% [markdown]
# ## What needs memory: the adding problem
# Each sequence holds random numbers and two markers; the answer is the sum of the two marked
# numbers, the first of which may lie 100 steps back. Always answering 1 gives a mean squared error
# of 1/6. A plain RNN stays there; LSTM and GRU learn to remember.

# %%
length = 10 if quick else 100
data = dc.data.make_adding_problem(n=512 if quick else 20_000, length=length, seed=0)
held_out = dc.data.make_adding_problem(n=128 if quick else 1_000, length=length, seed=1)


class LastStepRegressor(nn.Module):
    """Reads a whole sequence and answers from the last hidden state: (N, T, 2) -> (N, 1)."""

    def __init__(self, cell: str, hidden: int = 32, rng=None):
        self.recurrent = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell](2, hidden, batch_first=True, rng=rng)
        self.head = nn.Linear(hidden, 1, rng=rng)

    def forward(self, x):
        sequence, _ = self.recurrent(x)
        return self.head(sequence[:, -1])


curves = {}
for cell in ("rnn", "gru", "lstm"):
    regressor = LastStepRegressor(cell, rng=0)
    history = dc.fit(regressor, nn.MSELoss(), optim.Adam(regressor.parameters(), lr=3e-3), data,
                     epochs=1 if quick else 8, batch_size=64, validation=held_out, clip_grad_norm=1.0, progress=False)
    curves[cell.upper()] = history["val_loss"]
    print(f"{cell.upper():5s} held-out mean squared error by epoch: {np.round(history['val_loss'], 4).tolist()}")
viz.plot_curves({**curves, "always answer 1": [1 / 6] * len(curves["RNN"])}, out / "10_rnn_adding.png",
                f"The adding problem at length {length}", "epoch", "held-out mean squared error", log_y=True)

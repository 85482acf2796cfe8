"""dc.manual_seed (issue 19, item 4): hand-written training with layers and Dropout built without rng= repeats
to the bit after the same seed, and differs after another."""

from __future__ import annotations

import numpy as np
import pytest

import descend as dc
from descend import nn, optim
from descend import seeding
from descend.errors import DescendTypeError, DescendValueError


@pytest.fixture(autouse=True)
def no_global_seed_after(monkeypatch):
    """The global seed these tests set does not outlive them."""
    monkeypatch.setattr(seeding, "_root", None)


def hand_written_run(seed: int | None) -> np.ndarray:
    """A PyTorch-style loop: the model and Dropout with no rng=, a few SGD steps; the weights at the end."""
    if seed is not None:
        dc.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3))
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    x = np.linspace(-1, 1, 40, dtype=np.float32).reshape(10, 4)
    y = np.arange(10) % 3
    for _ in range(5):
        optimizer.zero_grad()
        nn.CrossEntropyLoss()(model(dc.tensor(x)), y).backward()
        optimizer.step()
    return model.flat_buffer().data.copy()


def test_the_same_seed_repeats_a_hand_written_run_to_the_bit_and_another_seed_does_not():
    first, again, other = hand_written_run(7), hand_written_run(7), hand_written_run(8)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_an_explicit_rng_still_wins_and_draws_nothing_from_the_global_seed():
    dc.manual_seed(3)
    explicit = nn.Linear(3, 2, rng=0).weight.data.copy()
    after_explicit = nn.Linear(3, 2).weight.data.copy()
    dc.manual_seed(3)
    np.testing.assert_array_equal(nn.Linear(3, 2).weight.data, after_explicit)
    np.testing.assert_array_equal(nn.Linear(3, 2, rng=0).weight.data, explicit)


@pytest.mark.parametrize("seed, error", [(-1, DescendValueError), (1.5, DescendTypeError), (None, DescendTypeError),
                                         (True, DescendTypeError)])
def test_manual_seed_refuses_what_is_not_a_seed(seed, error):
    with pytest.raises(error, match="seed"):
        dc.manual_seed(seed)

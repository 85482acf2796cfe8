"""The learning-rate range test: a ramp of rates, a suggestion inside it, and the model and optimizer left as they were."""

import numpy as np
import pytest

import descend as dc
from descend import nn, optim
from descend.errors import DescendValueError


@pytest.fixture(scope="module")
def digits():
    return dc.data.load_digits()[0]


def test_the_range_test_suggests_a_rate_that_trains_and_restores_everything(digits):
    model = nn.MLP([64, 32, 10], rng=0)
    optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9, schedule=optim.InverseTimeDecay(decay=1e-3))
    dc.fit(model, nn.CrossEntropyLoss(), optimizer, digits[:200], epochs=1, batch_size=50, progress=False)
    weights, momentum = model.flat_buffer().data.copy(), optimizer.state["momentum_buffer"].copy()
    found = dc.lr_find(model, nn.CrossEntropyLoss(), optimizer, digits, steps=80, batch_size=32)
    np.testing.assert_array_equal(model.flat_buffer().data, weights)
    np.testing.assert_array_equal(optimizer.state["momentum_buffer"], momentum)
    assert optimizer.iterations == 4 and optimizer.base_lr == 0.01 and optimizer.schedule is not None
    rates = found.learning_rates
    assert rates[0] == pytest.approx(1e-6) and np.all(np.diff(np.log(rates)) > 0)
    assert len(found.losses) == len(found.smoothed_losses) == len(rates) <= 80
    assert rates[0] < found.suggestion == min(found.steepest, found.tenth_of_lowest) < rates[-1]
    # the suggestion trains: one epoch at it beats one epoch at a hundredth of it
    accuracies = []
    for rate in (found.suggestion, found.suggestion / 100):
        fresh = nn.MLP([64, 32, 10], rng=1)
        history = dc.fit(fresh, nn.CrossEntropyLoss(), optim.SGD(fresh.parameters(), lr=rate, momentum=0.9), digits,
                         epochs=1, batch_size=32, progress=False)
        accuracies.append(history["accuracy"][-1])
    assert accuracies[0] > accuracies[1] + 0.1


def test_running_statistics_generators_and_the_training_mode_are_restored(digits):
    """Batch normalisation's running statistics and dropout's generator change with every training step; the
    range test leaves both, and the eval mode, as it found them (it once restored only weights and optimizer)."""
    model = nn.Sequential(nn.Linear(64, 32, rng=0), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.5, rng=1),
                          nn.Linear(32, 10, rng=2))
    optimizer = optim.SGD(model.parameters(), lr=0.01)
    dc.fit(model, nn.CrossEntropyLoss(), optimizer, digits[:200], epochs=1, batch_size=50, progress=False)
    model.eval()
    statistics = {name: value.copy() for name, value in model.state_dict().items() if "running" in name}
    generator = model.layers[3].rng.bit_generator.state
    predictions = dc.predict(model, digits.x[:50])
    dc.lr_find(model, nn.CrossEntropyLoss(), optimizer, digits, steps=20, batch_size=32)
    assert sorted(statistics) == ["layers.1.running_mean", "layers.1.running_var"]
    for name, value in statistics.items():
        np.testing.assert_array_equal(model.state_dict()[name], value)
    assert model.layers[3].rng.bit_generator.state == generator
    assert not model.training
    np.testing.assert_array_equal(dc.predict(model, digits.x[:50]), predictions)


def test_the_ramp_stops_when_the_loss_explodes(digits):
    model = nn.MLP([64, 32, 10], rng=0)
    found = dc.lr_find(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1, momentum=0.9), digits,
                       end_lr=1e3, steps=200, batch_size=32)
    assert len(found.learning_rates) < 200 and found.learning_rates[-1] < 1e3


@pytest.mark.parametrize("options, words", [
    ({"start_lr": 1.0, "end_lr": 0.1}, "end_lr must be above start_lr"),
    ({"steps": 3}, "steps must be"),
    ({"smoothing": 1.0}, "smoothing must be"),
    ({"start_lr": 1.0, "end_lr": 1e6, "steps": 10}, "diverged after"),
])
def test_bad_settings_are_named(digits, options, words):
    model = nn.MLP([64, 32, 10], rng=0)
    with pytest.raises(DescendValueError, match=words):
        dc.lr_find(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), digits, **options)

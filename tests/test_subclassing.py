"""Subclassing Module has no sharp edges: any name for the instance, a head swapped after an optimizer exists,
and functions as constructor arguments saved by registered name or refused at once with the fix."""

import warnings

import numpy as np
import pytest

import descend as dc
from descend import nn, optim
from descend.errors import DescendTypeError, DescendValueError, ParameterBufferWarning


class Terse(nn.Module):
    def __init__(s, features, hidden=4):  # noqa: N805 (the point: not called self)
        s.layer = nn.Linear(features, hidden, rng=0)

    def forward(s, x):  # noqa: N805
        return s.layer(x)


def test_config_does_not_depend_on_what_the_instance_is_called(tmp_path):
    model = Terse(3)
    assert model.config() == {"features": 3, "hidden": 4}
    loaded = dc.load(dc.save(model, tmp_path / "terse.dsc"))
    np.testing.assert_array_equal(loaded.flat_buffer().data, model.flat_buffer().data)


def test_a_wrong_argument_lists_the_arguments_without_the_instance():
    with pytest.raises(DescendTypeError, match=r"Terse: .*unexpected keyword argument 'width'.*; it takes features, "
                                               r"hidden$"):
        Terse(3, width=5)


class Classifier(nn.Module):
    def __init__(self, classes=3):
        self.body = nn.Linear(4, 6, rng=0)
        self.head = nn.Linear(6, classes, rng=1)

    def forward(self, x):
        return self.head(dc.relu(self.body(x)))


def test_swapping_the_head_rebuilds_the_buffer_and_the_old_optimizer_says_to_make_it_again():
    model = Classifier()
    stale = optim.SGD(model.parameters(), lr=0.1)
    body = model.body.weight.data.copy()
    model.head = nn.Linear(6, 5, rng=2)
    with pytest.warns(ParameterBufferWarning, match="Make it again from model.parameters()"):
        params = model.parameters()
    assert len(params) == 4 and model.flat_buffer().size == 4 * 6 + 6 + 6 * 5 + 5
    np.testing.assert_array_equal(model.body.weight.data, body)  # the values moved with the parameters
    with pytest.raises(DescendValueError, match="SGD's parameters moved to a new flat buffer .* Make the optimizer "
                                                "again from model.parameters()"):
        stale.step()
    with pytest.raises(DescendValueError, match="moved to a new flat buffer"):
        stale.zero_grad()


def test_after_a_swap_a_new_optimizer_trains_every_parameter():
    model = Classifier()
    optim.SGD(model.parameters(), lr=0.1)
    model.head = nn.Linear(6, 2, rng=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParameterBufferWarning)
        fresh = optim.SGD(model.parameters(), lr=0.5)
    before = model.flat_buffer().data.copy()
    x, y = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32), np.arange(8) % 2
    loss = nn.CrossEntropyLoss()(model(dc.tensor(x)), y)
    fresh.zero_grad()
    loss.backward()
    fresh.step()
    changed = model.flat_buffer().data != before
    for parameter in model.parameters():  # every parameter, the new head's included, was updated in place
        start = int(np.flatnonzero([p is parameter for p in model.flat_buffer().params])[0])
        offsets = model.flat_buffer().offsets
        assert changed[offsets[start] : offsets[start + 1]].any()


@nn.register_function(name="tests.gelu_tanh")
def gelu_tanh(x):
    return 0.5 * x * (1 + dc.tanh(0.7978845608 * (x + 0.044715 * x * x * x)))


class WithActivation(nn.Module):
    def __init__(self, activation=dc.relu):
        self.layer = nn.Linear(3, 3, rng=0)
        self.activation = activation

    def forward(self, x):
        return self.activation(self.layer(x))


@pytest.mark.parametrize("activation", [dc.relu, dc.tanh, gelu_tanh])
def test_a_registered_function_argument_is_saved_by_name_and_comes_back(tmp_path, activation):
    model = WithActivation(activation)
    loaded = dc.load(dc.save(model, tmp_path / "act.dsc"))
    assert loaded.activation is activation
    x = dc.tensor(np.linspace(-2, 2, 6, dtype=np.float32).reshape(2, 3))
    np.testing.assert_array_equal(loaded(x).data, model(x).data)


def test_an_unregistered_function_is_refused_at_construction_with_the_fix():
    def swish(x):
        return x * dc.sigmoid(x)

    with pytest.raises(DescendTypeError, match=r"WithActivation's argument activation is the function "
                                               r"'test_an_unregistered_function_is_refused_at_construction_with_the_fix"
                                               r".<locals>.swish', which a model file cannot name: register it first"):
        WithActivation(swish)
    with pytest.raises(DescendTypeError, match="argument activation is the function"):
        WithActivation(np.tanh)  # a NumPy ufunc is no descend function either


def test_register_function_refuses_names_a_file_cannot_hold_and_a_second_function_under_one_name():
    with pytest.raises(DescendValueError, match="A lambda or a nested function has no such name"):
        nn.register_function(lambda x: x)
    with pytest.raises(DescendValueError, match="another function is registered as 'tests.gelu_tanh' already"):
        nn.register_function(lambda x: x, name="tests.gelu_tanh")
    with pytest.raises(DescendTypeError, match="register_function takes a function; got int"):
        nn.register_function(3)
    assert nn.register_function(gelu_tanh, name="tests.gelu_tanh") is gelu_tanh  # the same again is fine


def test_a_file_naming_an_unknown_function_asks_for_it(tmp_path):
    from descend.nn.module import FUNCTIONS

    @nn.register_function(name="tests.short_lived")
    def short_lived(x):
        return x

    path = dc.save(WithActivation(short_lived), tmp_path / "act.dsc")
    del FUNCTIONS["tests.short_lived"]  # as in a program that never registered it
    with pytest.raises(DescendValueError, match=r"unknown function 'tests.short_lived': pass it when loading, "
                                                r"dc.load\(path, custom_objects=\{'tests.short_lived': fn\}\)"):
        dc.load(path)
    assert dc.load(path, custom_objects={"tests.short_lived": short_lived}).activation is short_lived

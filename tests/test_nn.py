"""Layers and models: shapes, parameter counts, the flat buffer, state round trips, PyTorch parity."""

import numpy as np
import pytest

import descend as dc
from descend import nn
from descend.errors import DescendValueError, ShapeError

try:
    import torch
except ImportError:  # the parity tests below skip themselves
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed (it is the oracle)")

# (layer maker, input shape, output shape, parameter count)
LAYERS = [
    (lambda: nn.Linear(5, 3, rng=0), (4, 5), (4, 3), 18),
    (lambda: nn.Linear(5, 3, bias=False, rng=0), (4, 5), (4, 3), 15),
    (lambda: nn.ReLU(), (4, 5), (4, 5), 0),
    (lambda: nn.LeakyReLU(0.1), (4, 5), (4, 5), 0),
    (lambda: nn.ELU(), (4, 5), (4, 5), 0),
    (lambda: nn.Sigmoid(), (4, 5), (4, 5), 0),
    (lambda: nn.Tanh(), (4, 5), (4, 5), 0),
    (lambda: nn.Softmax(), (4, 5), (4, 5), 0),
    (lambda: nn.Maxout(5, 3, pieces=4, rng=0), (4, 5), (4, 3), 5 * 12 + 12),
    (lambda: nn.Flatten(), (4, 2, 3), (4, 6), 0),
    (lambda: nn.Dropout(0.5, rng=0), (4, 5), (4, 5), 0),
    (lambda: nn.Sequential(nn.Linear(5, 4, rng=0), nn.ReLU(), nn.Linear(4, 2, rng=1)), (3, 5), (3, 2), 24 + 10),
    (lambda: nn.MLP([784, 512, 256, 10]), (2, 784), (2, 10), 535818),
    (lambda: nn.LinearRegression(3), (7, 3), (7, 1), 4),
    (lambda: nn.LogisticRegression(64, 10), (7, 64), (7, 10), 650),
]


@pytest.mark.parametrize("make, in_shape, out_shape, count", LAYERS)
def test_layer_shapes_and_parameter_count(make, in_shape, out_shape, count):
    layer = make()
    out = layer(dc.tensor(np.random.default_rng(0).random(in_shape)))
    assert out.shape == out_shape
    assert layer.parameter_count() == count


@pytest.mark.parametrize("make, in_shape, out_shape, count", LAYERS)
def test_layer_rebuilds_from_its_description_and_state(make, in_shape, out_shape, count):
    layer = make().eval()
    copy = nn.build_module(nn.module_spec(layer)).eval()
    copy.load_state_dict(layer.state_dict())
    x = dc.tensor(np.random.default_rng(1).random(in_shape))
    np.testing.assert_array_equal(copy(x).data, layer(x).data)


def test_parameters_and_gradients_are_views_of_one_flat_buffer():
    model = nn.MLP([6, 5, 3], rng=0)
    buffer = model.flat_buffer()
    assert buffer.data.shape == (model.parameter_count(),) and buffer.data.dtype == np.float32
    for parameter in model.parameters():
        assert np.shares_memory(parameter.data, buffer.data)
        assert np.shares_memory(parameter.grad, buffer.grad)
    loss = nn.CrossEntropyLoss()(model(dc.tensor(np.ones((2, 6)))), np.array([0, 2]))
    loss.backward()
    assert np.abs(buffer.grad).sum() > 0
    buffer.data[:] = 0
    assert all((p.data == 0).all() for p in model.parameters())
    model.zero_grad()
    assert all((p.grad == 0).all() for p in model.parameters())


def test_the_same_parameters_share_one_buffer_across_calls():
    model = nn.MLP([4, 3, 2], rng=0)
    assert model.flat_buffer() is model.flat_buffer()
    assert [id(p) for p in model.parameters()] == [id(p) for p in model.parameters()]


def test_shared_weights_are_counted_once():
    layer = nn.Linear(3, 3, rng=0)
    model = nn.Sequential(layer, nn.ReLU(), layer)
    assert model.parameter_count() == 12
    assert [name for name, _ in model.named_parameters()] == ["layers.0.weight", "layers.0.bias"]


def test_dropout_is_inverted_in_training_and_off_in_eval():
    layer = nn.Dropout(0.25, rng=0)
    x = dc.tensor(np.ones((200, 100), np.float32))
    out = layer(x).data
    assert set(np.unique(out)) == {0.0, np.float32(1 / 0.75)}
    assert abs((out == 0).mean() - 0.25) < 0.02
    assert abs(out.mean() - 1.0) < 0.03
    np.testing.assert_array_equal(layer.eval()(x).data, x.data)


def test_mlp_input_dropout_and_train_eval_modes_reach_every_layer():
    model = nn.MLP([4, 3, 2], dropout=0.5, input_dropout=0.2, rng=0)
    assert isinstance(model.layers[0], nn.Dropout) and model.layers[0].p == 0.2
    model.eval()
    assert all(not m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_astype_float64_moves_the_whole_buffer():
    model = nn.MLP([3, 4, 2], rng=0).astype(np.float64)
    assert model.flat_buffer().dtype == np.float64
    assert all(p.dtype == np.float64 for p in model.parameters())
    assert model(dc.tensor(np.ones((2, 3)), dtype=np.float64)).dtype == np.float64


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda: nn.Linear(784, 512)(dc.tensor(np.zeros((128, 28, 28)))), ShapeError, ["Linear(784 -> 512)", "(128, 28, 28)", "Flatten"]),
        (lambda: nn.Linear(0, 3), DescendValueError, ["in_features", "0"]),
        (lambda: nn.Dropout(1.0), DescendValueError, ["p", "1.0"]),
        (lambda: nn.MLP([10]), DescendValueError, ["sizes"]),
        (lambda: nn.MLP([4, 2], activation="swish"), DescendValueError, ["swish", "relu"]),
        (lambda: nn.MSELoss()(dc.tensor(np.zeros((4, 1))), np.zeros(4)), ShapeError, ["(4, 1)", "(4,)"]),
        (lambda: nn.CrossEntropyLoss()(dc.tensor(np.zeros((4, 3))), np.array([0, 1, 2, 3])), DescendValueError, ["[0, 3)", "3"]),
        (lambda: nn.CrossEntropyLoss()(dc.tensor(np.zeros((4, 3))), np.array([0, 1])), ShapeError, ["(2,)", "(4, 3)"]),
        (lambda: nn.MLP([4, 2]).load_state_dict({}), DescendValueError, ["missing", "network.layers.0.weight"]),
    ],
)
def test_bad_input_names_what_was_wrong(call, error, words):
    with pytest.raises(error) as raised:
        call()
    for word in words:
        assert word in str(raised.value)


@needs_torch
def test_mlp_matches_torch_with_copied_weights_forward_and_backward():
    rng = np.random.default_rng(0)
    model = nn.MLP([7, 6, 5, 3], activation="tanh", rng=0).astype(np.float64)
    reference = torch.nn.Sequential(
        torch.nn.Linear(7, 6), torch.nn.Tanh(), torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)
    ).double()
    linears = [m for m in model.layers if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for ours, theirs in zip(linears, reference[::2]):
            theirs.weight.copy_(torch.from_numpy(ours.weight.data.T))  # ours is (in, out); torch stores (out, in)
            theirs.bias.copy_(torch.from_numpy(ours.bias.data))
    x = rng.normal(size=(9, 7))
    y = rng.integers(0, 3, 9)
    loss = nn.CrossEntropyLoss()(model(dc.tensor(x, dtype=np.float64)), y)
    loss.backward()
    torch_loss = torch.nn.functional.cross_entropy(reference(torch.from_numpy(x)), torch.from_numpy(y))
    torch_loss.backward()
    np.testing.assert_allclose(loss.item(), torch_loss.item(), rtol=1e-12)
    for ours, theirs in zip(linears, reference[::2]):
        np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy().T, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(ours.bias.grad, theirs.bias.grad.numpy(), rtol=1e-10, atol=1e-14)


@needs_torch
@pytest.mark.parametrize(
    "ours, theirs",
    [
        (nn.MSELoss(), lambda p, t: torch.nn.functional.mse_loss(p, t)),
        (nn.BCEWithLogitsLoss(), lambda p, t: torch.nn.functional.binary_cross_entropy_with_logits(p, t)),
    ],
)
def test_losses_match_torch(ours, theirs):
    rng = np.random.default_rng(3)
    prediction, target = rng.normal(size=(6, 2)), rng.integers(0, 2, (6, 2)).astype(np.float64)
    p = dc.tensor(prediction, requires_grad=True, dtype=np.float64)
    loss = ours(p, target)
    loss.backward()
    tp = torch.from_numpy(prediction).requires_grad_()
    torch_loss = theirs(tp, torch.from_numpy(target))
    torch_loss.backward()
    np.testing.assert_allclose(loss.item(), torch_loss.item(), rtol=1e-12)
    np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-10)


def test_maxout_keeps_leading_axes():
    layer = nn.Maxout(5, 3, pieces=2, rng=0)
    assert layer(dc.tensor(np.ones((2, 4, 5)))).shape == (2, 4, 3)


def test_mlp_refuses_dropout_outside_zero_one():
    for bad in (-0.1, 1.0):
        with pytest.raises(DescendValueError, match="dropout"):
            nn.MLP([3, 2], dropout=bad)

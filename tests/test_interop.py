"""descend.interop: PyTorch's weights in a descend model give PyTorch's outputs, descend's in PyTorch give
descend's, a round trip gives back the same bits, and what does not fit is refused by name."""

import subprocess
import sys

import numpy as np
import pytest

import descend as dc
from descend import nn
from descend.errors import DescendTypeError, DescendValueError, ShapeError
from descend.interop import TWINS, from_torch, to_torch
from helpers import imported

torch = imported("torch")


class TorchCharRNN(torch.nn.Module):
    """CharRNN's architecture with torch's own names, its head declared first: state_dict order differs."""

    def __init__(self, vocab_size, embed, hidden):
        super().__init__()
        self.fc = torch.nn.Linear(hidden, vocab_size)
        self.embed = torch.nn.Embedding(vocab_size, embed)
        self.lstm = torch.nn.LSTM(embed, hidden, batch_first=True)

    def forward(self, ids):
        return self.fc(self.lstm(self.embed(ids))[0])


def _image(shape):
    return lambda rng: rng.normal(size=shape).astype(np.float32)


def _ids(rng):
    return rng.integers(0, 7, size=(3, 4))


# name, the descend model, its PyTorch twin, the input; square sizes catch a missed transpose that shapes cannot
CASES = [
    ("Linear", lambda: nn.Linear(4, 3, rng=0), lambda: torch.nn.Linear(4, 3), _image((5, 4))),
    ("Linear-square", lambda: nn.Linear(6, 6, rng=0), lambda: torch.nn.Linear(6, 6), _image((5, 6))),
    ("Linear-no-bias", lambda: nn.Linear(4, 3, bias=False, rng=0), lambda: torch.nn.Linear(4, 3, bias=False),
     _image((5, 4))),
    ("Conv1d", lambda: nn.Conv1d(3, 5, 3, stride=2, padding=1, rng=0),
     lambda: torch.nn.Conv1d(3, 5, 3, stride=2, padding=1), _image((2, 3, 9))),
    ("Conv2d", lambda: nn.Conv2d(4, 6, (3, 2), stride=2, padding=1, dilation=(1, 2), groups=2, rng=0),
     lambda: torch.nn.Conv2d(4, 6, (3, 2), stride=2, padding=1, dilation=(1, 2), groups=2), _image((2, 4, 7, 8))),
    ("ConvTranspose1d", lambda: nn.ConvTranspose1d(4, 4, 3, stride=2, padding=1, output_padding=1, rng=0),
     lambda: torch.nn.ConvTranspose1d(4, 4, 3, stride=2, padding=1, output_padding=1), _image((2, 4, 6))),
    ("ConvTranspose2d", lambda: nn.ConvTranspose2d(4, 6, (3, 2), stride=2, padding=1, groups=2, rng=0),
     lambda: torch.nn.ConvTranspose2d(4, 6, (3, 2), stride=2, padding=1, groups=2), _image((2, 4, 5, 4))),
    ("BatchNorm1d", lambda: nn.BatchNorm1d(5), lambda: torch.nn.BatchNorm1d(5), _image((8, 5))),
    ("BatchNorm1d-sequences", lambda: nn.BatchNorm1d(3), lambda: torch.nn.BatchNorm1d(3), _image((4, 3, 6))),
    ("BatchNorm2d", lambda: nn.BatchNorm2d(3), lambda: torch.nn.BatchNorm2d(3), _image((4, 3, 5, 5))),
    ("Embedding", lambda: nn.Embedding(7, 3, rng=0), lambda: torch.nn.Embedding(7, 3), _ids),
    ("RNN", lambda: nn.RNN(4, 5, rng=0), lambda: torch.nn.RNN(4, 5), _image((6, 3, 4))),
    ("RNN-square-relu-2-layers", lambda: nn.RNN(5, 5, num_layers=2, nonlinearity="relu", rng=0),
     lambda: torch.nn.RNN(5, 5, num_layers=2, nonlinearity="relu"), _image((6, 3, 5))),
    ("LSTM-square", lambda: nn.LSTM(6, 6, rng=0), lambda: torch.nn.LSTM(6, 6), _image((6, 3, 6))),
    ("LSTM-2-layers", lambda: nn.LSTM(4, 5, num_layers=2, rng=0), lambda: torch.nn.LSTM(4, 5, num_layers=2),
     _image((6, 3, 4))),
    ("LSTM-bidirectional-batch-first-no-bias",
     lambda: nn.LSTM(4, 5, num_layers=2, bidirectional=True, batch_first=True, bias=False, rng=0),
     lambda: torch.nn.LSTM(4, 5, num_layers=2, bidirectional=True, batch_first=True, bias=False), _image((3, 6, 4))),
    ("GRU-square", lambda: nn.GRU(5, 5, rng=0), lambda: torch.nn.GRU(5, 5), _image((6, 3, 5))),
    ("GRU-3-layers-bidirectional", lambda: nn.GRU(4, 6, num_layers=3, bidirectional=True, rng=0),
     lambda: torch.nn.GRU(4, 6, num_layers=3, bidirectional=True), _image((6, 3, 4))),
    ("RNNCell-square", lambda: nn.RNNCell(4, 4, rng=0), lambda: torch.nn.RNNCell(4, 4), _image((3, 4))),
    ("LSTMCell", lambda: nn.LSTMCell(4, 5, rng=0), lambda: torch.nn.LSTMCell(4, 5), _image((3, 4))),
    ("GRUCell-square", lambda: nn.GRUCell(5, 5, rng=0), lambda: torch.nn.GRUCell(5, 5), _image((3, 5))),
    ("MLP-as-Sequential",
     lambda: nn.Sequential(nn.Linear(4, 8, rng=0), nn.ReLU(), nn.Linear(8, 8, rng=0), nn.Tanh(),
                           nn.Linear(8, 3, rng=0)),
     lambda: torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8), torch.nn.Tanh(),
                                 torch.nn.Linear(8, 3)),
     _image((5, 4))),
    ("CNN-as-Sequential", lambda: nn.SimpleCNN(channels=(4, 8), hidden=16, dropout=0.0, batch_norm=True, image_size=8,
                                               rng=0),
     lambda: torch.nn.Sequential(
         torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
         torch.nn.Conv2d(4, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
         torch.nn.Flatten(), torch.nn.Linear(8 * 2 * 2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10)),
     _image((3, 1, 8, 8))),
]
IDS = [case[0] for case in CASES]


def _randomized_torch(model):
    """`model` in eval mode with every parameter and running statistic drawn at random.

    A fresh batch norm's ones and zeros, or a count left at 0, would hide a swap or a lost value.
    """
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, value in model.state_dict().items():  # these tensors share the model's storage
            if name.endswith("running_var"):
                value.copy_(torch.rand(value.shape, generator=generator) + 0.5)
            elif value.is_floating_point():
                value.copy_(torch.randn(value.shape, generator=generator) * 0.5)
            else:
                value.fill_(7)
    return model.eval()


def _randomized_descend(model):
    """`model` in eval mode with every parameter and running statistic drawn at random."""
    rng = np.random.default_rng(1)
    for _, parameter in model.named_parameters():
        parameter.data[...] = rng.normal(scale=0.5, size=parameter.shape)
    for module in model.modules():
        for name in module.state:
            setattr(module, name, rng.uniform(0.5, 1.5, size=getattr(module, name).shape).astype(np.float32))
    return model.eval()


def _arrays(result):
    """A layer's output, nested tuples of tensors included, as a flat list of arrays."""
    if isinstance(result, (tuple, list)):
        return [array for item in result for array in _arrays(item)]
    return [result.detach().numpy() if isinstance(result, torch.Tensor) else result.data]


def _outputs_agree(ours, theirs, make_input):
    x = make_input(np.random.default_rng(2))
    ours_out = _arrays(ours(x if x.dtype.kind == "i" else dc.tensor(x)))
    with torch.no_grad():
        theirs_out = _arrays(theirs(torch.from_numpy(x)))
    assert len(ours_out) == len(theirs_out)
    for mine, twin in zip(ours_out, theirs_out):
        np.testing.assert_allclose(mine, twin, rtol=1e-5, atol=1e-5)


def _torch_state(arrays):
    return {key: torch.from_numpy(value) for key, value in arrays.items()}


@pytest.mark.parametrize("name, make_ours, make_theirs, make_input", CASES, ids=IDS)
def test_torch_weights_in_descend_give_torch_outputs(name, make_ours, make_theirs, make_input):
    theirs = _randomized_torch(make_theirs())
    ours = from_torch(make_ours(), theirs.state_dict()).eval()
    _outputs_agree(ours, theirs, make_input)


@pytest.mark.parametrize("name, make_ours, make_theirs, make_input", CASES, ids=IDS)
def test_descend_weights_in_torch_give_descend_outputs(name, make_ours, make_theirs, make_input):
    ours = _randomized_descend(make_ours())
    theirs = make_theirs().eval()
    theirs.load_state_dict(_torch_state(to_torch(ours)))  # strict: every key torch has, and no other
    _outputs_agree(ours, theirs, make_input)


@pytest.mark.parametrize("name, make_ours, make_theirs, make_input", CASES, ids=IDS)
def test_a_round_trip_gives_back_the_same_bits(name, make_ours, make_theirs, make_input):
    theirs = _randomized_torch(make_theirs())
    state = {key: value.numpy() for key, value in theirs.state_dict().items()}
    back = to_torch(from_torch(make_ours(), theirs.state_dict()), like=theirs.state_dict())
    assert list(back) == list(state)
    for key, value in state.items():
        assert back[key].dtype == value.dtype and back[key].shape == value.shape, key
        assert back[key].tobytes() == value.tobytes(), key

    ours = _randomized_descend(make_ours())
    again = from_torch(make_ours(), to_torch(ours)).state_dict()
    for key, value in ours.state_dict().items():
        assert again[key].dtype == value.dtype and again[key].tobytes() == value.tobytes(), key


def test_to_torch_copies_and_counts_no_batches_without_like():
    ours = _randomized_descend(nn.Sequential(nn.Linear(3, 4, rng=0), nn.BatchNorm1d(4)))
    arrays = to_torch(ours)
    assert list(arrays) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                            "1.num_batches_tracked"]
    assert arrays["1.num_batches_tracked"].dtype == np.int64 and arrays["1.num_batches_tracked"].shape == ()
    assert arrays["1.num_batches_tracked"] == 0
    before = ours.layers[0].weight.data.copy()
    arrays["0.weight"][...] = 0
    arrays["1.running_mean"][...] = 0
    np.testing.assert_array_equal(ours.layers[0].weight.data, before)
    assert not np.any(ours.layers[1].running_mean == 0)


def test_from_torch_ignores_the_batch_count_and_takes_a_state_without_it():
    theirs = _randomized_torch(torch.nn.BatchNorm1d(3))
    state = {key: value for key, value in theirs.state_dict().items() if key != "num_batches_tracked"}
    ours = from_torch(nn.BatchNorm1d(3), state)
    np.testing.assert_array_equal(ours.running_var, theirs.running_var.numpy())


def test_from_torch_copies_into_the_models_dtype_and_shares_nothing_with_torch():
    wide = from_torch(nn.BatchNorm1d(3), _randomized_torch(torch.nn.BatchNorm1d(3)).double().state_dict())
    assert wide.running_mean.dtype == np.float32 and wide.weight.dtype == np.float32

    theirs = _randomized_torch(torch.nn.BatchNorm1d(3))
    ours = from_torch(nn.BatchNorm1d(3), theirs.state_dict())
    expected = theirs.running_mean.numpy().copy()
    with torch.no_grad():
        theirs.running_mean.add_(1.0)  # torch trains on: descend's copy must not move with it
    np.testing.assert_array_equal(ours.running_mean, expected)


def test_a_state_of_descend_tensors_or_lists_is_read_too():
    ours = from_torch(nn.Linear(2, 3, rng=0), {"weight": dc.tensor(np.arange(6.0).reshape(3, 2)), "bias": [1, 2, 3]})
    np.testing.assert_array_equal(ours.weight.data, np.arange(6.0).reshape(3, 2).T)
    np.testing.assert_array_equal(ours.bias.data, [1, 2, 3])


def test_an_mlp_fills_a_torch_sequential_through_like():
    ours = _randomized_descend(nn.MLP([4, 6, 6, 3], activation="tanh", rng=0))
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 6), torch.nn.Tanh(),
                                 torch.nn.Linear(6, 3))
    assert list(to_torch(ours))[:2] == ["network.0.weight", "network.0.bias"]  # the MLP's own names
    theirs.load_state_dict(_torch_state(to_torch(ours, like=theirs.state_dict())))
    _outputs_agree(ours, theirs, _image((5, 4)))


def test_names_pair_layers_that_torch_declares_in_another_order():
    theirs = _randomized_torch(TorchCharRNN(7, 5, 5))
    names = {"embedding": "embed", "recurrent": "lstm", "head": "fc"}
    ours = from_torch(nn.CharRNN(7, embed=5, hidden=5, rng=0), theirs.state_dict(), names=names).eval()
    _outputs_agree(ours, theirs, _ids)

    twin = TorchCharRNN(7, 5, 5).eval()
    twin.load_state_dict(_torch_state(to_torch(_randomized_descend(ours), names=names)))
    _outputs_agree(ours, twin, _ids)


def test_a_torch_mlp_trained_a_few_steps_predicts_the_same_in_descend():
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16), torch.nn.ReLU(),
                                 torch.nn.Linear(16, 3))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5)
    optimizer = torch.optim.SGD(theirs.parameters(), lr=0.1)
    for _ in range(20):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(theirs(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        optimizer.step()

    ours = from_torch(nn.MLP([4, 16, 16, 3], rng=0), theirs.state_dict())
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(dc.predict(ours, x), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(dc.predict(ours, x).argmax(axis=1), expected.argmax(axis=1))


def test_every_twin_is_a_descend_layer_with_weights_torch_has_too():
    assert sorted(cls.__name__ for cls in TWINS) == sorted(
        ["Linear", "Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d", "Embedding", "BatchNorm1d", "BatchNorm2d", "RNN", "GRU", "LSTM", "RNNCell",
         "GRUCell", "LSTMCell"])
    assert all(hasattr(torch.nn, cls.__name__) for cls in TWINS)


def test_descend_does_not_import_torch():
    code = "import sys, descend.interop; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def _tied():
    encoder = nn.Linear(4, 2, rng=0)
    return nn.Sequential(encoder, nn.TiedLinear(encoder))


def _linear_state(*shape, bias=True):
    state = {"weight": np.zeros(shape, dtype=np.float32)}
    return {**state, "bias": np.zeros(shape[0], dtype=np.float32)} if bias else state


def _two_linears():
    return nn.Sequential(nn.Linear(4, 3, rng=0), nn.Linear(3, 2, rng=0))


def _two_linears_state():
    return {"0.weight": np.zeros((3, 4)), "0.bias": np.zeros(3), "1.weight": np.zeros((2, 3)), "1.bias": np.zeros(2)}


MAPS = ("BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d, Embedding, GRU, GRUCell, LSTM, "
        "LSTMCell, Linear, RNN, RNNCell")


@pytest.mark.parametrize("call, error, message", [
    (lambda: from_torch(object(), {}), DescendTypeError, "model must be a descend Module; got object"),
    (lambda: from_torch(nn.Linear(4, 3, rng=0), [1]), DescendTypeError,
     "state_dict must be a mapping of torch keys to tensors or arrays (torch_model.state_dict()); got list"),
    (lambda: to_torch(nn.Linear(4, 3, rng=0), like=[1]), DescendTypeError,
     "like must be a mapping of torch keys to tensors or arrays (torch_model.state_dict()); got list"),
    (lambda: from_torch(nn.Linear(4, 3, rng=0), {0: np.zeros(3)}), DescendTypeError,
     "state_dict keys must be strings such as '0.weight'; got int 0"),
    (lambda: from_torch(_tied(), {}), DescendTypeError,
     "descend parameter 'layers.1.bias' belongs to TiedLinear(2 -> 4, tied to Linear(4 -> 2)), which has no "
     f"PyTorch twin; the layers that map are {MAPS}"),
    (lambda: to_torch(_tied()), DescendTypeError,
     "descend parameter 'layers.1.bias' belongs to TiedLinear(2 -> 4, tied to Linear(4 -> 2)), which has no "
     f"PyTorch twin; the layers that map are {MAPS}"),
    (lambda: from_torch(nn.Linear(4, 3, rng=0), _two_linears_state()), DescendValueError,
     "torch key '1.weight' has no descend layer to go to: state_dict holds 2 modules with weights ('0', '1'), "
     "the descend model 1 (''); pass names={descend layer: torch prefix} to pair them by hand"),
    (lambda: from_torch(_two_linears(), _linear_state(3, 4)), DescendValueError,
     "descend parameter 'layers.1.weight' (Linear(3 -> 2)) has no torch module to pair with: state_dict holds 1 "
     "modules with weights (''), the descend model 2 ('layers.0', 'layers.1'); pass names={descend layer: torch "
     "prefix} to pair them by hand"),
    (lambda: from_torch(nn.LSTM(4, 5, rng=0), torch.nn.LSTM(4, 5, proj_size=3).state_dict()), DescendValueError,
     "torch key 'weight_hr_l0' in state_dict has no place in descend's LSTM(4 -> 5, layers=1), which holds "
     "weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0"),
    (lambda: from_torch(_two_linears(), {**_two_linears_state(), "1.scale": np.ones(2)}), DescendValueError,
     "torch key '1.scale' in state_dict has no place in descend's Linear(3 -> 2) at 'layers.1', which holds "
     "weight, bias"),
    (lambda: from_torch(nn.Linear(4, 3, rng=0), _linear_state(3, 4, bias=False)), DescendValueError,
     "descend parameter 'bias' (Linear(4 -> 3)) has no value: state_dict has no key 'bias'"),
    (lambda: to_torch(nn.Linear(4, 3, rng=0), like=_linear_state(3, 4, bias=False)), DescendValueError,
     "descend parameter 'bias' (Linear(4 -> 3)) has no value: like has no key 'bias'"),
    (lambda: from_torch(nn.Linear(4, 3, rng=0), _linear_state(4, 3)), ShapeError,
     "torch key 'weight' in state_dict has shape (4, 3); descend parameter 'weight' (Linear(4 -> 3)) needs (3, 4) "
     "in PyTorch's layout, stored here transposed as (4, 3)"),
    (lambda: from_torch(nn.Linear(5, 5, rng=0), _linear_state(4, 4)), ShapeError,
     "torch key 'weight' in state_dict has shape (4, 4); descend parameter 'weight' (Linear(5 -> 5)) needs (5, 5) "
     "in PyTorch's layout, stored here transposed as (5, 5)"),
    (lambda: from_torch(nn.Conv1d(3, 5, 3, rng=0), torch.nn.Conv1d(3, 5, 2).state_dict()), ShapeError,
     "torch key 'weight' in state_dict has shape (5, 3, 2); descend parameter 'weight' (Conv1d(3 -> 5, "
     "kernel_size=3)) needs (5, 3, 3) in PyTorch's layout"),
    (lambda: to_torch(nn.Linear(4, 3, rng=0), like=_linear_state(4, 3)), ShapeError,
     "torch key 'weight' in like has shape (4, 3); descend parameter 'weight' (Linear(4 -> 3)) needs (3, 4) "
     "in PyTorch's layout, stored here transposed as (4, 3)"),
    (lambda: from_torch(nn.CharRNN(7, embed=5, hidden=5, rng=0), TorchCharRNN(7, 5, 5).state_dict()),
     DescendValueError,
     "torch key 'fc.bias' in state_dict has no place in descend's Embedding(7, 5) at 'embedding', which holds "
     "weight"),
    (lambda: from_torch(nn.Linear(4, 3, rng=0), {"weight": np.full((3, 4), "a"), "bias": np.zeros(3)}),
     DescendTypeError,
     "torch key 'weight' in state_dict holds ndarray of dtype <U1; expected real numbers, as a tensor or an array"),
    (lambda: from_torch(_two_linears(), _two_linears_state(), names={"layers.0": "0"}), DescendValueError,
     "names gives no torch prefix for descend layer 'layers.1'; it must name each of ['layers.0', 'layers.1']"),
    (lambda: from_torch(_two_linears(), _two_linears_state(), names={"0": "0", "1": "1"}), DescendValueError,
     "names: '0' is not a descend layer with weights; those are ['layers.0', 'layers.1']"),
    (lambda: from_torch(_two_linears(), _two_linears_state(), names={"layers.0": "0", "layers.1": "0"}),
     DescendValueError,
     "names gives the torch prefix '0' to more than one descend layer, 'layers.0' first"),
    (lambda: from_torch(_two_linears(), _two_linears_state(), names={"layers.0": "0", "layers.1": "fc"}),
     DescendValueError,
     "names['layers.1'] is 'fc', but state_dict has no keys under that prefix; its prefixes are ['0', '1']"),
    (lambda: from_torch(nn.Linear(4, 3, rng=0), _two_linears_state(), names={"": "0"}), DescendValueError,
     "torch key '1.weight' has no descend layer: names pairs none with '1'"),
    (lambda: from_torch(_two_linears(), _two_linears_state(), names=[("layers.0", "0")]), DescendTypeError,
     "names must be a dict {descend layer: torch prefix}; got list"),
    (lambda: to_torch(_two_linears(), names={"layers.0": "0", "layers.1": 1}), DescendTypeError,
     "names['layers.1'] must be a torch prefix string; got int 1"),
], ids=lambda value: value[:60] if isinstance(value, str) else "")
def test_what_does_not_fit_is_refused_by_name(call, error, message):
    with pytest.raises(error) as raised:
        call()
    assert str(raised.value) == message


def test_a_refused_state_writes_nothing():
    ours = _two_linears()
    before = ours.state_dict()
    state = {**_two_linears_state(), "1.weight": np.zeros((3, 3))}  # the first layer fits, the second does not
    with pytest.raises(ShapeError):
        from_torch(ours, state)
    for key, value in ours.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


def test_the_state_dict_methods_take_pytorchs_layout_too():
    lstm = torch.nn.LSTM(5, 5, num_layers=2)
    ours = nn.LSTM(5, 5, num_layers=2)
    ours.load_state_dict(lstm.state_dict(), layout="torch")
    back = ours.state_dict(layout="torch")
    assert list(back) == list(lstm.state_dict())
    for name, value in lstm.state_dict().items():
        assert back[name].tobytes() == value.numpy().tobytes(), name
    with pytest.raises(DescendValueError, match="layout must be 'descend' or 'torch'; got 'keras'"):
        ours.state_dict(layout="keras")

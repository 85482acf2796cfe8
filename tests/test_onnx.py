"""ONNX export: onnxruntime runs each exported model kind and gives descend's own eval-mode outputs (max abs
difference below 1e-5 in float32) on a batch of another size; bad input gets errors that name it; nothing is
written half."""

import os
import subprocess
import sys

import numpy as np
import pytest

import descend as dc
from descend import nn
from descend.errors import DescendError, DescendTypeError, ShapeError

from helpers import skip_outside_ci

try:
    import onnx
    import onnxruntime
except ImportError:
    onnx = onnxruntime = None

TOLERANCE = 1e-5


@pytest.fixture(autouse=True)
def needs_onnx():
    # skip_outside_ci inside a fixture: pytest refuses a plain skip at module level
    if onnxruntime is None:
        skip_outside_ci("onnx and onnxruntime are not installed (pip install 'descend[onnx]')")


def with_statistics(model, seed=1):
    """Give every batch norm layer running statistics, a scale and a shift that are not the identity."""
    rng = np.random.default_rng(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            size = module.num_features
            module.running_mean = rng.normal(0, 0.5, size).astype(np.float32)
            module.running_var = rng.uniform(0.5, 2.0, size).astype(np.float32)
            module.weight.data[...] = rng.uniform(0.5, 1.5, size)
            module.bias.data[...] = rng.normal(0, 0.5, size)
    return model


def layer_zoo_cnn():
    """Every image layer with settings off their defaults: (N, 2, 13, 13) -> (N, 3)."""
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, stride=2, padding=1, rng=0), nn.BatchNorm2d(4), nn.ELU(0.5),        # 13 -> 7
        nn.MaxPool2d(3, stride=1, padding=1), nn.AvgPool2d(2, padding=1),                     # 7 -> 7 -> 4
        nn.Conv2d(4, 4, 3, padding=2, dilation=2, groups=2, bias=False, rng=1),                # 4 -> 4
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 8, rng=2), nn.BatchNorm1d(8),     # -> 16 -> 8
        nn.LeakyReLU(0.2), nn.Maxout(8, 3, pieces=2, rng=3), nn.Softmax(),
    )


def floats(*shape):
    return lambda rng: rng.standard_normal(shape).astype(np.float32)


def ids(vocabulary, *shape):
    return lambda rng: rng.integers(0, vocabulary, shape)


# name: (model, example input, input to run: another batch size, and another length for sequences)
MODELS = {
    "mlp-relu-dropout": (lambda: nn.MLP([6, 8, 8, 3], dropout=0.3, input_dropout=0.1, rng=0), floats(2, 6),
                         floats(5, 6)),
    "mlp-tanh": (lambda: nn.MLP([6, 8, 3], activation="tanh", rng=0), floats(2, 6), floats(5, 6)),
    "mlp-sigmoid": (lambda: nn.MLP([6, 8, 3], activation="sigmoid", rng=0), floats(2, 6), floats(5, 6)),
    "mlp-leaky_relu": (lambda: nn.MLP([6, 8, 3], activation="leaky_relu", rng=0), floats(2, 6), floats(5, 6)),
    "mlp-elu": (lambda: nn.MLP([6, 8, 3], activation="elu", rng=0), floats(2, 6), floats(5, 6)),
    "logistic-regression": (lambda: nn.LogisticRegression(6, 4, rng=0), floats(2, 6), floats(5, 6)),
    "linear-regression": (lambda: nn.LinearRegression(6, rng=0), floats(2, 6), floats(5, 6)),
    "simple-cnn-batch-norm": (
        lambda: with_statistics(nn.SimpleCNN(5, channels=(4, 6), hidden=12, batch_norm=True, image_size=8, rng=0)),
        floats(2, 1, 8, 8), floats(3, 1, 8, 8),
    ),
    "lenet5": (lambda: nn.LeNet5(rng=0), floats(2, 1, 28, 28), floats(3, 1, 28, 28)),
    "image-layers": (lambda: with_statistics(layer_zoo_cnn()), floats(2, 2, 13, 13), floats(3, 2, 13, 13)),
    "conv1d": (
        lambda: with_statistics(nn.Sequential(nn.Conv1d(3, 4, 3, stride=2, padding=1, rng=0), nn.BatchNorm1d(4),
                                              nn.ReLU(), nn.Flatten(), nn.Linear(16, 2, rng=1))),
        floats(2, 3, 8), floats(5, 3, 8),
    ),
    "transposed-convolutions-and-upsampling": (
        lambda: nn.Sequential(
            nn.Conv2d(2, 4, 3, stride=2, padding=1, rng=0), nn.ReLU(),                                 # 8 -> 4
            nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1, rng=1),                 # 4 -> 8
            nn.Conv2d(4, 2, (4, 2), padding="same", dilation=(1, 3), rng=2),                           # 8 -> 8
            nn.Upsample(scale_factor=(2, 3), mode="bilinear"),                                         # -> 16 x 24
            nn.ConvTranspose2d(2, 4, 3, padding=1, output_padding=2, dilation=3, groups=2, rng=3),     # -> 22 x 30
            nn.Upsample(size=(9, 31)), nn.Upsample(size=(10, 7), mode="bilinear", align_corners=True),
        ),
        floats(2, 2, 8, 8), floats(3, 2, 8, 8),
    ),
    "conv1d-autoencoder": (
        lambda: nn.Sequential(
            nn.Conv1d(1, 4, 7, stride=2, padding=3, rng=0), nn.ReLU(),                                 # 16 -> 8
            nn.ConvTranspose1d(4, 2, 7, stride=2, padding=3, output_padding=1, rng=1),                 # 8 -> 16
            nn.Upsample(scale_factor=2), nn.Upsample(size=40, mode="linear"),                          # -> 32 -> 40
            nn.Conv1d(2, 1, 4, padding="same", rng=2), nn.Conv1d(1, 1, 3, padding="valid", rng=3),     # -> 40 -> 38
            nn.ConvTranspose1d(1, 1, 3, padding=2, output_padding=1, dilation=2, rng=4),              # -> 39
        ),
        floats(2, 1, 16), floats(5, 1, 16),
    ),
    "embedding-head": (
        lambda: nn.Sequential(nn.Embedding(10, 4, rng=0), nn.Flatten(), nn.Linear(12, 2, rng=1)),
        ids(10, 2, 3), ids(10, 5, 3),
    ),
    "lstm-2-layers-bidirectional": (lambda: nn.LSTM(3, 4, num_layers=2, bidirectional=True, dropout=0.2, rng=0),
                                    floats(5, 2, 3), floats(7, 3, 3)),
    "lstm-batch-first": (lambda: nn.LSTM(3, 4, batch_first=True, rng=0), floats(2, 5, 3), floats(3, 7, 3)),
    "gru-2-layers-bidirectional-batch-first": (
        lambda: nn.GRU(3, 4, num_layers=2, bidirectional=True, batch_first=True, rng=0),
        floats(2, 5, 3), floats(3, 7, 3),
    ),
    "gru-no-bias": (lambda: nn.GRU(3, 4, bias=False, rng=0), floats(5, 2, 3), floats(7, 3, 3)),
    "rnn-tanh-bidirectional": (lambda: nn.RNN(3, 4, bidirectional=True, rng=0), floats(5, 2, 3), floats(7, 3, 3)),
    "rnn-relu-2-layers": (lambda: nn.RNN(3, 4, num_layers=2, nonlinearity="relu", rng=0), floats(5, 2, 3),
                          floats(7, 3, 3)),
    "char-rnn-lstm": (lambda: nn.CharRNN(9, embed=4, hidden=6, layers=2, rng=0), ids(9, 2, 5), ids(9, 3, 7)),
    "char-rnn-gru": (lambda: nn.CharRNN(9, embed=4, hidden=6, cell="gru", rng=0), ids(9, 2, 5), ids(9, 3, 7)),
    "char-rnn-rnn": (lambda: nn.CharRNN(9, embed=4, hidden=6, cell="rnn", rng=0), ids(9, 2, 5), ids(9, 3, 7)),
    "autoencoder": (lambda: nn.Autoencoder([6, 4, 2], activation="tanh", rng=0), floats(2, 6), floats(5, 6)),
    "autoencoder-tied-linear-output": (lambda: nn.Autoencoder([6, 4, 2], output="linear", tied=True, rng=0),
                                       floats(2, 6), floats(5, 6)),
    "denoising-autoencoder": (lambda: nn.DenoisingAutoencoder([6, 4, 2], noise=0.3, dropout=0.2, rng=0),
                              floats(2, 6), floats(5, 6)),
    "sparse-autoencoder": (lambda: nn.SparseAutoencoder([6, 4, 2], sparsity=0.1, rng=0), floats(2, 6), floats(5, 6)),
    "conv-autoencoder": (lambda: nn.ConvAutoencoder(1, (2, 3), rng=0), floats(2, 1, 8, 8), floats(3, 1, 8, 8)),
    "variational-autoencoder": (lambda: nn.VariationalAutoencoder([6, 5, 2], rng=0), floats(2, 6), floats(5, 6)),
}


def descend_outputs(model, x):
    """The model's eval-mode outputs as a flat list: [output] or [output, h_n] or [output, h_n, c_n]."""
    model.eval()
    with dc.no_grad():
        out = model(x if x.dtype.kind in "iu" else dc.Tensor(x))
    flat = []
    for part in out if isinstance(out, tuple) else (out,):
        flat.extend(part if isinstance(part, tuple) else (part,))
    return [part.data for part in flat]


def onnx_outputs(path, x):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})


def max_differences(name, folder):
    """Export the model named in MODELS and return the max abs difference of each output from descend's."""
    build, example, sample = MODELS[name]
    rng = np.random.default_rng(0)
    model = build()
    path = dc.onnx.export(model, folder / f"{name}.onnx", example(rng))
    x = sample(rng)
    expected, got = descend_outputs(model, x), onnx_outputs(path, x)
    assert [g.shape for g in got] == [e.shape for e in expected]
    return [float(np.abs(g - e).max()) for g, e in zip(got, expected)]


@pytest.mark.parametrize("name", MODELS)
def test_onnxruntime_gives_descends_outputs(name, tmp_path):
    differences = max_differences(name, tmp_path)
    assert max(differences) < TOLERANCE, f"{name}: max abs differences {differences}"


def test_graph_names_its_axes_and_keeps_descends_weight_names(tmp_path):
    path = dc.onnx.export(nn.LSTM(3, 4, batch_first=True, rng=0), tmp_path / "lstm.onnx", np.zeros((2, 5, 3)))
    graph = onnx.load(path).graph
    dims = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in (*graph.input, *graph.output)]
    assert dims == [["N", "T", 3], ["N", "T", 4], [1, "N", 4], [1, "N", 4]]
    assert [v.name for v in graph.output] == ["output", "h_n", "c_n"]
    mlp = onnx.load(dc.onnx.export(nn.MLP([3, 4, 2], rng=0), tmp_path / "mlp.onnx", np.zeros((1, 3)))).graph
    assert {t.name for t in mlp.initializer} == {name for name, _ in nn.MLP([3, 4, 2]).named_parameters()}
    assert onnx.load(path).opset_import[0].version == dc.onnx.OPSET


def test_tied_weight_is_stored_once(tmp_path):
    path = dc.onnx.export(nn.Autoencoder([6, 4, 2], tied=True, rng=0), tmp_path / "tied.onnx", np.zeros((1, 6)))
    assert sum(t.name.endswith("weight") for t in onnx.load(path).graph.initializer) == 2


def test_export_leaves_the_model_as_it_was(tmp_path):
    model = with_statistics(nn.SimpleCNN(3, channels=(2,), hidden=4, batch_norm=True, image_size=4, rng=0)).train()
    before = {name: value.copy() for name, value in model.state_dict().items()}
    dc.onnx.export(model, tmp_path / "cnn.onnx", np.ones((2, 1, 4, 4)))
    assert all(module.training for module in model.modules())
    assert all(np.array_equal(before[name], value) for name, value in model.state_dict().items())


def test_import_descend_does_not_import_onnx():
    code = "import sys, descend; assert descend.onnx.export; print('onnx' in sys.modules, 'onnxruntime' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]


class Doubler(nn.Module):
    def forward(self, x):
        return x * 2


# (model, example input, path, expected error, words its message must contain)
BAD_INPUT = {
    "custom layer": (lambda: nn.Sequential(nn.Linear(3, 2), Doubler()), np.zeros((2, 3)), "m.onnx",
                     DescendTypeError, ["Doubler", "supported", "Linear", "Conv2d", "LSTM"]),
    "cell": (lambda: nn.LSTMCell(3, 2), np.zeros((2, 3)), "m.onnx", DescendTypeError, ["LSTMCell", "supported: "]),
    "recurrent layer in a Sequential": (lambda: nn.Sequential(nn.GRU(3, 2)), np.zeros((4, 2, 3)), "m.onnx",
                                        DescendTypeError, ["GRU", "inside", "CharRNN"]),
    "features": (lambda: nn.MLP([4, 3]), np.zeros((2, 5)), "m.onnx", ShapeError,
                 ["example_input", "(2, 5)", "expected (N, 4)"]),
    "flat images": (lambda: nn.LeNet5(), np.zeros((2, 784)), "m.onnx", ShapeError,
                    ["example_input", "(2, 784)", "expected (N, 1, H, W)"]),
    "sequence features": (lambda: nn.LSTM(3, 4), np.zeros((5, 2, 6)), "m.onnx", ShapeError,
                          ["example_input", "(5, 2, 6)", "expected (T, N, 3)"]),
    "float ids": (lambda: nn.CharRNN(5, embed=2, hidden=3), np.zeros((2, 4)), "m.onnx", DescendTypeError,
                  ["example_input", "integer", "float64"]),
    "scalar": (lambda: nn.MLP([4, 3]), np.float32(1.0), "m.onnx", ShapeError, ["example_input", "batch axis", "()"]),
    "empty batch": (lambda: nn.MLP([4, 3]), np.zeros((0, 4)), "m.onnx", ShapeError, ["example_input", "(0, 4)"]),
    "text": (lambda: nn.MLP([4, 3]), np.array([["a"] * 4]), "m.onnx", DescendTypeError, ["example_input", "numeric"]),
    "path": (lambda: nn.MLP([4, 3]), np.zeros((2, 4)), 3, DescendTypeError, ["path", "int 3"]),
    "model": (lambda: [nn.Linear(4, 3)], np.zeros((2, 4)), "m.onnx", DescendTypeError, ["model", "Module", "list"]),
}


@pytest.mark.parametrize("name", BAD_INPUT)
def test_bad_input_gets_an_error_naming_it_and_writes_nothing(name, tmp_path):
    build, example, path, error, words = BAD_INPUT[name]
    with pytest.raises(error) as caught:
        dc.onnx.export(build(), tmp_path / path if isinstance(path, str) else path, example)
    assert isinstance(caught.value, DescendError)
    for word in words:
        assert word in str(caught.value), f"{word!r} not in {caught.value}"
    assert list(tmp_path.iterdir()) == []


def test_a_failed_export_keeps_the_old_file(tmp_path):
    path = tmp_path / "model.onnx"
    dc.onnx.export(nn.MLP([4, 3], rng=0), path, np.zeros((2, 4)))
    before = path.read_bytes()
    with pytest.raises(ShapeError):
        dc.onnx.export(nn.MLP([5, 3], rng=0), path, np.zeros((2, 4)))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.onnx"]


def test_a_failed_write_leaves_no_file(tmp_path, monkeypatch):
    def full_disk(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space"):
        dc.onnx.export(nn.MLP([4, 3], rng=0), tmp_path / "model.onnx", np.zeros((2, 4)))
    assert list(tmp_path.iterdir()) == []

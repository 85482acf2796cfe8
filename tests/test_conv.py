"""Convolutional layers: shapes, parameter counts, rebuild, PyTorch parity with copied weights, bad input."""

import numpy as np
import pytest

import descend as dc
from descend import nn
from descend.errors import DescendValueError, ShapeError

try:
    import torch
except ImportError:  # the parity tests skip themselves
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed (it is the oracle)")

# descend layer maker, PyTorch twin maker, input shape, output shape, parameter count
LAYERS = [
    (lambda: nn.Conv2d(3, 4, 3, rng=0), lambda: torch.nn.Conv2d(3, 4, 3), (2, 3, 6, 5), (2, 4, 4, 3), 112),
    (lambda: nn.Conv2d(4, 6, (3, 2), stride=2, padding=1, dilation=(1, 2), groups=2, rng=0),
     lambda: torch.nn.Conv2d(4, 6, (3, 2), stride=2, padding=1, dilation=(1, 2), groups=2), (2, 4, 7, 8), (2, 6, 4, 4), 78),
    (lambda: nn.Conv2d(3, 2, 1, bias=False, rng=0), lambda: torch.nn.Conv2d(3, 2, 1, bias=False), (1, 3, 4, 4), (1, 2, 4, 4), 6),
    (lambda: nn.Conv1d(3, 5, 3, stride=2, padding=1, rng=0), lambda: torch.nn.Conv1d(3, 5, 3, stride=2, padding=1),
     (2, 3, 9), (2, 5, 5), 50),
    (lambda: nn.Conv2d(3, 4, (4, 2), padding="same", dilation=(1, 3), rng=0),
     lambda: torch.nn.Conv2d(3, 4, (4, 2), padding="same", dilation=(1, 3)), (2, 3, 7, 6), (2, 4, 7, 6), 100),
    (lambda: nn.Conv2d(2, 3, 3, padding="valid", rng=0), lambda: torch.nn.Conv2d(2, 3, 3, padding="valid"),
     (2, 2, 5, 5), (2, 3, 3, 3), 57),
    (lambda: nn.Conv1d(2, 3, 6, padding="same", dilation=2, rng=0),
     lambda: torch.nn.Conv1d(2, 3, 6, padding="same", dilation=2), (2, 2, 11), (2, 3, 11), 39),
    (lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, rng=0),
     lambda: torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1),
     (2, 4, 5, 6), (2, 6, 10, 12), 222),
    (lambda: nn.ConvTranspose2d(4, 6, (3, 2), stride=(2, 3), padding=(1, 0), output_padding=(0, 2), groups=2,
                                bias=False, dilation=(2, 1), rng=0),
     lambda: torch.nn.ConvTranspose2d(4, 6, (3, 2), stride=(2, 3), padding=(1, 0), output_padding=(0, 2), groups=2,
                                      bias=False, dilation=(2, 1)), (2, 4, 5, 4), (2, 6, 11, 13), 72),
    (lambda: nn.ConvTranspose2d(3, 2, 3, padding=1, output_padding=2, dilation=3, rng=0),  # output_padding >= stride
     lambda: torch.nn.ConvTranspose2d(3, 2, 3, padding=1, output_padding=2, dilation=3),
     (1, 3, 4, 4), (1, 2, 10, 10), 56),
    (lambda: nn.ConvTranspose1d(3, 5, 7, stride=2, padding=3, output_padding=1, rng=0),
     lambda: torch.nn.ConvTranspose1d(3, 5, 7, stride=2, padding=3, output_padding=1), (2, 3, 8), (2, 5, 16), 110),
    (lambda: nn.ConvTranspose1d(4, 2, 3, groups=2, bias=False, dilation=2, rng=0),
     lambda: torch.nn.ConvTranspose1d(4, 2, 3, groups=2, bias=False, dilation=2), (2, 4, 6), (2, 2, 10), 12),
    (lambda: nn.Upsample(2), lambda: torch.nn.Upsample(scale_factor=2), (2, 3, 4, 5), (2, 3, 8, 10), 0),
    (lambda: nn.Upsample(size=11), lambda: torch.nn.Upsample(size=11), (2, 3, 4), (2, 3, 11), 0),
    (lambda: nn.Upsample(scale_factor=3, mode="linear"), lambda: torch.nn.Upsample(scale_factor=3, mode="linear"),
     (2, 3, 4), (2, 3, 12), 0),
    (lambda: nn.Upsample(scale_factor=(2, 3), mode="bilinear"),
     lambda: torch.nn.Upsample(scale_factor=(2, 3), mode="bilinear"), (2, 2, 3, 4), (2, 2, 6, 12), 0),
    (lambda: nn.Upsample(size=(5, 7), mode="bilinear", align_corners=True),
     lambda: torch.nn.Upsample(size=(5, 7), mode="bilinear", align_corners=True), (2, 2, 3, 4), (2, 2, 5, 7), 0),
    (lambda: nn.MaxPool2d(2), lambda: torch.nn.MaxPool2d(2), (2, 3, 6, 4), (2, 3, 3, 2), 0),
    (lambda: nn.MaxPool2d(3, stride=2, padding=1), lambda: torch.nn.MaxPool2d(3, stride=2, padding=1), (2, 2, 7, 7), (2, 2, 4, 4), 0),
    (lambda: nn.AvgPool2d(2), lambda: torch.nn.AvgPool2d(2), (2, 3, 6, 4), (2, 3, 3, 2), 0),
    (lambda: nn.AdaptiveAvgPool2d(1), lambda: torch.nn.AdaptiveAvgPool2d(1), (2, 3, 6, 4), (2, 3, 1, 1), 0),
    (lambda: nn.BatchNorm2d(3), lambda: torch.nn.BatchNorm2d(3), (4, 3, 5, 5), (4, 3, 5, 5), 6),
    (lambda: nn.BatchNorm1d(5), lambda: torch.nn.BatchNorm1d(5), (8, 5), (8, 5), 10),
    (lambda: nn.BatchNorm1d(3), lambda: torch.nn.BatchNorm1d(3), (4, 3, 6), (4, 3, 6), 6),
    (lambda: nn.SimpleCNN(rng=0), None, (2, 1, 28, 28), (2, 10), 421642),
    (lambda: nn.SimpleCNN(channels=(8, 16), hidden=32, batch_norm=True, rng=0), None, (2, 1, 28, 28), (2, 10), 26746),
    (lambda: nn.LeNet5(rng=0), None, (2, 1, 28, 28), (2, 10), 61706),
]
IDS = [f"{i}-{type(make()).__name__}" for i, (make, *_) in enumerate(LAYERS)]


@pytest.mark.parametrize("make, twin, in_shape, out_shape, count", LAYERS, ids=IDS)
def test_shape_count_and_rebuild(make, twin, in_shape, out_shape, count):
    layer = make()
    x = dc.tensor(np.random.default_rng(0).random(in_shape, dtype=np.float32))
    assert layer(x).shape == out_shape and layer.parameter_count() == count
    copy = nn.build_module(nn.module_spec(layer))
    copy.load_state_dict(layer.state_dict())
    np.testing.assert_array_equal(copy.eval()(x).data, layer.eval()(x).data)


def _copy_into_torch(ours, theirs):
    with torch.no_grad():
        for name, parameter in ours.named_parameters():
            getattr(theirs, name).copy_(torch.from_numpy(parameter.data))


@needs_torch
@pytest.mark.parametrize("make, twin, in_shape, out_shape, count", [r for r in LAYERS if r[1] is not None],
                         ids=[i for i, r in zip(IDS, LAYERS) if r[1] is not None])
def test_matches_torch_with_copied_weights(make, twin, in_shape, out_shape, count):
    ours, theirs = make().astype(np.float64), twin().double()
    _copy_into_torch(ours, theirs)
    rng = np.random.default_rng(1)
    for step in range(3):  # several training steps, so batch norm's running statistics are compared too
        x = rng.normal(size=in_shape)
        upstream = rng.normal(size=out_shape)
        ours.zero_grad() if count else None
        xt = dc.tensor(x, requires_grad=True, dtype=np.float64)
        out = ours(xt)
        out.backward(upstream)
        xtorch = torch.from_numpy(x).requires_grad_()
        theirs.zero_grad()
        out_torch = theirs(xtorch)
        out_torch.backward(torch.from_numpy(upstream))
        np.testing.assert_allclose(out.data, out_torch.detach().numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(xt.grad, xtorch.grad.numpy(), rtol=1e-9, atol=1e-12)
        for name, parameter in ours.named_parameters():
            np.testing.assert_allclose(parameter.grad, getattr(theirs, name).grad.numpy(), rtol=1e-9, atol=1e-12)
    for name in ours.state:
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name).numpy(), rtol=1e-12)
    ours.eval(), theirs.eval()
    x = rng.normal(size=in_shape)
    np.testing.assert_allclose(ours(dc.tensor(x, dtype=np.float64)).data, theirs(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-9, atol=1e-12)


@needs_torch
def test_simple_cnn_matches_torch_end_to_end():
    ours = nn.SimpleCNN(channels=(4, 8), hidden=16, dropout=0.0, batch_norm=True, rng=0).astype(np.float64)
    theirs = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(4, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(8 * 7 * 7, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10),
    ).double()
    with torch.no_grad():
        for (name, parameter), twin in zip(ours.named_parameters(), theirs.parameters()):
            values = parameter.data.T if name.endswith("weight") and parameter.ndim == 2 else parameter.data
            twin.copy_(torch.from_numpy(np.ascontiguousarray(values)))
    rng = np.random.default_rng(0)
    x, y = rng.random((5, 1, 28, 28)), rng.integers(0, 10, 5)
    loss = nn.CrossEntropyLoss()(ours(dc.tensor(x, dtype=np.float64)), y)
    loss.backward()
    torch_loss = torch.nn.functional.cross_entropy(theirs(torch.from_numpy(x)), torch.from_numpy(y))
    torch_loss.backward()
    assert loss.item() == pytest.approx(torch_loss.item(), rel=1e-10)
    first = ours.layers[0].weight.grad
    np.testing.assert_allclose(first, theirs[0].weight.grad.numpy(), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda: nn.Conv2d(1, 32, 3)(dc.tensor(np.zeros((128, 784)))), ShapeError,
         ["Conv2d(1 -> 32", "(128, 784)", "(N, 1, H, W)", "shape='images'"]),
        (lambda: nn.Conv2d(3, 8, 3)(dc.tensor(np.zeros((2, 1, 28, 28)))), ShapeError, ["(N, 3, H, W)", "(2, 1, 28, 28)"]),
        (lambda: nn.Conv2d(1, 8, 7)(dc.tensor(np.zeros((2, 1, 5, 5)))), ShapeError, ["kernel spans 7", "padded input is only 5"]),
        (lambda: nn.Conv2d(1, 8, 3, padding=-1), DescendValueError, ["padding", "-1"]),
        (lambda: nn.Conv2d(1, 8, 3, stride=0), DescendValueError, ["stride", "0"]),
        (lambda: nn.Conv2d(3, 8, 3, groups=2), ShapeError, ["groups 2"]),
        (lambda: nn.Conv1d(2, 4, 3)(dc.tensor(np.zeros((2, 2, 3, 3)))), ShapeError, ["(N, 2, L)", "(2, 2, 3, 3)"]),
        (lambda: nn.MaxPool2d(2, stride=0), DescendValueError, ["stride"]),
        (lambda: nn.MaxPool2d(2)(dc.tensor(np.zeros((2, 8)))), ShapeError, ["(N, C, H, W)", "(2, 8)"]),
        (lambda: nn.MaxPool2d(4)(dc.tensor(np.zeros((1, 1, 3, 3)))), ShapeError, ["kernel spans 4"]),
        (lambda: nn.AdaptiveAvgPool2d(3)(dc.tensor(np.zeros((1, 1, 4, 4)))), ShapeError, ["4x4", "3x3"]),
        (lambda: nn.BatchNorm2d(4)(dc.tensor(np.zeros((2, 3, 5, 5)))), ShapeError, ["(N, 4, H, W)", "(2, 3, 5, 5)"]),
        (lambda: nn.BatchNorm1d(4)(dc.tensor(np.zeros((1, 4)))), ShapeError, ["more than one value per channel"]),
    ],
)
def test_bad_input_names_the_layer_and_shapes(call, error, words):
    with pytest.raises(error) as raised:
        call()
    for word in words:
        assert word in str(raised.value)

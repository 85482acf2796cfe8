"""Transposed convolutions, upsampling and padding="same": what ties them to conv2d, PyTorch's starting weights,
model files, and bad input refused by name. (Parity with PyTorch: tests/test_conv.py's layer table and the op table.)"""

import numpy as np
import pytest

import descend as dc
from descend import nn
from descend.errors import DescendTypeError, DescendValueError, ShapeError

try:
    import torch
except ImportError:  # the comparison with PyTorch's starting weights skips itself
    torch = None


def ones(*shape):
    return dc.tensor(np.ones(shape, dtype=np.float32))


@pytest.mark.parametrize("options", [dict(), dict(stride=2, padding=1), dict(stride=(2, 3), dilation=2, groups=2)])
def test_a_transposed_convolution_is_the_gradient_of_the_convolution_it_undoes(options):
    rng = np.random.default_rng(0)
    x = dc.tensor(rng.normal(size=(2, 4, 9, 8)), requires_grad=True, dtype=np.float64)
    weight = rng.normal(size=(6, 4 // options.get("groups", 1), 3, 3))
    out = dc.ops.conv2d(x, weight, **options)
    upstream = rng.normal(size=out.shape)
    out.backward(upstream)
    # the sizes conv2d maps onto out.shape: output_padding picks the input's among them
    extra = [size - ((o - 1) * s - 2 * p + d * 2 + 1) for size, o, s, p, d in zip(
        x.shape[2:], out.shape[2:], np.broadcast_to(options.get("stride", 1), 2),
        np.broadcast_to(options.get("padding", 0), 2), np.broadcast_to(options.get("dilation", 1), 2))]
    back = dc.ops.conv_transpose2d(upstream, weight, output_padding=tuple(extra), **options)
    np.testing.assert_allclose(back.data, x.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed (it is the oracle)")
@pytest.mark.parametrize("make, twin", [
    (lambda: nn.ConvTranspose2d(6, 64, 3, groups=2, rng=0), lambda: torch.nn.ConvTranspose2d(6, 64, 3, groups=2)),
    (lambda: nn.ConvTranspose1d(2, 64, 5, rng=0), lambda: torch.nn.ConvTranspose1d(2, 64, 5)),
])
def test_transposed_layers_start_from_pytorchs_range(make, twin):
    torch.manual_seed(0)
    ours, theirs = make(), twin()
    # PyTorch's fan-in of a transposed weight (in, out / groups, k...) is out / groups · k: axis 1, not axis 0
    bound = 1 / np.sqrt(ours.weight.shape[1] * np.prod(ours.weight.shape[2:]))
    for mine, torch_values in ((ours.weight.data, theirs.weight), (ours.bias.data, theirs.bias)):
        assert 0.8 * bound < np.abs(mine).max() <= bound
        assert 0.8 * bound < torch_values.abs().max().item() <= bound


def test_model_files_that_name_upsample_in_its_old_module_still_load():
    spec = {"class": "descend.nn.autoencoders.Upsample", "config": {"scale_factor": 2}}
    layer = nn.build_module(spec)
    assert type(layer) is nn.Upsample and layer(ones(1, 1, 2, 3)).shape == (1, 1, 4, 6)
    assert nn.module_spec(nn.Upsample(2, mode="bilinear"))["class"] == "descend.nn.conv.Upsample"


def test_same_padding_keeps_the_size_and_valid_pads_nothing():
    x = ones(2, 3, 7, 6)
    for kernel in (1, 2, 3, 4, (5, 2)):
        for dilation in (1, 2, 3):
            assert nn.Conv2d(3, 4, kernel, padding="same", dilation=dilation, rng=0)(x).shape == (2, 4, 7, 6)
    assert nn.Conv1d(3, 4, 4, padding="same", rng=0)(ones(2, 3, 9)).shape == (2, 4, 9)
    valid = nn.Conv2d(3, 4, 3, padding="valid", rng=0)
    np.testing.assert_array_equal(valid(x).data, dc.ops.conv2d(x, valid.weight, valid.bias).data)


BAD_INPUT = [
    # transposed convolutions
    (lambda: nn.ConvTranspose2d(4, 2, 3, stride=2, output_padding=2), DescendValueError,
     ["ConvTranspose2d", "output_padding", "stride", "dilation", "(2, 2)"]),
    (lambda: nn.ConvTranspose1d(4, 2, 3, output_padding=1), DescendValueError,
     ["ConvTranspose1d", "output_padding=1", "stride=1", "dilation=1"]),
    (lambda: nn.ConvTranspose2d(3, 4, 3, groups=2), ShapeError, ["in_channels 3", "groups 2"]),
    (lambda: nn.ConvTranspose2d(4, 2, 3, padding=-1), DescendValueError, ["padding", "-1"]),
    (lambda: nn.ConvTranspose2d(4, 2, 3)(ones(2, 3, 5, 5)), ShapeError,
     ["ConvTranspose2d(4 -> 2", "(N, 4, H, W)", "(2, 3, 5, 5)"]),
    (lambda: nn.ConvTranspose1d(4, 2, 3)(ones(2, 4, 5, 5)), ShapeError, ["ConvTranspose1d(4 -> 2", "(N, 4, L)"]),
    (lambda: dc.ops.conv_transpose2d(ones(1, 2, 1, 1), ones(2, 1, 1, 1), padding=1), ShapeError,
     ["conv_transpose2d height", "less padding"]),
    (lambda: dc.ops.conv_transpose2d(ones(1, 3, 4, 4), ones(2, 1, 3, 3)), ShapeError,
     ["3 channels", "(3, O/groups, kh, kw)", "(2, 1, 3, 3)"]),
    (lambda: dc.ops.conv_transpose2d(ones(1, 2, 4, 4), ones(2, 1, 3, 3), ones(2)), ShapeError,
     ["bias", "(2,)", "(1,)"]),
    (lambda: dc.ops.conv_transpose2d(ones(1, 2, 4), ones(2, 1, 3, 3)), ShapeError, ["(N, C, H, W)", "(1, 2, 4)"]),
    (lambda: dc.ops.conv_transpose1d(ones(1, 2, 4), ones(2, 1, 3), stride=2, output_padding=3), DescendValueError,
     ["conv_transpose1d", "output_padding=3"]),
    # padding="same" and "valid"
    (lambda: nn.Conv2d(1, 2, 3, stride=2, padding="same"), DescendValueError, ["same", "stride=(2, 2)", "numbers"]),
    (lambda: nn.Conv1d(1, 2, 3, stride=2, padding="same"), DescendValueError, ["Conv1d", "same", "stride=2"]),
    (lambda: dc.ops.conv1d(ones(1, 1, 8), ones(2, 1, 3), stride=2, padding="same"), DescendValueError,
     ["conv1d", "stride=2"]),
    (lambda: nn.Conv2d(1, 2, 3, padding="full"), DescendValueError, ["'full'", "'same'", "'valid'"]),
    (lambda: dc.ops.conv1d(ones(1, 1, 8), ones(2, 1, 3), padding=(1, 2)), DescendTypeError, ["padding", "tuple"]),
    # upsampling
    (lambda: nn.Upsample(), DescendValueError, ["size or scale_factor", "None"]),
    (lambda: nn.Upsample(2, size=4), DescendValueError, ["size=4", "scale_factor=2"]),
    (lambda: nn.Upsample(scale_factor=1.5), DescendTypeError, ["scale_factor", "integer", "1.5"]),
    (lambda: nn.Upsample(scale_factor=(2, 2, 2)), DescendTypeError, ["scale_factor", "(2, 2, 2)"]),
    (lambda: nn.Upsample(2, mode="bicubic"), DescendValueError, ["'bicubic'", "'nearest'", "'linear'", "'bilinear'"]),
    (lambda: nn.Upsample(2, align_corners=False), DescendValueError, ["align_corners", "nearest"]),
    (lambda: nn.Upsample(2, mode="linear", align_corners=1), DescendTypeError, ["align_corners", "int 1"]),
    (lambda: nn.Upsample(2, mode="linear")(ones(1, 2, 3, 3)), ShapeError, ["Upsample", "(N, C, L)", "(1, 2, 3, 3)"]),
    (lambda: nn.Upsample(2)(ones(2, 3)), ShapeError, ["(N, C, L) or (N, C, H, W)", "(2, 3)"]),
    (lambda: dc.ops.interpolate(ones(1, 2, 3), scale_factor=2, mode="bilinear"), ShapeError,
     ["(N, C, H, W)", "(1, 2, 3)", "mode='linear'"]),
    (lambda: dc.ops.interpolate(ones(1, 2, 3), scale_factor=(2, 2)), ShapeError,
     ["scale_factor", "(2, 2)", "(N, C, L)"]),
    (lambda: dc.ops.interpolate(ones(1, 2, 3, 3), size=0), DescendValueError, ["size", ">= 1", "0"]),
]


@pytest.mark.parametrize("call, error, words", BAD_INPUT)
def test_bad_input_is_refused_naming_what_came_and_what_was_expected(call, error, words):
    with pytest.raises(error) as raised:
        call()
    for word in words:
        assert word in str(raised.value), f"{word!r} not in {raised.value}"

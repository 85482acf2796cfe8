"""Pictures: they are written, they are PNGs, and bad arguments are refused."""

import numpy as np
import pytest

from descend import nn, viz
from descend.errors import DescendError

PNG = b"\x89PNG\r\n\x1a\n"


def test_filters_and_feature_maps_are_pngs(tmp_path):
    model = nn.SimpleCNN(channels=(4, 6), hidden=8, rng=0)
    image = np.random.default_rng(0).random((1, 28, 28), dtype=np.float32)
    assert viz.plot_filters(model.layers[0], tmp_path / "f.png").read_bytes()[:8] == PNG
    assert viz.plot_feature_maps(model, image, tmp_path / "m.png").read_bytes()[:8] == PNG
    maps = viz.feature_maps(model, image)
    assert [m.shape for _, m in maps] == [(4, 28, 28), (6, 14, 14)]
    assert maps[0][0].endswith("ReLU")


def test_feature_maps_show_each_conv_after_batch_norm_and_activation():
    model = nn.SimpleCNN(channels=(3,), hidden=4, batch_norm=True, rng=0)
    (name, maps), = viz.feature_maps(model, np.zeros((1, 1, 28, 28), np.float32))
    assert "BatchNorm2d" in name and "ReLU" in name and maps.shape == (3, 28, 28)


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: viz.plot_filters(nn.Linear(2, 2)), ["Conv2d", "Linear"]),
        (lambda: viz.feature_maps(nn.SimpleCNN(rng=0), np.zeros((2, 1, 28, 28))), ["one image", "(2, 1, 28, 28)"]),
        (lambda: viz.feature_maps(nn.Sequential(nn.ReLU()), np.zeros((1, 2, 2))), ["no Conv2d"]),
        (lambda: viz.feature_maps(nn.Linear(2, 2), np.zeros((1, 2, 2))), ["Sequential"]),
    ],
)
def test_bad_arguments_are_refused(call, words):
    with pytest.raises(DescendError) as raised:
        call()
    for word in words:
        assert word in str(raised.value)


def test_curves_are_drawn_and_need_a_curve(tmp_path):
    path = viz.plot_curves({"a": [3, 2, 1], "b": ([1, 2], [1.0, 0.5])}, tmp_path / "c.png", "t", "x", "y", log_y=True)
    assert path.read_bytes()[:8] == PNG
    with pytest.raises(DescendError, match="at least one"):
        viz.plot_curves({}, tmp_path / "d.png", "t", "x", "y")

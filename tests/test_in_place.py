"""In-place arithmetic on tensors (issue 19, item 3): PyTorch's update idiom `w -= lr * w.grad` under no_grad()
changes w in place; with gradients on it is refused at once, naming the fix; backward() on a tensor that needs
no gradient names the likely causes."""

from __future__ import annotations

import numpy as np
import pytest

import descend as dc
from descend import nn
from descend.errors import DescendTypeError, DescendValueError, ShapeError


def test_the_pytorch_update_idiom_changes_the_leaf_in_place_and_training_goes_on():
    w = dc.tensor([1.0, 2.0], requires_grad=True)
    same = w
    for _ in range(2):  # the second backward() is where rebinding used to fail
        w.grad = None
        (w * w).sum().backward()
        with dc.no_grad():
            w -= 0.25 * w.grad
    assert w is same and w.requires_grad
    np.testing.assert_allclose(w.data, [0.25, 0.5])  # w ← w − 0.25·2w, twice


def test_a_parameter_updated_in_place_stays_a_view_of_its_model_s_buffer():
    model = nn.Linear(3, 2, rng=0)
    buffer = model.flat_buffer()
    with dc.no_grad():
        for parameter in model.parameters():
            parameter *= 0.0
            parameter += 1.0
    assert (buffer.data == 1.0).all()


@pytest.mark.parametrize("symbol", ["+=", "-=", "*=", "/="])
def test_in_place_on_a_tensor_that_requires_grad_with_gradients_on_is_refused_with_the_fix(symbol):
    w = dc.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(DescendValueError, match=r"with dc.no_grad\(\):.*x = x"):
        exec(f"w {symbol} 2.0")
    np.testing.assert_array_equal(w.data, [1.0, 2.0])


def test_in_place_refuses_a_value_with_grad_a_computed_tensor_a_wrong_shape_and_a_wrong_dtype():
    plain, w = dc.tensor([1.0, 2.0]), dc.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(DescendValueError, match="requires grad"):
        plain += w
    computed = w * 2
    with dc.no_grad(), pytest.raises(DescendValueError, match="computed by Mul"):
        computed -= 1.0
    with dc.no_grad(), pytest.raises(ShapeError, match=r"shape \(3,\) does not fit a tensor of shape \(2,\)"):
        w -= np.ones(3)
    counts = dc.tensor(np.array([1, 2]))
    with pytest.raises(DescendTypeError, match="float64 cannot go into a tensor of dtype int64"):
        counts += 0.5


def test_a_plain_tensor_changes_in_place_like_an_array():
    x = dc.tensor([1.0, 2.0])
    same = x
    x *= 3
    assert x is same and x.data.tolist() == [3.0, 6.0]


def test_backward_on_a_tensor_that_needs_no_gradient_names_the_likely_causes():
    with pytest.raises(DescendValueError) as caught:
        (dc.tensor([1.0]) * 2).sum().backward()
    for cause in ("requires_grad=True", "no_grad()", ".data"):
        assert cause in str(caught.value)

"""A user's own op (issue 19, item 1): what its backward returns is checked before it reaches a gradient, and
dc.gradcheck finds a wrong derivative, naming the input and the number."""

from __future__ import annotations

import numpy as np
import pytest

import descend as dc
from descend.errors import DescendTypeError, DescendValueError, ShapeError


class Cube(dc.Function):
    """x³; d/dx = 3x². Returns its one gradient bare, not in a tuple, as a user may."""

    def forward(self, x):
        self.x = x
        return x**3

    def backward(self, grad):
        return grad * 3 * self.x**2


class WrongCube(Cube):
    """x³ with the derivative 2x² by mistake."""

    def backward(self, grad):
        return (grad * 2 * self.x**2,)


class Returns(dc.Function):
    """An op whose backward returns whatever it was built with (the gradient of y = 2x otherwise)."""

    def forward(self, x, y=None):
        return 2 * x if y is None else x * y

    def backward(self, grad):
        return self.result(grad)


def test_an_op_of_ones_own_gets_its_gradient_even_from_a_bare_array():
    x = dc.tensor([1.0, 2.0, 3.0], requires_grad=True)
    Cube.apply(x).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 12.0, 27.0])  # not array(3.): the bare array is its one gradient


@pytest.mark.parametrize("result, inputs, error, words", [
    (lambda grad: grad, 2, DescendTypeError, "Returns.backward returned ndarray; it must return a tuple of 2"),
    (lambda grad: (grad,), 2, DescendTypeError, "returned 1 values; it must return a tuple of 2"),
    (lambda grad: np.ones((4, 7)), 1, ShapeError, "Returns.backward returned shape (4, 7) for input 0, of shape (2,)"),
    (lambda grad: (np.ones(()),), 1, ShapeError, "returned shape () for input 0, of shape (2,)"),
    (lambda grad: (np.ones(2, dtype=int),), 1, DescendTypeError, "a ndarray of dtype int64 for input 0"),
    (lambda grad: ([1.0, 2.0],), 1, DescendTypeError, "returned a list for input 0; expected a float array"),
    (lambda grad: 3.0, 1, DescendTypeError, "returned float; it must return a tuple of 1"),
])
def test_a_backward_that_returns_the_wrong_thing_is_named_with_its_input(result, inputs, error, words):
    x = dc.tensor([1.0, 2.0], requires_grad=True)
    arguments = (x, dc.tensor([3.0, 4.0], requires_grad=True))[:inputs]
    out = Returns.apply(*arguments, result=result)
    with pytest.raises(error) as caught:
        out.sum().backward()
    assert words in str(caught.value)
    assert x.grad is None or not x.grad.any()  # nothing half-written


def test_a_gradient_of_a_shape_the_input_broadcasts_to_is_summed_back():
    x = dc.tensor([1.0, 2.0], requires_grad=True)
    Returns.apply(x, result=lambda grad: (np.ones((3, 2)),)).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])


def test_gradcheck_passes_a_right_op_and_names_the_number_a_wrong_one_gets_wrong():
    x = np.array([[0.5, -1.0], [2.0, 1.5]])
    assert dc.gradcheck(Cube.apply, x)
    assert dc.gradcheck(lambda a, b: (a * dc.exp(b), dc.sin(a).sum()), x, x.T)  # several inputs and outputs
    with pytest.raises(dc.GradcheckError, match=r"gradient of input 0 at \(0, 0\) is .* by backward but .* by central"):
        dc.gradcheck(WrongCube.apply, x)


def test_gradcheck_checks_only_float_inputs_or_those_named():
    labels = np.array([0, 2])
    logits = np.array([[0.1, 0.2, 0.3], [1.0, -1.0, 0.5]])
    assert dc.gradcheck(dc.ops.cross_entropy, logits, labels)
    assert dc.gradcheck(lambda a, b: a * b, logits, logits, wrt=[1])


@pytest.mark.parametrize("call, error, words", [
    (lambda: dc.gradcheck(Cube.apply, np.array([1, 2])), DescendValueError, "no float input"),
    (lambda: dc.gradcheck(Cube.apply, np.array([1.0]), wrt=[1]), DescendValueError, "wrt names input(s) [1]"),
    (lambda: dc.gradcheck(Cube.apply, np.array([1.0]), wrt="0"), DescendTypeError, "wrt must be"),
    (lambda: dc.gradcheck(Cube.apply, np.array([1.0]), eps=0), DescendValueError, "eps"),
    (lambda: dc.gradcheck(Cube.apply, np.array([1.0]), cotangents=[np.ones(2)]), DescendValueError,
     "one array per output, of shapes [(1,)]"),
    (lambda: dc.gradcheck("cube", np.array([1.0])), DescendTypeError, "a function of tensors"),
    (lambda: dc.gradcheck(lambda a: a.data, np.array([1.0])), DescendTypeError, "must return a tensor"),
])
def test_gradcheck_refuses_what_it_cannot_check(call, error, words):
    with pytest.raises(error) as caught:
        call()
    assert words in str(caught.value)

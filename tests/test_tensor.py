"""The engine's semantics: the reverse sweep, gradient accumulation, the tape, dtypes and errors."""

from __future__ import annotations

import math

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from helpers import numeric_gradient
from hypothesis import given, settings
from hypothesis import strategies as st

import descend as dc
from descend.errors import DescendError, DescendTypeError, DescendValueError, ShapeError
from descend.ops.base import Function
from descend.tensor import is_grad_enabled, unbroadcast


def leaf(values, dtype=np.float64) -> dc.Tensor:
    return dc.tensor(np.asarray(values, dtype=dtype), requires_grad=True, dtype=dtype)


# -- the worked example ---------------------------------------------------------------
def test_doc_example():
    x1, x2 = dc.tensor(2.0, requires_grad=True), dc.tensor(5.0, requires_grad=True)
    f = dc.log(x1) + x1 * x2 - dc.sin(x2)
    f.backward()
    assert round(f.item(), 3) == 11.652
    assert round(float(x1.grad), 3) == 5.5
    assert round(float(x2.grad), 3) == 1.716


def test_doc_example_float64_exact():
    x1, x2 = leaf(2.0), leaf(5.0)
    f = dc.log(x1) + x1 * x2 - dc.sin(x2)
    f.backward()
    assert f.item() == pytest.approx(math.log(2) + 10 - math.sin(5), rel=1e-15)
    assert float(x1.grad) == pytest.approx(1 / 2 + 5, rel=1e-15)
    assert float(x2.grad) == pytest.approx(2 - math.cos(5), rel=1e-15)


# -- accumulation, PyTorch style ---------------------------------------------------------
def test_gradients_accumulate_until_zero_grad():
    x = leaf([1.0, 2.0, 3.0])
    assert x.grad is None
    (x * x).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 4 * x.data)
    x.zero_grad()
    assert x.grad is None or not x.grad.any()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data)


def test_only_leaves_get_grad():
    x = leaf([1.0, 2.0])
    y = x * 3
    y.sum().backward()
    assert y.grad is None
    np.testing.assert_allclose(x.grad, [3.0, 3.0])


def test_leaf_grads_are_separate_arrays():
    """Add hands the same array to both inputs; each leaf must still own its gradient."""
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (a + b).sum().backward()
    assert not np.shares_memory(a.grad, b.grad)
    a.grad += 1
    np.testing.assert_allclose(b.grad, [1.0, 1.0])


# -- no_grad and detach -------------------------------------------------------------
def test_no_grad_records_nothing():
    x = leaf([1.0, 2.0])
    with dc.no_grad():
        assert not is_grad_enabled()
        y = (x * 2).exp().sum()
    assert is_grad_enabled()
    assert not y.requires_grad and y.creator is None
    with pytest.raises(DescendValueError):
        y.backward()


def test_no_grad_restores_state_after_an_error_and_when_nested():
    with pytest.raises(RuntimeError):
        with dc.no_grad():
            raise RuntimeError("boom")
    assert is_grad_enabled()
    with dc.no_grad():
        with dc.no_grad():
            pass
        assert not is_grad_enabled()
    assert is_grad_enabled()


def test_detach_cuts_the_tape():
    x = leaf([1.0, 2.0, 3.0])
    d = x.detach()
    assert not d.requires_grad and d.creator is None
    assert np.shares_memory(d.data, x.data)
    (x * d).sum().backward()
    np.testing.assert_allclose(x.grad, x.data)  # d is a constant: not 2x


def test_detach_of_an_intermediate():
    x = leaf([0.5, -1.5])
    z = x * x
    (z.detach() * x).sum().backward()
    np.testing.assert_allclose(x.grad, x.data**2)


# -- reuse: gradients from every path are summed ---------------------------------------
def test_square_by_reuse():
    x = leaf([1.0, -2.0, 3.0])
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data)


def test_two_branches_add_up():
    x = leaf([0.3, -1.2])
    (x.exp() + x.sin()).sum().backward()
    np.testing.assert_allclose(x.grad, np.exp(x.data) + np.cos(x.data))


@pytest.mark.parametrize(
    "build, derivative",
    [
        (lambda x: x + x.exp(), lambda v: 1 + np.exp(v)),  # the leaf is also reached through a longer path
        (lambda x: x.exp() + x, lambda v: 1 + np.exp(v)),
        (lambda x: (lambda a: a + a.sin())(x * 2), lambda v: 2 * (1 + np.cos(2 * v))),
        (lambda x: (lambda a: a.sin() + a)(x * 2), lambda v: 2 * (1 + np.cos(2 * v))),
        (lambda x: (lambda a: a * a + a)(x * 3), lambda v: 3 * (2 * 3 * v + 1)),
        (lambda x: (lambda a: (a + a.exp()) * a)(x.sin()),
         lambda v: np.cos(v) * (2 * np.sin(v) + np.exp(np.sin(v)) * (1 + np.sin(v)))),
    ],
    ids=["leaf_first", "leaf_last", "shared_first", "shared_last", "diamond", "nested_diamond"],
)
def test_shared_nodes_get_all_contributions(build, derivative):
    """Every path into a node is summed before the node passes its adjoint on, whatever the input order."""
    x = leaf([0.4, -0.7, 1.1])
    build(x).sum().backward()
    np.testing.assert_allclose(x.grad, derivative(x.data), rtol=1e-12)


# -- broadcasting is undone in one place ------------------------------------------------
@pytest.mark.parametrize(
    "grad_shape, shape",
    [((4, 2, 3), (2, 1)), ((3, 4), (4,)), ((3, 4), ()), ((2, 3), (1, 3)), ((2, 3, 4), (3, 1)), ((3, 4), (3, 4)),
     ((2, 3, 4), (2, 1, 1)), ((5, 1, 4), (1, 1, 4)), ((), ())],
)
def test_unbroadcast_is_the_adjoint_of_broadcast_to(grad_shape, shape):
    """<g, broadcast_to(v)> = <unbroadcast(g), v> for every v: that is what summing back means."""
    rng = np.random.default_rng(0)
    g, v = rng.standard_normal(grad_shape), rng.standard_normal(shape)
    reduced = unbroadcast(g, shape)
    assert reduced.shape == shape
    assert np.sum(g * np.broadcast_to(v, grad_shape)) == pytest.approx(np.sum(reduced * v), rel=1e-12)


def test_broadcast_gradients_in_the_engine():
    column, row = leaf(np.ones((3, 1))), leaf(np.ones((1, 4)))
    (column + row).sum().backward()
    np.testing.assert_allclose(column.grad, np.full((3, 1), 4.0))
    np.testing.assert_allclose(row.grad, np.full((1, 4), 3.0))

    scale, m = leaf(2.0), leaf(np.arange(12.0).reshape(3, 4))
    (scale * m).sum().backward()
    assert scale.grad.shape == () and float(scale.grad) == pytest.approx(66.0)
    np.testing.assert_allclose(m.grad, np.full((3, 4), 2.0))

    a, b = leaf(np.ones((2, 1, 3))), leaf(np.arange(12.0).reshape(4, 3))
    (a * b).sum().backward()
    np.testing.assert_allclose(a.grad, np.broadcast_to(b.data.sum(axis=0), (2, 1, 3)))
    np.testing.assert_allclose(b.grad, np.full((4, 3), 2.0))

    one = leaf([5.0])
    (one * leaf([1.0, 2.0, 3.0])).sum().backward()
    assert one.grad.shape == (1,) and float(one.grad[0]) == pytest.approx(6.0)


# -- the sweep and the tape ----------------------------------------------------------
def test_deep_chain_backpropagates_without_recursion():
    x = leaf(1.0)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()
    assert float(x.grad) == pytest.approx(1.0001**10_000, rel=1e-9)


def tape_functions(out: dc.Tensor) -> list:
    found, stack = [], [out]
    while stack:
        node = stack.pop()
        if node.creator is not None:
            found.append(node.creator)
            stack.extend(node.creator.inputs)
    return found


def test_tape_is_freed_after_backward():
    x = leaf([1.0, 2.0])
    hidden = x * 2
    y = hidden.exp().sum()
    functions = tape_functions(y)
    assert len(functions) == 3
    y.backward()
    assert y.creator is None and hidden.creator is None
    assert all(not vars(f) for f in functions), "saved arrays and inputs must be dropped"


def test_retain_graph_keeps_the_tape():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    assert y.creator is not None
    y.backward()
    np.testing.assert_allclose(x.grad, 4 * x.data)
    assert y.creator is None


def test_backward_with_an_explicit_gradient():
    x = leaf([1.0, 2.0, 3.0])
    (x * x).backward(np.array([1.0, 0.0, -1.0]))
    np.testing.assert_allclose(x.grad, [2.0, 0.0, -6.0])


# -- ops with several outputs ------------------------------------------------------------
class SinCos(Function):
    """(sin x, cos x), an op with two outputs; each backward call's upstream gradients go into `self.log`."""

    def forward(self, x):
        self.x = x
        return np.sin(x), np.cos(x)

    def backward(self, grad_sin, grad_cos):
        self.log.append((grad_sin, grad_cos))
        return (grad_sin * np.cos(self.x) - grad_cos * np.sin(self.x),)


# f(sin x, cos x) written with tensors, and the same f on arrays for the central differences
SEVERAL_OUTPUT_CASES = {
    "the first output only": (lambda s, c: (s.exp() * s).sum(), lambda s, c: np.sum(np.exp(s) * s)),
    "the second output only": (lambda s, c: (c * c * c).sum(), lambda s, c: np.sum(c**3)),
    "both, along paths of different lengths": (
        lambda s, c: ((s * 2.0).exp().sin() * c).sum() + (c * c).sum(),
        lambda s, c: np.sum(np.sin(np.exp(2 * s)) * c) + np.sum(c * c),
    ),
}


@pytest.mark.parametrize("case", SEVERAL_OUTPUT_CASES, ids=list(SEVERAL_OUTPUT_CASES))
def test_an_op_with_several_outputs_runs_its_backward_once_with_every_outputs_gradient(case):
    f, f_arrays = SEVERAL_OUTPUT_CASES[case]
    x = leaf(np.random.default_rng(0).uniform(-2, 2, (3, 4)))
    log = []
    sin_x, cos_x = SinCos.apply(x, log=log)
    f(sin_x, cos_x).backward()
    numeric = numeric_gradient(lambda a: f_arrays(np.sin(a), np.cos(a)), [x.data], 0)
    np.testing.assert_allclose(x.grad, numeric, rtol=1e-6, atol=1e-8)
    assert len(log) == 1, "one backward per op per sweep, after every output's adjoint is complete"
    for grad in log[0]:
        assert grad.shape == (3, 4) and grad.dtype == np.float64
    if case == "the first output only":
        np.testing.assert_array_equal(log[0][1], 0.0)


def test_an_output_that_is_dropped_at_once_gets_a_zero_gradient():
    x = leaf([0.5, 1.0])
    log = []
    sin_x = SinCos.apply(x, log=log)[0]  # the cosine is garbage at once: its gradient is zeros of its shape
    sin_x.sum().backward()
    np.testing.assert_allclose(x.grad, np.cos([0.5, 1.0]))
    np.testing.assert_array_equal(log[0][1], np.zeros(2))


def test_backward_from_each_output_in_turn_adds_up_to_one_backward_from_both():
    x, y = leaf([0.3, -1.2, 2.0]), leaf([0.3, -1.2, 2.0])
    sin_x, cos_x = SinCos.apply(x, log=[])
    sin_x.backward(np.ones(3), retain_graph=True)
    cos_x.backward(np.full(3, 2.0))
    sin_y, cos_y = SinCos.apply(y, log=[])
    (sin_y.sum() + (cos_y * 2.0).sum()).backward()
    np.testing.assert_allclose(x.grad, y.grad)


def test_after_backward_every_output_of_an_op_is_cut_off_the_tape():
    x = leaf([1.0, 2.0])
    sin_x, cos_x = SinCos.apply(x, log=[])
    sin_x.sum().backward()
    assert sin_x.creator is None and cos_x.creator is None and cos_x.freed
    with pytest.raises(DescendValueError, match="retain_graph=True"):
        cos_x.sum().backward()


def test_an_op_with_several_outputs_under_no_grad_gives_plain_tensors():
    with dc.no_grad():
        outputs = SinCos.apply(leaf([1.0]), log=[])
    assert isinstance(outputs, tuple) and all(out.creator is None and not out.requires_grad for out in outputs)


# -- dtypes ------------------------------------------------------------------------------
def test_float64_on_request_stays_float64():
    x = dc.tensor([1.0, 2.0, 3.0], requires_grad=True, dtype=np.float64)
    assert x.dtype == np.float64
    for y in (x.exp() * 2 + 1, x.sum(), x.mean(), x.max(), x[0], x @ x, (x * 2.5) ** 2, dc.softmax(x)):
        assert y.dtype == np.float64, y
    (x.exp() * 2 + 1).sum().backward()
    assert x.grad.dtype == np.float64


def test_float32_is_the_default_and_python_scalars_follow_the_tensor():
    x = dc.tensor([1.0, 2.0], requires_grad=True)
    assert x.dtype == np.float32
    assert dc.tensor(1.5).dtype == np.float32
    assert dc.tensor(np.array([1.0], dtype=np.float16)).dtype == np.float32
    assert dc.tensor([1, 2]).dtype.kind == "i"  # labels and indices stay integer
    for y in (x * 2.5 + 1, 2 ** x, 1 / x, x - 3, x.sum(), x.mean(), x[1], x @ x):
        assert y.dtype == np.float32, y
    (x * 2.5).sum().backward()
    assert x.grad.dtype == np.float32


# -- bad input: input, error type, words the message must contain -------------------------
def _non_scalar_backward():
    (leaf(np.ones((2, 3))) * 2).backward()


BAD_INPUT = [
    ("backward_non_scalar", _non_scalar_backward, DescendValueError, ["(2, 3)", "grad"]),
    ("backward_without_grad", lambda: dc.tensor([1.0, 2.0]).sum().backward(), DescendValueError, ["require"]),
    ("backward_wrong_grad_shape", lambda: (leaf(np.ones((2, 3))) * 2).backward(np.ones(3)), DescendValueError,
     ["(3,)", "(2, 3)"]),
    ("requires_grad_on_ints", lambda: dc.tensor([1, 2], requires_grad=True), DescendTypeError, ["int64", "float"]),
    ("string", lambda: dc.tensor("abc"), DescendTypeError, ["numeric"]),
    ("strings", lambda: dc.tensor(["a", "b"]), DescendTypeError, ["numeric"]),
    ("object", lambda: dc.tensor(object()), DescendTypeError, []),
    ("ragged", lambda: dc.tensor([[1.0], [2.0, 3.0]]), DescendTypeError, []),
    ("matmul_mismatch", lambda: dc.tensor(np.ones((3, 4))) @ dc.tensor(np.ones((5, 6))), ShapeError,
     ["(3, 4)", "(5, 6)"]),
    ("matmul_mismatch_tape", lambda: leaf(np.ones((2, 3, 4))) @ leaf(np.ones((3, 4))), ShapeError,
     ["(2, 3, 4)", "(3, 4)"]),
    ("reshape_mismatch", lambda: dc.tensor(np.ones((3, 4))).reshape(5), ShapeError, ["(3, 4)", "(5,)"]),
    ("item_of_many", lambda: dc.tensor([1.0, 2.0]).item(), DescendValueError, ["(2,)"]),
]


@pytest.mark.parametrize("call, error, words", [b[1:] for b in BAD_INPUT], ids=[b[0] for b in BAD_INPUT])
def test_bad_input_is_named(call, error, words):
    with pytest.raises(error) as caught:
        call()
    assert isinstance(caught.value, DescendError)
    for word in words:
        assert word in str(caught.value)


# -- properties -----------------------------------------------------------------------
@st.composite
def broadcast_case(draw):
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3))
    ndim = len(shapes.result_shape)
    axis_choices = [st.none(), st.just(())]
    if ndim:
        axis_choices += [st.integers(-ndim, ndim - 1), st.lists(st.integers(0, ndim - 1), unique=True).map(tuple)]
    axis = draw(st.one_of(*axis_choices))
    keepdims, op, seed = draw(st.booleans()), draw(st.sampled_from(["add", "mul"])), draw(st.integers(0, 2**32 - 1))
    return shapes.input_shapes, axis, keepdims, op, seed


@settings(max_examples=40, deadline=None, database=None)
@given(broadcast_case())
def test_broadcast_add_mul_sum_gradients_match_finite_differences(case):
    (a_shape, b_shape), axis, keepdims, op, seed = case
    rng = np.random.default_rng(seed)
    a_data, b_data = rng.standard_normal(a_shape), rng.standard_normal(b_shape)

    def forward(a, b):
        return dc.ops.add(a, b) if op == "add" else dc.ops.mul(a, b)

    a, b = leaf(a_data), leaf(b_data)
    out = forward(a, b).sum(axis=axis, keepdims=keepdims)
    expected = np.sum(a_data + b_data if op == "add" else a_data * b_data, axis=axis, keepdims=keepdims)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.data, expected, rtol=1e-12)
    cotangent = rng.standard_normal(out.shape)
    out.backward(cotangent)

    def objective(x, y):
        with dc.no_grad():
            value = forward(dc.tensor(x, dtype=np.float64), dc.tensor(y, dtype=np.float64))
            return float(np.sum(value.sum(axis=axis, keepdims=keepdims).data * cotangent))

    for index, tensor in enumerate((a, b)):
        assert tensor.grad.shape == tensor.shape
        numeric = numeric_gradient(objective, [a_data, b_data], index)
        np.testing.assert_allclose(tensor.grad, numeric, rtol=1e-6, atol=1e-8)


@settings(max_examples=30, deadline=None, database=None)
@given(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=3), st.integers(0, 2**32 - 1))
def test_unbroadcast_property(shapes, seed):
    (shape, _), big = shapes.input_shapes, shapes.result_shape
    rng = np.random.default_rng(seed)
    g, v = rng.standard_normal(big), rng.standard_normal(shape)
    reduced = unbroadcast(g, shape)
    assert reduced.shape == shape
    assert np.sum(g * np.broadcast_to(v, big)) == pytest.approx(np.sum(reduced * v), rel=1e-10, abs=1e-12)


def test_backward_through_a_freed_graph_is_refused_unless_retained():
    x = dc.tensor(2.0, requires_grad=True)
    hidden = x * 3
    (hidden * hidden).backward()
    with pytest.raises(DescendValueError, match="retain_graph=True"):
        (hidden + 1).backward()
    kept = x * 3
    loss = kept * kept
    loss.backward(retain_graph=True)
    loss.backward()
    assert x.grad == pytest.approx(36.0 + 2 * 36.0)


def test_tensors_follow_python_and_numpy_protocols():
    t = dc.tensor([1.0, 2.0, 3.0])
    assert bool(dc.tensor([0.0]) > 1) is False and float(dc.tensor(2.0)) == 2.0 and int(dc.tensor(3.0)) == 3
    np.testing.assert_array_equal(np.asarray(t), [1.0, 2.0, 3.0])
    assert [float(v) for v in t] == [1.0, 2.0, 3.0]
    np.testing.assert_array_equal((t == dc.tensor([1.0, 0.0, 3.0])).data, [True, False, True])
    with pytest.raises(DescendValueError, match="ambiguous"):
        bool(t)
    source = np.zeros(2)
    copied = dc.tensor(source)
    source[0] = 5
    assert copied.data[0] == 0  # dc.tensor copies, as torch.tensor does


def test_a_where_condition_that_requires_grad_gets_none():
    condition = dc.tensor([1.0, 0.0], requires_grad=True)
    x = dc.tensor([1.0, 2.0], requires_grad=True)
    dc.where(condition, x, 0.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 0.0])
    assert condition.grad is None

"""Property tests: broadcasting, reductions and indexing over random shapes, axes and index expressions.

Hypothesis draws the structure of each case (shapes, axes, keepdims, index
expressions, split points); a NumPy generator seeded by Hypothesis draws the
values, kept away from kinks and ties so that central differences are valid.
Each property checks that the forward equals NumPy's, that every input's
gradient has the input's shape, and that the gradient of a random weighted sum
of the outputs (so the upstream gradient is not all ones) matches float64
central differences of the NumPy reference, and torch.autograd when torch is
importable. The tie rules of max, min and maximum, where differences do not
apply, are properties of their own.

tests/test_ops.py checks the fixed shapes of the op table; these roam around them.
Every test is derandomized: CI runs the same fixed budget of examples each time.
"""

from __future__ import annotations

import itertools
import math

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from helpers import skip_outside_ci
from hypothesis import given, note, settings
from hypothesis import strategies as st

import descend as dc
from descend.tensor import unbroadcast
from op_table import np_log_softmax, np_softmax
from helpers import numeric_gradient

try:
    import torch
except ImportError:  # the oracle is optional; the finite differences always run
    torch = None

FD_RTOL = 1e-6
TORCH_RTOL = 1e-9
SIDE = 4  # finite differences cost two evaluations per element: at most 4 axes of at most 4
PROPERTY = settings(deadline=None, derandomize=True)

seeds = st.integers(0, 2**32 - 1)
shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=SIDE)
nonempty_shapes = hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=SIDE)


# -- values, drawn by a seeded generator ------------------------------------------------
def normal(rng, shape):
    return rng.standard_normal(shape)


def nonzero(rng, shape):
    """0.5 <= |x| <= 2: a safe denominator."""
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.5, 2.0, shape)


def positive(rng, shape):
    """A base for power: its derivative in the exponent needs ln x."""
    return rng.uniform(0.5, 2.0, shape)


def exponent(rng, shape):
    return rng.uniform(-2.0, 2.0, shape)


def on_even_grid(rng, shape):
    """Values in 0.2k + [0, 0.04): at least 0.06 from every `on_odd_grid` value, however they broadcast."""
    return 0.2 * rng.integers(-5, 5, shape) + rng.uniform(0, 0.04, shape)


def on_odd_grid(rng, shape):
    return on_even_grid(rng, shape) + 0.1


def distinct(rng, shape):
    """Values at least 0.06 apart, so a max or min over any axes has one winner."""
    size = math.prod(shape)
    return (0.1 * rng.permutation(size) + rng.uniform(0, 0.04, size) - 0.05 * size).reshape(shape)


def few_levels(rng, shape):
    """Values from {0, 1, 2}: ties everywhere."""
    return np.asarray(rng.integers(0, 3, shape), dtype=np.float64)


# -- the check every differentiable property shares --------------------------------------
def leaf(array: np.ndarray) -> dc.Tensor:
    return dc.tensor(array, requires_grad=True, dtype=np.float64)


def as_list(out) -> list:
    return list(out) if isinstance(out, (list, tuple)) else [out]


def check_forward_and_gradients(descend_fn, numpy_fn, arrays, rng, torch_fn=None) -> None:
    """Check an op on float64 inputs: its forward against numpy_fn, and the gradients of <w, f(x)>.

    w is drawn from `rng`, so the upstream gradient is not all ones. Each input's gradient must have
    the input's shape and match float64 central differences of numpy_fn, and torch_fn's autograd
    when torch is importable. Each function takes one array or tensor per input and returns one
    output or a list of them.
    """
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]  # a generator gives a 0-d draw as a Python float
    tensors = [leaf(a) for a in arrays]
    outputs = as_list(descend_fn(*tensors))
    expected = [np.asarray(want) for want in as_list(numpy_fn(*arrays))]
    assert len(outputs) == len(expected)
    for out, want in zip(outputs, expected):
        assert out.shape == want.shape and out.dtype == np.float64
        np.testing.assert_allclose(out.data, want, rtol=1e-12, atol=1e-14)

    weights = [np.asarray(rng.standard_normal(want.shape)) for want in expected]
    for out, w in zip(outputs, weights):
        out.backward(w)  # the leaves' gradients add up across the outputs
    grads = [t.grad for t in tensors]
    for grad, a in zip(grads, arrays):
        assert grad is not None and grad.shape == a.shape and grad.dtype == np.float64

    def weighted_sum(*xs):
        return sum(float(np.sum(w * np.asarray(y))) for w, y in zip(weights, as_list(numpy_fn(*xs))))

    # a central difference loses about eps · Σ|terms| / step to rounding; allow a wide margin over that
    noise_floor = 1e-8 * (1 + sum(float(np.sum(np.abs(w * y))) for w, y in zip(weights, expected)))
    for i, grad in enumerate(grads):
        numeric = numeric_gradient(weighted_sum, arrays, i)
        np.testing.assert_allclose(grad, numeric, rtol=FD_RTOL, atol=noise_floor, err_msg=f"input {i}")

    if torch is not None and torch_fn is not None:
        inputs = [torch.from_numpy(a.copy()).requires_grad_() for a in arrays]
        torch_outputs = as_list(torch_fn(*inputs))
        torch_grads = torch.autograd.grad(
            torch_outputs, inputs, [torch.from_numpy(w) for w in weights], allow_unused=True
        )
        for i, (grad, want) in enumerate(zip(grads, torch_grads)):
            want = np.zeros_like(arrays[i]) if want is None else want.numpy()
            np.testing.assert_allclose(grad, want, rtol=TORCH_RTOL, atol=1e-12, err_msg=f"input {i} vs torch")


def test_torch_oracle_is_available():
    """The properties still run their finite differences without torch; this says the oracle was skipped."""
    if torch is None:
        skip_outside_ci("torch is not importable: the properties ran without the PyTorch oracle")


# -- broadcasting ------------------------------------------------------------------------
BINARY_OPS = {
    # name: descend function, NumPy function, torch function, makers of the left and the right values
    "add": (dc.ops.add, np.add, lambda x, y: torch.add(x, y), normal, normal),
    "sub": (dc.ops.sub, np.subtract, lambda x, y: torch.sub(x, y), normal, normal),
    "mul": (dc.ops.mul, np.multiply, lambda x, y: torch.mul(x, y), normal, normal),
    "div": (dc.ops.div, np.divide, lambda x, y: torch.div(x, y), normal, nonzero),
    "power": (dc.ops.power, np.power, lambda x, y: torch.pow(x, y), positive, exponent),
    "maximum": (dc.maximum, np.maximum, lambda x, y: torch.maximum(x, y), on_even_grid, on_odd_grid),
}


@pytest.mark.parametrize("name", BINARY_OPS)
@settings(PROPERTY, max_examples=40)
@given(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=SIDE), seeds)
def test_binary_ops_broadcast(name, broadcast_shapes, seed):
    descend_fn, numpy_fn, torch_fn, make_left, make_right = BINARY_OPS[name]
    rng = np.random.default_rng(seed)
    left_shape, right_shape = broadcast_shapes.input_shapes
    arrays = [make_left(rng, left_shape), make_right(rng, right_shape)]
    check_forward_and_gradients(descend_fn, numpy_fn, arrays, rng, torch_fn)


@settings(PROPERTY, max_examples=60)
@given(hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=4, max_side=SIDE), seeds)
def test_where_broadcasts_all_three(broadcast_shapes, seed):
    condition_shape, x_shape, y_shape = broadcast_shapes.input_shapes
    rng = np.random.default_rng(seed)
    condition = np.asarray(rng.random(condition_shape) < 0.5)
    check_forward_and_gradients(
        lambda x, y: dc.where(condition, x, y),
        lambda x, y: np.where(condition, x, y),
        [normal(rng, x_shape), normal(rng, y_shape)],
        rng,
        lambda x, y: torch.where(torch.from_numpy(condition), x, y),
    )


@settings(PROPERTY, max_examples=40)
@given(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=SIDE), seeds)
def test_maximum_gives_ties_to_the_second_argument(broadcast_shapes, seed):
    """maximum(x, y) is where(x > y, x, y): at a tie all of the gradient goes to y (torch would split it)."""
    x_shape, y_shape = broadcast_shapes.input_shapes
    rng = np.random.default_rng(seed)
    x_data, y_data = few_levels(rng, x_shape), few_levels(rng, y_shape)
    x, y = leaf(x_data), leaf(y_data)
    out = dc.maximum(x, y)
    np.testing.assert_array_equal(out.data, np.maximum(x_data, y_data))
    weights = np.asarray(rng.standard_normal(out.shape))
    out.backward(weights)
    x_wins = x_data > y_data
    # unbroadcast sums a gradient back to an input's shape; tests/test_tensor.py checks it against broadcast_to
    np.testing.assert_allclose(x.grad, unbroadcast(np.where(x_wins, weights, 0.0), x_shape), rtol=1e-12)
    np.testing.assert_allclose(y.grad, unbroadcast(np.where(x_wins, 0.0, weights), y_shape), rtol=1e-12)


# -- reductions ----------------------------------------------------------------------------
REDUCTIONS = {
    # name: descend function, NumPy function, torch function (dim, keepdim), maker of values
    "sum": (dc.sum, np.sum, lambda x, dim, keepdim: torch.sum(x, dim=dim, keepdim=keepdim), normal),
    "mean": (dc.mean, np.mean, lambda x, dim, keepdim: torch.mean(x, dim=dim, keepdim=keepdim), normal),
    "max": (dc.max, np.max, lambda x, dim, keepdim: torch.amax(x, dim=dim, keepdim=keepdim), distinct),
    "min": (dc.min, np.min, lambda x, dim, keepdim: torch.amin(x, dim=dim, keepdim=keepdim), distinct),
}


@st.composite
def reduction_cases(draw):
    """A shape and a list of axes to reduce it over, one of each form.

    The forms: None (every axis), () (none), an int (negative too) and a tuple of two or more distinct
    axes, some written negative, in ascending or descending order (each reduced axis must go back in
    its place whatever the order). Each example checks every form, with keepdims and without: drawn as
    one choice among them, multi-axis tuples came up in only a few of a fixed budget of examples.
    """
    shape = draw(shapes)
    ndim = len(shape)
    axes = [None, ()]
    if ndim:
        axes.append(draw(st.integers(-ndim, ndim - 1)))
    if ndim > 1:
        count = draw(st.integers(2, ndim))
        chosen = sorted(draw(st.permutations(range(ndim)))[:count], reverse=draw(st.booleans()))
        axes.append(tuple(draw(st.sampled_from([a, a - ndim])) for a in chosen))
    return shape, axes


def torch_reduction(torch_op, axis, keepdims, ndim):
    """torch's twin of a NumPy reduction over `axis`; torch reads dim=() as every axis, NumPy as none."""
    dims = tuple(range(ndim)) if axis is None else (axis,) if isinstance(axis, int) else axis
    if not dims:
        return lambda x: x
    return lambda x: torch_op(x, dims, keepdims)


@pytest.mark.parametrize("name", REDUCTIONS)
@settings(PROPERTY, max_examples=40)
@given(reduction_cases(), seeds)
def test_reductions_over_any_axes(name, case, seed):
    descend_fn, numpy_fn, torch_op, make = REDUCTIONS[name]
    shape, axes = case
    rng = np.random.default_rng(seed)
    values = make(rng, shape)
    for axis, keepdims in itertools.product(axes, (False, True)):
        note(f"axis={axis}, keepdims={keepdims}")
        check_forward_and_gradients(
            lambda x, axis=axis, keepdims=keepdims: descend_fn(x, axis=axis, keepdims=keepdims),
            lambda x, axis=axis, keepdims=keepdims: numpy_fn(x, axis=axis, keepdims=keepdims),
            [values],
            rng,
            torch_reduction(torch_op, axis, keepdims, len(shape)),
        )


@pytest.mark.parametrize("name", ["max", "min"])
@settings(PROPERTY, max_examples=25)
@given(reduction_cases(), seeds)
def test_max_and_min_share_the_gradient_among_ties(name, case, seed):
    """Each reduced group's upstream gradient is split equally among the elements that tie for the extreme."""
    descend_fn, numpy_fn, torch_op, _ = REDUCTIONS[name]
    shape, axes = case
    rng = np.random.default_rng(seed)
    x_data = few_levels(rng, shape)
    for axis, keepdims in itertools.product(axes, (False, True)):
        note(f"axis={axis}, keepdims={keepdims}")
        x = leaf(x_data)
        out = descend_fn(x, axis=axis, keepdims=keepdims)
        weights = np.asarray(rng.standard_normal(out.shape))
        out.backward(weights)
        extreme = numpy_fn(x_data, axis=axis, keepdims=True)
        winners = x_data == extreme
        # dropping size-1 axes keeps the order of the elements, so the weights reshape to keepdims form
        shared = weights.reshape(extreme.shape) / winners.sum(axis=axis, keepdims=True)
        np.testing.assert_allclose(x.grad, np.where(winners, shared, 0.0), rtol=1e-12)
        if torch is not None:  # amax and amin document the same rule
            x_torch = torch.from_numpy(x_data.copy()).requires_grad_()
            torch_reduction(torch_op, axis, keepdims, len(shape))(x_torch).backward(torch.from_numpy(weights))
            np.testing.assert_allclose(x.grad, x_torch.grad.numpy(), rtol=TORCH_RTOL)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@settings(PROPERTY, max_examples=25)
@given(nonempty_shapes, st.data(), seeds)
def test_softmax_along_any_axis(name, shape, data, seed):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    numpy_fn = {"softmax": np_softmax, "log_softmax": np_log_softmax}[name]
    rng = np.random.default_rng(seed)
    check_forward_and_gradients(
        lambda x: getattr(dc, name)(x, axis=axis),
        lambda x: numpy_fn(x, axis),
        [3 * normal(rng, shape)],
        rng,
        lambda x: getattr(torch, name)(x, dim=axis),
    )


# -- indexing --------------------------------------------------------------------------------
def torch_gather(shape, index):
    """torch's twin of x[index]: the same elements gathered by flat position, as torch has no negative steps.

    Its autograd adds up repeated positions, which is what descend's scatter must do too.
    """
    flat_positions = torch.from_numpy(np.array(np.arange(math.prod(shape)).reshape(shape)[index]))
    return lambda x: x.reshape(-1)[flat_positions]


def check_indexing(shape, index, seed):
    rng = np.random.default_rng(seed)
    torch_fn = torch_gather(shape, index) if torch is not None else None
    check_forward_and_gradients(lambda x: x[index], lambda x: x[index], [normal(rng, shape)], rng, torch_fn)


@st.composite
def basic_index_cases(draw):
    """A shape and an index of ints (negative too), slices (with any step, negative too), None and Ellipsis."""
    shape = draw(shapes)
    return shape, draw(hnp.basic_indices(shape, min_dims=0, allow_newaxis=True, allow_ellipsis=True))


@settings(PROPERTY, max_examples=120)
@given(basic_index_cases(), seeds)
def test_basic_indexing(case, seed):
    check_indexing(*case, seed)


def places_along(side):
    """An index into an axis of length `side`, written as k or as k − side: a repeat may hide behind a negative."""
    return st.tuples(st.integers(0, side - 1), st.booleans()).map(lambda place: place[0] - side * place[1])


@st.composite
def integer_array_index_cases(draw):
    """A shape and an index with one or more integer arrays, repeats and negatives likely.

    The arrays share one shape (possibly 0-d or empty) and sit among ints, slices, None and Ellipsis;
    a lone array may come bare, as an ndarray or a list, the way an embedding lookup indexes.
    """
    shape = draw(nonempty_shapes)
    ndim = len(shape)
    count = draw(st.integers(1, ndim))  # how many axes the index names
    from_the_end = count < ndim and draw(st.booleans())  # (..., parts) names the last axes
    sides = shape[ndim - count:] if from_the_end else shape[:count]
    array_shape = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=SIDE))
    surely_an_array = draw(st.integers(0, count - 1))
    parts = []
    for position, side in enumerate(sides):
        kind = "array" if position == surely_an_array else draw(st.sampled_from(["array", "slice", "int"]))
        if kind == "array":
            parts.append(draw(hnp.arrays(np.int64, array_shape, elements=places_along(side))))
        elif kind == "slice":
            parts.append(draw(st.slices(side)))
        else:
            parts.append(draw(places_along(side)))
    if draw(st.booleans()):
        parts.insert(draw(st.integers(0, len(parts))), None)
    if from_the_end:
        return shape, (Ellipsis, *parts)
    if len(parts) == 1:
        return shape, draw(st.sampled_from([parts[0], parts[0].tolist(), (parts[0],)]))
    return shape, tuple(parts)


@settings(PROPERTY, max_examples=150)
@given(integer_array_index_cases(), seeds)
def test_integer_array_indexing_accumulates_repeats(case, seed):
    check_indexing(*case, seed)


@settings(PROPERTY, max_examples=50)
@given(nonempty_shapes, st.data(), seeds)
def test_row_lookup_adds_up_repeats_however_written(shape, data, seed):
    """x[rows] with one integer array, as an embedding lookup indexes: the same row picked many times,
    written as k or as k − n, must gather every pick's gradient into that one row."""
    rows_shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=SIDE), label="rows shape")
    rows = data.draw(hnp.arrays(np.int64, rows_shape, elements=places_along(shape[0])), label="rows")
    check_indexing(shape, rows, seed)


@st.composite
def boolean_mask_index_cases(draw):
    """A shape and a boolean mask over a run of its axes (0-d included), after slices or an Ellipsis, or bare."""
    shape = draw(shapes)
    ndim = len(shape)
    mask_ndim = ndim - draw(st.integers(0, ndim))  # shrinks toward a mask of the whole shape, the usual x[mask]
    start = draw(st.integers(0, ndim - mask_ndim))
    stop = start + mask_ndim
    mask = draw(hnp.arrays(np.bool_, shape[start:stop]))
    if start == 0 and draw(st.booleans()):
        return shape, mask
    if stop == ndim and draw(st.booleans()):
        return shape, (Ellipsis, mask)
    return shape, (slice(None),) * start + (mask,)


@settings(PROPERTY, max_examples=80)
@given(boolean_mask_index_cases(), seeds)
def test_boolean_mask_indexing(case, seed):
    check_indexing(*case, seed)


# -- shape ops -------------------------------------------------------------------------------
@st.composite
def reshape_cases(draw):
    """A shape and a new one with the same elements: sides permuted, neighbours merged, 1s added, maybe a -1."""
    shape = draw(shapes)
    sides = draw(st.permutations(shape))
    cuts = sorted(draw(st.sets(st.integers(1, len(sides) - 1), max_size=3))) if len(sides) > 1 else []
    edges = [0, *cuts, len(sides)]
    target = [math.prod(sides[a:b]) for a, b in zip(edges[:-1], edges[1:]) if a < b]
    for _ in range(draw(st.integers(0, 2))):
        target.insert(draw(st.integers(0, len(target))), 1)
    if target and draw(st.booleans()):
        target[draw(st.integers(0, len(target) - 1))] = -1
    return shape, tuple(target)


@settings(PROPERTY, max_examples=30)
@given(reshape_cases(), seeds)
def test_reshape(case, seed):
    shape, target = case
    rng = np.random.default_rng(seed)
    check_forward_and_gradients(
        lambda x: x.reshape(target), lambda x: x.reshape(target), [normal(rng, shape)], rng,
        lambda x: x.reshape(target),
    )


@st.composite
def transpose_cases(draw):
    """A shape and a permutation of its axes, each written as a positive or negative axis; or None (reverse)."""
    shape = draw(shapes)
    ndim = len(shape)
    order = draw(st.permutations(range(ndim)))
    axes = tuple(draw(st.sampled_from([a, a - ndim])) for a in order)
    return shape, draw(st.sampled_from([axes, None]))


@settings(PROPERTY, max_examples=30)
@given(transpose_cases(), seeds)
def test_transpose(case, seed):
    shape, axes = case
    ndim = len(shape)
    torch_order = tuple(range(ndim))[::-1] if axes is None else axes
    rng = np.random.default_rng(seed)
    check_forward_and_gradients(
        lambda x: dc.transpose(x, axes), lambda x: np.transpose(x, axes), [normal(rng, shape)], rng,
        lambda x: x.permute(torch_order),
    )


@settings(PROPERTY, max_examples=30)
@given(nonempty_shapes, st.lists(st.integers(0, 3), min_size=1, max_size=3), st.data(), seeds)
def test_concat(shape, lengths, data, seed):
    """Pieces that differ only along `axis` (some may be empty there) join, and the gradient splits back."""
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    rng = np.random.default_rng(seed)
    pieces = []
    for length in lengths:
        piece_shape = list(shape)
        piece_shape[axis] = length
        pieces.append(normal(rng, tuple(piece_shape)))
    check_forward_and_gradients(
        lambda *xs: dc.concat(xs, axis=axis), lambda *xs: np.concatenate(xs, axis=axis), pieces, rng,
        lambda *xs: torch.cat(xs, dim=axis),
    )


@settings(PROPERTY, max_examples=30)
@given(hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=SIDE), st.integers(1, 3), st.data(), seeds)
def test_stack(shape, count, data, seed):
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)), label="axis")
    rng = np.random.default_rng(seed)
    check_forward_and_gradients(
        lambda *xs: dc.stack(xs, axis=axis), lambda *xs: np.stack(xs, axis=axis),
        [normal(rng, shape) for _ in range(count)], rng, lambda *xs: torch.stack(xs, dim=axis),
    )


@settings(PROPERTY, max_examples=30)
@given(nonempty_shapes, st.data(), seeds)
def test_split(shape, data, seed):
    """Equal sections, or sorted cut points (repeats and ends give empty pieces); every piece's gradient adds up."""
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    length = shape[axis]
    equal_parts = st.sampled_from([n for n in range(1, length + 1) if length % n == 0])
    cut_points = st.lists(st.integers(0, length), max_size=3).map(sorted)
    sections = data.draw(st.one_of(equal_parts, cut_points), label="sections")
    rng = np.random.default_rng(seed)
    check_forward_and_gradients(
        lambda x: dc.split(x, sections, axis=axis), lambda x: np.split(x, sections, axis=axis),
        [normal(rng, shape)], rng, lambda x: torch.tensor_split(x, sections, dim=axis),
    )

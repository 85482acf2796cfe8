"""Generic op tests, one set per row of tests/op_table.py.

Every row is checked, once on the compiled kernels and once on the NumPy
reference (descend.kernels), for: the forward against NumPy (or PyTorch), float64
central differences against descend's vector-Jacobian product (along random
directions, and element by element), PyTorch's autograd as an oracle, float32
staying float32, and the ops it really puts on the tape. Every primitive must
appear on the tape of some row.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import zlib
from typing import Any

import numpy as np
import pytest
from helpers import skip_outside_ci

import descend as dc
from descend.ops import all_primitives
from descend.ops.base import Function
from descend.tensor import Tensor, reverse_sweep
from op_table import ROWS, OpRow

try:
    import torch
except ImportError:
    torch = None

STEP = 1e-6  # central-difference step in float64
FD_RTOL = 1e-6
TORCH_RTOL = 1e-7
FULL_CHECK_MAX_SIZE = 200  # element-by-element differences up to this many differentiable numbers
DIRECTIONS = 3

rows = pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])


@pytest.fixture(params=sorted(dc.kernels.BACKENDS), autouse=True)
def kernel_backend(request):
    """Every test of the table runs twice: on the compiled kernels and on the NumPy reference alone."""
    with dc.kernels.using(request.param):
        yield request.param


# -- helpers -----------------------------------------------------------------------
def rng_for(row: OpRow, salt: str = "") -> np.random.Generator:
    return np.random.default_rng(zlib.crc32((row.name + salt).encode()))


def as_list(out: Any) -> list[Any]:
    return list(out) if isinstance(out, (list, tuple)) else [out]


def make_tensors(row: OpRow, arrays: list[np.ndarray], dtype: Any = np.float64, grad: bool = True) -> list[Tensor]:
    """One descend tensor per input: floats in `dtype`, the differentiable ones requiring grad."""
    diff = row.differentiable(arrays)
    tensors = []
    for i, a in enumerate(arrays):
        if a.dtype.kind == "f":
            a = a.astype(dtype)
        tensors.append(dc.tensor(a, requires_grad=grad and i in diff, dtype=a.dtype))
    return tensors


def forward_arrays(row: OpRow, arrays: list[np.ndarray]) -> list[np.ndarray]:
    with dc.no_grad():
        return [np.asarray(out.data) for out in as_list(row.fn(*make_tensors(row, arrays, grad=False)))]


def cotangents_for(outputs: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    return [np.asarray(rng.standard_normal(np.shape(y))) for y in outputs]


def descend_vjp(row: OpRow, arrays: list[np.ndarray], cotangents: list[np.ndarray]) -> list[np.ndarray]:
    """d<u, f(x)>/dx for each differentiable input, by descend's backward."""
    tensors = make_tensors(row, arrays)
    outputs = as_list(row.fn(*tensors))
    for k, (out, u) in enumerate(zip(outputs, cotangents)):
        out.backward(u, retain_graph=k + 1 < len(outputs))
    grads = []
    for i in row.differentiable(arrays):
        grad = tensors[i].grad
        grads.append(np.zeros_like(arrays[i]) if grad is None else grad)
    return grads


def objective(row: OpRow, arrays: list[np.ndarray], cotangents: list[np.ndarray]) -> float:
    """<u, f(x)>: the scalar whose gradient is the VJP."""
    return sum(float(np.sum(u * y)) for u, y in zip(cotangents, forward_arrays(row, arrays)))


def central_difference(row, arrays, cotangents, diff, directions, step=STEP) -> float:
    """d/dt <u, f(x + t v)> at t = 0, by (φ(x + hv) − φ(x − hv)) / 2h."""
    plus, minus = list(arrays), list(arrays)
    for i, v in zip(diff, directions):
        plus[i] = arrays[i] + step * v
        minus[i] = arrays[i] - step * v
    return (objective(row, plus, cotangents) - objective(row, minus, cotangents)) / (2 * step)


def noise_floor(row, arrays, cotangents) -> float:
    """Rounding error of a central difference: about eps · |terms of φ| / h, with a wide margin."""
    magnitude = sum(float(np.sum(np.abs(u * y))) for u, y in zip(cotangents, forward_arrays(row, arrays)))
    return 1e-8 * (1.0 + magnitude)


def assert_agrees_along_random_directions(row: OpRow, arrays, cotangents, diff, grads, rng) -> None:
    """<grad, v> against the central difference along v, for DIRECTIONS random directions v of the inputs."""
    floor = noise_floor(row, arrays, cotangents)
    for _ in range(DIRECTIONS):
        directions = [rng.standard_normal(arrays[i].shape) for i in diff]
        analytic = sum(float(np.sum(g * v)) for g, v in zip(grads, directions))
        numeric = central_difference(row, arrays, cotangents, diff, directions)
        assert abs(analytic - numeric) <= FD_RTOL * abs(numeric) + floor, (analytic, numeric)


def to_torch(array: np.ndarray, requires_grad: bool) -> Any:
    return torch.from_numpy(np.array(array)).requires_grad_(requires_grad)


def tape_ops(outputs: list[Tensor]) -> set[type[Function]]:
    """The Function classes on the tape behind `outputs`, found by walking creator.inputs."""
    found, seen, stack = set(), set(), list(outputs)
    while stack:
        node = stack.pop()
        if id(node) in seen or node.creator is None:
            continue
        seen.add(id(node))
        found.add(type(node.creator))
        stack.extend(node.creator.inputs)
    return found


def tape_nodes(outputs: list[Tensor]) -> list[Tensor]:
    nodes, seen, stack = [], set(), list(outputs)
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        nodes.append(node)
        if node.creator is not None:
            stack.extend(node.creator.inputs)
    return nodes


def import_primitive_modules() -> None:
    """Import every module that may define primitives, so all_primitives() sees them."""
    for package_name in ("descend.ops", "descend.nn"):
        try:
            package = importlib.import_module(package_name)
        except ModuleNotFoundError as error:
            if error.name == package_name:
                continue
            raise
        for info in pkgutil.walk_packages(package.__path__, package_name + "."):
            try:
                importlib.import_module(info.name)
            except ModuleNotFoundError as error:
                if error.name and error.name.split(".")[0] == "descend":
                    raise
                # an optional third-party dependency is missing; its module cannot define a reachable op


def concrete_primitives() -> list[type[Function]]:
    import_primitive_modules()
    return [
        cls
        for cls in all_primitives()
        if cls.__module__.startswith("descend.")
        and not inspect.isabstract(cls)
        and cls.forward is not Function.forward
        and cls.backward is not Function.backward
    ]


# -- the table itself --------------------------------------------------------------
def test_row_names_are_unique():
    names = [r.name for r in ROWS]
    assert len(names) == len(set(names))


def test_every_primitive_has_a_row():
    """A primitive without a row fails: the ops are read off each row's tape, not its declaration."""
    exercised: set[type[Function]] = set()
    for row in ROWS:
        arrays = row.make(rng_for(row))
        exercised |= tape_ops(as_list(row.fn(*make_tensors(row, arrays))))
    missing = [f"{cls.__module__}.{cls.__qualname__}" for cls in concrete_primitives() if cls not in exercised]
    assert not missing, f"primitives with no row in tests/op_table.py: {missing}"


@rows
def test_row_declares_the_ops_it_runs(row: OpRow):
    arrays = row.make(rng_for(row))
    tensors = make_tensors(row, arrays)
    assert any(t.requires_grad for t in tensors), "a row needs at least one differentiable input"
    found = tape_ops(as_list(row.fn(*tensors)))
    assert found == set(row.ops), f"the tape holds {sorted(c.__name__ for c in found)}"


# -- (a) forward ----------------------------------------------------------------------
@rows
def test_forward_matches_reference(row: OpRow):
    arrays = row.make(rng_for(row))
    outputs = forward_arrays(row, arrays)
    if row.reference is not None:
        expected = [np.asarray(e) for e in as_list(row.reference(*arrays))]
    elif torch is not None and row.torch_fn is not None:
        expected = [e.numpy() for e in as_list(row.torch_fn(*(to_torch(a, False) for a in arrays)))]
    else:
        pytest.skip("no NumPy reference, and torch is not importable")
    assert len(outputs) == len(expected)
    for out, want in zip(outputs, expected):
        assert out.dtype == np.float64
        assert out.shape == want.shape
        np.testing.assert_allclose(out, want, rtol=1e-10, atol=1e-12)


@rows
def test_no_grad_records_nothing(row: OpRow):
    arrays = row.make(rng_for(row))
    with dc.no_grad():
        outputs = as_list(row.fn(*make_tensors(row, arrays)))
    assert all(out.creator is None and not out.requires_grad for out in outputs)


# -- (b) float64 central differences ------------------------------------------------------
@rows
def test_vjp_matches_central_differences_along_random_directions(row: OpRow):
    """<VJP(u), v> = d/dt <u, f(x + tv)>: one scalar per direction, whatever the size."""
    rng = rng_for(row, "directions")
    arrays = row.make(rng)
    diff = row.differentiable(arrays)
    cotangents = cotangents_for(forward_arrays(row, arrays), rng)
    grads = descend_vjp(row, arrays, cotangents)
    for i, grad in zip(diff, grads):
        assert grad.shape == arrays[i].shape and grad.dtype == np.float64
    assert_agrees_along_random_directions(row, arrays, cotangents, diff, grads, rng)


@rows
def test_vjp_matches_central_differences_elementwise(row: OpRow):
    rng = rng_for(row, "elementwise")
    arrays = row.make(rng)
    diff = row.differentiable(arrays)
    if sum(arrays[i].size for i in diff) > FULL_CHECK_MAX_SIZE:
        pytest.skip("large input: the random-direction check covers it")
    cotangents = cotangents_for(forward_arrays(row, arrays), rng)
    # the users' own check (dc.gradcheck), with the table's step and tolerances
    assert dc.gradcheck(row.fn, *arrays, wrt=diff, eps=STEP, rtol=FD_RTOL, atol=noise_floor(row, arrays, cotangents),
                        cotangents=cotangents)


SEVERAL_OUTPUTS = [row for row in ROWS if len(forward_arrays(row, row.make(rng_for(row)))) > 1]


@pytest.mark.parametrize("row", SEVERAL_OUTPUTS, ids=[r.name for r in SEVERAL_OUTPUTS])
def test_every_output_in_one_sweep_matches_central_differences(row: OpRow):
    """<u, f(x)> over all the outputs at once, one backward: an op with several outputs gets all their gradients."""
    rng = rng_for(row, "one sweep")
    arrays = row.make(rng)
    diff = row.differentiable(arrays)
    cotangents = cotangents_for(forward_arrays(row, arrays), rng)
    tensors = make_tensors(row, arrays)
    outputs = as_list(row.fn(*tensors))
    sum((out * dc.tensor(u, dtype=np.float64)).sum() for out, u in zip(outputs, cotangents)).backward()
    grads = [np.zeros_like(arrays[i]) if tensors[i].grad is None else tensors[i].grad for i in diff]
    assert_agrees_along_random_directions(row, arrays, cotangents, diff, grads, rng)


# -- (c) PyTorch as the oracle --------------------------------------------------------------
@rows
def test_matches_torch_autograd(row: OpRow):
    if torch is None:
        skip_outside_ci("torch is not importable: the PyTorch oracle is skipped")
    if row.torch_fn is None:
        pytest.skip("this row has no PyTorch twin")
    rng = rng_for(row, "torch")
    arrays = row.make(rng)
    diff = row.differentiable(arrays)
    torch_inputs = [to_torch(a, i in diff) for i, a in enumerate(arrays)]
    torch_outputs = as_list(row.torch_fn(*torch_inputs))
    outputs = forward_arrays(row, arrays)
    assert len(outputs) == len(torch_outputs)
    for out, want in zip(outputs, torch_outputs):
        want = want.detach().numpy()
        assert out.shape == want.shape
        np.testing.assert_allclose(out, want, rtol=TORCH_RTOL, atol=1e-12)
    cotangents = cotangents_for(outputs, rng)
    torch_grads = torch.autograd.grad(
        torch_outputs,
        [torch_inputs[i] for i in diff],
        grad_outputs=[torch.from_numpy(u) for u in cotangents],
        allow_unused=True,
    )
    for i, grad, want in zip(diff, descend_vjp(row, arrays, cotangents), torch_grads):
        want = np.zeros_like(arrays[i]) if want is None else want.numpy()
        np.testing.assert_allclose(grad, want, rtol=TORCH_RTOL, atol=1e-12, err_msg=f"input {i}")


# -- (e) float32 stays float32 ------------------------------------------------------------
@rows
def test_float32_stays_float32(row: OpRow):
    """Forward values, every adjoint of the reverse sweep and the leaf gradients: all float32."""
    rng = rng_for(row, "float32")
    arrays = row.make(rng)
    tensors = make_tensors(row, arrays, dtype=np.float32)
    outputs = as_list(row.fn(*tensors))
    for node in tape_nodes(outputs):
        if node.requires_grad:
            assert node.dtype == np.float32, f"{node!r} on the tape"
    for out in outputs:
        seed = rng.standard_normal(out.shape).astype(np.float32)
        for node, adjoint, contributions in reverse_sweep(out, np.asarray(seed), retain_graph=True):
            assert adjoint.dtype == np.float32, f"adjoint of {node!r}"
            for parent, grad in contributions:
                assert grad.dtype == np.float32, f"{type(node.creator).__name__} backward gives {grad.dtype}"
    for k, out in enumerate(outputs):
        out.backward(np.ones(out.shape, dtype=np.float32), retain_graph=k + 1 < len(outputs))
    for t in tensors:
        if t.requires_grad:
            assert t.grad is not None and t.grad.dtype == np.float32 and t.grad.shape == t.shape

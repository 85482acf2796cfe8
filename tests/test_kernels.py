"""The compiled kernels (descend.kernels) against the NumPy reference in descend/ops, and the switch between them.

Each kernel-backed op runs once on the reference and once on the kernels, from
the same inputs and upstream gradient. Where a kernel does the reference's
operations in the reference's order (pooling, ReLU, the dense bias, the
optimizers) the outputs and gradients must be the same bits; where it does
not (the float32 tanh of the recurrent cells, sums in another order in
log-softmax, squash and a convolution's bias gradient, a convolution's
products over columns in another order) they must agree to rounding: CLOSE
says how close.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numba
import numpy as np
import pytest

import descend as dc
from descend import kernels, nn, ops, optim
from descend.errors import DescendTypeError, DescendValueError, ShapeError
from descend.kernels import compiler
from descend.kernels.cpu import CPUKernels

FLOATS = (np.float32, np.float64)
#: for the kernels that round differently from NumPy: the largest difference allowed, as a fraction of the
#: array's largest magnitude (about 100 units in the last place of each dtype: a recurrent op's gradient gathers
#: the tanh's rounding of every step)
CLOSE = {np.float32: 1e-5, np.float64: 1e-13}


@pytest.fixture(params=["threads", "one thread"], autouse=True)
def kernel_builds(request, monkeypatch):
    """Every test runs on both builds of each kernel: split over threads (whatever the size) and on one thread."""
    monkeypatch.setattr(compiler, "PARALLEL_WORK", 0 if request.param == "threads" else 1 << 62)
    return request.param


def forward_and_backward(fn, arrays, seed: int = 1) -> list[np.ndarray]:
    """The output of fn on `arrays` and every input's gradient for a random upstream gradient."""
    tensors = [dc.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*tensors)
    upstream = np.random.default_rng(seed).standard_normal(out.shape).astype(out.dtype)
    (out * dc.tensor(upstream)).sum().backward()
    return [out.data, *(t.grad for t in tensors)]


def both_ways(fn, *arrays) -> tuple[list[np.ndarray], list[np.ndarray]]:
    with kernels.using("numpy"):
        reference = forward_and_backward(fn, arrays)
    with kernels.using("numba"):
        compiled = forward_and_backward(fn, arrays)
    return reference, compiled


def assert_same_bits(reference, compiled):
    for expected, got in zip(reference, compiled, strict=True):
        assert got.dtype == expected.dtype and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)


def assert_close(reference, compiled, dtype):
    for expected, got in zip(reference, compiled, strict=True):
        assert got.dtype == expected.dtype and got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=0, atol=CLOSE[dtype] * max(1.0, np.abs(expected).max()))


#: memory orders of NCHW images: C order, channel-major (the reference's convolution output) and batch-last
#: (the kernels' convolution output), each axis listed outermost first
LAYOUTS = {"C order": (0, 1, 2, 3), "channel-major": (1, 0, 2, 3), "batch-last": (1, 2, 3, 0)}


def images(shape, dtype, seed=0, layout="C order"):
    """Random NCHW images whose numbers lie in memory in one of the LAYOUTS (a transposed view)."""
    order = LAYOUTS[layout]
    values = np.random.default_rng(seed).standard_normal([shape[axis] for axis in order]).astype(dtype)
    return values.transpose(np.argsort(order))


# -- same bits -------------------------------------------------------------------------------------------------
POOLS = {
    "2x2": dict(kernel_size=2),
    "3x3 stride 2 padding 1 (overlapping)": dict(kernel_size=3, stride=2, padding=1),
    "3x3 stride 1 (nine windows a pixel)": dict(kernel_size=3, stride=1),
    "kernel = image": dict(kernel_size=(7, 6)),
    "stride > kernel": dict(kernel_size=2, stride=3),
    "1x3 padding (0, 1)": dict(kernel_size=(1, 3), padding=(0, 1)),
    "2x2 on odd sizes": dict(kernel_size=2),
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("pool", [ops.max_pool2d, ops.avg_pool2d], ids=["max", "avg"])
@pytest.mark.parametrize("config", POOLS.values(), ids=POOLS.keys())
@pytest.mark.parametrize("batch, layout", [(1, "C order"), (3, "channel-major"), (3, "batch-last")])
def test_pooling_gives_the_reference_bits(dtype, pool, config, batch, layout):
    x = images((batch, 2, 7, 5 if config is POOLS["2x2 on odd sizes"] else 6), dtype, layout=layout)
    assert_same_bits(*both_ways(lambda t: pool(t, **config), x))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_max_pool_ties_nan_and_minus_infinity_follow_the_reference(layout):
    x = images((2, 1, 4, 4), np.float32, layout=layout)
    x[...] = 0  # all ties: the first position of each window takes the gradient
    x[:, 0, 0, 2], x[:, 0, 3, 3] = np.nan, -np.inf
    x[:, 0, 2:, :2] = -np.inf  # a window of −∞ only
    reference, compiled = both_ways(lambda t: ops.max_pool2d(t, 2), x)
    assert_same_bits(reference, compiled)
    assert np.isnan(compiled[0][0, 0, 0, 1]) and compiled[1][0, 0, 0, 2:].tolist() == [0, 0]


CONVS = {
    "3x3 padding 1": dict(padding=1),
    "stride 2 dilation 2 padding 2": dict(stride=2, padding=2, dilation=2),
    "kernel = image": dict(),
    "stride > kernel": dict(stride=4),
    "groups 2": dict(padding=1, groups=2),
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", CONVS)
@pytest.mark.parametrize("batch", [1, 2])
def test_convolution_agrees_with_the_reference(dtype, name, batch):
    config = CONVS[name]
    kernel = (7, 6) if name == "kernel = image" else (3, 3)
    x = images((batch, 4, 7, 6), dtype, layout="batch-last" if batch == 2 else "C order")
    weight = np.random.default_rng(2).standard_normal((6, 4 // config.get("groups", 1), *kernel)).astype(dtype)
    bias = np.random.default_rng(3).standard_normal(6).astype(dtype)
    # im2col and col2im copy and add exactly as the reference, but the kernels' columns have the batch last, and
    # BLAS may round a product's columns in another order; the bias gradient sums in lanes
    assert_close(*both_ways(lambda *t: ops.conv2d(*t, **config), x, weight, bias), dtype)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("layout", [*LAYOUTS, "strided"])
def test_relu_gives_the_reference_bits_in_any_layout(dtype, layout):
    x = images((3, 4, 5, 6), dtype, layout=layout if layout in LAYOUTS else "C order")
    if layout == "strided":
        x = x[:, ::2, :, 1:]
    x.reshape(-1)[:3] = [np.nan, 0.0, -0.0] if layout != "strided" else x.reshape(-1)[:3]
    reference, compiled = both_ways(ops.relu, x)
    assert_same_bits(reference, compiled)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("rows", [1, 5, 300])
def test_dense_layer_bias_gives_the_reference_bits(dtype, rows):
    rng = np.random.default_rng(4)
    x, weight, bias = (rng.standard_normal(shape).astype(dtype) for shape in ((rows, 7), (7, 3), (3,)))
    assert_same_bits(*both_ways(ops.linear, x, weight, bias))


OPTIMIZERS = {
    "SGD": lambda p: optim.SGD(p, lr=0.1),
    "SGD momentum": lambda p: optim.SGD(p, lr=0.1, momentum=0.9),
    "SGD Nesterov, L2 and L1": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3, l1=1e-4),
    "SGD momentum ramp and decay": lambda p: optim.SGD(p, lr=0.1, momentum=optim.MomentumRamp(0.5, 3, 0.99),
                                                       schedule=optim.StepDecay(2, 0.5)),
    "Adam": lambda p: optim.Adam(p, lr=0.01),
    "Adam with L2": lambda p: optim.Adam(p, lr=0.01, betas=(0.8, 0.99), weight_decay=0.01),
    "RMSprop": lambda p: optim.RMSprop(p, lr=0.01),
    "RMSprop momentum": lambda p: optim.RMSprop(p, lr=0.01, momentum=0.5, weight_decay=0.01),
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_updates_give_the_reference_bits(dtype, name):
    """Five steps over a buffer longer than the reference's chunk, so the chunking is crossed too."""
    results = []
    for backend in ("numpy", "numba"):
        with kernels.using(backend):
            weights = nn.Parameter(np.random.default_rng(5).standard_normal(70_000), dtype=dtype)
            optimizer = OPTIMIZERS[name]([weights])
            grads = np.random.default_rng(6)
            for _ in range(5):
                weights.grad[...] = grads.standard_normal(weights.shape)
                optimizer.step()
            results.append([weights.data.copy(), *(state.copy() for state in optimizer.state.values())])
    assert_same_bits(*results)


# -- to a few units in the last place --------------------------------------------------------------------------
def recurrent_arrays(dtype, gates: int, steps=5, batch=3, features=4, size=6):
    rng = np.random.default_rng(7)
    shapes = [(steps, batch, features), (batch, size), (batch, size), (features, gates * size), (size, gates * size),
              (gates * size,), (gates * size,)]
    if gates == 3:
        shapes.pop(2)  # a GRU has no cell state
    return [(rng.standard_normal(shape) * 0.5).astype(dtype) for shape in shapes]


def lstm_everything(*tensors, reverse=False):
    """All three outputs of the LSTM in one scalar-free tensor, so the gradient reaches through each."""
    outputs, h_n, c_n = ops.lstm(*tensors, reverse=reverse)
    return ops.concat([outputs.reshape(-1), h_n.reshape(-1), (c_n * 3.0).reshape(-1)], axis=0)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("batch", [1, 3])
def test_lstm_agrees_with_the_reference(dtype, reverse, batch):
    arrays = recurrent_arrays(dtype, 4, batch=batch)
    assert_close(*both_ways(lambda *t: lstm_everything(*t, reverse=reverse), *arrays), dtype)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("batch", [1, 3])
def test_gru_agrees_with_the_reference(dtype, reverse, batch):
    arrays = recurrent_arrays(dtype, 3, batch=batch)
    assert_close(*both_ways(lambda *t: ops.gru(*t, reverse=reverse), *arrays), dtype)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("classes", [1, 3, 65])
def test_softmax_cross_entropy_agrees_with_the_reference(dtype, classes):
    rng = np.random.default_rng(8)
    logits = (rng.standard_normal((40, classes)) * 10).astype(dtype)
    labels = rng.integers(0, classes, 40)
    assert_close(*both_ways(lambda t: ops.cross_entropy(t, labels), logits), dtype)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(5, 8), (2, 10, 3, 16), (4, 1)])
def test_squash_agrees_with_the_reference(dtype, shape):
    s = np.random.default_rng(9).standard_normal(shape).astype(dtype)
    s.reshape(-1, shape[-1])[0] = 0  # a zero vector: finite gradient both ways
    assert_close(*both_ways(ops.squash, s), dtype)


# -- the ops really run on the kernels, and only on the dtypes they are built for --------------------------------
def test_every_kernel_of_the_interface_is_reached_by_an_op(monkeypatch):
    called = set()
    for name in [n for n in vars(kernels.Kernels) if not n.startswith("_")]:
        original = getattr(CPUKernels, name)
        monkeypatch.setattr(CPUKernels, name, lambda self, *a, _name=name, _original=original, **k:
                            (called.add(_name), _original(self, *a, **k))[1])
    with kernels.using("numba"):
        x = images((2, 2, 6, 6), np.float32)
        weight = np.ones((3, 2, 3, 3), np.float32)
        forward_and_backward(lambda t, w, b: ops.avg_pool2d(ops.max_pool2d(ops.relu(ops.conv2d(t, w, b)), 2), 2),
                             [x, weight, np.ones(3, np.float32)])
        forward_and_backward(lambda *t: ops.cross_entropy(ops.linear(*t), np.array([0, 1])),
                             [np.ones((2, 3), np.float32), np.ones((3, 4), np.float32), np.ones(4, np.float32)])
        forward_and_backward(ops.squash, [np.ones((3, 4), np.float32)])
        forward_and_backward(lstm_everything, recurrent_arrays(np.float32, 4))
        forward_and_backward(ops.gru, recurrent_arrays(np.float32, 3))
        for make in (lambda p: optim.SGD(p, lr=0.1), lambda p: optim.Adam(p), lambda p: optim.RMSprop(p)):
            make([nn.Parameter(np.ones(3, np.float32))]).step()
    assert called == {n for n in vars(kernels.Kernels) if not n.startswith("_")}


def test_other_dtypes_and_mixed_dtypes_run_the_reference():
    with kernels.using("numba"):
        assert kernels.for_arrays(np.ones(2, np.float32)) is kernels.current()
        assert kernels.for_arrays(np.ones(2, np.float16)) is None
        assert kernels.for_arrays(np.ones(2, np.int64)) is None
        assert kernels.for_arrays(np.ones(2, np.float32), np.ones(2, np.float64)) is None
        assert ops.relu(dc.tensor(np.array([-1, 2]))).data.tolist() == [0, 2]


# -- determinism ---------------------------------------------------------------------------------------------------
def train_cnn_and_lstm_briefly() -> list[np.ndarray]:
    rng = np.random.default_rng(10)
    x, y = rng.standard_normal((64, 1, 8, 8)).astype(np.float32), rng.integers(0, 3, 64)
    cnn = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, rng=0), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(64, 3, rng=0))
    dc.fit(cnn, nn.CrossEntropyLoss(), optim.SGD(cnn.parameters(), lr=0.1, momentum=0.9), (x, y), epochs=2,
           batch_size=16, seed=0, progress=False)
    text = rng.integers(0, 5, (32, 9))
    lstm = nn.CharRNN(5, embed=4, hidden=8, cell="lstm", rng=0)
    dc.fit(lstm, nn.CrossEntropyLoss(), optim.Adam(lstm.parameters()), (text[:, :-1], text[:, 1:]), epochs=2,
           batch_size=8, seed=0, progress=False)
    return [cnn.flat_buffer().data.copy(), lstm.flat_buffer().data.copy()]


def test_training_gives_the_same_bits_run_after_run_and_for_any_kernel_thread_count():
    with kernels.using("numba"):
        runs = []
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS), min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            runs.append(train_cnn_and_lstm_briefly())
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    for run in runs[1:]:
        assert_same_bits(runs[0], run)


# -- the switch ----------------------------------------------------------------------------------------------------
def test_the_environment_variable_picks_the_kernels_and_a_wrong_value_is_named():
    script = "from descend import kernels; print(kernels.backend_name(), kernels.current())"
    run = lambda value: subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                       env={**os.environ, "DESCEND_KERNELS": value})
    assert run("numpy").stdout.split() == ["numpy", "None"]
    assert run("numba").stdout.startswith("numba <descend.kernels.cpu.CPUKernels")
    wrong = run("cuda")
    assert wrong.returncode != 0 and "$DESCEND_KERNELS must be one of 'numba', 'numpy'; got 'cuda'" in wrong.stderr


def test_use_refuses_an_unknown_backend_and_using_restores_the_previous_one():
    before = kernels.backend_name()
    with pytest.raises(DescendValueError, match="one of 'numba', 'numpy'; got 'gpu'"):
        kernels.use("gpu")
    with pytest.raises(RuntimeError):
        with kernels.using("numpy" if before == "numba" else "numba"):
            raise RuntimeError
    assert kernels.backend_name() == before


def test_set_threads_sets_blas_and_kernel_threads():
    from threadpoolctl import threadpool_info

    try:
        kernels.set_threads(1)
        assert numba.get_num_threads() == 1
        assert all(pool["num_threads"] == 1 for pool in threadpool_info() if pool["user_api"] == "blas")
    finally:
        kernels.set_threads(numba.config.NUMBA_NUM_THREADS)
    with pytest.raises(DescendValueError, match="threads"):
        kernels.set_threads(0)


# -- what a kernel refuses before its loop runs --------------------------------------------------------------------
CPU = CPUKernels()
F32 = np.float32


@pytest.mark.parametrize("call, error, words", [
    (lambda: CPU.max_pool2d(np.ones((1, 1, 4, 4), F32), (2, 2), (2, 2), (0, 0), (3, 3)), ShapeError,
     "output size (3, 3) does not follow"),
    (lambda: CPU.max_pool2d(np.ones((1, 4, 4), F32), (2, 2), (2, 2), (0, 0), (2, 2)), ShapeError, "(N, C, H, W)"),
    (lambda: CPU.max_pool2d(np.ones((1, 1, 4, 4), np.int32), (2, 2), (2, 2), (0, 0), (2, 2)), DescendTypeError,
     "float32 or float64"),
    (lambda: CPU.max_pool2d(np.ones((1, 1, 1, 1), F32), (2, 2), (2, 2), (0, 0), (1, 1)), ShapeError,
     "does not follow"),
    (lambda: CPU.max_pool2d_backward(np.ones((1, 1, 2, 2), F32), np.zeros((1, 1, 2, 2), np.int8),
                                    np.ones((1, 1, 4, 4), F32), (2, 2), (2, 2), (0, 0)),
     ShapeError, "where (int32)"),
    (lambda: CPU.im2col(np.ones((1, 1, 4, 4), F32), (3, 3), (0, 1), (0, 0), (1, 1), (2, 2)), ShapeError, ">= 1"),
    (lambda: CPU.col2im(np.ones((1, 3, 3, 2, 2, 2), F32), (1, 1, 4, 4), (1, 1), (0, 0), (1, 1)), ShapeError,
     "do not fit"),
    (lambda: CPU.add_channel_bias(np.ones((3, 4), F32)[:, ::2], np.ones(3, F32)), ShapeError, "C-ordered"),
    (lambda: CPU.channel_sums(np.ones(3, F32)), ShapeError, "(O, M)"),
    (lambda: CPU.relu_backward(np.ones(3, F32), np.ones(4, bool)), ShapeError, "positive must have shape (3,)"),
    (lambda: CPU.add_bias(np.ones((2, 3), F32), np.ones(3, np.float64)), DescendTypeError, "one dtype"),
    (lambda: CPU.lstm_step(*(np.ones((2, 12), F32),) * 2, np.ones((2, 3), F32), np.ones((2, 3), F32),
                           np.ones((2, 4), F32), None, None), ShapeError, "hidden must have shape (2, 3)"),
    (lambda: CPU.lstm_step(np.ones((2, 24), F32)[:, ::2], np.ones((2, 12), F32), *(np.ones((2, 3), F32),) * 3,
                           None, None), ShapeError, "gates must be C-ordered"),
    (lambda: CPU.sgd(np.ones(3, F32), np.ones(4, F32), None, 0.1, 0.0, False, 0.0, 0.0), ShapeError, "one length"),
    (lambda: CPU.softmax_cross_entropy_grad(np.zeros((2, 3), F32), np.array([0, 3]), 1.0), ShapeError,
     "[0, 3)"),
    (lambda: CPU.log_softmax_rows(np.zeros((2, 0), F32)), ShapeError, "C >= 1"),
])
def test_a_kernel_refuses_arrays_its_loop_cannot_take(call, error, words):
    with pytest.raises(error) as caught:
        call()
    assert words in str(caught.value)


def test_empty_batches_run_and_empty_sequences_are_refused():
    with kernels.using("numba"):
        empty = np.zeros((0, 2, 4, 4), F32)
        out = forward_and_backward(lambda t, w: ops.max_pool2d(ops.relu(ops.conv2d(t, w, padding=1)), 2),
                                   [empty, np.ones((3, 2, 3, 3), F32)])
        assert out[0].shape == (0, 3, 2, 2) and out[1].shape == empty.shape
        arrays = recurrent_arrays(F32, 4, steps=1)
        arrays[0] = arrays[0][:0]
        with pytest.raises(ShapeError, match="at least one time step"):
            ops.lstm(*arrays)

"""descend.optim: against torch.optim, on problems with closed-form answers, bad input, and resuming."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from descend.errors import DescendError, DescendTypeError, DescendValueError, ShapeError
from descend.nn.parameter import Parameter, ParameterBuffer
from descend.optim import (
    SGD, Adadelta, Adam, CosineDecay, ExponentialDecay, InverseTimeDecay, MaxNorm, MomentumRamp, RMSprop,
    StepDecay, build_schedule, l1_penalty, l2_penalty,
)

try:
    import torch
except ImportError:
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed; it is the oracle for these tests")

SHAPES = [(3, 4), (4,), (2, 2, 3)]
FAN_IN_AXES = [(0,), None, (1, 2)]  # a dense weight, a bias, a conv-like kernel (out, in, width)


def make_params(seed: int = 0) -> list[Parameter]:
    rng = np.random.default_rng(seed)
    return [
        Parameter(rng.normal(size=shape), dtype=np.float64, fan_in_axes=axes)
        for shape, axes in zip(SHAPES, FAN_IN_AXES)
    ]


def set_gradient(optimizer, flat: np.ndarray, torch_params=None) -> None:
    optimizer.buffer.grad[...] = flat
    if torch_params is not None:
        for tensor, view in zip(torch_params, optimizer.buffer.views(flat)):
            tensor.grad = torch.from_numpy(view.copy())


# -- (a) against torch.optim ------------------------------------------------------------------
PARITY = {
    "sgd": (lambda ps: SGD(ps, lr=0.1), lambda ts: torch.optim.SGD(ts, lr=0.1)),
    "sgd-momentum": (lambda ps: SGD(ps, lr=0.1, momentum=0.9), lambda ts: torch.optim.SGD(ts, lr=0.1, momentum=0.9)),
    "sgd-nesterov": (
        lambda ps: SGD(ps, lr=0.05, momentum=0.8, nesterov=True),
        lambda ts: torch.optim.SGD(ts, lr=0.05, momentum=0.8, nesterov=True),
    ),
    "sgd-weight-decay": (
        lambda ps: SGD(ps, lr=0.1, momentum=0.5, weight_decay=0.01),
        lambda ts: torch.optim.SGD(ts, lr=0.1, momentum=0.5, weight_decay=0.01),
    ),
    "adam": (
        lambda ps: Adam(ps, lr=0.01, betas=(0.8, 0.99), eps=1e-6),
        lambda ts: torch.optim.Adam(ts, lr=0.01, betas=(0.8, 0.99), eps=1e-6),
    ),
    "adam-weight-decay": (
        lambda ps: Adam(ps, weight_decay=0.1),
        lambda ts: torch.optim.Adam(ts, weight_decay=0.1),
    ),
    "rmsprop": (lambda ps: RMSprop(ps, lr=0.01, alpha=0.9), lambda ts: torch.optim.RMSprop(ts, lr=0.01, alpha=0.9)),
    "rmsprop-momentum": (
        lambda ps: RMSprop(ps, lr=0.01, momentum=0.8, weight_decay=0.01),
        lambda ts: torch.optim.RMSprop(ts, lr=0.01, momentum=0.8, weight_decay=0.01),
    ),
    "adadelta": (
        lambda ps: Adadelta(ps, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.01),
        lambda ts: torch.optim.Adadelta(ts, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.01),
    ),
    "adadelta-h2o-defaults": (
        lambda ps: Adadelta(ps),
        lambda ts: torch.optim.Adadelta(ts, lr=1.0, rho=0.99, eps=1e-8),
    ),
}


@needs_torch
@pytest.mark.parametrize("name", PARITY)
def test_matches_torch_optim(name):
    make_ours, make_theirs = PARITY[name]
    params = make_params()
    torch_params = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    ours, theirs = make_ours(params), make_theirs(torch_params)
    rng = np.random.default_rng(1)
    for _ in range(20):
        gradient = rng.normal(size=ours.buffer.size)
        set_gradient(ours, gradient, torch_params)
        ours.step()
        theirs.step()
        np.testing.assert_array_equal(ours.buffer.grad, gradient)  # the update never writes to grad
    for p, t in zip(params, torch_params):
        np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-10, atol=1e-13)


@needs_torch
@pytest.mark.parametrize(
    "ours, make_theirs",
    [
        (StepDecay(step_size=3, gamma=0.5), lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)),
        (ExponentialDecay(gamma=0.9), lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)),
        (
            CosineDecay(total_steps=10, min_lr=0.01),
            lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10, eta_min=0.01),
        ),
    ],
    ids=["StepLR", "ExponentialLR", "CosineAnnealingLR"],
)
def test_schedule_matches_torch_lr_scheduler(ours, make_theirs):
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.5)
    scheduler = make_theirs(optimizer)
    for step in range(11):
        assert ours(0.5, step) == pytest.approx(optimizer.param_groups[0]["lr"], rel=1e-12, abs=1e-15)
        optimizer.step()
        scheduler.step()


@needs_torch
def test_sgd_with_schedule_and_momentum_ramp_matches_torch():
    ramp = MomentumRamp(start=0.5, ramp_steps=8, stable=0.9)
    params = make_params()
    torch_params = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    ours = SGD(params, lr=0.2, momentum=ramp, nesterov=True, schedule=StepDecay(step_size=5, gamma=0.5))
    theirs = torch.optim.SGD(torch_params, lr=0.2, momentum=0.5, nesterov=True)
    scheduler = torch.optim.lr_scheduler.StepLR(theirs, step_size=5, gamma=0.5)
    rng = np.random.default_rng(2)
    for step in range(15):
        theirs.param_groups[0]["momentum"] = ramp(step)
        set_gradient(ours, rng.normal(size=ours.buffer.size), torch_params)
        assert ours.lr == pytest.approx(theirs.param_groups[0]["lr"], rel=1e-12)
        ours.step()
        theirs.step()
        scheduler.step()
    for p, t in zip(params, torch_params):
        np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-10, atol=1e-13)


# -- the flat buffer -----------------------------------------------------------------------------
def test_optimizer_updates_the_models_own_buffer_in_place():
    params = make_params()
    model_buffer = ParameterBuffer.of(params)  # what Module.flat_buffer() makes
    optimizer = SGD(params, lr=0.5, momentum=0.9)
    assert optimizer.buffer is model_buffer
    data = optimizer.buffer.data
    before = data.copy()
    optimizer.buffer.grad[...] = 1.0
    optimizer.step()
    assert optimizer.buffer.data is data
    assert all(np.shares_memory(p.data, data) for p in params)
    np.testing.assert_allclose(data, before - 0.5)
    optimizer.zero_grad()
    assert not any(p.grad.any() for p in params)


# -- (b) closed-form problems ---------------------------------------------------------------------
TARGET = np.array([1.5, -2.0, 0.5])

CONVERGING = {
    "sgd": (lambda ps: SGD(ps, lr=0.1), 300),
    "momentum": (lambda ps: SGD(ps, lr=0.05, momentum=0.9), 400),
    "nesterov": (lambda ps: SGD(ps, lr=0.05, momentum=0.9, nesterov=True), 300),
    "ramp": (lambda ps: SGD(ps, lr=0.05, momentum=MomentumRamp(0.5, 50, 0.9)), 400),
    # adaptive steps stay about lr long near the minimum: a decaying rate lets them settle
    "adam": (lambda ps: Adam(ps, lr=0.1, schedule=InverseTimeDecay(0.02)), 500),
    "rmsprop": (lambda ps: RMSprop(ps, lr=0.05, schedule=CosineDecay(500)), 500),
    "adadelta": (lambda ps: Adadelta(ps, lr=1.0, rho=0.9, eps=1e-4), 500),
}


@pytest.mark.parametrize("name", CONVERGING)
def test_descends_a_quadratic_to_its_minimum(name):
    """0.5 · ‖w − a‖² with gradients from descend's backward(); the minimum is w = a."""
    make, steps = CONVERGING[name]
    w = Parameter(np.zeros(3), dtype=np.float64)
    optimizer = make([w])
    for _ in range(steps):
        optimizer.zero_grad()
        difference = w - TARGET
        (0.5 * (difference * difference).sum()).backward()
        optimizer.step()
    np.testing.assert_allclose(w.data, TARGET, atol=1e-8)


def _least_squares_problem():
    rng = np.random.default_rng(3)
    x = rng.normal(size=50)
    return x, 2.0 * x + rng.normal(scale=0.1, size=50)


def _fit_least_squares(optimizer, w, x, y, penalty=None, steps=300):
    for _ in range(steps):
        optimizer.zero_grad()
        residual = w * x - y
        loss = 0.5 * (residual * residual).mean()
        if penalty is not None:
            loss = loss + penalty()
        loss.backward()
        optimizer.step()


def test_weight_decay_reaches_the_ridge_solution():
    """min ½·mean((w·x − y)²) + ½·λ·w² has w = mean(x·y) / (mean(x²) + λ)."""
    x, y = _least_squares_problem()
    strength = 0.5
    ridge = np.mean(x * y) / (np.mean(x * x) + strength)
    w = Parameter(np.zeros(1), dtype=np.float64)
    _fit_least_squares(SGD([w], lr=0.2, weight_decay=strength), w, x, y)
    np.testing.assert_allclose(w.data, [ridge], rtol=1e-10)
    assert abs(ridge) < abs(np.mean(x * y) / np.mean(x * x))  # it did shrink


def test_l2_penalty_in_the_loss_reaches_the_same_ridge_solution():
    x, y = _least_squares_problem()
    strength = 0.5
    w = Parameter(np.zeros(1), dtype=np.float64, fan_in_axes=(0,))
    _fit_least_squares(SGD([w], lr=0.2), w, x, y, penalty=lambda: l2_penalty([w], strength))
    np.testing.assert_allclose(w.data, [np.mean(x * y) / (np.mean(x * x) + strength)], rtol=1e-10)


def test_sgd_l1_is_the_subgradient_that_l1_penalty_gives():
    rng = np.random.default_rng(4)
    with_l1, with_penalty = make_params(5), make_params(5)
    built_in, by_hand = SGD(with_l1, lr=0.1, momentum=0.9, l1=0.3), SGD(with_penalty, lr=0.1, momentum=0.9)
    for _ in range(10):
        gradient = rng.normal(size=built_in.buffer.size)
        set_gradient(built_in, gradient)
        by_hand.zero_grad()
        l1_penalty(with_penalty, 0.3, include_all=True).backward()
        by_hand.buffer.grad += gradient
        built_in.step()
        by_hand.step()
    np.testing.assert_allclose(built_in.buffer.data, by_hand.buffer.data, rtol=1e-12)


def test_max_norm_clamps_each_units_incoming_norm():
    rng = np.random.default_rng(6)
    dense = rng.normal(size=(5, 3))
    dense *= np.array([0.5, 2.0, 10.0]) / np.linalg.norm(dense, axis=0)
    kernel = rng.normal(size=(2, 4, 3)) * 5.0
    params = [
        Parameter(dense, dtype=np.float64, fan_in_axes=(0,)),
        Parameter(np.full(3, 100.0), dtype=np.float64),
        Parameter(kernel, dtype=np.float64, fan_in_axes=(1, 2)),
    ]
    SGD(params, lr=0.1, max_norm=1.0).step()  # zero gradients: only the constraint acts
    np.testing.assert_allclose(np.linalg.norm(params[0].data, axis=0), [0.5, 1.0, 1.0])
    np.testing.assert_allclose(params[0].data[:, 0], dense[:, 0])  # inside the ball: untouched
    np.testing.assert_allclose(params[0].data[:, 2], dense[:, 2] / 10.0)  # same direction
    np.testing.assert_array_equal(params[1].data, 100.0)  # a bias has no fan-in: never constrained
    np.testing.assert_allclose(np.sqrt((params[2].data ** 2).sum(axis=(1, 2))), 1.0)


def test_max_norm_leaves_an_all_zero_unit_alone():
    w = Parameter(np.zeros((3, 2)), dtype=np.float64, fan_in_axes=(0,))
    with np.errstate(all="raise"):
        MaxNorm([w], max_norm=1.0).apply()
    np.testing.assert_array_equal(w.data, 0.0)


@pytest.mark.parametrize("include_all", [False, True])
def test_penalty_values_and_autodiff_gradients(include_all):
    params = make_params(7)
    chosen = params if include_all else [p for p in params if p.fan_in_axes is not None]
    strength = 0.3
    l1 = l1_penalty(params, strength, include_all=include_all)
    assert l1.item() == pytest.approx(strength * sum(np.abs(p.data).sum() for p in chosen), rel=1e-12)
    l1.backward()
    for p in chosen:
        np.testing.assert_allclose(p.grad, strength * np.sign(p.data), rtol=1e-12)
    for p in params:
        p.zero_grad()
    l2 = l2_penalty(params, strength, include_all=include_all)
    assert l2.item() == pytest.approx(strength / 2 * sum((p.data**2).sum() for p in chosen), rel=1e-12)
    l2.backward()
    for p in chosen:
        np.testing.assert_allclose(p.grad, strength * p.data, rtol=1e-12)
    bias = params[1]
    assert any(bias is p for p in chosen) == include_all
    if not include_all:
        assert bias.grad is None or not bias.grad.any()


def test_schedules_by_hand():
    assert [StepDecay(2, 0.5)(1.0, s) for s in range(5)] == [1.0, 1.0, 0.5, 0.5, 0.25]
    assert InverseTimeDecay(0.1)(2.0, 10) == pytest.approx(1.0)
    cosine = CosineDecay(total_steps=4, min_lr=0.1)
    assert [cosine(1.1, s) for s in (0, 2, 4, 9)] == pytest.approx([1.1, 0.6, 0.1, 0.1])
    ramp = MomentumRamp(start=0.5, ramp_steps=4, stable=0.9)
    assert [ramp(s) for s in (0, 2, 4, 100)] == pytest.approx([0.5, 0.7, 0.9, 0.9])


def test_lr_follows_the_schedule_as_steps_are_taken():
    optimizer = SGD(make_params(), lr=0.4, schedule=ExponentialDecay(0.5))
    rates = []
    for _ in range(4):
        rates.append(optimizer.lr)
        optimizer.step()
    assert rates == pytest.approx([0.4, 0.2, 0.1, 0.05])
    assert optimizer.iterations == 4 and optimizer.base_lr == 0.4


@pytest.mark.parametrize(
    "schedule",
    [
        StepDecay(3, 0.5), ExponentialDecay(0.9), InverseTimeDecay(0.01), CosineDecay(100, 1e-4),
        MomentumRamp(0.4, 7, 0.95),
    ],
)
def test_schedules_round_trip_through_json(schedule):
    rebuilt = build_schedule(json.loads(json.dumps(schedule.describe())))
    assert rebuilt == schedule and rebuilt is not schedule


# -- (c) bad input ----------------------------------------------------------------------------------
BAD_INPUT = [
    (lambda ps: SGD(ps, lr=0), DescendValueError, ["lr", "0", "> 0"]),
    (lambda ps: SGD(ps, lr=-1), DescendValueError, ["lr", "-1"]),
    (lambda ps: SGD(ps, lr=float("nan")), DescendValueError, ["lr", "nan", "finite"]),
    (lambda ps: Adam(ps, lr=math.inf), DescendValueError, ["lr", "inf"]),
    (lambda ps: SGD(ps, lr="0.1"), DescendTypeError, ["lr", "str"]),
    (lambda ps: SGD(ps, lr=0.1, momentum=1.5), DescendValueError, ["momentum", "1.5", "[0, 1)"]),
    (lambda ps: SGD(ps, lr=0.1, momentum=-0.1), DescendValueError, ["momentum"]),
    (lambda ps: SGD(ps, lr=0.1, nesterov=True), DescendValueError, ["nesterov", "momentum"]),
    (lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov="yes"), DescendTypeError, ["nesterov"]),
    (lambda ps: SGD(ps, lr=0.1, weight_decay=-1e-4), DescendValueError, ["weight_decay"]),
    (lambda ps: SGD(ps, lr=0.1, l1=-1.0), DescendValueError, ["l1"]),
    (lambda ps: SGD(ps, lr=0.1, max_norm=0.0), DescendValueError, ["max_norm"]),
    (lambda ps: SGD([ps[1]], lr=0.1, max_norm=1.0), DescendValueError, ["max_norm", "fan_in_axes"]),
    (lambda ps: Adam(ps, betas=(1.0, 0.999)), DescendValueError, ["betas", "[0, 1)"]),
    (lambda ps: Adam(ps, betas=(0.9, -0.5)), DescendValueError, ["betas", "-0.5"]),
    (lambda ps: Adam(ps, betas=(0.9,)), DescendTypeError, ["betas", "two numbers"]),
    (lambda ps: Adam(ps, eps=0.0), DescendValueError, ["eps"]),
    (lambda ps: RMSprop(ps, alpha=1.0), DescendValueError, ["alpha"]),
    (lambda ps: RMSprop(ps, momentum=2.0), DescendValueError, ["momentum"]),
    (lambda ps: Adadelta(ps, rho=1.5), DescendValueError, ["rho"]),
    (lambda ps: SGD(ps, lr=0.1, schedule="cosine"), DescendTypeError, ["schedule", "cosine"]),
    (lambda ps: SGD(ps, lr=0.1, schedule=MomentumRamp()), DescendTypeError, ["schedule", "momentum="]),
    (lambda ps: build_schedule({"class": "Restarts", "config": {}}), DescendValueError, ["schedule", "Restarts"]),
    (lambda ps: build_schedule({"class": "StepDecay", "config": {"steps": 3}}), DescendValueError, ["StepDecay"]),
    (lambda ps: build_schedule("StepDecay"), DescendTypeError, ["schedule", "describe()"]),
    (lambda ps: StepDecay(step_size=0), DescendValueError, ["step_size", ">= 1"]),
    (lambda ps: StepDecay(step_size=2.5), DescendTypeError, ["step_size", "integer"]),
    (lambda ps: StepDecay(step_size=2, gamma=1.5), DescendValueError, ["gamma"]),
    (lambda ps: ExponentialDecay(gamma=0.0), DescendValueError, ["gamma"]),
    (lambda ps: InverseTimeDecay(decay=-1.0), DescendValueError, ["decay"]),
    (lambda ps: CosineDecay(total_steps=0), DescendValueError, ["total_steps"]),
    (lambda ps: CosineDecay(total_steps=10, min_lr=-1.0), DescendValueError, ["min_lr"]),
    (lambda ps: MomentumRamp(start=1.2), DescendValueError, ["start"]),
    (lambda ps: MomentumRamp(ramp_steps=0), DescendValueError, ["ramp_steps"]),
    (lambda ps: MomentumRamp(stable=1.0), DescendValueError, ["stable"]),
    (lambda ps: SGD([], lr=0.1), DescendValueError, ["params", "empty"]),
    (lambda ps: SGD(ps[0], lr=0.1), DescendTypeError, ["params", "Parameter"]),
    (lambda ps: SGD([ps[0], ps[1], ps[0]], lr=0.1), DescendValueError, ["params", "twice", "0 and 2"]),
    (lambda ps: SGD([np.zeros(3)], lr=0.1), DescendTypeError, ["params[0]", "ndarray"]),
    (lambda ps: l2_penalty(ps, -1.0), DescendValueError, ["strength"]),
    (lambda ps: l1_penalty([ps[1]], 0.1), DescendValueError, ["include_all", "fan_in_axes"]),
    (lambda ps: l1_penalty(ps + [np.ones(2)], 0.1), DescendTypeError, ["params[3]"]),
]


@pytest.mark.parametrize("make, error, words", BAD_INPUT)
def test_bad_input_is_refused_with_a_message_that_names_it(make, error, words):
    with pytest.raises(error) as caught:
        make(make_params())
    assert isinstance(caught.value, DescendError) and isinstance(caught.value, (ValueError, TypeError))
    for word in words:
        assert word in str(caught.value)


def test_loading_a_state_that_does_not_fit_is_refused():
    adam, sgd = Adam(make_params()), SGD(make_params(), lr=0.1, momentum=0.9)
    with pytest.raises(DescendValueError, match="Adam.*SGD"):
        sgd.load_state_dict(adam.state_dict())
    other_shapes = SGD([Parameter(np.zeros(5), dtype=np.float64)], lr=0.1, momentum=0.9).state_dict()
    with pytest.raises(ShapeError, match="momentum_buffer"):
        sgd.load_state_dict(other_shapes)
    tampered = sgd.state_dict()
    del tampered["arrays"]["momentum_buffer"]
    with pytest.raises(DescendValueError, match="missing.*momentum_buffer"):
        sgd.load_state_dict(tampered)
    bad_hyperparameters = sgd.state_dict()
    bad_hyperparameters["scalars"]["hyperparameters"]["momentum"] = 3.0
    with pytest.raises(DescendValueError, match="momentum"):
        sgd.load_state_dict(bad_hyperparameters)
    assert sgd.momentum == 0.9  # nothing changed on a refused load


# -- (d) resuming from a state_dict -------------------------------------------------------------
RESUMABLE = {
    "sgd-nesterov-ramp-schedule": lambda ps: SGD(
        ps, lr=0.1, momentum=MomentumRamp(0.5, 12, 0.9), nesterov=True, weight_decay=1e-3, l1=1e-3,
        schedule=StepDecay(4, 0.5), max_norm=2.0,
    ),
    "adam-cosine": lambda ps: Adam(ps, lr=0.01, betas=(0.8, 0.95), schedule=CosineDecay(20, 1e-4)),
    "rmsprop-momentum": lambda ps: RMSprop(ps, lr=0.01, momentum=0.5, schedule=InverseTimeDecay(0.1)),
    "adadelta": lambda ps: Adadelta(ps, weight_decay=1e-2, schedule=ExponentialDecay(0.95)),
}


@pytest.mark.parametrize("name", RESUMABLE)
def test_resuming_from_state_dict_matches_uninterrupted_training(name):
    make = RESUMABLE[name]
    gradients = np.random.default_rng(8).normal(size=(20, sum(math.prod(s) for s in SHAPES)))

    uninterrupted = make(make_params())
    for gradient in gradients:
        set_gradient(uninterrupted, gradient)
        uninterrupted.step()

    first_half = make(make_params())
    for gradient in gradients[:10]:
        set_gradient(first_half, gradient)
        first_half.step()
    saved = first_half.state_dict()
    scalars = json.loads(json.dumps(saved["scalars"]))  # the scalars must survive JSON
    weights = [p.data.copy() for p in first_half.buffer.params]

    resumed_params = [Parameter(w, dtype=np.float64, fan_in_axes=a) for w, a in zip(weights, FAN_IN_AXES)]
    resumed = type(first_half)(resumed_params, lr=0.5)  # other hyperparameters: the load restores the saved ones
    resumed.load_state_dict({"arrays": saved["arrays"], "scalars": scalars})
    assert resumed.iterations == 10 and resumed.lr == first_half.lr
    assert resumed.hyperparameters() == first_half.hyperparameters()
    for gradient in gradients[10:]:
        set_gradient(resumed, gradient)
        resumed.step()
    np.testing.assert_array_equal(resumed.buffer.data, uninterrupted.buffer.data)


def test_state_dict_holds_copies():
    optimizer = SGD(make_params(), lr=0.1, momentum=0.9)
    optimizer.buffer.grad[...] = 1.0
    optimizer.step()
    saved = optimizer.state_dict()
    saved["arrays"]["momentum_buffer"][...] = 0.0
    assert optimizer.state["momentum_buffer"].all()


def test_the_rate_is_settable_between_steps_and_a_schedule_scales_the_new_one():
    w = Parameter([1.0], dtype="float64")
    optimizer = SGD([w], lr=0.5, schedule=StepDecay(1, 0.5))
    w.grad[...] = 1.0
    optimizer.step()  # 1 − 0.5
    optimizer.lr = 0.2
    assert optimizer.base_lr == 0.2 and optimizer.lr == pytest.approx(0.1)  # one step into the decay
    optimizer.step()
    assert w.data.tolist() == pytest.approx([0.4])
    with pytest.raises(DescendValueError, match="lr"):
        optimizer.lr = -1.0

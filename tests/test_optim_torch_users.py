"""Optimizers and schedules as PyTorch users expect them (issue 19, item 6): parameter groups against torch.optim's,
schedules counted in epochs (`optimizer.end_epoch()`, PyTorch's `scheduler.step()`) in a loop of one's own, in fit,
in the other engines and across a checkpoint, and torch's defaults as a preset."""

from __future__ import annotations

import inspect
import json
import math

import numpy as np
import pytest

import descend as dc
from descend import kernels, nn, optim
from descend.errors import DescendError, DescendTypeError, DescendValueError
from descend.nn.parameter import Parameter, ParameterBuffer
from descend.optim import SGD, Adadelta, Adam, CosineDecay, ExponentialDecay, RMSprop, StepDecay, build_optimizer

try:
    import torch
except ImportError:
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed; it is the oracle for these tests")

SHAPES = [(3, 4), (4,), (2, 2, 3)]  # a weight, a bias, a kernel: the weights' group is cut in two by the bias


def make_params(seed: int = 0) -> list[Parameter]:
    """Three parameters in one flat buffer, in this order, as a model's are."""
    rng = np.random.default_rng(seed)
    params = [Parameter(rng.normal(size=shape), dtype=np.float64) for shape in SHAPES]
    ParameterBuffer(params)
    return params


def grouped(params, default_settings: dict, group_settings: list[dict]) -> list[dict]:
    """Groups in torch's form: the weights (params 0 and 2) with the first settings, the bias with the second."""
    members = [[params[0], params[2]], [params[1]]]
    return [{"params": group, **settings} for group, settings in zip(members, group_settings)]


def give_gradient(optimizer, gradient, torch_params=None):
    optimizer.buffer.grad[...] = gradient
    if torch_params is not None:
        for tensor, view in zip(torch_params, optimizer.buffer.views(gradient)):
            tensor.grad = torch.from_numpy(view.copy())


# -- parameter groups against torch.optim ---------------------------------------------------------------------------
GROUPS = {
    "sgd-momentum-nesterov-decay": (
        "SGD", {"lr": 0.1, "momentum": 0.9}, [{"weight_decay": 1e-2, "nesterov": True}, {"lr": 0.05, "momentum": 0.5}]),
    "sgd-momentum-in-one-group": ("SGD", {"lr": 0.1}, [{"momentum": 0.8, "weight_decay": 0.1}, {"lr": 0.3}]),
    "adam": ("Adam", {"lr": 0.01}, [{"weight_decay": 1e-2, "betas": (0.8, 0.99)}, {"lr": 0.05, "eps": 1e-6}]),
    "rmsprop": ("RMSprop", {"lr": 0.01, "momentum": 0.5},
                [{"weight_decay": 1e-2, "alpha": 0.9}, {"momentum": 0.0, "eps": 1e-6}]),
    "adadelta": ("Adadelta", {"rho": 0.9, "eps": 1e-6}, [{"weight_decay": 1e-2}, {"lr": 0.5, "rho": 0.95}]),
}


@needs_torch
@pytest.mark.parametrize("case", GROUPS)
def test_parameter_groups_match_torch_optims(case):
    name, settings, group_settings = GROUPS[case]
    params = make_params()
    torch_params = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    ours = getattr(optim, name)(grouped(params, settings, group_settings), **settings)
    theirs = getattr(torch.optim, name)(grouped(torch_params, settings, group_settings), **settings)
    rng = np.random.default_rng(1)
    for _ in range(12):
        give_gradient(ours, rng.normal(size=ours.buffer.size), torch_params)
        ours.step()
        theirs.step()
    for p, t in zip(params, torch_params):
        np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-10, atol=1e-13)


@needs_torch
def test_a_groups_settings_changed_between_steps_act_as_in_torch():
    """group["lr"] and a momentum switched on mid-run, in both libraries: the same weights."""
    params = make_params()
    torch_params = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    ours = SGD(grouped(params, {}, [{}, {"weight_decay": 0.1}]), lr=0.1)
    theirs = torch.optim.SGD(grouped(torch_params, {}, [{}, {"weight_decay": 0.1}]), lr=0.1)
    rng = np.random.default_rng(2)
    for step in range(10):
        if step == 3:
            for group in (*ours.param_groups, *theirs.param_groups):
                group["momentum"] = 0.9
        if step == 6:
            ours.param_groups[1]["lr"] *= 0.1
            theirs.param_groups[1]["lr"] *= 0.1
        give_gradient(ours, rng.normal(size=ours.buffer.size), torch_params)
        ours.step()
        theirs.step()
    for p, t in zip(params, torch_params):
        np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("make", [
    lambda groups: SGD(groups, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3, l1=1e-4),
    lambda groups: Adam(groups, lr=0.01),
    lambda groups: Adam(groups, lr=0.01, eps=1e-3, eps_hat=True),
    lambda groups: RMSprop(groups, lr=0.01, momentum=0.5),
], ids=["SGD", "Adam", "Adam eps_hat", "RMSprop"])
def test_grouped_updates_on_the_kernels_give_the_reference_bits(make):
    """Each group's runs of the buffer go through the compiled kernel: the NumPy reference's bits, chunks crossed."""
    results = []
    for backend in ("numpy", "numba"):
        with kernels.using(backend):
            rng = np.random.default_rng(5)
            big, bias, other = (Parameter(rng.standard_normal(size), dtype=np.float32) for size in (70_000, 50, 900))
            optimizer = make([{"params": [big, other], "lr": 0.02, "weight_decay": 0.01}, {"params": [bias]}])
            gradients = np.random.default_rng(6)
            for _ in range(4):
                optimizer.buffer.grad[...] = gradients.standard_normal(optimizer.buffer.size)
                optimizer.step()
            results.append([optimizer.buffer.data.copy(), *(state.copy() for state in optimizer.state.values())])
    for reference, compiled in zip(*results, strict=True):
        np.testing.assert_array_equal(reference, compiled)


def test_parameters_in_no_group_keep_their_values_and_the_model_keeps_its_buffer():
    model = nn.MLP([4, 8, 3], rng=0)
    first, first_bias, head, head_bias = model.parameters()  # parameters() lays out the model's one buffer
    before = [first.data.copy(), first_bias.data.copy(), head.data.copy()]
    optimizer = SGD([{"params": [head], "weight_decay": 1e-3}, {"params": head_bias}], lr=0.5, momentum=0.9,
                    max_norm=0.5)
    assert optimizer.buffer is model.flat_buffer()
    x, y = np.random.default_rng(0).normal(size=(64, 4)), np.arange(64) % 3
    dc.fit(model, nn.CrossEntropyLoss(), optimizer, (x, y), epochs=2, batch_size=16, progress=False)
    np.testing.assert_array_equal(first.data, before[0])  # in no group: not updated, decayed or constrained
    np.testing.assert_array_equal(first_bias.data, before[1])
    assert not np.array_equal(head.data, before[2])


def test_with_a_subset_in_groups_the_state_dict_resumes_exactly():
    gradients = np.random.default_rng(8).normal(size=(12, sum(math.prod(s) for s in SHAPES)))

    def make(params):
        return SGD([{"params": [params[2]], "lr": 0.3, "momentum": optim.MomentumRamp(0.5, 4, 0.9)},
                    {"params": [params[0]], "weight_decay": 0.1}], lr=0.1, momentum=0.9,
                   schedule=StepDecay(2, 0.5, per="epoch"))

    def train(optimizer, rows):
        for index, gradient in enumerate(rows):
            give_gradient(optimizer, gradient)
            optimizer.step()
            if index % 3 == 2:
                optimizer.end_epoch()

    shared = make_params()
    uninterrupted = make(shared)
    train(uninterrupted, gradients)

    again = make_params()
    first_half = make(again)
    train(first_half, gradients[:6])
    saved = first_half.state_dict()
    scalars = json.loads(json.dumps(saved["scalars"]))
    assert scalars["epochs"] == 2 and [group["params"] for group in scalars["groups"]] == [[2], [0]]
    resumed = SGD(again, lr=1.0)
    resumed.load_state_dict({"arrays": saved["arrays"], "scalars": scalars})
    assert [group["lr"] for group in resumed.param_groups] == [0.3, 0.1] and resumed.epochs == 2
    train(resumed, gradients[6:])
    np.testing.assert_array_equal(resumed.buffer.data, uninterrupted.buffer.data)
    assert uninterrupted.buffer is shared[0].buffer
    np.testing.assert_array_equal(shared[1].data, make_params()[1].data)  # in no group: as it began


def test_build_optimizer_rebuilds_the_groups_from_a_description():
    params = make_params()
    original = Adam(grouped(params, {}, [{"lr": 0.1, "betas": (0.5, 0.9)}, {}]), lr=0.01)
    rebuilt = build_optimizer(json.loads(json.dumps(original.describe())), params)
    assert [dict(group) == dict(twin) for group, twin in zip(original.param_groups, rebuilt.param_groups)] == [True] * 2
    assert rebuilt.param_groups[0]["betas"] == (0.5, 0.9) and rebuilt.buffer is original.buffer


def test_a_state_saved_before_groups_and_epochs_were_kept_still_loads():
    optimizer = SGD(make_params(), lr=0.1, momentum=0.9)
    state = optimizer.state_dict()
    for key in ("epochs", "groups"):
        del state["scalars"][key]
    restored = SGD(optimizer.buffer.params, lr=0.5)
    restored.load_state_dict(state)
    assert restored.epochs == 0 and restored.lr == 0.1 and not restored.grouped


def test_without_groups_a_change_to_the_one_group_is_saved_and_resumed():
    optimizer = SGD(make_params(), lr=0.1, momentum=0.9)
    optimizer.param_groups[0]["momentum"] = 0.5
    assert optimizer.momentum == 0.5 and optimizer.hyperparameters()["momentum"] == 0.5
    restored = SGD(make_params(), lr=0.1)
    restored.load_state_dict(json.loads(json.dumps(optimizer.state_dict(), default=np.ndarray.tolist)))
    assert restored.param_groups[0]["momentum"] == 0.5


def test_setting_lr_sets_every_groups_rate():
    params = make_params()
    optimizer = SGD(grouped(params, {}, [{"lr": 0.5}, {}]), lr=0.1)
    assert optimizer.lr == 0.5  # the first group's, as torch's param_groups[0]["lr"]
    optimizer.lr = 0.2
    assert [group["lr"] for group in optimizer.param_groups] == [0.2, 0.2] and optimizer.defaults["lr"] == 0.2


BAD_GROUPS = [
    (lambda ps: SGD([{"params": ps[:1]}, ps[1]], lr=0.1), DescendTypeError, ["params[1]", "dict with 'params'"]),
    (lambda ps: SGD([{"weights": ps}], lr=0.1), DescendTypeError, ["params[0]", "dict with 'params'"]),
    (lambda ps: SGD({"params": ps}, lr=0.1), DescendTypeError, ["params is one parameter group", "a list of groups"]),
    (lambda ps: SGD([{"params": ps, "dampening": 0.1}], lr=0.1), DescendValueError,
     ["params[0]", "'dampening'", "a group may set l1, lr, momentum, nesterov, weight_decay"]),
    (lambda ps: SGD([{"params": ps, "max_norm": 1.0}], lr=0.1), DescendValueError, ["'max_norm'", "the optimizer's"]),
    (lambda ps: SGD([{"params": ps[:2]}, {"params": ps[1:]}], lr=0.1), DescendValueError,
     ["params[1]['params'][0]", "already in params[0]", "one group"]),
    (lambda ps: SGD([{"params": []}], lr=0.1), DescendValueError, ["params[0]['params']", "empty"]),
    (lambda ps: SGD([{"params": [ps[0], np.zeros(2)]}], lr=0.1), DescendTypeError,
     ["params[0]['params'][1]", "Parameter", "ndarray"]),
    (lambda ps: SGD([{"params": "w"}], lr=0.1), DescendTypeError, ["params[0]['params']", "str"]),
    (lambda ps: SGD([{"params": ps, "lr": -1.0}], lr=0.1), DescendValueError, ["params[0]['lr']", "> 0", "-1.0"]),
    (lambda ps: SGD([{"params": ps, "nesterov": True}], lr=0.1), DescendValueError,
     ["params[0]['nesterov']=True", "params[0]['momentum']=0.0"]),
    (lambda ps: Adam([{"params": ps, "betas": (0.9, 1.0)}]), DescendValueError, ["params[0]['betas'][1]", "[0, 1)"]),
    (lambda ps: Adam([{"params": ps, "eps": "small"}]), DescendTypeError, ["params[0]['eps']", "str"]),
    (lambda ps: Adam(ps, eps_hat="yes"), DescendTypeError, ["eps_hat", "True or False", "'yes'"]),
    (lambda ps: SGD(ps, lr=0.1).param_groups[0].__setitem__("momentum", 1.5), DescendValueError,
     ["param_groups[0]['momentum']", "1.5"]),
    (lambda ps: SGD(ps, lr=0.1).param_groups[0].__setitem__("params", ps[:1]), DescendValueError,
     ["param_groups[0]['params']", "cannot be set", "fixed"]),
    (lambda ps: SGD(ps, lr=0.1).param_groups[0].__delitem__("lr"), DescendTypeError, ["param_groups[0]['lr']"]),
    (lambda ps: StepDecay(2, per="batch"), DescendValueError, ["per", "'step' or 'epoch'", "'batch'"]),
    (lambda ps: SGD(ps, lr=0.1).load_state_dict({"arrays": {}, "scalars": {
        **SGD(ps, lr=0.1).state_dict()["scalars"], "groups": [{"params": [7], "lr": 0.1}]}}),
     DescendValueError, ["group 0", "places among the 3 parameters"]),
    (lambda ps: SGD(ps, lr=0.1).load_state_dict({"arrays": {}, "scalars": {
        **SGD(ps, lr=0.1).state_dict()["scalars"], "epochs": -1}}), DescendValueError, ["epochs", ">= 0"]),
]


@pytest.mark.parametrize("make, error, words", BAD_GROUPS)
def test_bad_groups_and_settings_are_refused_by_name(make, error, words):
    with pytest.raises(error) as caught:
        make(make_params())
    assert isinstance(caught.value, DescendError)
    for word in words:
        assert word in str(caught.value)


def test_adam_with_eps_hat_steps_as_scikit_learns_adam():
    """eps_hat=True: eps added to √v before the bias correction, scikit-learn's AdamOptimizer (and Keras's) form;
    without it (torch's form) the same steps end elsewhere."""
    from sklearn.neural_network._stochastic_optimizers import AdamOptimizer

    gradients = np.random.default_rng(4).normal(size=(10, sum(math.prod(s) for s in SHAPES))) * 1e-2  # near eps

    def ours(eps_hat):
        optimizer = Adam(make_params(), lr=0.01, betas=(0.8, 0.99), eps=1e-2, eps_hat=eps_hat)
        for gradient in gradients:
            give_gradient(optimizer, gradient)
            optimizer.step()
        return optimizer.buffer.data

    weights = [p.data.copy() for p in make_params()]
    theirs = AdamOptimizer(weights, learning_rate_init=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-2)
    for gradient in gradients:
        theirs.update_params(weights, [view.copy() for view in make_params()[0].buffer.views(gradient)])
    expected = np.concatenate([w.ravel() for w in weights])
    np.testing.assert_allclose(ours(eps_hat=True), expected, rtol=1e-10, atol=1e-13)
    assert np.abs(ours(eps_hat=False) - expected).max() > 1e-3


# -- schedules counted in epochs --------------------------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("ours, make_theirs", [
    (StepDecay(step_size=2, gamma=0.5, per="epoch"),
     lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)),
    (ExponentialDecay(gamma=0.8, per="epoch"), lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.8)),
    (CosineDecay(total_steps=4, min_lr=0.01, per="epoch"),
     lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4, eta_min=0.01)),
], ids=["StepLR", "ExponentialLR", "CosineAnnealingLR"])
def test_the_pytorch_epoch_loop_has_end_epoch_for_scheduler_step(ours, make_theirs):
    """for epoch: (for batch: step); scheduler.step()  is  for epoch: (for batch: step); optimizer.end_epoch()."""
    params = make_params()
    torch_params = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    optimizer = SGD(grouped(params, {}, [{}, {"lr": 0.2}]), lr=0.5, momentum=0.9, schedule=ours)
    theirs = torch.optim.SGD(grouped(torch_params, {}, [{}, {"lr": 0.2}]), lr=0.5, momentum=0.9)
    scheduler = make_theirs(theirs)
    rng = np.random.default_rng(3)
    for epoch in range(5):
        for _ in range(3):
            assert optimizer.lr == pytest.approx(theirs.param_groups[0]["lr"], rel=1e-12)
            give_gradient(optimizer, rng.normal(size=optimizer.buffer.size), torch_params)
            optimizer.step()
            theirs.step()
        optimizer.end_epoch()
        scheduler.step()
    assert optimizer.epochs == 5 and optimizer.iterations == 15
    for p, t in zip(params, torch_params):
        np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-10, atol=1e-13)


def blobs(n=96):
    rng = np.random.default_rng(0)
    y = np.arange(n) % 3
    return (rng.normal(size=(n, 4)) + y[:, None]).astype(np.float32), y


def test_fit_ends_every_epoch_for_a_schedule_per_epoch():
    model = nn.MLP([4, 8, 3], rng=0)
    optimizer = SGD(model.parameters(), lr=0.4, schedule=StepDecay(step_size=1, gamma=0.5, per="epoch"))
    history = dc.fit(model, nn.CrossEntropyLoss(), optimizer, blobs(), epochs=4, batch_size=32, progress=False)
    assert history["lr"] == [0.4, 0.2, 0.1, 0.05] and optimizer.epochs == 4 and optimizer.lr == 0.025


def test_a_run_with_a_schedule_per_epoch_resumes_from_its_checkpoint_to_the_same_bits(tmp_path):
    def run(epochs, folder=None, resume=False):
        model = nn.MLP([4, 8, 3], rng=0)
        optimizer = SGD(model.parameters(), lr=0.4, momentum=0.9, schedule=ExponentialDecay(0.5, per="epoch"))
        history = dc.fit(model, nn.CrossEntropyLoss(), optimizer, blobs(), epochs=epochs, batch_size=32, seed=1,
                         progress=False, checkpoint=folder, checkpoint_every=5, resume=resume)
        return model.flat_buffer().data.copy(), history

    straight, _ = run(4)
    run(2, tmp_path / "run")
    resumed, history = run(4, tmp_path / "run", resume=True)
    np.testing.assert_array_equal(resumed, straight)
    assert history["lr"] == [0.4, 0.2, 0.1, 0.05]


@pytest.mark.parametrize("engine", ["hogwild", "spark-average"])
def test_the_other_engines_steps_take_the_epochs_rate(engine, request):
    """A rate that falls to 1e-12 of itself after the first epoch: the workers' and executors' second epoch leaves
    the weights all but where the first left them."""
    model = nn.MLP([4, 8, 3], rng=0)
    optimizer = SGD(model.parameters(), lr=0.2, schedule=ExponentialDecay(1e-12, per="epoch"))
    x, y = blobs()

    class Weights(dc.Callback):
        def __init__(self):
            self.after = [model.flat_buffer().data.copy()]

        def on_epoch_end(self, state, record):
            self.after.append(model.flat_buffer().data.copy())

    weights = Weights()
    if engine == "hogwild":
        dc.fit(model, nn.CrossEntropyLoss(), optimizer, (x, y), epochs=2, batch_size=16, progress=False,
               callbacks=[weights], engine="hogwild", workers=1)
    else:
        from descend.spark import fit_spark

        spark = request.getfixturevalue("spark")
        rows = list(zip(x.astype(float).tolist(), y.tolist()))
        frame = spark.createDataFrame(spark.sparkContext.parallelize(rows, 2), ["features", "label"])
        fit_spark(model, nn.CrossEntropyLoss(), optimizer, frame, epochs=2, batch_size=16, sync="average",
                  sync_every=2, callbacks=[weights])
    first, second = (np.abs(b - a).max() for a, b in zip(weights.after, weights.after[1:]))
    assert first > 1e-3 and second < 1e-9


# -- torch's defaults as a preset ----------------------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop", "Adadelta"])
def test_with_torch_defaults_gives_the_defaults_in_torch_optims_signature(name):
    ours, theirs = getattr(optim, name), getattr(torch.optim, name)
    torch_defaults = {key: parameter.default for key, parameter in inspect.signature(theirs).parameters.items()
                      if parameter.default is not inspect.Parameter.empty}
    shared = set(inspect.signature(ours).parameters) & set(torch_defaults)
    assert set(ours.TORCH_DEFAULTS) == shared
    optimizer = ours.with_torch_defaults(make_params())
    assert {key: optimizer.defaults[key] for key in shared} == {key: torch_defaults[key] for key in shared}
    assert ours.with_torch_defaults(make_params(), lr=0.5).lr == 0.5


def test_descends_own_adadelta_defaults_are_h2os_and_differ_from_torchs():
    optimizer = Adadelta(make_params())
    assert (optimizer.rho, optimizer.eps) == (0.99, 1e-8)
    assert (Adadelta.TORCH_DEFAULTS["rho"], Adadelta.TORCH_DEFAULTS["eps"]) == (0.9, 1e-6)


@needs_torch
def test_no_weight_decay_on_biases_picked_by_name_on_a_fresh_model_trains_as_torch():
    model = nn.MLP([4, 6, 3], rng=0)
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3)).double()
    theirs.load_state_dict({k: torch.from_numpy(v.astype(np.float64))
                            for k, v in dc.interop.to_torch(model, like=theirs.state_dict()).items()})
    decayed = [p for name, p in model.named_parameters() if not name.endswith("bias")]  # a fresh model: no buffer yet
    biases = [p for name, p in model.named_parameters() if name.endswith("bias")]
    ours = SGD([{"params": decayed, "weight_decay": 0.1}, {"params": biases, "weight_decay": 0.0}], lr=0.5,
               momentum=0.9)
    assert ours.buffer is model.flat_buffer()
    torch_decayed = [p for name, p in theirs.named_parameters() if not name.endswith("bias")]
    torch_biases = [p for name, p in theirs.named_parameters() if name.endswith("bias")]
    reference = torch.optim.SGD([{"params": torch_decayed, "weight_decay": 0.1},
                                 {"params": torch_biases, "weight_decay": 0.0}], lr=0.5, momentum=0.9)
    x, y = np.random.default_rng(0).normal(size=(16, 4)), np.arange(16) % 3
    history = dc.fit(model, nn.CrossEntropyLoss(), ours, (x.astype(np.float32), y), epochs=2, batch_size=16,
                     shuffle=False, progress=False)
    for _ in range(2):
        reference.zero_grad()
        torch.nn.functional.cross_entropy(theirs(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        reference.step()
    assert len(history) == 2
    for name, value in dc.interop.to_torch(model, like=theirs.state_dict()).items():
        np.testing.assert_allclose(value, theirs.state_dict()[name].numpy(), rtol=1e-4, atol=1e-5, err_msg=name)

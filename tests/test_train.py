"""fit: convergence on problems with known answers, history, callbacks, determinism, bad input."""

import gc
import os

import warnings

import numpy as np
import pytest

import descend as dc
from descend import nn, optim
from descend.errors import DescendError, DescendValueError, NonFiniteError
from descend.nonfinite import locate
from descend.training.step import with_penalties


def test_linear_regression_recovers_slope_and_intercept():
    data = dc.data.make_line(n=500, slope=2.0, intercept=1.0, noise=0.1, seed=0)
    model = nn.LinearRegression(1, rng=0)
    dc.fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), data, epochs=30, batch_size=32, progress=False)
    assert model.linear.weight.data.item() == pytest.approx(2.0, abs=0.05)
    assert model.linear.bias.data.item() == pytest.approx(1.0, abs=0.05)


def test_relu_network_separates_two_moons_where_a_linear_model_cannot():
    data = dc.data.make_moons(n=600, noise=0.1, seed=0)
    deep = nn.MLP([2, 32, 32, 2], rng=0)
    dc.fit(deep, nn.CrossEntropyLoss(), optim.SGD(deep.parameters(), lr=0.1, momentum=0.9), data, epochs=40,
           batch_size=32, progress=False)
    flat = nn.LogisticRegression(2, 2, rng=0)
    dc.fit(flat, nn.CrossEntropyLoss(), optim.SGD(flat.parameters(), lr=0.1, momentum=0.9), data, epochs=40,
           batch_size=32, progress=False)
    assert dc.evaluate(deep, nn.CrossEntropyLoss(), data)["accuracy"] > 0.98
    assert dc.evaluate(flat, nn.CrossEntropyLoss(), data)["accuracy"] < 0.92


def test_history_records_every_epoch():
    train, test = dc.data.make_blobs(n=300, seed=0).split(0.8, seed=0)
    model = nn.MLP([2, 8, 3], rng=0)
    opt = optim.SGD(model.parameters(), lr=0.1, schedule=optim.InverseTimeDecay(decay=0.01))
    history = dc.fit(model, nn.CrossEntropyLoss(), opt, train, epochs=3, batch_size=50, validation=test, progress=False)
    assert len(history) == 3 and history["epoch"] == [1, 2, 3]
    assert set(history.last()) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"}
    assert history["lr"][0] > history["lr"][2]  # the schedule decays per step
    with pytest.raises(KeyError, match="val_auc"):
        history["val_auc"]


def test_same_seed_gives_bit_identical_weights_and_another_seed_does_not():
    data = dc.data.make_moons(n=200, seed=1)

    def train(seed):
        model = nn.MLP([2, 16, 2], dropout=0.3, rng=0)
        dc.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1, momentum=0.9), data, epochs=3,
               batch_size=16, seed=seed, progress=False)
        return model.flat_buffer().data.copy()

    np.testing.assert_array_equal(train(7), train(7))
    assert not np.array_equal(train(7), train(8))


def _dropouts_in_a_nested_model():
    first, second = nn.Dropout(0.3, rng=0), nn.Dropout(0.3, rng=0)  # the same generator until fit reseeds them
    model = nn.Sequential(nn.Linear(2, 8, rng=0), first, nn.ReLU(),
                          nn.Sequential(nn.Linear(8, 8, rng=1), second), nn.Linear(8, 2, rng=2))
    return model, nn.CrossEntropyLoss(), dc.data.make_moons(n=40, seed=0), [first, second]


def _a_denoising_autoencoder():  # the model itself draws the noise: place 0
    model = nn.DenoisingAutoencoder([2, 4, 1], noise=0.1, dropout=0.2, rng=0)
    return model, nn.MSELoss(), dc.data.make_moons(n=40, seed=0).x, [model]


@pytest.mark.parametrize("make", [_dropouts_in_a_nested_model, _a_denoising_autoencoder])
def test_each_fit_gives_every_random_module_the_generator_keyed_by_seed_step_count_and_its_place(make):
    # fit's contract: the random module at place i of model.modules() starts each fit with
    # np.random.default_rng([seed, optimizer.iterations, i]); a second fit goes on from the steps the first took
    model, loss_fn, data, random = make()
    places = [i for i, module in enumerate(model.modules()) if any(module is m for m in random)]
    assert len(places) == len(random)
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    received = []

    class Generators(dc.Callback):
        def on_train_begin(self, state):  # before the first step draws from them
            received.append({i: module.rng.bit_generator.state for i, module in enumerate(state.model.modules())
                             if isinstance(getattr(module, "rng", None), np.random.Generator)})

    for seed in (7, 8):
        dc.fit(model, loss_fn, optimizer, data, epochs=2, batch_size=16, seed=seed, callbacks=[Generators()],
               progress=False)
    assert optimizer.iterations == 2 * 2 * 3  # two fits of two epochs of three minibatches
    expected = [{i: np.random.default_rng([seed, steps_before, i]).bit_generator.state for i in places}
                for seed, steps_before in ((7, 0), (8, 6))]
    assert received == expected


def test_early_stopping_stops_and_restores_the_best_weights():
    rng = np.random.default_rng(0)
    x, y = rng.random((40, 5)).astype(np.float32), rng.integers(0, 2, 40)  # labels are noise: validation gets worse
    vx, vy = rng.random((40, 5)).astype(np.float32), rng.integers(0, 2, 40)
    model = nn.MLP([5, 64, 2], rng=0)
    stopper = dc.EarlyStopping(monitor="val_loss", patience=2)

    class Snapshot(dc.Callback):
        weights = {}

        def on_epoch_end(self, state, record):
            self.weights[record["epoch"]] = state.model.flat_buffer().data.copy()

    snapshot = Snapshot()
    history = dc.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.5, momentum=0.9), (x, y),
                     epochs=100, batch_size=8, validation=(vx, vy), callbacks=[stopper, snapshot], progress=False)
    assert len(history) < 100
    best = int(np.argmin(history["val_loss"])) + 1
    assert stopper.best_epoch == best
    np.testing.assert_array_equal(model.flat_buffer().data, snapshot.weights[best])


@pytest.mark.filterwarnings("ignore:overflow encountered")  # NumPy's own note on the way to infinity
def test_a_diverging_run_stops_with_a_named_error():
    data = dc.data.make_line(n=64, seed=0)
    model = nn.LinearRegression(1, rng=0)
    with pytest.raises(NonFiniteError, match=r"epoch \d+, step \d+") as raised:
        dc.fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=1e6), data, epochs=50, batch_size=8, progress=False)
    assert raised.value.step >= 1 and raised.value.epoch >= 1


class _LogLoss(nn.Module):
    """A loss that takes the log of the model's output: a negative output makes a NaN in the forward pass."""

    def forward(self, output, target):
        return dc.log(output).mean()


class _Sqrt(nn.Module):
    """√(x·0): finite forward (zeros), infinite derivative at zero, so a NaN begins in the backward pass."""

    def forward(self, x):
        return dc.sqrt(x * 0.0)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_nan_in_the_forward_pass_is_traced_to_its_op_and_module():
    model = nn.MLP([1, 8, 1], rng=0)
    with pytest.raises(NonFiniteError) as raised:
        dc.fit(model, _LogLoss(), optim.SGD(model.parameters(), lr=0.1), dc.data.make_line(n=64, seed=0), epochs=1,
               batch_size=8, progress=False)
    message = str(raised.value)
    assert "the loss became nan at epoch 1, step 1" in message
    assert "forward pass of log in loss (_LogLoss)" in message
    assert raised.value.layer == "loss (_LogLoss)"


def test_an_op_in_a_parent_modules_own_forward_is_attributed_to_the_parent_not_the_next_child():
    """A VAE's sampling step (mean + exp(log_variance / 2) · noise) runs in the VAE's own forward, between its
    children; when exp overflows there, the VAE is named, not the decoder that the sample goes into next."""
    model = nn.VariationalAutoencoder([6, 4, 2], rng=0)
    model.log_variance.bias.data[...] = 200.0  # exp(100) is beyond float32
    x = np.random.default_rng(0).random((16, 6)).astype(np.float32)
    with pytest.raises(NonFiniteError) as raised, np.errstate(over="ignore", invalid="ignore"):
        dc.fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), (x,), epochs=1, batch_size=8,
               progress=False)
    assert raised.value.layer == "the model (VariationalAutoencoder)"
    assert "forward pass of exp in the model (VariationalAutoencoder)" in str(raised.value)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # the replay checks every value without a NumPy warning
        origin = locate(model, nn.MSELoss(), x, x, with_penalties)
    assert (origin.phase, origin.op, origin.layer) == ("forward", "exp", "the model (VariationalAutoencoder)")


def test_float64_data_beyond_float32_is_an_input_error_naming_the_row():
    model = nn.MLP([3, 4, 2], rng=0)
    x, y = np.ones((6, 3)), np.zeros(6, dtype=np.int64)
    x[4, 2] = 1e39
    with pytest.raises(DescendValueError, match=r"train.x holds 1e\+39 at index \(4, 2\) \(row 4\), beyond the "
                                                r"range of the model's float32") as raised:
        dc.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), (x, y), progress=False)
    assert not isinstance(raised.value, NonFiniteError)
    model.astype(np.float64)  # the fix the message suggests
    dc.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=1e-45), (x, y), progress=False)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_nan_gradient_is_traced_to_the_op_and_layer_where_it_began_and_the_parameters_it_reached():
    model = nn.Sequential(nn.Linear(1, 4, rng=0), _Sqrt(), nn.Linear(4, 1, rng=1))
    with pytest.raises(NonFiniteError) as raised:
        dc.fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), dc.data.make_line(n=64, seed=0), epochs=1,
               batch_size=8, progress=False)
    message = str(raised.value)
    assert "a gradient became NaN or infinite at epoch 1, step 1" in message
    assert "backward pass of sqrt in layers.1 (_Sqrt)" in message
    # the layer after the sqrt keeps finite gradients; the first layer's are the ones it reached
    assert raised.value.layer == "layers.1 (_Sqrt)" and raised.value.parameter.startswith("layers.0.")
    assert "layers.2" not in message


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_the_error_names_the_last_good_checkpoint_and_the_failed_step_changes_nothing(tmp_path):
    data = dc.data.make_line(n=64, seed=0)
    model = nn.Sequential(nn.Linear(1, 16, rng=0), nn.Dropout(0.5, rng=0), nn.BatchNorm1d(16), nn.Linear(16, 1, rng=1))
    opt = optim.SGD(model.parameters(), lr=3e4)
    with pytest.raises(NonFiniteError) as raised:
        dc.fit(model, nn.MSELoss(), opt, data, epochs=50, batch_size=8, progress=False, checkpoint=tmp_path,
               checkpoint_every=1)
    newest = sorted(tmp_path.glob("checkpoint-*.dsc"))[-1]
    assert raised.value.checkpoint == newest and str(newest) in str(raised.value)
    # the bad step was not taken and its replay put everything back: the model is the newest checkpoint's
    saved = dc.load(newest)
    np.testing.assert_array_equal(model.flat_buffer().data, saved.flat_buffer().data)
    np.testing.assert_array_equal(model.layers[2].running_mean, saved.layers[2].running_mean)


def test_gradient_clipping_limits_the_global_norm():
    grads = np.array([3.0, 4.0], dtype=np.float32)
    assert dc.clip_grad_norm(grads, 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(grads, [0.6, 0.8], rtol=1e-5)
    data = dc.data.make_line(n=64, seed=0)
    model = nn.LinearRegression(1, rng=0)
    dc.fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=10.0), data, epochs=2, batch_size=8,
           clip_grad_norm=0.01, progress=False)


def test_gradient_clipping_by_value_limits_each_gradient():
    grads = np.array([3.0, -4.0, 0.5], dtype=np.float32)
    dc.clip_grad_value(grads, 1.0)
    np.testing.assert_array_equal(grads, [1.0, -1.0, 0.5])
    data = dc.data.make_line(n=64, seed=0)
    model = nn.LinearRegression(1, rng=0)
    before = model.flat_buffer().data.copy()
    dc.fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.5), data, epochs=1, batch_size=8, shuffle=False,
           clip_grad_value=1e-3, progress=False)
    # each of the 8 steps moves each weight by at most lr · 1e-3
    assert np.abs(model.flat_buffer().data - before).max() <= 8 * 0.5 * 1e-3 + 1e-7
    with pytest.raises(DescendValueError, match="clip_grad_value"):
        dc.fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.5), data, clip_grad_value=0, progress=False)


def test_the_step_function_is_pure_in_the_parameters():
    model = nn.MLP([3, 4, 2], rng=0)
    step = dc.make_step(model, nn.CrossEntropyLoss())
    x, y = np.ones((5, 3), np.float32), np.array([0, 1, 0, 1, 1])
    params = model.flat_buffer().data.copy()
    loss_a, grads_a, scores = step(params, x, y)
    grads_a = grads_a.copy()
    model.flat_buffer().data[:] = 0
    loss_b, grads_b, _ = step(params, x, y)
    assert loss_a == loss_b and list(scores) == ["accuracy"] and 0 <= scores["accuracy"] <= 5
    np.testing.assert_array_equal(grads_a, grads_b)


def test_predict_returns_outputs_for_every_row_in_eval_mode():
    model = nn.MLP([3, 4, 2], dropout=0.5, rng=0)
    x = np.random.default_rng(0).random((2500, 3)).astype(np.float32)
    out = dc.predict(model, x, batch_size=1000)
    assert out.shape == (2500, 2)
    np.testing.assert_array_equal(out, dc.predict(model, x))  # dropout is off: deterministic
    assert model.training


def _fit(**overrides):
    model = nn.MLP([2, 4, 2], rng=0)
    arguments = dict(model=model, loss_fn=nn.CrossEntropyLoss(), optimizer=optim.SGD(model.parameters(), lr=0.1),
                     train=dc.data.make_moons(n=20, seed=0), epochs=1, batch_size=4, progress=False)
    arguments.update(overrides)
    return dc.fit(**arguments)


@pytest.mark.parametrize(
    "overrides, words",
    [
        (dict(epochs=0), ["epochs", "0"]),
        (dict(batch_size=-1), ["batch_size", "-1"]),
        (dict(engine="gpu"), ["engine", "gpu", "local"]),
        (dict(train=(np.full((4, 2), np.nan, np.float32), np.zeros(4, int))), ["train.x", "NaN"]),
        (dict(train=(np.ones((4, 2), np.float32), np.array([0.5, 1, 0, 1]))), ["integer", "train.y"]),
        (dict(train=(np.ones((4, 2), np.float32), np.array([0, 1, 5, 1]))), ["[0, 2)", "5"]),
        (dict(train=(np.zeros((0, 2), np.float32), np.zeros(0, int))), ["empty"]),
        (dict(train=(np.ones((4, 3), np.float32), np.zeros(4, int))), ["(4, 3)", "(N, 2)"]),
        (dict(optimizer=optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)), ["optimizer", "model.parameters()"]),
    ],
)
def test_fit_refuses_bad_input_with_a_named_error(overrides, words):
    with pytest.raises(DescendError) as raised:
        _fit(**overrides)
    for word in words:
        assert word in str(raised.value)
    assert isinstance(raised.value, (ValueError, TypeError))


def test_early_stopping_on_a_metric_the_run_lacks_says_so():
    with pytest.raises(DescendValueError, match="validation="):
        _fit(callbacks=[dc.EarlyStopping(monitor="val_loss")])


def test_a_second_fit_continues_rather_than_replays_the_first():
    data = dc.data.make_moons(n=64, seed=0)
    losses = []

    class Record(dc.Callback):
        def on_batch_end(self, state, loss):
            losses.append(loss)

    model2 = nn.MLP([2, 8, 2], rng=0)
    opt2 = optim.SGD(model2.parameters(), lr=1e-12)  # weights barely move: only the batch order changes the losses
    for _ in range(2):
        dc.fit(model2, nn.CrossEntropyLoss(), opt2, data, epochs=1, batch_size=8, callbacks=[Record()], progress=False)
    assert losses[:8] != losses[8:]


def test_early_stopping_waits_exactly_patience_epochs():
    model = nn.LinearRegression(1, rng=0)
    data = dc.data.make_line(n=16, seed=0)
    stopper = dc.EarlyStopping(monitor="loss", patience=2, min_delta=1e9)  # nothing ever counts as better
    history = dc.fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.01), data, epochs=10, batch_size=4,
                     callbacks=[stopper], progress=False)
    assert len(history) == 3  # the first epoch sets the best, then two without improvement


def test_binary_accuracy_counts_labels_not_rows():
    rng = np.random.default_rng(0)
    x = rng.random((32, 4)).astype(np.float32)
    y = (rng.random((32, 3)) > 0.5).astype(np.float32)
    model = nn.MLP([4, 8, 3], rng=0)
    history = dc.fit(model, nn.BCEWithLogitsLoss(), optim.SGD(model.parameters(), lr=0.1), (x, y), epochs=1,
                     batch_size=8, progress=False)
    assert 0.0 <= history["accuracy"][0] <= 1.0
    metrics = dc.evaluate(model, nn.BCEWithLogitsLoss(), (x, y))
    expected = ((dc.predict(model, x) > 0) == (y > 0.5)).mean()
    assert metrics["accuracy"] == pytest.approx(expected)


def test_evaluate_and_predict_refuse_bad_input():
    model = nn.MLP([2, 3, 2], rng=0)
    with pytest.raises(DescendValueError, match="no targets"):
        dc.evaluate(model, nn.CrossEntropyLoss(), (np.ones((3, 2), np.float32),))
    with pytest.raises(DescendError, match="batch_size"):
        dc.predict(model, np.ones((3, 2)), batch_size=0)
    assert dc.predict(model, np.ones((3, 2))).dtype == np.float32  # float64 input runs in the model's dtype


def _resident_bytes() -> int:
    """This process's resident memory (Linux /proc; the test runs where that exists)."""
    with open("/proc/self/statm") as stream:
        return int(stream.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="resident memory is read from Linux's /proc")
def test_two_thousand_steps_keep_resident_memory_and_live_objects_flat():
    """Each step's graph is freed by its backward: memory after 2,000 steps is what it was after 200."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((3200, 32)).astype(np.float32), rng.integers(0, 10, 3200)
    model = nn.MLP([32, 64, 64, 10], dropout=0.1, rng=0)
    readings = {}

    class Measure(dc.Callback):
        def on_batch_end(self, state, loss):
            if state.step in (200, 2000):
                gc.collect()
                readings[state.step] = (_resident_bytes(), len(gc.get_objects()))

    dc.fit(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=1e-3), (x, y), epochs=10, batch_size=16,
           callbacks=[Measure()], progress=False)
    (rss_early, objects_early), (rss_late, objects_late) = readings[200], readings[2000]
    # a leaked graph would be ~30 KB a step, 50 MB over the run; allow a few pages of noise
    assert rss_late - rss_early < 2_000_000, f"resident memory grew by {rss_late - rss_early} bytes"
    assert objects_late - objects_early < 200, f"{objects_late - objects_early} more live objects"


def test_clipping_takes_a_model_s_parameters_as_pytorch_users_pass_them():
    """The gradients of model.parameters() are views of the flat buffer: clipping the list is clipping the buffer."""
    model = nn.Linear(3, 2, rng=0)
    buffer = model.flat_buffer()
    buffer.grad[...] = np.arange(1.0, buffer.grad.size + 1)
    expected = buffer.grad.copy()
    norm = dc.clip_grad_norm(expected, 1.0)
    assert dc.clip_grad_norm(model.parameters(), 1.0) == pytest.approx(norm)
    np.testing.assert_allclose(buffer.grad, expected, rtol=1e-6)
    dc.clip_grad_value(model.parameters(), 0.05)
    assert np.abs(buffer.grad).max() == pytest.approx(0.05)

"""One contract for every engine: the same small model trained locally, by HOGWILD! with one worker and on Spark
local[2] in both sync modes records the same History keys with the same meaning of `lr`, accuracy for every
classification loss, the finite check on every step, and callbacks in the same order with the same state."""

import numpy as np
import pytest

import descend as dc
from descend import nn, optim
from descend.errors import NonFiniteError

ENGINES = ("local", "hogwild", "spark-gradient", "spark-average")
#: HOGWILD! with two racing workers too, where the order and numbering of the steps are not given by one process
WITH_RACING_WORKERS = (*ENGINES, "hogwild-2")
BATCH = 50
EPOCHS = 2
#: validation accuracy after 4 epochs that only a model that learned reaches (chance: 0.1, 0.5 for BCE, 0.1); model
#: averaging takes half the local engine's steps here, so the bar is where it still clears chance clearly
LEARNED = {"cross-entropy": 0.2, "bce": 0.6, "margin": 0.15}


@pytest.fixture(scope="module")
def digits():
    train, test = dc.data.load_digits()
    return (train.x[:200], train.y[:200]), (test.x[:100], test.y[:100])


def targets_for(loss_name, y):
    """Labels as the loss takes them: classes for cross-entropy and the margin loss, 'below 5' for BCE."""
    return (y < 5).astype(np.float32).reshape(-1, 1) if loss_name == "bce" else y


def model_for(loss_name, seed=0):
    """A small network whose output suits the loss: 10 logits, one logit, or 10 capsule-like lengths in (0, 1)."""
    if loss_name == "bce":
        return nn.MLP([64, 16, 1], rng=seed), nn.BCEWithLogitsLoss()
    if loss_name == "margin":
        return nn.Sequential(nn.Linear(64, 16, rng=seed), nn.ReLU(), nn.Linear(16, 10, rng=seed), nn.Sigmoid()), \
            nn.MarginLoss()
    return nn.MLP([64, 16, 10], rng=seed), nn.CrossEntropyLoss()


class Recorder(dc.Callback):
    """Every call a callback gets, with the state fields it saw, and the step count each epoch ended at."""

    def __init__(self):
        self.calls = []

    def on_train_begin(self, state):
        self.calls.append(("begin", state.epoch, state.step))

    def on_batch_end(self, state, loss):
        assert np.isfinite(loss)
        self.calls.append(("batch", state.epoch, state.step))

    def on_epoch_end(self, state, record):
        self.calls.append(("epoch", state.epoch, state.step, state.optimizer.iterations, len(state.history)))

    def on_train_end(self, state):
        self.calls.append(("end", state.epoch, state.step))


def frame(spark, x, y, partitions=2):
    """A DataFrame of (features as array<double>, label as a number), in `partitions` runs of consecutive rows."""
    labels = y.reshape(len(y)).tolist()
    rows = list(zip(x.astype(float).tolist(), labels))
    return spark.createDataFrame(spark.sparkContext.parallelize(rows, partitions), ["features", "label"])


def train_with(engine, request, model, loss_fn, optimizer, train, validation, callbacks=(), epochs=EPOCHS):
    """fit the model with `engine` ("spark-..." through fit_spark with that sync mode); returns the History."""
    if engine.startswith("spark"):
        spark = request.getfixturevalue("spark")
        from descend.spark import fit_spark

        return fit_spark(model, loss_fn, optimizer, frame(spark, *train), epochs=epochs, batch_size=BATCH,
                         sync=engine.split("-")[1], sync_every=2, validation=frame(spark, *validation),
                         callbacks=callbacks)
    options = {"workers": 2 if engine == "hogwild-2" else 1} if engine.startswith("hogwild") else {}
    return dc.fit(model, loss_fn, optimizer, train, epochs=epochs, batch_size=BATCH, validation=validation,
                  callbacks=callbacks, progress=False, engine=engine.split("-")[0], **options)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("loss_name", ["cross-entropy", "bce", "margin"])
def test_every_engine_records_the_same_keys_and_accuracy_for_every_classification_loss(engine, loss_name, digits,
                                                                                       request):
    (x, y), (x_val, y_val) = digits
    model, loss_fn = model_for(loss_name)
    optimizer = optim.SGD(model.parameters(), lr=0.3, momentum=0.9)
    history = train_with(engine, request, model, loss_fn, optimizer, (x, targets_for(loss_name, y)),
                         (x_val, targets_for(loss_name, y_val)), epochs=4)
    assert [list(record) for record in history.epochs] == [
        ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"]] * 4
    assert history["epoch"] == [1, 2, 3, 4]
    assert all(0.0 <= value <= 1.0 for value in history["accuracy"] + history["val_accuracy"])
    # the validation accuracy is the model's, measured again here on the weights it ended with
    assert history["val_accuracy"][-1] == pytest.approx(dc.evaluate(model, loss_fn, (x_val, targets_for(
        loss_name, y_val)))["accuracy"], abs=1e-6)
    assert history["val_accuracy"][-1] > LEARNED[loss_name]


@pytest.mark.parametrize("engine", WITH_RACING_WORKERS)
def test_lr_is_the_rate_of_the_epochs_last_step_and_callbacks_see_the_same_sequence(engine, digits, request):
    train, validation = digits
    model, loss_fn = model_for("cross-entropy")
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, schedule=optim.InverseTimeDecay(decay=0.1))
    recorder = Recorder()
    history = train_with(engine, request, model, loss_fn, optimizer, train, validation, callbacks=[recorder])
    ends = [call for call in recorder.calls if call[0] == "epoch"]
    for record, (_, epoch, step, iterations, recorded) in zip(history.epochs, ends, strict=True):
        assert (epoch, recorded) == (record["epoch"], record["epoch"])  # on_epoch_end sees its record kept
        assert record["lr"] == pytest.approx(optimizer.lr_at(iterations - 1), rel=1e-12)  # the last step's rate
        assert record["lr"] != pytest.approx(optimizer.lr_at(iterations), rel=1e-9)  # not the next step's
    # begin, then per epoch its steps numbered on from the last, then the epoch's end; end last
    expected, step = [("begin", 0, 0)], 0
    for epoch, (_, _, end_step, _, _) in enumerate(ends, start=1):
        expected += [("batch", epoch, s) for s in range(step + 1, end_step + 1)]
        step = end_step
        expected.append(ends[epoch - 1])
    assert recorder.calls == [*expected, ("end", EPOCHS, step)]
    assert optimizer.iterations == step
    if engine != "spark-average":  # every minibatch is one step of the model: 4 of 50 rows per epoch
        assert [call[2] for call in ends] == [4, 8]


def test_local_hogwild_and_spark_gradient_record_the_same_rates(digits, request):
    """The same model, optimizer and inverse-time schedule for 2 epochs: the same `lr` in every engine's History."""
    rates = {}
    for engine in ("local", "hogwild", "spark-gradient"):
        model, loss_fn = model_for("cross-entropy")
        optimizer = optim.SGD(model.parameters(), lr=0.1, schedule=optim.InverseTimeDecay(decay=0.1))
        rates[engine] = train_with(engine, request, model, loss_fn, optimizer, *digits)["lr"]
    assert rates["local"] == rates["hogwild"] == rates["spark-gradient"]
    assert rates["local"] == pytest.approx([0.1 / (1 + 0.1 * 3), 0.1 / (1 + 0.1 * 7)])


@pytest.mark.parametrize("engine", WITH_RACING_WORKERS)
def test_every_engine_checks_every_step_for_nan(engine, digits, request):
    """A rate of 1e20 makes the second step's loss overflow: every engine stops there, naming step 2 of epoch 1
    (two racing workers stop at whichever step meets bad weights first: any but the run's first).

    Model averaging used to check only each round's summed loss, after the round's steps had run."""
    train, validation = digits
    model, loss_fn = model_for("cross-entropy")
    optimizer = optim.SGD(model.parameters(), lr=1e20)
    step = "[234]" if engine == "hogwild-2" else "2"
    with pytest.raises(NonFiniteError, match=rf"at epoch 1, step {step} \(learning rate 1e\+20\)"):
        train_with(engine, request, model, loss_fn, optimizer, train, validation)


def test_every_engine_refuses_an_optimizer_of_another_model_with_the_same_hint(digits, request):
    train, validation = digits
    for engine in ENGINES:
        model, loss_fn = model_for("cross-entropy")
        other, _ = model_for("cross-entropy")
        with pytest.raises(dc.errors.DescendValueError,
                           match=r"the optimizer does not hold this model's parameters; make it with "):
            train_with(engine, request, model, loss_fn, optim.SGD(other.parameters(), lr=0.1), train, validation)

"""metrics= on fit and evaluate: accuracy and top-k whatever the loss class, on every engine, checked against
torch's top-k and by hand; and PyTorch's argument names (dim=, keepdim=, start_dim=) wherever NumPy's are taken."""

import numpy as np
import pytest

import descend as dc
from descend import nn, optim
from descend.errors import DescendTypeError, DescendValueError, ShapeError
from descend.training.metrics import Accuracy, Metric, TopKAccuracy

torch = pytest.importorskip("torch")


class HandMadeCrossEntropy(nn.Module):
    """A user's own loss: fit knows nothing of its class, so only metrics= can ask for accuracy."""

    def forward(self, logits, labels):
        picked = dc.log_softmax(logits, dim=1)[np.arange(len(labels)), labels]
        return -dc.mean(picked)


def _digits():
    train, test = dc.data.load_digits()
    return train[:600], test


def test_a_loss_of_your_own_reports_accuracy_and_top_k_when_asked():
    train, test = _digits()
    model = nn.MLP([64, 32, 10], rng=0)
    history = dc.fit(model, HandMadeCrossEntropy(), optim.Adam(model.parameters(), lr=1e-2), train,
                     validation=test, epochs=3, progress=False, metrics=["accuracy", "top3_accuracy"])
    assert set(history.epochs[-1]) >= {"accuracy", "top3_accuracy", "val_accuracy", "val_top3_accuracy"}
    logits = dc.predict(model, test.x)
    by_hand = float((logits.argmax(axis=1) == test.y).mean())
    top3 = torch.topk(torch.from_numpy(logits), 3, dim=1).indices.numpy()
    by_torch = float((top3 == test.y[:, None]).any(axis=1).mean())
    assert history["val_accuracy"][-1] == pytest.approx(by_hand, abs=1e-12) and by_hand > 0.85
    assert history["val_top3_accuracy"][-1] == pytest.approx(by_torch, abs=1e-12) and by_torch >= by_hand
    metrics = dc.evaluate(model, HandMadeCrossEntropy(), test, metrics=["accuracy", "top3_accuracy"])
    assert metrics["accuracy"] == pytest.approx(by_hand, abs=1e-12)
    assert metrics["top3_accuracy"] == pytest.approx(by_torch, abs=1e-12)


def test_without_metrics_a_loss_of_your_own_reports_only_its_loss_and_a_known_one_accuracy():
    train, _ = _digits()
    model = nn.MLP([64, 10], rng=0)
    custom = dc.fit(model, HandMadeCrossEntropy(), optim.SGD(model.parameters(), lr=0.1), train, progress=False)
    known = dc.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), train, progress=False)
    assert "accuracy" not in custom.epochs[-1] and "accuracy" in known.epochs[-1]
    assert dc.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), train, progress=False,
                  metrics=[]).epochs[-1].keys().isdisjoint({"accuracy"})


def test_the_training_record_averages_each_minibatch_over_its_rows():
    x = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    y = np.arange(10) % 3
    model = nn.Linear(4, 3, rng=0)
    history = dc.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=1e-30), (x, y), batch_size=4,
                     shuffle=False, progress=False, metrics=["accuracy", "top2_accuracy"])
    logits = dc.predict(model, x)  # a rate far below float32's resolution: the weights every minibatch saw
    rank = (logits > logits[np.arange(10), y][:, None]).sum(axis=1)
    assert history["accuracy"][-1] == pytest.approx(float((rank == 0).mean()), abs=1e-12)
    assert history["top2_accuracy"][-1] == pytest.approx(float((rank < 2).mean()), abs=1e-12)


def test_binary_accuracy_follows_the_logits_sign_and_sequences_count_per_character():
    assert Accuracy().score(np.array([[0.5], [-1.0], [2.0]]), np.array([[1.0], [1.0], [0.0]])) == 1.0
    characters = np.zeros((2, 4, 3))
    characters[..., 1] = 1  # every character predicted as class 1
    labels = np.array([[1, 1, 0, 0], [1, 1, 1, 1]])
    assert Accuracy().score(characters, labels) == pytest.approx(0.5 + 1.0)
    assert TopKAccuracy(1).score(characters, labels) == pytest.approx(Accuracy().score(characters, labels))


def test_hogwild_reports_the_metrics_asked_for():
    train, _ = _digits()
    model = nn.MLP([64, 32, 10], rng=0)
    history = dc.fit(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=1e-2), train, epochs=3,
                     engine="hogwild", workers=2, progress=False, metrics=["accuracy", "top3_accuracy"])
    assert 0.8 < history["accuracy"][-1] < history["top3_accuracy"][-1] <= 1


class Always(Metric):
    name = "always"

    def score(self, output, target):
        return float(len(target))


def test_a_metric_of_your_own_runs_locally_and_is_refused_where_it_cannot_travel():
    train, _ = _digits()
    model = nn.MLP([64, 10], rng=0)
    history = dc.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), train, progress=False,
                     metrics=[Always()])
    assert history["always"] == [1.0]
    with pytest.raises(DescendValueError, match=r"engine='hogwild' rebuilds the metrics by name in its workers, and "
                                                r"Always\('always'\) is a Metric of your own"):
        dc.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), train, progress=False,
               engine="hogwild", workers=2, metrics=[Always()])


@pytest.mark.parametrize("metrics, error, words", [
    ("accuracy", DescendTypeError, "metrics must be a list of metric names or Metrics, e.g. ['accuracy']; got str"),
    (["accuracy", "accuracy"], DescendValueError, "metrics names accuracy more than once"),
    (["precision"], DescendValueError, "unknown metric 'precision'; descend knows 'accuracy' and 'topK_accuracy'"),
    ([3], DescendTypeError, "a metric is a name such as 'accuracy' or 'top5_accuracy', or a Metric; got int 3"),
    (["top0_accuracy"], DescendValueError, "k must be"),
    (["top11_accuracy"], DescendValueError, "top11_accuracy: k=11 but the outputs have only 10 classes"),
])
def test_bad_metrics_are_named(metrics, error, words):
    model = nn.MLP([64, 10], rng=0)
    train, _ = _digits()
    with pytest.raises(error) as caught:
        dc.evaluate(model, nn.CrossEntropyLoss(), train, metrics=metrics)
    assert words in str(caught.value)


def test_top_k_needs_integer_labels_in_range():
    with pytest.raises(ShapeError, match=r"top2_accuracy compares outputs \(N, \.\.\., C\) with integer labels"):
        TopKAccuracy(2).score(np.zeros((3, 4)), np.zeros((3, 4)))
    with pytest.raises(DescendValueError, match=r"labels must be in \[0, 3\] for 4 classes; got labels from 0 to 7"):
        TopKAccuracy(2).score(np.zeros((3, 4)), np.array([0, 1, 7]))


def test_pytorch_argument_names_work_wherever_numpy_names_do():
    values = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    x = dc.tensor(values, requires_grad=True)
    t = torch.tensor(values)
    for ours, theirs in [
        (dc.sum(x, dim=1, keepdim=True), torch.sum(t, dim=1, keepdim=True)),
        (x.mean(dim=2), t.mean(dim=2)),
        (dc.max(x, dim=0), torch.amax(t, dim=0)),
        (x.min(dim=-1, keepdim=True), torch.amin(t, dim=-1, keepdim=True)),
        (dc.softmax(x, dim=1), torch.softmax(t, dim=1)),
        (x.log_softmax(dim=2), torch.log_softmax(t, dim=2)),
        (dc.flatten(x, start_dim=1), torch.flatten(t, start_dim=1)),
        (x.flatten(start_dim=2), t.flatten(start_dim=2)),
        (dc.concat([x, x], dim=2), torch.cat([t, t], dim=2)),
        (dc.stack([x, x], dim=1), torch.stack([t, t], dim=1)),
        (x.argmax(dim=1), t.argmax(dim=1)),
        (nn.Softmax(dim=0)(x), torch.nn.Softmax(dim=0)(t)),
    ]:
        np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-12)
    assert [part.shape for part in dc.split(x, 2, dim=2)] == [(2, 3, 2), (2, 3, 2)]
    assert nn.Softmax(dim=0).config() == {"axis": 0}  # saved under descend's own name


def test_both_spellings_at_once_are_refused():
    x = dc.tensor(np.ones((2, 3)))
    with pytest.raises(DescendTypeError, match=r"sum: got both axis= and dim= \(PyTorch's name for axis\); pass one"):
        dc.sum(x, axis=0, dim=1)
    with pytest.raises(DescendTypeError, match=r"Softmax: got both axis= and dim="):
        nn.Softmax(axis=0, dim=1)
    with pytest.raises(DescendTypeError, match="unexpected keyword argument 'dim'"):
        nn.Linear(2, 3, dim=1)  # only where there is an axis to name

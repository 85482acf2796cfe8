"""What PyTorch's MNIST example reaches for (issue 19, item 5): `reduction=` on every loss, NLLLoss / nll_loss,
argmax and flatten; each loss's values and gradients against torch's for every reduction."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import imported

import descend as dc
from descend import nn
from descend.errors import DescendValueError, IndexOutOfRangeError, ShapeError

RNG = np.random.default_rng(19)
LOGITS = RNG.standard_normal((5, 4))
LABELS = np.array([0, 3, 1, 1, 2])
SEQUENCE_LOGITS = RNG.standard_normal((2, 3, 4))
SEQUENCE_LABELS = np.array([[0, 1, 3], [2, 2, 0]])
TARGETS = RNG.random((5, 4))


def torch_loss(name: str, reduction: str):
    torch = imported("torch")
    functional = torch.nn.functional
    return {
        "mse": lambda p, t: functional.mse_loss(p, t, reduction=reduction),
        "cross_entropy": lambda p, t: functional.cross_entropy(p, t, reduction=reduction),
        "sequence_cross_entropy": lambda p, t: functional.cross_entropy(p.permute(0, 2, 1), t, reduction=reduction),
        "nll": lambda p, t: functional.nll_loss(functional.log_softmax(p, dim=1), t, reduction=reduction),
        "bce": lambda p, t: functional.binary_cross_entropy_with_logits(p, t, reduction=reduction),
    }[name]


CASES = {
    "mse": (lambda r: nn.MSELoss(r), LOGITS, TARGETS),
    "cross_entropy": (lambda r: nn.CrossEntropyLoss(r), LOGITS, LABELS),
    "sequence_cross_entropy": (lambda r: nn.CrossEntropyLoss(r), SEQUENCE_LOGITS, SEQUENCE_LABELS),
    "nll": (lambda r: (lambda p, t: nn.NLLLoss(r)(dc.log_softmax(p, axis=1), t)), LOGITS, LABELS),
    "bce": (lambda r: nn.BCEWithLogitsLoss(r), LOGITS, TARGETS),
}


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", CASES)
def test_every_loss_reduces_as_torch_does_and_its_gradient_agrees(name, reduction):
    torch = imported("torch")
    make, prediction, target = CASES[name]
    ours_input = dc.tensor(prediction, requires_grad=True)
    ours = make(reduction)(ours_input, target)
    theirs_input = torch.tensor(prediction, requires_grad=True)
    theirs = torch_loss(name, reduction)(theirs_input, torch.tensor(target))
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-12, atol=1e-12)
    upstream = RNG.standard_normal(ours.shape)
    ours.backward(upstream)
    theirs.backward(torch.tensor(upstream))
    np.testing.assert_allclose(ours_input.grad, theirs_input.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_the_margin_loss_sums_and_keeps_its_samples_too():
    lengths = dc.tensor(RNG.random((5, 4)))
    per_sample = nn.MarginLoss(reduction="none")(lengths, LABELS)
    assert per_sample.shape == (5,)
    np.testing.assert_allclose(nn.MarginLoss()(lengths, LABELS).data, per_sample.data.mean())
    np.testing.assert_allclose(nn.MarginLoss(reduction="sum")(lengths, LABELS).data, per_sample.data.sum())


def test_a_wrong_reduction_is_named_and_fit_and_evaluate_take_the_mean_only():
    with pytest.raises(DescendValueError, match="reduction must be one of 'mean', 'sum', 'none'; got 'avg'"):
        nn.CrossEntropyLoss(reduction="avg")
    with pytest.raises(DescendValueError, match="reduction must be one of"):
        dc.nll_loss(dc.tensor(LOGITS), LABELS, reduction=None)
    data = (RNG.standard_normal((8, 4)).astype(np.float32), np.arange(8) % 3)
    model = nn.Linear(4, 3, rng=0)
    with pytest.raises(DescendValueError, match="fit weighs each batch's mean loss .* got reduction='sum'"):
        dc.fit(model, nn.CrossEntropyLoss("sum"), dc.optim.SGD(model.parameters(), lr=0.1), data, progress=False)
    with pytest.raises(DescendValueError, match="evaluate weighs .* got reduction='none'"):
        dc.evaluate(model, nn.CrossEntropyLoss("none"), data)


def test_nll_loss_refuses_labels_out_of_range_by_its_own_name():
    with pytest.raises(DescendValueError, match=r"nll_loss: labels must lie in \[0, 4\)"):
        dc.nll_loss(dc.tensor(LOGITS), np.array([0, 1, 2, 3, 4]))


def test_argmax_and_flatten_as_pytorch_users_write_them():
    x = dc.tensor(np.array([[[1.0, 5.0], [5.0, 2.0]], [[0.0, -1.0], [3.0, 3.0]]]), requires_grad=True)
    assert x.argmax(axis=2).data.tolist() == [[1, 0], [0, 0]]  # the first of a tie, as NumPy and torch
    assert int(dc.argmax(x).data) == 1 and x.argmax(axis=1, keepdims=True).shape == (2, 1, 2)
    assert x.argmax(axis=1).data.dtype == np.int64 and not x.argmax(axis=1).requires_grad
    flat = x.flatten(1)
    assert flat.shape == (2, 4) and dc.flatten(x).shape == (8,)
    (flat * np.arange(8.0).reshape(2, 4)).sum().backward()
    assert x.grad.reshape(-1).tolist() == list(range(8))
    with pytest.raises(ShapeError, match="argmax of an empty array"):
        dc.argmax(np.zeros((0, 3)))
    with pytest.raises(IndexOutOfRangeError, match="start_axis"):
        x.flatten(3)

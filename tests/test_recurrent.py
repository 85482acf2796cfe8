"""Recurrent layers, cells and Embedding: PyTorch parity with copied weights, states, sampling, bad input."""

import numpy as np
import pytest

import descend as dc
from descend import nn
from descend.errors import DescendError, DescendTypeError, DescendValueError, ShapeError

torch = pytest.importorskip("torch", reason="PyTorch is the oracle for recurrent layers")

# kind, options
CONFIGS = [
    ("RNN", dict()),
    ("RNN", dict(nonlinearity="relu", num_layers=2)),
    ("LSTM", dict()),
    ("LSTM", dict(num_layers=2, bidirectional=True)),
    ("LSTM", dict(batch_first=True, bias=False)),
    ("GRU", dict()),
    ("GRU", dict(num_layers=3, bidirectional=True, batch_first=True)),
]


def _copy_weights(ours, theirs):
    with torch.no_grad():
        for name, parameter in ours.named_parameters():
            value = parameter.data.T if name.startswith("weight") else parameter.data
            getattr(theirs, name).copy_(torch.from_numpy(np.ascontiguousarray(value)))


@pytest.mark.parametrize("kind, options", CONFIGS, ids=[f"{k}-{'-'.join(o) or 'plain'}" for k, o in CONFIGS])
def test_layer_matches_torch_outputs_final_states_and_gradients(kind, options):
    input_size, hidden, steps, batch = 4, 5, 6, 3
    ours = getattr(nn, kind)(input_size, hidden, rng=0, **options).astype(np.float64)
    theirs = getattr(torch.nn, kind)(input_size, hidden, **options).double()
    _copy_weights(ours, theirs)
    directions = 2 if options.get("bidirectional") else 1
    layers = options.get("num_layers", 1)
    rng = np.random.default_rng(1)
    shape = (batch, steps, input_size) if options.get("batch_first") else (steps, batch, input_size)
    x = rng.normal(size=shape)
    h0 = rng.normal(size=(layers * directions, batch, hidden))
    c0 = rng.normal(size=(layers * directions, batch, hidden))

    xt = dc.tensor(x, requires_grad=True, dtype=np.float64)
    h0t = dc.tensor(h0, requires_grad=True, dtype=np.float64)
    c0t = dc.tensor(c0, requires_grad=True, dtype=np.float64)
    tx, th0, tc0 = (torch.from_numpy(a).requires_grad_() for a in (x, h0, c0))
    if kind == "LSTM":
        out, (h_n, c_n) = ours(xt, (h0t, c0t))
        tout, (th_n, tc_n) = theirs(tx, (th0, tc0))
        finals = [(h_n, th_n), (c_n, tc_n)]
    else:
        out, h_n = ours(xt, h0t)
        tout, th_n = theirs(tx, th0)
        finals = [(h_n, th_n)]
    weights = [rng.normal(size=tuple(o.shape)) for o in [out] + [f for f, _ in finals]]
    loss = sum((value * dc.tensor(w, dtype=np.float64)).sum() for value, w in zip([out] + [f for f, _ in finals], weights))
    loss.backward()
    torch_loss = sum((value * torch.from_numpy(w)).sum() for value, w in zip([tout] + [t for _, t in finals], weights))
    torch_loss.backward()

    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-6, atol=1e-10)
    for value, twin in finals:
        np.testing.assert_allclose(value.data, twin.detach().numpy(), rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(xt.grad, tx.grad.numpy(), rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(h0t.grad, th0.grad.numpy(), rtol=1e-6, atol=1e-10)
    if kind == "LSTM":
        np.testing.assert_allclose(c0t.grad, tc0.grad.numpy(), rtol=1e-6, atol=1e-10)
    for name, parameter in ours.named_parameters():
        expected = getattr(theirs, name).grad.numpy()
        np.testing.assert_allclose(parameter.grad, expected.T if name.startswith("weight") else expected,
                                   rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("kind", ["RNNCell", "LSTMCell", "GRUCell"])
def test_cells_match_torch(kind):
    ours = getattr(nn, kind)(4, 3, rng=0).astype(np.float64)
    theirs = getattr(torch.nn, kind)(4, 3).double()
    _copy_weights(ours, theirs)
    rng = np.random.default_rng(0)
    x, h, c = rng.normal(size=(2, 4)), rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    xt = dc.tensor(x, requires_grad=True, dtype=np.float64)
    tx = torch.from_numpy(x).requires_grad_()
    if kind == "LSTMCell":
        (h1, c1), (th1, tc1) = ours(xt, (h, c)), theirs(tx, (torch.from_numpy(h), torch.from_numpy(c)))
        (h1.sum() + c1.sum()).backward()
        (th1.sum() + tc1.sum()).backward()
        np.testing.assert_allclose(c1.data, tc1.detach().numpy(), rtol=1e-10)
    else:
        h1, th1 = ours(xt, h), theirs(tx, torch.from_numpy(h))
        h1.sum().backward()
        th1.sum().backward()
    np.testing.assert_allclose(h1.data, th1.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(xt.grad, tx.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(ours.weight_hh.grad, theirs.weight_hh.grad.numpy().T, rtol=1e-10)


def test_a_cell_loop_equals_the_whole_sequence_layer():
    layer = nn.LSTM(3, 4, rng=0).astype(np.float64)
    cell = nn.LSTMCell(3, 4).astype(np.float64)
    cell.load_state_dict({k[: -len("_l0")]: v for k, v in layer.state_dict().items()})
    x = np.random.default_rng(0).normal(size=(5, 2, 3))
    out, (h_n, c_n) = layer(dc.tensor(x, dtype=np.float64))
    state = None
    for t in range(5):
        state = cell(dc.tensor(x[t], dtype=np.float64), state)
    np.testing.assert_allclose(state[0].data, h_n.data[0], rtol=1e-12)
    np.testing.assert_allclose(state[1].data, c_n.data[0], rtol=1e-12)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_a_forward_under_no_grad_gives_the_same_outputs_and_records_no_tape(kind):
    layer = getattr(nn, kind)(3, 4, num_layers=2, rng=0)
    x = dc.tensor(np.random.default_rng(0).normal(size=(5, 2, 3)))
    recorded, _ = layer(x)
    with dc.no_grad():
        plain, _ = layer(x)
    np.testing.assert_array_equal(plain.data, recorded.data)
    assert recorded.requires_grad and not plain.requires_grad
    assert plain.creator is None


def test_embedding_matches_torch_and_refuses_bad_ids():
    ours = nn.Embedding(7, 3, rng=0).astype(np.float64)
    theirs = torch.nn.Embedding(7, 3).double()
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.weight.data))  # the same (num_embeddings, embedding_dim) layout
    ids = np.array([[1, 2, 2], [6, 0, 1]])
    out = ours(ids)
    (out * out).sum().backward()
    tout = theirs(torch.from_numpy(ids))
    (tout * tout).sum().backward()
    np.testing.assert_allclose(out.data, tout.detach().numpy())
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy())  # id 2 twice: gradients add up
    with pytest.raises(DescendValueError, match=r"\[0, 7\)"):
        ours(np.array([0, 7]))
    with pytest.raises(DescendTypeError, match="integer"):
        ours(np.array([0.5]))


def test_char_rnn_trains_keeps_state_when_stateful_and_generates_from_its_vocabulary():
    class Vocabulary:
        vocab_size = 5
        alphabet = "abcd\n"

        def encode(self, text):
            return np.array([self.alphabet.index(ch) for ch in text], dtype=np.int64)

        def decode(self, ids):
            return "".join(self.alphabet[i] for i in ids)

    text = Vocabulary()
    ids = text.encode("abcd\n" * 40)
    x = np.stack([ids[i : i + 8] for i in range(0, 160, 8)])
    y = np.stack([ids[i + 1 : i + 9] for i in range(0, 160, 8)])
    model = nn.CharRNN(5, embed=8, hidden=16, cell="gru", rng=0)
    history = dc.fit(model, nn.CrossEntropyLoss(), dc.optim.Adam(model.parameters(), lr=0.02), (x, y), epochs=15,
                     batch_size=4, clip_grad_norm=5.0, progress=False)
    assert history["accuracy"][-1] > 0.9  # the pattern is fully predictable
    sample = model.generate(text, prompt="ab", length=20, temperature=0.5, top_k=2, seed=0)
    assert sample.startswith("ab") and len(sample) == 22 and set(sample) <= set(text.alphabet)
    assert "abcd" in sample

    stateful = nn.CharRNN(5, embed=4, hidden=6, cell="lstm", stateful=True, rng=0)
    stateful(x[:4])
    carried = stateful.carried
    assert carried is not None and not carried[0].requires_grad
    first = stateful(x[4:8]).data
    stateful.reset_state()
    assert not np.allclose(stateful(x[4:8]).data, first)  # the carried state changed the outputs


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda: nn.LSTM(4, 3)(dc.tensor(np.zeros((5, 2)))), ShapeError, ["(T, N, 4)", "(5, 2)"]),
        (lambda: nn.GRU(4, 3, batch_first=True)(dc.tensor(np.zeros((2, 5, 3)))), ShapeError, ["(N, T, 4)"]),
        (lambda: nn.RNN(4, 3)(dc.tensor(np.zeros((5, 2, 4))), np.zeros((2, 3))), ShapeError, ["h0", "(1, 2, 3)"]),
        (lambda: nn.LSTM(4, 3)(dc.tensor(np.zeros((5, 2, 4))), np.zeros((1, 2, 3))), DescendTypeError, ["(h0, c0)"]),
        (lambda: nn.LSTMCell(4, 3)(dc.tensor(np.zeros((2, 4))), (np.zeros((2, 4)), None)), ShapeError, ["h", "(2, 3)"]),
        (lambda: nn.RNN(4, 3, nonlinearity="sigmoid"), DescendValueError, ["nonlinearity"]),
        (lambda: nn.LSTM(0, 3), DescendError, ["input_size"]),
        (lambda: nn.CharRNN(10, cell="transformer"), DescendValueError, ["cell", "lstm"]),
        (lambda: nn.CharRNN(10)(np.zeros(5, dtype=int)), ShapeError, ["(N, T)"]),
        (lambda: nn.CharRNN(10)(np.array([[1, 12]])), DescendValueError, ["[0, 10)", "12"]),
    ],
)
def test_bad_input_names_what_was_expected(call, error, words):
    with pytest.raises(error) as raised:
        call()
    for word in words:
        assert word in str(raised.value)


def test_truncated_bptt_carries_the_state_across_batches_in_fit():
    text = dc.data.Text("to be or not to be, that is the question\n" * 40, validation_fraction=0.1)
    streams = text.sequences(length=8, batch_size=4)
    model = nn.CharRNN(text.vocab_size, embed=8, hidden=16, cell="lstm", stateful=True, rng=0)
    seen = []

    class Watch(dc.Callback):
        def on_batch_end(self, state, loss):
            seen.append(state.model.carried[0].data.copy())

    history = dc.fit(model, nn.CrossEntropyLoss(), dc.optim.Adam(model.parameters(), lr=0.01), streams, epochs=3,
                     batch_size=4, shuffle=False, callbacks=[Watch()], progress=False)
    assert history["loss"][-1] < history["loss"][0]
    assert all(not np.allclose(a, 0) for a in seen[1:3])  # each batch started from the previous one's state


@pytest.mark.parametrize("layer", ["RNN", "LSTM", "GRU"])
def test_a_stack_that_cannot_fit_the_limit_is_refused_before_its_first_layer_is_built(layer, monkeypatch):
    """The stack's whole count is checked against the limit first: exactly its parameters fit, one fewer does not,
    and a billion layers are refused without drawing a single weight."""
    from descend.errors import SizeLimitError
    from descend.nn import init

    cls = getattr(nn, layer)
    exact = cls(3, 5, num_layers=2, bidirectional=True, rng=0).parameter_count()
    with init.values_limit(exact):
        cls(3, 5, num_layers=2, bidirectional=True, rng=0)
    with init.values_limit(exact - 1), pytest.raises(SizeLimitError, match=f"{layer} of 2 layers of 5 asks for {exact}"):
        cls(3, 5, num_layers=2, bidirectional=True, rng=0)
    monkeypatch.setattr(init, "uniform", lambda *args: pytest.fail("a weight was drawn"))
    with init.values_limit(10**9), pytest.raises(SizeLimitError, match="of 1000000000 layers"):
        cls(3, 5, num_layers=10**9, rng=0)

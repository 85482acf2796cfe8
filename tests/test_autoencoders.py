"""Autoencoders and anomaly detection: shapes, tying, penalties, training, scikit-learn's outlier API, bad input."""

import numpy as np
import pytest

import descend as dc
from descend import anomaly, nn, optim
from descend.errors import DescendError, DescendTypeError, DescendValueError, ShapeError

MODELS = [
    (lambda: nn.Autoencoder([12, 8, 3], rng=0), (5, 12), (5, 3)),
    (lambda: nn.Autoencoder([12, 8, 3], tied=True, output="linear", rng=0), (5, 12), (5, 3)),
    (lambda: nn.DenoisingAutoencoder([12, 6], noise=0.3, dropout=0.2, rng=0), (5, 12), (5, 6)),
    (lambda: nn.SparseAutoencoder([12, 6], sparsity=0.1, rng=0), (5, 12), (5, 6)),
    (lambda: nn.VariationalAutoencoder([12, 8, 2], rng=0), (5, 12), (5, 2)),
    (lambda: nn.ConvAutoencoder(1, (4, 6), rng=0), (2, 1, 8, 8), (2, 6, 2, 2)),
]


@pytest.mark.parametrize("make, in_shape, code_shape", MODELS, ids=lambda v: getattr(v, "__name__", "") or None)
def test_reconstruction_shape_code_shape_and_rebuild(make, in_shape, code_shape, tmp_path):
    model = make()
    x = dc.tensor(np.random.default_rng(0).random(in_shape, dtype=np.float32))
    assert model(x).shape == in_shape and model.encode(x).shape == code_shape
    loaded = dc.load(dc.save(model, tmp_path / "m.dsc"))
    np.testing.assert_array_equal(loaded.eval()(x).data, model.eval()(x).data)


def test_tied_weights_are_one_parameter_and_get_both_gradients():
    model = nn.Autoencoder([6, 4, 2], tied=True, rng=0)
    untied = nn.Autoencoder([6, 4, 2], rng=0)
    assert model.parameter_count() == (6 * 4 + 4 * 2) + (4 + 2) + (4 + 6)
    assert untied.parameter_count() == 2 * (6 * 4 + 4 * 2) + (4 + 2) + (4 + 6)
    encoder_weight = model.encoder.layers[0].weight
    loss = nn.MSELoss()(model(dc.tensor(np.ones((3, 6), np.float32))), np.zeros((3, 6), np.float32))
    loss.backward()
    assert np.abs(encoder_weight.grad).sum() > 0


def test_penalties_join_the_loss_in_fit():
    x = np.random.default_rng(0).random((64, 10)).astype(np.float32)
    sparse = nn.SparseAutoencoder([10, 4], sparsity=10.0, rng=0)
    plain = nn.Autoencoder([10, 4], rng=0)
    sparse_loss = dc.fit(sparse, nn.MSELoss(), optim.SGD(sparse.parameters(), lr=1e-3), x, batch_size=64,
                         progress=False)["loss"][0]
    plain_loss = dc.fit(plain, nn.MSELoss(), optim.SGD(plain.parameters(), lr=1e-3), x, batch_size=64,
                        progress=False)["loss"][0]
    code = plain.encode(dc.tensor(x))
    assert sparse_loss == pytest.approx(plain_loss + 10.0 * np.abs(code.data).mean(), rel=1e-3)

    vae = nn.VariationalAutoencoder([10, 6, 2], rng=0)
    vae(dc.tensor(x))
    assert vae.penalty().item() > 0
    vae.eval()
    np.testing.assert_array_equal(vae(dc.tensor(x)).data, vae(dc.tensor(x)).data)  # the mean, no sampling


def test_an_autoencoder_on_normal_data_flags_what_differs():
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(2, 8))
    normal = (rng.normal(size=(600, 2)) @ basis).astype(np.float32)  # rows on a 2-D plane
    odd = rng.normal(size=(30, 8)).astype(np.float32) * 2  # rows off the plane
    model = nn.Autoencoder([8, 6, 2], activation="tanh", output="linear", rng=0)
    dc.fit(model, nn.MSELoss(), optim.Adam(model.parameters(), lr=1e-2), normal, epochs=60, batch_size=64,
           progress=False)
    detector = anomaly.AnomalyDetector(model, contamination=0.02).fit(normal)
    assert detector.n_features_in_ == 8 and detector.offset_ == -detector.threshold_
    assert (detector.predict(normal) == 1).mean() == pytest.approx(0.98, abs=0.01)
    assert (detector.predict(odd) == -1).mean() > 0.9
    scores = detector.score_samples(np.concatenate([normal[:30], odd]))
    assert scores[:30].mean() > scores[30:].mean()  # higher = more normal
    np.testing.assert_allclose(detector.decision_function(odd), detector.score_samples(odd) + detector.threshold_)
    errors = anomaly.feature_errors(model, odd)
    assert errors.shape == odd.shape
    np.testing.assert_allclose(errors.mean(axis=1), anomaly.reconstruction_error(model, odd), rtol=1e-6)
    assert len(detector.explain(odd[:2], top=3)[0]) == 3


def test_the_top_feature_error_points_at_a_broken_column():
    rng = np.random.default_rng(1)
    latent = rng.normal(size=(800, 2))
    normal = np.concatenate([latent, latent @ rng.normal(size=(2, 4))], axis=1).astype(np.float32)
    broken = normal[:20].copy()
    broken[:, 3] += 6.0  # column 3 no longer fits the others
    model = nn.Autoencoder([6, 5, 2], activation="tanh", output="linear", rng=0)
    dc.fit(model, nn.MSELoss(), optim.Adam(model.parameters(), lr=1e-2), normal, epochs=60, batch_size=64,
           progress=False)
    detector = anomaly.AnomalyDetector(model).fit(normal)
    assert np.mean([row[0][0] == 3 for row in detector.explain(broken, top=1)]) > 0.8


class WindowAutoencoder(nn.Module):
    """A user's own model, Keras' Conv1D anomaly tutorial in small: windows (N, 1, 64) -> (N, 4, 16) -> (N, 1, 64).

    It does not set target_is_input: the detector trains it with the windows as their own targets.
    """

    def __init__(self, rng=None):
        rng = np.random.default_rng(rng)
        self.encoder = nn.Sequential(nn.Conv1d(1, 8, 7, stride=2, padding=3, rng=rng), nn.ReLU(),
                                     nn.Conv1d(8, 4, 7, stride=2, padding=3, rng=rng), nn.ReLU())
        self.decoder = nn.Sequential(
            nn.ConvTranspose1d(4, 4, 7, stride=2, padding=3, output_padding=1, rng=rng), nn.ReLU(),
            nn.ConvTranspose1d(4, 8, 7, stride=2, padding=3, output_padding=1, rng=rng), nn.ReLU(),
            nn.Conv1d(8, 1, 7, padding="same", rng=rng),
        )

    def forward(self, x):
        return self.decoder(self.encoder(x))


def sine_windows(rng, n):
    """(n, 1, 64) windows of a noisy sine of period 24, random phase and amplitude: normal behaviour."""
    phase, amplitude = rng.uniform(0, 2 * np.pi, (n, 1)), rng.uniform(0.8, 1.2, (n, 1))
    wave = amplitude * np.sin(2 * np.pi * np.arange(64) / 24 + phase) + 0.05 * rng.standard_normal((n, 64))
    return wave[:, None, :].astype(np.float32)


def test_a_users_conv1d_autoencoder_trained_by_the_detector_flags_stalled_windows():
    rng = np.random.default_rng(0)
    normal, held_out, stalled = sine_windows(rng, 512), sine_windows(rng, 200), sine_windows(rng, 100)
    for row, start in enumerate(rng.integers(8, 48, len(stalled))):
        stalled[row, 0, start : start + 12] = stalled[row, 0, start]  # the sensor sticks for 12 steps
    model = WindowAutoencoder(rng=0)
    assert not model.target_is_input
    detector = anomaly.AnomalyDetector(model, contamination=0.01).fit(normal, epochs=60, batch_size=32,
                                                                      progress=False)
    assert len(detector.history_["loss"]) == 60 and detector.feature_shape_ == (1, 64)
    assert (detector.predict(held_out) == 1).mean() >= 0.95
    assert (detector.predict(stalled) == -1).mean() >= 0.95  # an untrained model flags about 1 in 10
    assert anomaly.feature_errors(model, stalled[:3]).shape == (3, 1, 64)


def test_a_model_that_does_not_give_back_its_inputs_shape_is_refused_naming_both():
    class Halver(nn.Module):
        def __init__(self):
            self.conv = nn.Conv1d(1, 1, 3, stride=2, padding=1, rng=0)

        def forward(self, x):
            return self.conv(x)

    windows = sine_windows(np.random.default_rng(0), 8)
    before = Halver().state_dict()
    for fit in (lambda detector: detector.fit(windows, epochs=3), lambda detector: detector.fit(windows)):
        model = Halver()
        with pytest.raises(ShapeError) as raised:
            fit(anomaly.AnomalyDetector(model))
        assert "Halver" in str(raised.value) and "(1, 64)" in str(raised.value) and "(1, 32)" in str(raised.value)
        assert all(np.array_equal(value, before[name]) for name, value in model.state_dict().items())  # untrained


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda: anomaly.AnomalyDetector(nn.MLP([4, 2]), contamination=0.1).fit(np.zeros((5, 4))), ShapeError,
         ["MLP", "(4,)", "(2,)"]),
        (lambda: anomaly.reconstruction_error(nn.MLP([4, 2]), np.zeros((5, 4))), ShapeError, ["MLP", "(4,)", "(2,)"]),
        (lambda: anomaly.AnomalyDetector("model"), DescendTypeError, ["Module", "str"]),
        (lambda: anomaly.AnomalyDetector(nn.Autoencoder([4, 2])).fit(np.zeros((5, 4)), batch_size=8),
         DescendValueError, ["batch_size", "epochs"]),
        (lambda: anomaly.AnomalyDetector(nn.Autoencoder([4, 2])).fit(np.zeros((5, 4)), epochs=-1), DescendValueError,
         ["epochs", ">= 0"]),
        (lambda: anomaly.AnomalyDetector(nn.Autoencoder([4, 2]), contamination=0.0), DescendError, ["contamination"]),
        (lambda: anomaly.AnomalyDetector(nn.Autoencoder([4, 2]), contamination=0.6), DescendError, ["contamination", "0.5"]),
        (lambda: anomaly.AnomalyDetector(nn.Autoencoder([4, 2])).predict(np.zeros((2, 4))), DescendValueError,
         ["not fitted"]),
        (lambda: anomaly.reconstruction_error(nn.Autoencoder([4, 2]), np.zeros((2, 3))), ShapeError,
         ["(3,)", "(4,)"]),
        (lambda: anomaly.reconstruction_error(nn.Autoencoder([4, 2]), np.full((2, 4), np.nan)), DescendValueError,
         ["NaN"]),
        (lambda: anomaly.AnomalyDetector(nn.Autoencoder([4, 2])).fit(np.zeros((5, 4))).predict(np.zeros((2, 5))),
         ShapeError, ["(5,)"]),
        (lambda: nn.Autoencoder([4, 2], output="softmax"), DescendValueError, ["output", "sigmoid"]),
        (lambda: nn.Autoencoder([4]), DescendValueError, ["sizes"]),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(call, error, words):
    with pytest.raises(error) as raised:
        call()
    for word in words:
        assert word in str(raised.value)

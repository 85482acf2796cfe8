"""Capsule networks: squash, routing by agreement against torch with copied weights, the margin loss, CapsNet.

The ops themselves (squash, the predictions û, routing with 1 and 3
iterations, the capsule length, the margin loss) are rows of the op table,
checked there by finite differences and against torch's autograd.
"""

from __future__ import annotations

import numpy as np
import pytest

import descend as dc
from descend import nn, optim
from descend.errors import DescendValueError, ShapeError
from descend.nn.capsules import PERTURBATION_STEPS

from op_table import torch_margin_loss, torch_routing

try:
    import torch
except ImportError:  # the oracle; CI installs it
    torch = None


def test_squash_keeps_the_direction_and_maps_the_length_n_to_n_squared_over_one_plus_n_squared():
    rng = np.random.default_rng(0)
    s = rng.standard_normal((5, 8)) * np.array([[0.01], [0.5], [1.0], [3.0], [100.0]])
    v = dc.ops.squash(dc.tensor(s, dtype=np.float64)).data
    norms = np.linalg.norm(s, axis=1)
    # within the ε = 1e-9 that keeps a zero vector's gradient finite
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), norms**2 / (1 + norms**2), rtol=1e-5)
    np.testing.assert_allclose(v / np.linalg.norm(v, axis=1, keepdims=True), s / norms[:, None], rtol=1e-6)


def test_squash_of_a_zero_vector_is_zero_with_a_finite_gradient():
    s = dc.tensor(np.zeros((2, 4)), requires_grad=True, dtype=np.float64)
    dc.ops.squash(s).sum().backward()
    assert np.all(dc.ops.squash(dc.tensor(np.zeros(3))).data == 0)
    assert np.all(np.isfinite(s.grad))


def _routing_case(seed=0, n=3, inputs=12, in_dim=4, outputs=5, out_dim=6):
    rng = np.random.default_rng(seed)
    u = rng.standard_normal((n, inputs, in_dim)) * 0.5
    layer = nn.DigitCapsules(inputs, in_dim, outputs, out_dim, routing_iters=3, rng=seed).astype(np.float64)
    layer.weight.data[...] = rng.standard_normal(layer.weight.shape) * 0.3
    return u, layer


@pytest.mark.skipif(torch is None, reason="torch is the oracle")
@pytest.mark.parametrize("iterations", [1, 2, 3, 5])
def test_digit_capsules_match_torch_with_copied_weights_values_and_every_gradient(iterations):
    u, layer = _routing_case()
    layer.routing_iters = iterations
    ours_u = dc.tensor(u, requires_grad=True, dtype=np.float64)
    out = layer(ours_u)
    cotangent = np.random.default_rng(1).standard_normal(out.shape)
    out.backward(cotangent)

    theirs_u = torch.tensor(u, requires_grad=True)
    weight = torch.tensor(layer.weight.data.reshape(12, 4, 5, 6), requires_grad=True)
    predictions = torch.einsum("nid,idjk->njik", theirs_u, weight)  # one matrix W_ij per (input i, output j)
    theirs = torch_routing(predictions, iterations)
    theirs.backward(torch.tensor(cotangent))
    np.testing.assert_allclose(out.data, theirs.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours_u.grad, theirs_u.grad.numpy(), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(layer.weight.grad, weight.grad.numpy().reshape(layer.weight.shape), rtol=1e-8,
                               atol=1e-12)


def test_routing_moves_the_couplings_towards_the_capsules_that_agree():
    """Three inputs vote alike for output 0 and scatter for output 1: routing gives output 0 a longer vector."""
    rng = np.random.default_rng(0)
    agree = np.tile(np.array([1.0, 0.0, 0.0, 0.0]), (3, 1)) * 0.6
    scatter = rng.standard_normal((3, 4)) * 0.6
    predictions = dc.tensor(np.stack([agree, scatter])[None], dtype=np.float64)  # (1, J=2, I=3, D=4)
    one = np.linalg.norm(dc.ops.dynamic_routing(predictions, 1).data[0], axis=1)
    three = np.linalg.norm(dc.ops.dynamic_routing(predictions, 3).data[0], axis=1)
    assert three[0] > one[0] and three[0] - three[1] > one[0] - one[1]


@pytest.mark.skipif(torch is None, reason="torch is the oracle")
def test_margin_loss_with_reconstruction_matches_torch():
    model = nn.CapsNet(conv_channels=8, primary_caps=2, primary_dim=4, digit_dim=6, n_classes=4, rng=0)
    model.astype(np.float64)
    images = np.random.default_rng(0).random((5, 1, 28, 28))
    labels = np.array([0, 3, 1, 1, 2])
    output = model(dc.tensor(images, dtype=np.float64))
    loss = nn.MarginLoss(reconstruction_weight=0.0005)(output, labels)

    lengths = torch.tensor(output.lengths.data)
    capsules = torch.tensor(output.capsules.data)
    mask = torch.nn.functional.one_hot(torch.tensor(labels), 4).to(torch.float64)[:, :, None]
    hidden = torch.tensor(capsules.numpy()) * mask
    layers = [layer for layer in model.decoder.layers if isinstance(layer, nn.Linear)]
    for index, layer in enumerate(layers):
        hidden = hidden.reshape(5, -1) @ torch.tensor(layer.weight.data) + torch.tensor(layer.bias.data)
        hidden = torch.relu(hidden) if index < 2 else torch.sigmoid(hidden)
    reconstruction = ((hidden - torch.tensor(images.reshape(5, -1))) ** 2).sum(dim=1).mean()
    expected = torch_margin_loss(lengths, torch.tensor(labels)) + 0.0005 * reconstruction
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)


def test_the_paper_s_capsnet_has_its_8_2_million_parameters_and_6_8_million_without_the_decoder():
    full = nn.CapsNet(rng=0)
    assert full.parameter_count() == 8_215_568
    assert nn.CapsNet(reconstruction=False, rng=0).parameter_count() == 8_215_568 - 1_411_344
    assert full.digits.in_capsules == 32 * 6 * 6 and full.digits.weight.shape == (1152, 8, 160)


def _tiny_capsnet(**options):
    return nn.CapsNet(conv_channels=8, primary_caps=4, primary_dim=4, digit_dim=8, n_classes=3, rng=0, **options)


def _three_patterns(n=60, seed=0):
    """Images of three classes: a bar at the top, in the middle or at the bottom, with noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    images = rng.random((n, 1, 28, 28)).astype(np.float32) * 0.2
    for index, label in enumerate(labels):
        images[index, 0, 4 + 8 * label : 8 + 8 * label, 4:24] = 1.0
    return images, labels


def test_a_small_capsnet_learns_three_patterns_and_reconstructs_them():
    images, labels = _three_patterns()
    model = _tiny_capsnet()
    before = nn.MarginLoss(reconstruction_weight=0.0005)(model(dc.tensor(images)), labels).item()
    history = dc.fit(model, nn.MarginLoss(reconstruction_weight=0.0005), optim.Adam(model.parameters(), lr=3e-3),
                     (images, labels), epochs=8, batch_size=20, progress=False)
    assert history["loss"][-1] < before / 3
    assert history["accuracy"][-1] == 1.0
    lengths = dc.predict(model, images)
    assert lengths.shape == (60, 3) and np.all((lengths >= 0) & (lengths < 1))
    assert dc.evaluate(model, nn.MarginLoss(), (images, labels))["accuracy"] == 1.0
    predicted, pictures = model.reconstructions(images[:6])
    np.testing.assert_array_equal(predicted, labels[:6])
    assert pictures.shape == (6, 784) and np.all((pictures > 0) & (pictures < 1))


def test_the_decoder_sees_only_the_chosen_capsule():
    images, labels = _three_patterns(n=4)
    model = _tiny_capsnet()
    output = model(dc.tensor(images))
    changed = output.capsules.data.copy()
    changed[np.arange(4), (labels + 1) % 3] += 5.0  # every other capsule may change
    original = model.decode(output.capsules, labels).data
    np.testing.assert_array_equal(model.decode(dc.tensor(changed), labels).data, original)
    assert not np.array_equal(model.decode(output.capsules, (labels + 1) % 3).data, original)


def test_perturbations_move_one_dimension_at_a_time():
    images, _ = _three_patterns(n=1)
    model = _tiny_capsnet()
    predicted, pictures = model.perturbations(images[0])
    assert pictures.shape == (8, len(PERTURBATION_STEPS), 784)
    np.testing.assert_allclose(PERTURBATION_STEPS, np.linspace(-0.25, 0.25, 11))
    middle = list(PERTURBATION_STEPS).index(0.0)
    unchanged = model.reconstructions(images)[1][0]
    for dimension in range(8):  # the step 0 is the unperturbed capsule in every row
        np.testing.assert_allclose(pictures[dimension, middle], unchanged, rtol=1e-5, atol=1e-6)
    assert not np.allclose(pictures[0, 0], pictures[0, -1])


def test_a_capsnet_saves_loads_and_resumes_like_any_model(tmp_path):
    images, labels = _three_patterns(n=30)
    model = _tiny_capsnet(routing_iters=2)
    dc.fit(model, nn.MarginLoss(reconstruction_weight=0.0005), optim.Adam(model.parameters(), lr=1e-3),
           (images, labels), epochs=1, batch_size=10, progress=False)
    loaded = dc.load(dc.save(model, tmp_path / "caps.dsc"))
    assert loaded.digits.routing_iters == 2
    np.testing.assert_array_equal(dc.predict(loaded, images), dc.predict(model, images))


def test_margin_loss_needs_a_decoder_for_reconstruction_and_checks_its_labels():
    images, labels = _three_patterns(n=3)
    output = _tiny_capsnet(reconstruction=False)(dc.tensor(images))
    with pytest.raises(DescendValueError, match="reconstruction=True"):
        nn.MarginLoss(reconstruction_weight=0.0005)(output, labels)
    assert nn.MarginLoss()(output, labels).item() > 0
    with pytest.raises(DescendValueError, match=r"\[0, 3\)"):
        nn.MarginLoss()(output, np.array([0, 1, 3]))
    with pytest.raises(ShapeError, match="labels"):
        nn.MarginLoss()(output, np.array([0, 1]))

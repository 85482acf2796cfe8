"""descend.nn.presets: the `descend` command's models, losses and optimizers, built from Python."""

import numpy as np
import pytest

from descend.data import Dataset, Text
from descend.errors import DescendTypeError, DescendValueError, ShapeError
from descend.nn import CapsNet, CharRNN, Conv2d, CrossEntropyLoss, Linear, MarginLoss, presets
from descend.optim import SGD, Adam, InverseTimeDecay
from descend.tensor import no_grad, tensor

TEXT = Text("ROMEO:\nBut soft, what light through yonder window breaks?\n")


def images(side: int, n: int = 4, classes: int = 10) -> Dataset:
    """n random one-channel side x side images labelled 0..classes-1 (the last row carries the top label)."""
    rng = np.random.default_rng(0)
    labels = np.arange(n) % classes
    labels[-1] = classes - 1
    return Dataset(rng.random((n, 1, side, side), dtype=np.float32), labels)


def rows(features: int, n: int = 4, classes: int = 10) -> Dataset:
    flat = images(1, n, classes)
    return Dataset(np.random.default_rng(1).random((n, features), dtype=np.float32), flat.y)


def data_for(name: str) -> Dataset | Text:
    if name in presets.CHAR_MODELS:
        return TEXT
    return images(28) if name in presets.IMAGE_MODELS else rows(784)


def test_the_cnn_preset_has_two_conv_blocks_and_a_dense_layer_of_128():
    cnn = presets.model("cnn", images(28))
    convolutions = [layer for layer in cnn.layers if isinstance(layer, Conv2d)]
    dense = [layer for layer in cnn.layers if isinstance(layer, Linear)]
    assert [layer.weight.shape for layer in convolutions] == [(32, 1, 3, 3), (64, 32, 3, 3)]
    assert [layer.weight.shape for layer in dense] == [(64 * 7 * 7, 128), (128, 10)]
    assert cnn.parameter_count() == 421_642
    assert presets.model("cnn", images(8)).parameter_count() == 53_002  # the digits' 8x8 images: 2x2 after pooling


@pytest.mark.parametrize("name", presets.NAMES)
def test_each_preset_builds_for_its_data_and_runs_a_forward_pass(name):
    data = data_for(name)
    model = presets.model(name, data, seed=0)
    batch = TEXT.sequences(5).x[:2] if name in presets.CHAR_MODELS else tensor(data.x[:2])
    with no_grad():
        output = model.eval()(batch)
    logits = output.lengths if name == "capsnet" else output
    expected = (2, 5, TEXT.vocab_size) if name in presets.CHAR_MODELS else (2, 10)
    assert logits.shape == expected
    assert np.isfinite(logits.data).all()


def test_the_same_seed_builds_the_same_weights():
    first, second = (presets.model("mlp", rows(64), hidden=[16], seed=3) for _ in range(2))
    np.testing.assert_array_equal(first.flat_buffer().data, second.flat_buffer().data)
    assert first.sizes == [64, 16, 10]


def test_each_preset_trains_on_its_own_loss_with_its_own_optimizer():
    capsnet = presets.model("capsnet", images(28), hidden=[8, 2])
    assert isinstance(presets.loss_for(capsnet), MarginLoss)
    assert isinstance(presets.optimizer_for(capsnet), Adam) and presets.optimizer_for(capsnet).lr == 1e-3
    char = presets.model("char-gru", TEXT, hidden=[8], embed=4)
    assert isinstance(presets.loss_for(char), CrossEntropyLoss) and isinstance(char, CharRNN)
    assert isinstance(presets.optimizer_for(char), Adam) and presets.optimizer_for(char).lr == 2e-3
    mlp = presets.model("mlp", rows(64), hidden=[8])
    sgd = presets.optimizer_for(mlp, lr=0.1, momentum=0.5, weight_decay=0.0, decay=0.01)
    assert isinstance(sgd, SGD) and isinstance(sgd.schedule, InverseTimeDecay)
    assert (sgd.base_lr, sgd.momentum, sgd.weight_decay) == (0.1, 0.5, 0.0)
    assert presets.optimizer_for(mlp, decay=0.0).schedule is None and presets.optimizer_for(mlp).base_lr == 0.05


def test_capsnet_widths_are_its_convolution_channels_and_primary_capsule_types():
    assert isinstance(presets.model("capsnet", images(28), hidden=[8]), CapsNet)
    small, default = presets.model("capsnet", images(28), hidden=[8, 2]), presets.model("capsnet", images(28))
    assert small.parameter_count() < default.parameter_count()


@pytest.mark.parametrize("call, error, words", [
    (lambda: presets.model("transformer", rows(4)), DescendValueError, ["'transformer'", "mlp", "char-lstm"]),
    (lambda: presets.model("lenet", images(8)), DescendValueError, ["lenet", "28x28", "8x8"]),
    (lambda: presets.model("mlp", images(8)), ShapeError, ["mlp", "(N, features)", "(4, 1, 8, 8)"]),
    (lambda: presets.model("cnn", rows(64)), ShapeError, ["cnn", "(N, 1, side, side)", "(4, 64)"]),
    (lambda: presets.model("mlp", TEXT), DescendTypeError, ["mlp", "Dataset", "Text"]),
    (lambda: presets.model("char-lstm", rows(4)), DescendTypeError, ["char-lstm", "Text", "Dataset"]),
    (lambda: presets.model("mlp", rows(4), hidden=[16, 0]), DescendValueError, ["hidden[1]", ">= 1"]),
    (lambda: presets.model("mlp", rows(4), hidden="16"), DescendTypeError, ["hidden", "'16'"]),
], ids=["unknown_name", "lenet_on_small_images", "mlp_on_images", "cnn_on_rows", "classifier_on_text",
        "char_model_on_rows", "hidden_zero", "hidden_a_string"])
def test_a_preset_refuses_what_it_cannot_build_by_name(call, error, words):
    with pytest.raises(error) as raised:
        call()
    missing = [word for word in words if word not in str(raised.value)]
    assert not missing, f"{missing} not in: {raised.value}"

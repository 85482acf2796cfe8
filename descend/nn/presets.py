"""The models of the `descend` command, for Python too: `descend train --model cnn` builds `model("cnn", data)`.

A preset is a named model built to fit a data set, with the loss it trains on and its optimizer:

- mlp: MLP, ReLU hidden layers (512, 256), dropout; cross-entropy; SGD 0.05, momentum, L2, inverse-time decay.
- logistic: LogisticRegression (softmax regression); the same loss and optimizer.
- cnn: SimpleCNN, two conv blocks and a dense layer of 128; the same loss and optimizer.
- lenet: LeNet5 (28x28 images); the same loss and optimizer.
- capsnet: CapsNet with 64 convolution channels and 8 primary capsule types (the paper's: 256, 32),
  28x28 images; the margin loss with the paper's reconstruction term; Adam at 1e-3.
- char-lstm, char-gru, char-rnn: CharRNN of one recurrent layer of 256 over a 64-wide embedding;
  cross-entropy over the next character; Adam at 2e-3.

>>> import numpy as np
>>> from descend.data import Dataset
>>> from descend.nn import presets
>>> digits = Dataset(np.zeros((10, 1, 8, 8), np.float32), np.arange(10))
>>> cnn = presets.model("cnn", digits, seed=0)
>>> cnn.parameter_count()
53002
>>> type(presets.loss_for(cnn)).__name__, type(presets.optimizer_for(cnn)).__name__
('CrossEntropyLoss', 'SGD')
"""

from __future__ import annotations

from collections.abc import Sequence

from descend.checks import check_integer, check_real
from descend.data.dataset import Dataset
from descend.data.streaming import StreamingDataset
from descend.data.text import Text
from descend.errors import DescendTypeError, DescendValueError, ShapeError
from descend.nn.capsules import CapsNet
from descend.nn.losses import CrossEntropyLoss, MarginLoss
from descend.nn.models import MLP, CharRNN, LeNet5, LogisticRegression, SimpleCNN
from descend.nn.module import Module
from descend.optim.adaptive import Adam
from descend.optim.optimizer import Optimizer
from descend.optim.schedules import InverseTimeDecay
from descend.optim.sgd import SGD

#: classifiers of images or feature rows, built for a Dataset
CLASSIFIERS = ("mlp", "logistic", "cnn", "lenet", "capsnet")
#: character-level language models, built for a Text
CHAR_MODELS = ("char-lstm", "char-gru", "char-rnn")
#: every preset's name
NAMES = CLASSIFIERS + CHAR_MODELS
#: the presets that take images (N, 1, side, side); the other classifiers take rows (N, features)
IMAGE_MODELS = ("cnn", "lenet", "capsnet")
#: the presets built for one image size only, with that size
IMAGE_SIZES = {"lenet": 28, "capsnet": 28}
#: the widths a preset gets when `hidden` is not given (capsnet: convolution channels, primary capsule types)
HIDDEN = {"mlp": (512, 256), "cnn": (128,), "capsnet": (64, 8), "char-lstm": (256,), "char-gru": (256,),
          "char-rnn": (256,)}
#: the margin loss's weight on the reconstruction error, as in Sabour et al. (2017)
RECONSTRUCTION_WEIGHT = 0.0005


def model(name: str, data: Dataset | StreamingDataset | Text, *, hidden: Sequence[int] | None = None, dropout: float = 0.2,
          layers: int = 1, embed: int = 64, seed: int | None = 0) -> Module:
    """The preset `name` (one of NAMES) built for `data`, as `descend train --model NAME` builds it.

    `data` is the training Dataset for a classifier (its labels give the classes, its x the
    features: rows (N, features) for mlp and logistic, images (N, 1, side, side) for the
    others; a ParquetDataset or NpyDataset of rows for mlp and logistic), or the Text for a
    char model (its vocabulary gives the input and output size).
    `hidden` gives the widths (see HIDDEN for each preset's default): every hidden layer for
    mlp, the dense layer for cnn, the recurrent width for char models, convolution channels
    and primary capsule types for capsnet; logistic and lenet have none to set. `dropout`
    follows hidden layers (mlp, cnn) or lies between recurrent layers (char models with
    `layers` > 1); `embed` is a char model's embedding width; `seed` draws the weights.

    >>> from descend.data import make_blobs
    >>> model("mlp", make_blobs(n=30, centers=3), hidden=[8]).sizes
    [2, 8, 3]
    """
    if name not in NAMES:
        raise DescendValueError(f"presets.model: unknown model {name!r}; the presets are {', '.join(NAMES)}")
    widths = _widths(name, hidden)
    dropout = check_real("dropout", dropout, low=0.0, high=1.0, high_open=True)
    if name in CHAR_MODELS:
        if not isinstance(data, Text):
            raise DescendTypeError(f"presets.model: {name} is built for a Text (descend.data.load_text); "
                                   f"got {type(data).__name__}")
        layers = check_integer("layers", layers, low=1)
        return CharRNN(data.vocab_size, embed=embed, hidden=widths[0], layers=layers, cell=name.split("-")[1],
                       dropout=dropout if layers > 1 else 0.0, rng=seed)
    if not isinstance(data, (Dataset, StreamingDataset)):
        raise DescendTypeError(f"presets.model: {name} is built for a Dataset of labelled examples; "
                               f"got {type(data).__name__}")
    side = _image_side(name, data.x.shape if isinstance(data, Dataset) else (len(data), *data.row_shape))
    if name == "logistic":
        return LogisticRegression(data.n_features, data.n_classes, rng=seed)
    if name == "mlp":
        return MLP([data.n_features, *widths, data.n_classes], activation="relu", dropout=dropout, rng=seed)
    if name == "cnn":
        return SimpleCNN(data.n_classes, image_size=side, hidden=widths[0], dropout=dropout, rng=seed)
    if name == "lenet":
        return LeNet5(data.n_classes, rng=seed)
    conv_channels, primary_caps = (*widths, HIDDEN["capsnet"][1])[:2]
    return CapsNet(conv_channels=conv_channels, primary_caps=primary_caps, n_classes=data.n_classes, rng=seed)


def loss_for(model: Module) -> Module:
    """The loss a preset trains on: the margin loss (with the reconstruction term when there is a decoder)
    for a CapsNet, else cross-entropy (over classes, or over the next character for a CharRNN)."""
    if isinstance(model, CapsNet):
        return MarginLoss(reconstruction_weight=RECONSTRUCTION_WEIGHT if model.decoder is not None else 0.0)
    return CrossEntropyLoss()


def optimizer_for(model: Module, lr: float | None = None, momentum: float = 0.9, weight_decay: float = 1e-4,
                  decay: float = 1e-4) -> Optimizer:
    """The optimizer a preset trains with, over `model`'s parameters.

    A CapsNet gets Adam (lr 1e-3 unless given, as in the paper), a CharRNN Adam (lr 2e-3); both
    ignore the other arguments. Everything else gets SGD (lr 0.05 unless given) with `momentum`,
    the L2 penalty `weight_decay`, and inverse-time decay of the rate by `decay` per step (none at 0).
    """
    if isinstance(model, CapsNet):
        return Adam(model.parameters(), lr=1e-3 if lr is None else lr)
    if isinstance(model, CharRNN):
        return Adam(model.parameters(), lr=2e-3 if lr is None else lr)
    decay = check_real("decay", decay, low=0.0)
    return SGD(model.parameters(), lr=0.05 if lr is None else lr, momentum=momentum, weight_decay=weight_decay,
               schedule=InverseTimeDecay(decay=decay) if decay > 0 else None)


def _widths(name: str, hidden: Sequence[int] | None) -> tuple[int, ...]:
    """`hidden` checked, or the preset's default widths."""
    if hidden is None:
        return HIDDEN.get(name, ())
    if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence) or not hidden:
        raise DescendTypeError(f"presets.model: hidden must be a non-empty list of layer widths such as [512, 256]; "
                               f"got {hidden!r}")
    return tuple(check_integer(f"hidden[{index}]", width, low=1) for index, width in enumerate(hidden))


def _image_side(name: str, shape: tuple[int, ...]) -> int | None:
    """The side of the square images of the data's `shape` (N, ...) for an image preset (None for the row presets);
    refuse the wrong shape."""
    if name not in IMAGE_MODELS:
        if len(shape) != 2:
            raise ShapeError(f"presets.model: {name} takes rows of features (N, features); got x of shape {shape}. "
                             "Flatten the images first, e.g. x.reshape(len(x), -1)")
        return None
    if len(shape) != 4 or shape[1] != 1 or shape[2] != shape[3]:
        raise ShapeError(f"presets.model: {name} takes square one-channel images (N, 1, side, side); got x of shape "
                         f"{shape}. Reshape rows of pixels first, e.g. x.reshape(-1, 1, 28, 28)")
    side = shape[-1]
    if IMAGE_SIZES.get(name, side) != side:
        raise DescendValueError(f"presets.model: {name} is built for {IMAGE_SIZES[name]}x{IMAGE_SIZES[name]} images; "
                                f"got {side}x{side}")
    return side

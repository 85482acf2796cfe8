"""The data sets the classifier commands (train, evaluate, lr-find) read by name."""

from __future__ import annotations

import click

from descend.data import Dataset, digits, load_digits, load_mnist, mnist
from descend.nn import presets
from descend.preprocessing import Preprocessing

#: --data name -> the side of its square images
SIDES = {"mnist": 28, "digits": 8}
#: the data sets of the classifiers (train, evaluate, lr-find), and the texts of the char models
DATASETS = tuple(SIDES)
TEXTS = ("shakespeare",)
#: --data name -> what its loader divides the raw pixel values by (recorded in the model file for descend predict)
SCALES = {"mnist": mnist.PIXEL_SCALE, "digits": digits.PIXEL_SCALE}
#: --data name -> the batch size when --batch-size is not given: the digits' 1,078 training rows make 9 steps
#: an epoch in batches of 128 (45 in five epochs: 88% test accuracy), 34 in batches of 32 (93-97%)
BATCH_SIZES = {"mnist": 128, "digits": 32}


def load_splits(name: str, images: bool = False) -> tuple[Dataset, Dataset, Dataset]:
    """(train, validation, test) of the data set `name`: the test split is kept out of training and model choice.

    With `images`, x is (N, 1, side, side) for convolutional models; else rows (N, side * side).
    """
    if name == "mnist":
        return load_mnist(shape="images" if images else "flat", validation_split=True)
    train, test = load_digits()
    parts = (*train.split(0.8, seed=0), test)
    if images:
        parts = tuple(Dataset(part.x.reshape(-1, 1, 8, 8), part.y, name=part.name) for part in parts)
    return parts


def preprocessing(name: str, train: Dataset) -> Preprocessing:
    """What a model trained on `train`, the training split of the data set `name`, records of its inputs.

    >>> preprocessing("digits", load_splits("digits")[0])
    Preprocessing(source='digits', input_shape=(64,), low=0.0, high=1.0, shift=0.0, scale=16.0)
    """
    return Preprocessing.of(train.x, name, scale=SCALES[name])


def prompt_for(vocabulary: list[str]) -> str:
    """The text a char model's samples start from when none is given: ROMEO: where the vocabulary holds its
    letters (Shakespeare), else a new line, else the vocabulary's first character.

    >>> prompt_for(list("ab")), prompt_for(list("ROMEO: ab"))
    ('a', 'ROMEO:')
    """
    return next((prompt for prompt in ("ROMEO:", "\n") if all(ch in vocabulary for ch in prompt)), vocabulary[0])


def check_fits(model_name: str, data_name: str) -> None:
    """Refuse, as bad usage, a preset built for one image size with a data set of another, before loading it."""
    size = presets.IMAGE_SIZES.get(model_name)
    if size is not None and SIDES[data_name] != size:
        data = next(name for name, side in SIDES.items() if side == size)
        raise click.UsageError(f"{model_name} is built for {size}x{size} images; use --data {data}")

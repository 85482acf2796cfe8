"""The data sets the classifier commands (train, evaluate, lr-find) read by name."""

from __future__ import annotations

import click

from descend.data import Dataset, load_digits, load_mnist
from descend.nn import presets

#: --data name -> the side of its square images
SIDES = {"mnist": 28, "digits": 8}
#: the data sets of the classifiers (train, evaluate, lr-find), and the texts of the char models
DATASETS = tuple(SIDES)
TEXTS = ("shakespeare",)


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


def check_fits(model_name: str, data_name: str) -> None:
    """Refuse, as bad usage, a preset built for one image size with a data set of another, before loading it."""
    size = presets.IMAGE_SIZES.get(model_name)
    if size is not None and SIDES[data_name] != size:
        data = next(name for name, side in SIDES.items() if side == size)
        raise click.UsageError(f"{model_name} is built for {size}x{size} images; use --data {data}")

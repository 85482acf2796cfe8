"""scikit-learn's bundled 8 x 8 digits: 1,797 images, a small and offline stand-in for MNIST."""

from __future__ import annotations

import numpy as np

from descend.checks import check_fraction
from descend.data.dataset import Dataset

#: what load_digits divides the pixel counts (0..16) by, so that they lie in [0, 1]
PIXEL_SCALE = 16


def load_digits(test_fraction: float = 0.25, seed: int | np.random.Generator | None = 0) -> tuple[Dataset, Dataset]:
    """The 8 x 8 digits as (train, test), shuffled with `seed` and split by `test_fraction`.

    Shapes: x (N, 64) float32 pixel / 16 in [0, 1]; y (N,) int64 digits 0..9;
    test holds round(test_fraction * 1797) rows. Needs scikit-learn, which ships the data.

    >>> train, test = load_digits(test_fraction=0.25, seed=0)
    >>> train.x.shape, test.x.shape, train.y.dtype, float(train.x.max())
    ((1348, 64), (449, 64), dtype('int64'), 1.0)
    """
    test_fraction = check_fraction("test_fraction", test_fraction)
    try:
        from sklearn.datasets import load_digits as sklearn_load_digits
    except ImportError as error:
        raise ImportError(
            "load_digits needs scikit-learn, which ships the data: pip install descend[sklearn]"
        ) from error
    bunch = sklearn_load_digits()
    x = (bunch.data / PIXEL_SCALE).astype(np.float32)
    everything = Dataset(x, bunch.target.astype(np.int64), name="digits")
    test, train = everything.split(test_fraction, seed=seed)
    train.name, test.name = "digits train", "digits test"
    return train, test

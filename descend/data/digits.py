"""scikit-learn's bundled 8 x 8 digits: 1,797 images, a small and offline stand-in for MNIST."""

from __future__ import annotations

import numpy as np

from descend.checks import check_fraction
from descend.data.dataset import Dataset


def load_digits(test_fraction: float = 0.25, seed: int | np.random.Generator | None = 0) -> tuple[Dataset, Dataset]:
    """The 8 x 8 digits as (train, test), shuffled with `seed` and split by `test_fraction`.

    Shapes: x (N, 64) float32 pixel / 16 in [0, 1]; y (N,) int64 digits 0..9;
    test holds round(test_fraction * 1797) rows. Needs scikit-learn, which ships the data.
    """
    test_fraction = check_fraction("test_fraction", test_fraction)
    try:
        from sklearn.datasets import load_digits as sklearn_load_digits
    except ImportError as error:
        raise ImportError(
            "load_digits needs scikit-learn, which ships the data: pip install descend[sklearn]"
        ) from error
    bunch = sklearn_load_digits()
    x = (bunch.data / 16).astype(np.float32)  # pixel counts 0..16 -> [0, 1]
    everything = Dataset(x, bunch.target.astype(np.int64), name="digits")
    test, train = everything.split(test_fraction, seed=seed)
    train.name, test.name = "digits train", "digits test"
    return train, test

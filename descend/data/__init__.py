"""Data: the Dataset type, minibatch indices, MNIST, scikit-learn's digits, text corpora and synthetic sets.

>>> from descend.data import make_blobs, batches
>>> ds = make_blobs(n=10, centers=2, seed=0)
>>> [len(rows) for rows in batches(len(ds), 4, rng=0)]
[4, 4, 2]
"""

from descend.data.dataset import Dataset, as_dataset, batches
from descend.data.digits import load_digits
from descend.data.mnist import load_mnist
from descend.data.synthetic import (
    make_adding_problem,
    make_blobs,
    make_line,
    make_moons,
    make_transactions,
)
from descend.data.text import Text, load_text

__all__ = [
    "Dataset",
    "Text",
    "as_dataset",
    "batches",
    "load_digits",
    "load_mnist",
    "load_text",
    "make_adding_problem",
    "make_blobs",
    "make_line",
    "make_moons",
    "make_transactions",
]

"""Data: the Dataset type, minibatch indices, MNIST, scikit-learn's digits, text corpora, synthetic and sparse sets,
and data larger than memory read from Parquet and .npy files (ParquetDataset, NpyDataset).

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
from descend.data.sparse import Ratings, make_low_rank_matrix, make_sparse_classification
from descend.data.streaming import NpyDataset, ParquetDataset, StreamingDataset, save_parquet
from descend.data.text import Text, load_text

__all__ = [
    "Dataset",
    "NpyDataset",
    "ParquetDataset",
    "Ratings",
    "StreamingDataset",
    "Text",
    "as_dataset",
    "batches",
    "load_digits",
    "load_mnist",
    "load_text",
    "make_adding_problem",
    "make_blobs",
    "make_line",
    "make_low_rank_matrix",
    "make_moons",
    "make_sparse_classification",
    "make_transactions",
    "save_parquet",
]

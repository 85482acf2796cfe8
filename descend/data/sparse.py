"""Sparse synthetic problems for HOGWILD!: a sparse linear classification task and a low-rank matrix to complete.

Both are the kind of data the HOGWILD! paper (Niu, Recht, Ré, Wright, 2011) runs on: each example
touches a few coordinates of a long parameter vector, so parallel updates rarely collide.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from descend.checks import check_fraction, check_integer, check_real, check_seed
from descend.errors import DescendValueError
from descend.memory import check_memory


def _scipy_sparse() -> Any:
    try:
        import scipy.sparse
    except ImportError as error:
        raise ImportError("sparse data needs SciPy: pip install 'descend[hogwild]'") from error
    return scipy.sparse


def _distinct_columns(rng: np.random.Generator, n_rows: int, n_columns: int, per_row: int) -> np.ndarray:
    """(n_rows, per_row) column indices, sorted and distinct within each row, uniform over [0, n_columns)."""
    if 2 * per_row > n_columns:  # dense rows: redrawing until distinct could take ~n^n tries; take a permutation
        return np.sort(np.argsort(rng.random((n_rows, n_columns)), axis=1)[:, :per_row], axis=1)
    columns = rng.integers(0, n_columns, size=(n_rows, per_row))
    columns.sort(axis=1)
    repeated = np.zeros(columns.shape, dtype=bool)
    repeated[:, 1:] = columns[:, 1:] == columns[:, :-1]
    # a repeat is rare when per_row << n_columns; redraw just those rows until none is left
    while (rows := np.flatnonzero(repeated.any(axis=1))).size:
        redrawn = rng.integers(0, n_columns, size=(rows.size, per_row))
        redrawn.sort(axis=1)
        columns[rows] = redrawn
        repeated[rows] = False
        repeated[rows, 1:] = redrawn[:, 1:] == redrawn[:, :-1]
    return columns


def make_sparse_classification(
    n_rows: int = 200_000,
    n_features: int = 100_000,
    nnz_per_row: int = 20,
    label_noise: float = 0.09,
    seed: int | None = 0,
) -> tuple[Any, np.ndarray]:
    """Rows with `nnz_per_row` active features each, labelled by a hidden linear rule with some labels flipped.

    Each row picks `nnz_per_row` distinct features uniformly, each of value 1/√nnz_per_row (every row
    has unit norm, like a normalised bag of words). A hidden weight vector w* ~ N(0, I) labels a row 1
    where x·w* > 0, else 0, and a fraction `label_noise` of the labels is flipped: no classifier can
    beat an accuracy of 1 − label_noise, and w* reaches it.

    Returns X, a scipy CSR matrix (n_rows, n_features) float32 with int32 indices, and y (n_rows,) int64
    in {0, 1}.

    >>> X, y = make_sparse_classification(n_rows=4, n_features=10, nnz_per_row=3)
    >>> X.shape, X.nnz, sorted(set(y.tolist())) <= [0, 1]
    ((4, 10), 12, True)
    """
    sparse = _scipy_sparse()
    n_rows = check_integer("n_rows", n_rows, low=1)
    n_features = check_integer("n_features", n_features, low=1)
    nnz_per_row = check_integer("nnz_per_row", nnz_per_row, low=1)
    if nnz_per_row > n_features:
        raise DescendValueError(
            f"nnz_per_row must be at most n_features = {n_features} (distinct features per row); got {nnz_per_row}"
        )
    label_noise = check_real("label_noise", label_noise, low=0.0, high=0.5, high_open=True)
    if n_features > np.iinfo(np.int32).max:
        raise DescendValueError(f"n_features must be at most {np.iinfo(np.int32).max} (int32 column indices); "
                                f"got {n_features}")
    # per value drawn: an int64 column (or, for dense rows, a float64 key and its int64 rank), the int32 index
    # and float32 value kept, a flag; per feature: the hidden rule
    drawn_per_row = n_features if 2 * nnz_per_row > n_features else nnz_per_row
    check_memory(f"make_sparse_classification's {n_rows} x {nnz_per_row} nonzeros and {n_features} features",
                 17 * n_rows * drawn_per_row + 8 * n_features, "Choose fewer rows, features or nonzeros per row.")
    rng = np.random.default_rng(check_seed(seed))
    hidden_rule = rng.standard_normal(n_features)
    columns = _distinct_columns(rng, n_rows, n_features, nnz_per_row)
    value = np.float32(1.0 / np.sqrt(nnz_per_row))
    indptr = np.arange(0, (n_rows + 1) * nnz_per_row, nnz_per_row, dtype=np.int64)
    X = sparse.csr_matrix(
        (np.full(columns.size, value, dtype=np.float32), columns.ravel().astype(np.int32), indptr),
        shape=(n_rows, n_features),
    )
    labels = (hidden_rule[columns].sum(axis=1) > 0).astype(np.int64)
    flipped = rng.random(n_rows) < label_noise
    labels[flipped] = 1 - labels[flipped]
    return X, labels


class Ratings(NamedTuple):
    """Observed entries of a matrix as (row, column, value) triples: rows, cols (K,) int64, values (K,) float32.

    >>> ratings = Ratings(np.array([0, 1]), np.array([2, 0]), np.array([4.0, 3.5], dtype=np.float32), shape=(2, 3))
    >>> len(ratings), ratings.shape, ratings.values.tolist()
    (2, (2, 3), [4.0, 3.5])
    """

    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray
    shape: tuple[int, int]

    def __len__(self) -> int:
        return len(self.values)


def make_low_rank_matrix(
    n_rows: int = 2_000,
    n_cols: int = 1_000,
    rank: int = 10,
    density: float = 0.05,
    noise: float = 0.1,
    test_fraction: float = 0.2,
    seed: int | None = 0,
) -> tuple[Ratings, Ratings]:
    """A matrix Z = A Bᵀ + noise of the given rank, of which a fraction `density` of entries is observed.

    A (n_rows, rank) and B (n_cols, rank) are N(0, 1/√rank) so entries of A Bᵀ have unit variance;
    the observed entries get N(0, noise²) added, and are split into (train, test) Ratings by
    `test_fraction`. A model that recovers A Bᵀ exactly has a test RMSE of about `noise`.

    >>> train, test = make_low_rank_matrix(n_rows=50, n_cols=40, rank=3, density=0.5)
    >>> len(train) + len(test), train.shape
    (1000, (50, 40))
    """
    n_rows = check_integer("n_rows", n_rows, low=1)
    n_cols = check_integer("n_cols", n_cols, low=1)
    rank = check_integer("rank", rank, low=1)
    density = check_real("density", density, low=0.0, high=1.0, low_open=True)
    noise = check_real("noise", noise, low=0.0)
    test_fraction = check_fraction("test_fraction", test_fraction)
    observed = max(1, round(density * n_rows * n_cols))
    # per observed entry: its index, row, column, value and the factors' rows gathered for it; the factors
    check_memory(f"make_low_rank_matrix's {observed} observed entries of rank {rank}",
                 observed * (40 + 16 * rank) + 8 * rank * (n_rows + n_cols), "Choose a smaller matrix or density.")
    rng = np.random.default_rng(check_seed(seed))
    scale = 1.0 / np.sqrt(np.sqrt(rank))
    left = rng.normal(0.0, scale, (n_rows, rank))
    right = rng.normal(0.0, scale, (n_cols, rank))
    flat = rng.choice(n_rows * n_cols, size=observed, replace=False)
    rows, cols = np.divmod(flat, n_cols)
    values = np.einsum("kr,kr->k", left[rows], right[cols]) + noise * rng.standard_normal(observed)
    test = rng.random(observed) < test_fraction

    def part(where: np.ndarray) -> Ratings:
        return Ratings(rows[where].astype(np.int64), cols[where].astype(np.int64),
                       values[where].astype(np.float32), (n_rows, n_cols))

    return part(~test), part(test)

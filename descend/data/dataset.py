"""Dataset: features and targets aligned row by row; as_dataset and batches for the training loop."""

from __future__ import annotations

import operator
from collections.abc import Iterator
from typing import Any

import numpy as np

from descend.checks import as_array, check_fraction, check_integer, check_seed
from descend.errors import DataError, DescendTypeError, DescendValueError, IndexOutOfRangeError, ShapeError

_NUMERIC_KINDS = "biuf"  # bool, signed and unsigned integers, floats: numpy's dtype.kind codes
_ACCEPTED = "a Dataset, an (x, y) tuple, an (x,) tuple or a numeric array"


class Dataset:
    """Features `x` and optional targets `y`, one row per sample.

    Shapes: x (N, ...) float32 or float64 features, or int64 token ids; y (N,)
    int64 class labels, (N, ...) float regression targets, or None for
    unsupervised data. Integer x becomes int64 (token ids for an Embedding
    layer, which must not be rounded through a float); bool and float16 x
    become float32; float32 and float64 stay as they are (a float64 model
    trains on float64 unrounded). Integer and bool y become int64 labels
    (which must be >= 0). Arrays that already have the right dtype are not copied.

    >>> ds = Dataset(np.zeros((4, 2)), np.array([0, 1, 1, 2]))
    >>> len(ds), ds.n_features, ds.n_classes
    (4, 2, 3)
    >>> x, y = ds[1:3]
    >>> x.shape, y.tolist()
    ((2, 2), [1, 1])
    """

    def __init__(self, x: Any, y: Any = None, name: str = "dataset"):
        self.name = name
        self.x = _as_features(x, name)
        self.y = None if y is None else _as_targets(y, name)
        if self.y is not None and len(self.y) != len(self.x):
            raise ShapeError(
                f"{name}: x has {len(self.x)} rows but y has {len(self.y)} rows; "
                f"expected one target per sample, len(x) == len(y)"
            )

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: Any) -> Dataset:
        """The rows picked by an int, a slice, an array of row numbers or a boolean mask, as a new Dataset.

        An int picks one row and keeps the row axis: ds[3].x has shape (1, ...).
        """
        if not isinstance(index, slice) and np.ndim(index) == 0:
            index = self._row_slice(index)
        elif isinstance(index, tuple):
            # x[i, j] would index x's columns and y's columns differently
            raise DescendTypeError(
                f"{self.name}: index rows with an int, a slice, an array of row numbers or a boolean mask; "
                f"got a tuple {index!r}. Index ds.x directly to pick columns"
            )
        return Dataset(self.x[index], None if self.y is None else self.y[index], name=self.name)

    def _row_slice(self, index: Any) -> slice:
        try:
            row = operator.index(index)
        except TypeError:
            raise DescendTypeError(
                f"{self.name}: index rows with an int, a slice, an array of row numbers or a boolean mask; "
                f"got {index!r} ({type(index).__name__})"
            ) from None
        if not -len(self) <= row < len(self):
            raise IndexOutOfRangeError(
                f"{self.name}: row {row} is out of range for {len(self)} rows; "
                f"expected a row in [{-len(self)}, {len(self) - 1}]"
            )
        row %= len(self)
        return slice(row, row + 1)

    def __iter__(self) -> Iterator[np.ndarray | None]:
        """Yield x, then y, so that `x, y = dataset` unpacks; use batches() to walk the rows."""
        yield self.x
        yield self.y

    def __repr__(self) -> str:
        y = "None" if self.y is None else f"{self.y.shape} {self.y.dtype}"
        return f"Dataset({self.name!r}, {len(self)} rows, x {self.x.shape} {self.x.dtype}, y {y})"

    @property
    def n_features(self) -> int:
        """Numbers per sample: the product of x.shape[1:] (1 for 1-D x)."""
        return int(np.prod(self.x.shape[1:], dtype=np.int64))

    @property
    def n_classes(self) -> int:
        """max(y) + 1 for integer class labels."""
        if self.y is None or self.y.dtype.kind != "i":
            held = "no targets" if self.y is None else f"{self.y.dtype} regression targets"
            raise DescendValueError(f"{self.name}: n_classes needs integer class labels in y; it holds {held}")
        return int(self.y.max()) + 1

    def split(self, fraction: float, seed: int | np.random.Generator | None = 0) -> tuple[Dataset, Dataset]:
        """Shuffle the rows with `seed` and cut them in two: round(fraction * N) rows, then the rest.

        >>> train, test = Dataset(np.arange(10.0)).split(0.8, seed=0)
        >>> len(train), len(test)
        (8, 2)
        """
        fraction = check_fraction("fraction", fraction)
        n_first = int(round(fraction * len(self)))
        if not 0 < n_first < len(self):
            raise DataError(
                f"{self.name}: split(fraction={fraction}) of {len(self)} rows leaves a part empty "
                f"({n_first} and {len(self) - n_first} rows); use more rows or a fraction nearer 0.5"
            )
        order = np.random.default_rng(check_seed(seed)).permutation(len(self))
        return self[order[:n_first]], self[order[n_first:]]

    def subset(self, n: int, seed: int | np.random.Generator | None = None) -> Dataset:
        """The first n rows, or with a seed n rows drawn at random without replacement.

        >>> len(Dataset(np.arange(10.0)).subset(3, seed=1))
        3
        """
        n = check_integer("n", n, 1)
        if n > len(self):
            raise DescendValueError(f"{self.name}: subset(n={n}) asks for more rows than the {len(self)} it has")
        if seed is None:
            return self[:n]
        return self[np.random.default_rng(check_seed(seed)).choice(len(self), size=n, replace=False)]


def _as_array(value: Any, what: str) -> np.ndarray:
    array = as_array(value, what, "a numeric array")
    if array.dtype.kind not in _NUMERIC_KINDS:
        raise DescendTypeError(f"{what} must be numeric (bool, integer or float); got dtype {array.dtype}")
    if array.ndim == 0:
        raise ShapeError(f"{what} must have at least 1 dimension, (N, ...); got a scalar")
    return array


def _as_features(x: Any, name: str) -> np.ndarray:
    array = _as_array(x, f"{name}: x")
    if array.size == 0:
        raise DataError(f"{name}: x is empty (shape {array.shape}); expected at least one row with at least one number")
    if array.dtype.kind in "iu":  # token ids: kept exact as int64, not rounded through float32
        if array.dtype == np.uint64 and array.max() > np.iinfo(np.int64).max:
            raise DescendValueError(
                f"{name}: x holds the integer {array.max()}, too large for int64; "
                f"expected token ids or counts below 2**63, or pass float features"
            )
        return array.astype(np.int64, copy=False)
    return _as_float(array)


def _as_float(array: np.ndarray) -> np.ndarray:
    return array if array.dtype in (np.float32, np.float64) else array.astype(np.float32)


def _as_targets(y: Any, name: str) -> np.ndarray:
    array = _as_array(y, f"{name}: y")
    if array.dtype.kind == "f":
        return _as_float(array)
    labels = array.astype(np.int64, copy=False)
    if labels.size and labels.min() < 0:
        raise DescendValueError(
            f"{name}: y holds integer class labels, which must be >= 0; got a label {labels.min()}. "
            f"Renumber the classes 0..K-1 (np.unique(y, return_inverse=True)), or pass float targets for regression"
        )
    return labels


def as_dataset(data: Any, argument_name: str) -> Dataset:
    """Accept a Dataset, an (x, y) tuple, an (x,) tuple or a bare array as a Dataset.

    `argument_name` names the caller's argument in every error message.

    >>> as_dataset((np.ones((3, 2)), [0, 1, 0]), "train").n_classes
    2
    """
    if isinstance(data, Dataset):
        return data
    if isinstance(data, tuple):
        if len(data) == 2:
            return Dataset(data[0], data[1], name=argument_name)
        if len(data) == 1:
            return Dataset(data[0], name=argument_name)
        raise DescendTypeError(f"{argument_name} must be {_ACCEPTED}; got a tuple of {len(data)} items")
    if isinstance(data, np.ndarray) or hasattr(data, "__array__"):
        return Dataset(data, name=argument_name)
    hint = "; wrap features as np.asarray(...) or pass a tuple (x, y)" if isinstance(data, list) else ""
    raise DescendTypeError(f"{argument_name} must be {_ACCEPTED}; got {type(data).__name__}{hint}")


def batches(
    n_rows: int, batch_size: int, rng: int | np.random.Generator | None = None, shuffle: bool = True
) -> Iterator[np.ndarray]:
    """Row-index arrays that cover range(n_rows) once, in a random order drawn from `rng` if shuffle.

    Every batch has batch_size rows except possibly the last, which holds the rest.

    >>> [rows.tolist() for rows in batches(5, 2, shuffle=False)]
    [[0, 1], [2, 3], [4]]
    """
    n_rows = check_integer("n_rows", n_rows, 0)
    batch_size = check_integer("batch_size", batch_size, 1)
    order = np.random.default_rng(rng).permutation(n_rows) if shuffle else np.arange(n_rows)
    # a generator expression, so that the checks above run when batches() is called, not at the first next()
    return (order[start : start + batch_size] for start in range(0, n_rows, batch_size))

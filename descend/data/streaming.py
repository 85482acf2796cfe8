"""Data larger than memory: minibatches read from Parquet and .npy files a window at a time.

`fit` (the local engine), `evaluate` and `predict` take a ParquetDataset or an NpyDataset where they
take arrays; neither ever holds the whole set. A file is read in chunks: a Parquet file's row groups
(a row group larger than the shuffle buffer in slices of it), a .npy file's runs of `chunk_rows`
rows, each read through a memory map of just those rows that is dropped once they are copied out.

What randomness the shuffling gives: each epoch visits the chunks in a fresh random order and pours
them into a shuffle buffer until it holds `shuffle_buffer` rows; the buffer's rows are permuted and
dealt out as minibatches, and the rows left over (fewer than a minibatch) go into the next fill. So
a minibatch draws its rows from the few chunks that share its window, never from the whole file at
once, and the windows come in a random order. A buffer at least as large as the file is a full
shuffle; with a buffer of one chunk it is the chunks in random order, each shuffled within. Write
files whose chunks are small next to the buffer (Parquet: `row_group_size`, see `save_parquet`) and
the windows mix many of them.

A background thread reads, checks and permutes the next window while the model trains on the
current one (pyarrow's decoding and NumPy's copies release the GIL): memory holds about
(2 + prefetch) windows and a chunk. Every chunk is checked as it is read (types, nulls, NaN and infinity, labels
below zero), and the error names the file and the rows. The order of the windows and their
permutations come from the generator `fit` passes, so a seeded run repeats exactly.
"""

from __future__ import annotations

import hashlib
import math
import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from descend.checks import check_integer
from descend.data.dataset import Dataset
from descend.errors import DataError, DescendTypeError, DescendValueError
from descend.files import checked_path, regular_file

#: what a chunk's check gives back: (x, y) in the form training takes, or raises naming `where`
Prepare = Callable[[np.ndarray, "np.ndarray | None", str], "tuple[np.ndarray, np.ndarray | None]"]

_END = object()  # the reading thread's last word: the epoch's windows are all sent
_PUT_SECONDS = 0.1  # how often a reading thread blocked on a full queue looks whether its reader went away


def _plain(x: np.ndarray, y: np.ndarray | None, where: str) -> tuple[np.ndarray, np.ndarray | None]:
    """A chunk as a Dataset takes it (numeric features, labels >= 0), with no model to cast for."""
    checked = Dataset(x, y, name=where)
    return checked.x, checked.y


class StreamingDataset:
    """Rows on disk read a chunk at a time; subclasses say how a chunk is read.

    `len(dataset)` rows of shape `row_shape`; `has_targets` when a label or
    target column is there. `batches` gives an epoch's minibatches.

    >>> import tempfile, numpy as np
    >>> path = save_parquet(tempfile.mkdtemp() + "/t.parquet", np.arange(20.0).reshape(10, 2), np.arange(10) % 2,
    ...                     row_group_size=4)
    >>> rows = ParquetDataset(path, shuffle_buffer=4)
    >>> [len(x) for x, y in rows.batches(3, np.random.default_rng(0))]  # every row once, a window at a time
    [3, 3, 3, 1]
    """

    name: str
    row_shape: tuple[int, ...]
    has_targets: bool
    shuffle_buffer: int
    prefetch: int

    def __len__(self) -> int:
        return int(self.chunk_sizes().sum())

    @property
    def n_features(self) -> int:
        """Numbers per row: the product of row_shape."""
        return int(np.prod(self.row_shape, dtype=np.int64))

    @property
    def n_classes(self) -> int:
        """max(label) + 1 over the whole file (one pass over the labels only), for integer class labels."""
        largest = -1
        for _, y in self._chunks(np.arange(len(self.chunk_sizes())), _plain, features=False):
            if y is None or y.dtype.kind != "i":
                raise DescendValueError(f"{self.name}: n_classes needs integer class labels; "
                                        f"it holds {'no targets' if y is None else f'{y.dtype} targets'}")
            largest = max(largest, int(y.max()))
        return largest + 1

    def value_range(self) -> tuple[float, float]:
        """The smallest and the largest feature value over every row: one pass, in the file's order.

        >>> import tempfile, numpy as np
        >>> path = save_parquet(tempfile.mkdtemp() + "/t.parquet", np.array([[0.5, 3.0], [-1.0, 2.0]]), [0, 1])
        >>> ParquetDataset(path).value_range()
        (-1.0, 3.0)
        """
        low, high = math.inf, -math.inf
        for x, _ in self._chunks(np.arange(len(self.chunk_sizes())), _plain):
            if x.size:
                low, high = min(low, float(x.min())), max(high, float(x.max()))
        return low, high

    def chunk_sizes(self) -> np.ndarray:
        """Rows per chunk, in the file's order."""
        raise NotImplementedError

    def read_chunk(self, index: int, features: bool = True) -> Iterator[tuple[np.ndarray | None, np.ndarray | None, int]]:
        """Chunk `index` as (x, y, first row) pieces; x is None without `features` (the labels alone)."""
        raise NotImplementedError

    def describe(self) -> str:
        """What identifies the file's contents cheaply (its layout and size), for the fingerprint."""
        raise NotImplementedError

    def chunk_file(self, index: int) -> str:
        """The name of the file chunk `index` comes from (in errors, with its rows)."""
        return self.name

    def fingerprint(self) -> str:
        """A short hash of the file's layout and its first rows: a checkpoint refuses to resume on other data."""
        digest = hashlib.sha256(self.describe().encode())
        x, y = next(self._chunks(np.arange(1), _plain))
        digest.update(np.ascontiguousarray(x[:64]).data)
        if y is not None:
            digest.update(np.ascontiguousarray(y[:64]).data)
        return digest.hexdigest()[:16]

    def _chunks(self, order: np.ndarray, prepare: Prepare,
                features: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """The chunks in `order`, each piece checked by `prepare` with the rows it came from."""
        for index in order:
            for x, y, first in self.read_chunk(int(index), features):
                rows = len(x) if x is not None else len(y)
                where = f"{self.chunk_file(int(index))} rows {first}-{first + rows - 1}"
                yield prepare(x, y, where) if features else _plain(np.zeros((rows, 1), np.float32), y, where)

    def batches(self, batch_size: int, rng: np.random.Generator | None = None, shuffle: bool = True,
                prepare: Prepare = _plain) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """One epoch's minibatches (x (B, *row_shape), y (B, ...) or None), every row once, read ahead by a thread.

        Every minibatch has `batch_size` rows but the last. With `shuffle`, the chunks' order and each
        window's permutation are drawn from `rng` (module docstring); without it, the file's order.
        `prepare(x, y, where)` checks and converts each chunk (fit casts to the model's dtype).
        """
        batch_size = check_integer("batch_size", batch_size, low=1)
        order = np.arange(len(self.chunk_sizes()))
        window_seed = None
        if shuffle:
            rng = np.random.default_rng() if rng is None else rng
            order = rng.permutation(order)
            window_seed = int(rng.integers(2**63))
        return self._read_ahead(self._windows(order, batch_size, window_seed, prepare), batch_size)

    def _windows(self, order: np.ndarray, batch_size: int, window_seed: int | None,
                 prepare: Prepare) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """Shuffle-buffer windows, permuted, each a whole number of minibatches but the last."""
        pieces: list[tuple[np.ndarray, np.ndarray | None]] = []
        held = 0
        window = 0
        chunks = self._chunks(order, prepare)
        finished = False
        while not finished:
            piece = next(chunks, None)
            if piece is not None:
                pieces.append(piece)
                held += len(piece[0])
                if held < self.shuffle_buffer:
                    continue
            finished = piece is None
            if not pieces:
                break
            x, y = _joined(pieces, None if window_seed is None else np.random.default_rng([window_seed, window]))
            dealt = len(x) if finished else len(x) // batch_size * batch_size
            yield x[:dealt], None if y is None else y[:dealt]
            pieces = [(x[dealt:], None if y is None else y[dealt:])] if dealt < len(x) else []
            held = len(x) - dealt
            window += 1

    def _read_ahead(self, windows: Iterator[Any], batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """The windows' minibatches, the windows made by a background thread up to `prefetch` ahead."""
        ready: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def offer(item: Any) -> None:
            while not stop.is_set():
                try:
                    ready.put(item, timeout=_PUT_SECONDS)
                    return
                except queue.Full:
                    continue

        def read() -> None:
            try:
                for window in windows:
                    offer(window)
                    if stop.is_set():
                        return
                offer(_END)
            except BaseException as error:  # raised again in the training thread, where the caller sees it
                offer(error)

        thread = threading.Thread(target=read, name=f"descend-read-ahead {self.name}", daemon=True)
        thread.start()
        try:
            while True:
                item = ready.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                x, y = item
                for start in range(0, len(x), batch_size):
                    yield x[start : start + batch_size], None if y is None else y[start : start + batch_size]
        finally:
            stop.set()
            thread.join()


def _joined(pieces: list[tuple[np.ndarray, np.ndarray | None]],
            rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The pieces' rows as one window, in a random order drawn from `rng` (None: in order), copied once: each
    piece's rows are written straight to their random places."""
    if rng is None:
        if len(pieces) == 1:
            return pieces[0]
        return (np.concatenate([x for x, _ in pieces]),
                None if pieces[0][1] is None else np.concatenate([y for _, y in pieces]))
    rows = sum(len(x) for x, _ in pieces)
    places = rng.permutation(rows)
    x = np.empty((rows, *pieces[0][0].shape[1:]), dtype=pieces[0][0].dtype)
    y = None if pieces[0][1] is None else np.empty((rows, *pieces[0][1].shape[1:]), dtype=pieces[0][1].dtype)
    start = 0
    for piece_x, piece_y in pieces:
        where = places[start : start + len(piece_x)]
        x[where] = piece_x
        if y is not None:
            y[where] = piece_y
        start += len(piece_x)
    return x, y


def _check_buffer(shuffle_buffer: Any, prefetch: Any) -> tuple[int, int]:
    return check_integer("shuffle_buffer", shuffle_buffer, low=1), check_integer("prefetch", prefetch, low=1)


class ParquetDataset(StreamingDataset):
    """Rows of a Parquet file, or of a folder of them (as Spark writes one), read a row group at a time (pyarrow).

    `features` names one column of numeric lists (list, large_list or
    fixed_size_list of ints or floats, every row of one length, as Spark
    writes array<float> and vector columns turned to arrays) or a list of
    numeric columns, one feature each; `label` names a numeric column of
    class labels or targets, or is None (an autoencoder's data). Nulls, NaN
    and infinity are refused with the rows they are in. A folder's files
    are its *.parquet files at any depth, by name (Spark's _SUCCESS and
    hidden files are not among them), and must share one schema.

    >>> import tempfile, numpy as np
    >>> path = save_parquet(tempfile.mkdtemp() + "/t.parquet", np.eye(3, dtype=np.float32), np.arange(3),
    ...                     row_group_size=2)
    >>> table = ParquetDataset(path)
    >>> len(table), table.row_shape, table.n_classes, table.chunk_sizes().tolist()
    (3, (3,), 3, [2, 1])
    """

    def __init__(self, path: str | os.PathLike, features: str | Sequence[str] = "features",
                 label: str | None = "label", shuffle_buffer: int = 16384, prefetch: int = 1):
        self.path = checked_path("path", path)
        self.files = _parquet_files(self.path)
        self.name = self.path.name
        self.shuffle_buffer, self.prefetch = _check_buffer(shuffle_buffer, prefetch)
        opened = [_open_parquet(file) for file in self.files]
        schema = opened[0].schema_arrow
        for file, parquet_file in zip(self.files[1:], opened[1:]):
            if not parquet_file.schema_arrow.equals(schema):
                raise DataError(f"path {str(self.path)!r}: {file.name} holds the columns "
                                f"{_columns(parquet_file.schema_arrow)}; {self.files[0].name} holds {_columns(schema)}: "
                                "every file of a folder needs the same schema")
        self.features = self._check_features(schema, features)
        self.label = None if label is None else self._check_label(schema, label)
        self.has_targets = label is not None
        #: the chunks: (file, row group), in the files' order
        self.chunks = [(number, group) for number, file in enumerate(opened) for group in range(file.num_row_groups)]
        self.sizes = np.array([opened[number].metadata.row_group(group).num_rows for number, group in self.chunks],
                              dtype=np.int64)
        if self.sizes.sum() == 0:
            raise DataError(f"path {str(self.path)!r} holds no rows")
        #: each chunk's first row, counted within its own file (what an error names)
        self.first_rows = np.zeros(len(self.chunks), dtype=np.int64)
        for index in range(1, len(self.chunks)):
            if self.chunks[index][0] == self.chunks[index - 1][0]:
                self.first_rows[index] = self.first_rows[index - 1] + self.sizes[index - 1]
        self.row_shape = (self._width(opened[next(k for k, f in enumerate(opened) if f.metadata.num_rows)]),)
        self.layout = f"parquet {schema} {self.sizes.tolist()} " + " ".join(
            f"{file.relative_to(self.path) if file != self.path else file.name}:{os.stat(file).st_size}"
            for file in self.files)
        self.opened = threading.local()

    def _check_features(self, schema: Any, features: Any) -> list[str]:
        import pyarrow as pa

        names = [features] if isinstance(features, str) else features
        if not (isinstance(names, Sequence) and names and all(isinstance(name, str) for name in names)):
            raise DescendTypeError(f"features must be a column name or a list of column names; got {features!r:.80}")
        for name in names:
            self._column(schema, "features", name)
        if isinstance(features, str):
            kind = schema.field(features).type
            if not ((pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind))
                    and _numeric(kind.value_type)):
                raise DataError(f"{self.name}: the features column {features!r} holds {kind}; expected a list of "
                                "numbers per row (list<float>, fixed_size_list<float>, ...), or pass features= a "
                                "list of numeric columns")
            return [features]
        for name in names:
            if not _numeric(schema.field(name).type):
                raise DataError(f"{self.name}: the feature column {name!r} holds {schema.field(name).type}; "
                                "expected numbers (ints or floats)")
        return list(names)

    def _check_label(self, schema: Any, label: Any) -> str:
        if not isinstance(label, str):
            raise DescendTypeError(f"label must be a column name or None; got {label!r:.80}")
        self._column(schema, "label", label)
        if not _numeric(schema.field(label).type):
            raise DataError(f"{self.name}: the label column {label!r} holds {schema.field(label).type}; expected "
                            "integer class labels or float targets")
        return label

    def _column(self, schema: Any, argument: str, name: str) -> None:
        if name not in schema.names:
            raise DataError(f"{argument}: {self.name} has no column {name!r}; its columns are "
                            f"{', '.join(map(repr, schema.names[:20]))}")

    def _width(self, file: Any) -> int:
        """Features per row: the list length (the first row's, checked on every row as it is read)."""
        if len(self.features) > 1 or not _is_list_column(file.schema_arrow, self.features[0]):
            return len(self.features)
        kind = file.schema_arrow.field(self.features[0]).type
        if hasattr(kind, "list_size"):
            return int(kind.list_size)
        first = next(file.iter_batches(batch_size=1, columns=self.features))
        lengths = first.column(0).value_lengths()
        if lengths.null_count:
            raise DataError(f"{self.name} rows 0-0: the features column {self.features[0]!r} holds a null")
        return int(lengths[0].as_py())

    def chunk_sizes(self) -> np.ndarray:
        """Rows per row group, file after file."""
        return self.sizes

    def chunk_file(self, index: int) -> str:
        return self.files[self.chunks[index][0]].name

    def describe(self) -> str:
        return f"{self.layout} features={self.features} label={self.label}"

    def read_chunk(self, index: int, features: bool = True) -> Iterator[tuple[np.ndarray | None, np.ndarray | None, int]]:
        """Chunk `index` (a file's row group), in slices of at most `shuffle_buffer` rows; rows count in that file."""
        columns = ([*self.features] if features else []) + ([self.label] if self.label else [])
        number, group = self.chunks[index]
        first = int(self.first_rows[index])
        files = getattr(self.opened, "files", None)
        if files is None:  # one set per reading thread: a ParquetFile is not to be shared across threads
            files = self.opened.files = {}
        if number not in files:
            files[number] = _open_parquet(self.files[number])
        for batch in files[number].iter_batches(batch_size=self.shuffle_buffer, row_groups=[group], columns=columns,
                                                use_threads=False):
            where = f"{self.chunk_file(index)} rows {first}-{first + batch.num_rows - 1}"
            x = self._features_of(batch, where) if features else None
            y = None if self.label is None else _numbers(batch.column(self.label), where, f"label column {self.label!r}")
            yield x, y, first
            first += batch.num_rows

    def _features_of(self, batch: Any, where: str) -> np.ndarray:
        if len(self.features) > 1 or not _is_list_column(batch.schema, self.features[0]):
            return np.stack([_numbers(batch.column(name), where, f"feature column {name!r}") for name in self.features],
                            axis=1)
        column = batch.column(self.features[0])
        name = f"features column {self.features[0]!r}"
        if column.null_count:
            raise DataError(f"{where}: the {name} holds {column.null_count} null rows; expected a list in every row")
        lengths = column.value_lengths().to_numpy(zero_copy_only=False)
        if (lengths != self.row_shape[0]).any():
            row = int(np.argmax(lengths != self.row_shape[0]))
            raise DataError(f"{where}: row {row} of the {name} holds {lengths[row]} numbers; the file's first row "
                            f"holds {self.row_shape[0]}: every row needs the same number of features")
        values = column.flatten() if hasattr(column, "flatten") else column.values
        return _numbers(values, where, name).reshape(len(column), self.row_shape[0])


def _parquet_files(path: Path) -> list[Path]:
    """The Parquet files at `path`: the file itself, or a folder's *.parquet files at any depth, by name (not
    Spark's _SUCCESS, nor hidden or underscored files such as _metadata); each a regular file."""
    if path.is_dir() and not path.is_symlink():
        found = sorted(file for file in path.rglob("*.parquet")
                       if not any(part.startswith((".", "_")) for part in file.relative_to(path).parts))
        if not found:
            raise DataError(f"path {str(path)!r} is a folder without .parquet files")
        return [regular_file("path", file) for file in found]
    return [regular_file("path", path)]


def _columns(schema: Any) -> str:
    """A schema on one line: name: type, ..."""
    return ", ".join(f"{field.name}: {field.type}" for field in schema)


def _open_parquet(path: Path) -> Any:
    import pyarrow.parquet as parquet

    try:
        return parquet.ParquetFile(path)
    except Exception as error:  # pyarrow's ArrowInvalid and OSError alike: the file is not Parquet
        raise DataError(f"path {str(path)!r} is not a readable Parquet file: {str(error)[:200]}") from None


def _numeric(kind: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)


def _is_list_column(schema: Any, name: str) -> bool:
    import pyarrow as pa

    kind = schema.field(name).type
    return pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)


def _numbers(column: Any, where: str, name: str) -> np.ndarray:
    """An Arrow array of numbers as a NumPy array; nulls refused with the row of the first."""
    if column.null_count:
        import pyarrow.compute as compute

        row = int(compute.index(compute.is_null(column), True).as_py())
        raise DataError(f"{where}: the {name} holds a null at row {row} of these; expected a number in every row")
    return column.to_numpy(zero_copy_only=False)


def save_parquet(path: str | os.PathLike, x: Any, y: Any = None, row_group_size: int = 4096,
                 features: str = "features", label: str = "label") -> Path:
    """Write rows x (N, F) and labels y (N,) as a Parquet file that ParquetDataset reads: one column of
    fixed-size lists of F numbers and one label column, in row groups of `row_group_size` rows, atomically.

    Returns the path. Small row groups shuffle finer (module docstring).

    >>> import tempfile, numpy as np, pyarrow.parquet as parquet
    >>> path = save_parquet(tempfile.mkdtemp() + "/t.parquet", np.ones((5, 3)), np.arange(5), row_group_size=2)
    >>> file = parquet.ParquetFile(path)
    >>> file.num_row_groups, file.schema_arrow.names
    (3, ['features', 'label'])
    """
    import pyarrow as pa
    import pyarrow.parquet as parquet

    from descend.files import write_atomically

    data = Dataset(x, y, name="save_parquet")
    if data.x.ndim != 2:
        raise DescendValueError(f"save_parquet writes rows of features, x (N, F); got x of shape {data.x.shape}")
    row_group_size = check_integer("row_group_size", row_group_size, low=1)
    columns = {features: pa.FixedSizeListArray.from_arrays(pa.array(data.x.reshape(-1)), data.x.shape[1])}
    if data.y is not None:
        columns[label] = pa.array(data.y)
    table = pa.table(columns)
    return write_atomically(path, lambda stream: parquet.write_table(table, stream, row_group_size=row_group_size))


class NpyDataset(StreamingDataset):
    """Rows of a .npy file (and their labels from another), read through memory maps of `chunk_rows` rows.

    Only the header is read at first: a numeric dtype (never an object
    array: .npy files can hold pickles, which are refused), C order, and
    a file exactly as long as its header says. A chunk is mapped, copied
    out and unmapped, so neither memory nor the address space ever holds
    the file whole.

    >>> import tempfile, numpy as np
    >>> folder = tempfile.mkdtemp()
    >>> np.save(folder + "/x.npy", np.ones((10, 4), dtype=np.float32)); np.save(folder + "/y.npy", np.arange(10) % 2)
    >>> rows = NpyDataset(folder + "/x.npy", folder + "/y.npy", chunk_rows=4)
    >>> len(rows), rows.row_shape, rows.chunk_sizes().tolist()
    (10, (4,), [4, 4, 2])
    """

    def __init__(self, x: str | os.PathLike, y: str | os.PathLike | None = None, chunk_rows: int = 4096,
                 shuffle_buffer: int = 16384, prefetch: int = 1):
        self.x_file = _NpyFile("x", x)
        self.y_file = None if y is None else _NpyFile("y", y)
        self.name = self.x_file.path.name
        self.chunk_rows = check_integer("chunk_rows", chunk_rows, low=1)
        self.shuffle_buffer, self.prefetch = _check_buffer(shuffle_buffer, prefetch)
        rows = self.x_file.shape[0]
        if self.y_file is not None and self.y_file.shape[0] != rows:
            raise DataError(f"x {self.x_file.path.name} has {rows} rows but y {self.y_file.path.name} has "
                            f"{self.y_file.shape[0]}; expected one label per row")
        self.row_shape = self.x_file.shape[1:]
        self.has_targets = self.y_file is not None
        whole, rest = divmod(rows, self.chunk_rows)
        self.sizes = np.array([self.chunk_rows] * whole + ([rest] if rest else []), dtype=np.int64)

    def chunk_sizes(self) -> np.ndarray:
        """Rows per chunk: chunk_rows, the last one the rest."""
        return self.sizes

    def describe(self) -> str:
        files = [self.x_file] + ([self.y_file] if self.y_file else [])
        return " ".join(f"npy {file.dtype.str} {file.shape} {file.size}" for file in files)

    def read_chunk(self, index: int, features: bool = True) -> Iterator[tuple[np.ndarray | None, np.ndarray | None, int]]:
        first = index * self.chunk_rows
        count = int(self.sizes[index])
        x = self.x_file.rows(first, count) if features else None
        y = None if self.y_file is None else self.y_file.rows(first, count)
        yield x, y, first


class _NpyFile:
    """A .npy file's header, checked; its rows read through a map of just those rows."""

    def __init__(self, argument: str, path: Any):
        self.path = regular_file(argument, path)
        try:
            with open(self.path, "rb") as stream:
                version = np.lib.format.read_magic(stream)
                if version == (1, 0):
                    shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
                elif version == (2, 0):
                    shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream)
                else:
                    raise ValueError(f"format version {version}, which this reader does not take (1.0 or 2.0)")
                self.offset = stream.tell()
        except (ValueError, OSError, SyntaxError) as error:
            raise DataError(f"{argument}: {str(self.path)!r} is not a readable .npy file: {str(error)[:200]}") from None
        if dtype.hasobject or dtype.kind not in "biuf" or dtype.names is not None:
            raise DataError(f"{argument}: {self.path.name} holds {dtype}; expected a numeric array (object arrays "
                            "are pickles, which are never read)")
        if fortran_order:
            raise DataError(f"{argument}: {self.path.name} is in Fortran order, whose rows are not contiguous; "
                            "save it with np.save(path, np.ascontiguousarray(array))")
        if len(shape) == 0 or shape[0] == 0:
            raise DataError(f"{argument}: {self.path.name} has shape {shape}; expected at least one row")
        self.shape, self.dtype = tuple(int(side) for side in shape), dtype
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * dtype.itemsize
        self.size = os.stat(self.path).st_size
        if self.size != self.offset + self.row_bytes * self.shape[0]:
            raise DataError(f"{argument}: {self.path.name} is {self.size} bytes; its header promises "
                            f"{self.offset + self.row_bytes * self.shape[0]} (shape {self.shape}, {dtype}): the "
                            "file is truncated or damaged")

    def rows(self, first: int, count: int) -> np.ndarray:
        """Rows [first, first + count), copied out of a map of just those bytes."""
        mapped = np.memmap(self.path, dtype=self.dtype, mode="r", offset=self.offset + first * self.row_bytes,
                           shape=(count, *self.shape[1:]))
        return np.array(mapped)  # the map goes with the last reference to it

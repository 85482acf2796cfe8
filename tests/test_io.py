"""Model files: round trips, optimizer state, and every kind of bad file refused quickly."""

import json
import os
import pickle
import struct
import tracemalloc

import numpy as np
import pytest

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


def test_no_pickle_on_any_model_load_path():
    import inspect

    import descend.io

    source = inspect.getsource(descend.io)
    for forbidden in ("import pickle", "pickle.load", "eval(", "exec(", "allow_pickle=True"):
        assert forbidden not in source


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

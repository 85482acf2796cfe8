"""Writing never destroys what is at a path: every writer replaces regular files only, follows links, writes
through character devices and refuses FIFOs, sockets, folders, block devices, dangling or looping links.

The devices are made in tmp_path with mknod (root only; skipped otherwise): a twin of /dev/null (character
device 1, 3), and a block device of a number reserved for local use (240, 0) that no driver answers. No test
writes to a real /dev path.
"""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from helpers import imported, skip_outside_ci

import descend as dc
from descend import nn
from descend.errors import DescendValueError
from descend.files import write_atomically, write_text
from descend.io import write_file


def _model() -> nn.Module:
    return nn.MLP([3, 4, 2], rng=0)


def _figure():
    from descend.viz.figures import new_figure

    figure = new_figure(2, 2)
    figure.add_subplot(1, 1, 1).plot([0, 1], [1, 0])
    return figure


def _save_figure(path: Path) -> object:
    from descend.viz.figures import save_figure

    return save_figure(_figure(), path)


def _export_onnx(path: Path) -> object:
    imported("onnx")
    return dc.onnx.export(_model(), path, np.zeros((2, 3)))


#: every kind of writer descend has, by the function each front calls
WRITERS: dict[str, Callable[[Path], object]] = {
    "save": lambda path: dc.save(_model(), path),
    "checkpoint (write_file)": lambda path: write_file(path, {"model/w": np.zeros(3, np.float32)},
                                                       {"architecture": "{}", "dtype": "float32"}),
    "onnx export": _export_onnx,
    "picture": _save_figure,
    "text (the CLI's metrics, predictions, run.json)": lambda path: write_text(path, "epoch,loss\n1,0.5\n"),
}


def _device(path: Path, kind: int, major: int, minor: int) -> Path:
    try:
        os.mknod(path, kind | 0o666, os.makedev(major, minor))
    except PermissionError:
        skip_outside_ci("making a device node needs root (CI runs as root)")
    return path


def _socket(path: Path) -> Path:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.close()  # the socket file stays
    return path


#: what may stand at a path that no writer may replace, and the words its refusal must hold
REFUSED: dict[str, tuple[Callable[[Path], Path], list[str]]] = {
    "fifo": (lambda tmp: (os.mkfifo(tmp / "out.fifo"), tmp / "out.fifo")[1], ["FIFO", "regular files"]),
    "socket": (lambda tmp: _socket(tmp / "out.sock"), ["socket", "regular files"]),
    "folder": (lambda tmp: (os.mkdir(tmp / "out.d"), tmp / "out.d")[1], ["is a folder"]),
    "block device": (lambda tmp: _device(tmp / "out.blk", stat.S_IFBLK, 240, 0), ["block device"]),
    "link to a fifo": (lambda tmp: (os.mkfifo(tmp / "fifo"), os.symlink("fifo", tmp / "out.link"),
                                    tmp / "out.link")[2], ["a link to", "FIFO"]),
    "dangling link": (lambda tmp: (os.symlink("nowhere", tmp / "out.link"), tmp / "out.link")[1],
                      ["symbolic link", "'nowhere'", "does not exist"]),
    "looping link": (lambda tmp: (os.symlink("out.link", tmp / "out.link"), tmp / "out.link")[1],
                     ["symbolic link", "loops"]),
}


def _status(path: Path) -> tuple[int, int, str | None]:
    info = os.lstat(path)
    return info.st_mode, info.st_ino, os.readlink(path) if stat.S_ISLNK(info.st_mode) else None


@pytest.mark.parametrize("writer", list(WRITERS))
@pytest.mark.parametrize("kind", list(REFUSED))
def test_every_writer_refuses_what_it_would_destroy_and_leaves_it_as_it_was(tmp_path, writer, kind):
    make, words = REFUSED[kind]
    path = make(tmp_path)
    before = sorted((entry.name, _status(entry)) for entry in tmp_path.iterdir())
    with pytest.raises(DescendValueError) as raised:
        WRITERS[writer](path)
    message = str(raised.value)
    for word in ["path", str(path), *words]:
        assert word in message, f"{word!r} not in: {message}"
    assert sorted((entry.name, _status(entry)) for entry in tmp_path.iterdir()) == before  # no temporary file left


@pytest.mark.parametrize("writer", list(WRITERS))
def test_every_writer_writes_through_a_character_device_which_stays_a_device(tmp_path, writer):
    device = _device(tmp_path / "null", stat.S_IFCHR, 1, 3)  # /dev/null's numbers
    before = _status(device)
    WRITERS[writer](device)
    assert _status(device) == before and stat.S_ISCHR(before[0])
    assert [entry.name for entry in tmp_path.iterdir()] == ["null"]


@pytest.mark.parametrize("writer", list(WRITERS))
def test_every_writer_follows_a_link_replaces_its_file_and_keeps_the_link(tmp_path, writer):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "file"
    target.write_bytes(b"old")
    os.chmod(target, 0o600)
    (tmp_path / "link").symlink_to(Path("real") / "file")
    WRITERS[writer](tmp_path / "link")
    assert os.readlink(tmp_path / "link") == str(Path("real") / "file")
    assert target.read_bytes() != b"old" and len(target.read_bytes()) > 10
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # a replaced file keeps its mode
    assert sorted(entry.name for entry in (tmp_path / "real").iterdir()) == ["file"]


def test_a_model_saved_through_a_link_loads_through_it(tmp_path):
    (tmp_path / "v1.dsc").write_bytes(b"")
    (tmp_path / "latest.dsc").symlink_to("v1.dsc")
    model = _model()
    assert dc.save(model, tmp_path / "latest.dsc") == tmp_path / "latest.dsc"
    assert (tmp_path / "latest.dsc").is_symlink()
    np.testing.assert_array_equal(dc.load(tmp_path / "v1.dsc").flat_buffer().data, model.flat_buffer().data)


@pytest.mark.parametrize("call", [
    lambda path: dc.save(_model(), path),
    lambda path: dc.load(path),
    lambda path: write_text(path, "x"),
], ids=["save", "load", "write_text"])
def test_a_path_with_a_nul_byte_is_refused_by_name(tmp_path, call):
    with pytest.raises(DescendValueError, match="path .* holds a NUL byte"):
        call(str(tmp_path / "a\0b.dsc"))
    assert list(tmp_path.iterdir()) == []


def test_a_write_that_fails_on_a_device_raises_and_leaves_it_a_device(tmp_path):
    device = _device(tmp_path / "null", stat.S_IFCHR, 1, 3)

    def broken(stream):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(device, broken)
    assert stat.S_ISCHR(os.lstat(device).st_mode)


def test_the_error_names_the_argument_it_was_given_as(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(DescendValueError, match="^--out .*pipe.* is a FIFO"):
        write_text(tmp_path / "pipe", "x", name="--out")

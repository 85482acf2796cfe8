"""Model files: weights in safetensors, the architecture and optimizer state as JSON in its header.

A descend file is a plain safetensors file, readable by any safetensors
tool. Its header metadata says `format: descend-model`, the format version,
the model's architecture (`module_spec`), a SHA-256 of its contents and,
when saved with one, the optimizer's hyperparameters. No pickle, no code:
loading builds the model from the registry of known classes, asking for no
more weights than the file holds, and copies the arrays in. A checkpoint
(descend.checkpoint) is the same kind of file with more in it.

Reading trusts nothing before it is checked, cheapest first: the 8-byte
header length (against the file's size and MAX_HEADER_BYTES) before the
header is read; the header's size, values, nesting, numbers and tensor
table (against the caps below and the file's size) before anything is
built or the data is read; the SHA-256 (of the tensors, their table and the
metadata) before any value is used. A file without a SHA-256 is refused.
So a damaged or hostile file is refused in milliseconds, within a small
multiple of its size in memory, with a ModelFileError naming the file.

Writes are atomic (descend.files): a temporary file in the same folder,
flushed to disk, then renamed over the target, so an existing model file is
never left half written, and a path that is not a regular file is never
replaced.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from descend.checks import naming_arguments
from descend.errors import (
    DescendTypeError, DescendValueError, ModelFileError, ModelFileWarning, SizeLimitError, warn,
)
from descend.files import checked_path, write_atomically, writable_target
from descend.nn import init
from descend.nn.module import Module, build_module, check_custom_objects, module_spec, qualified_name
from descend.preprocessing import Preprocessing
from descend.version import __version__

FORMAT = "descend-model"
FORMAT_VERSION = 1
#: what the SHA-256 of a file covers, written in its metadata; files of descend 0.1.0 have a SHA-256 of the
#: tensors' bytes and the metadata only, without this key, and still load
CHECKSUM_COVERS = "tensors table metadata"

# What a header may ask for. A model's header is a few kilobytes and a checkpoint's grows by ~200 bytes
# (~9 JSON values) per epoch of history, so these leave room for ~40,000 epochs and models of thousands of
# layers. Parsing JSON costs up to ~25 bytes of memory and ~0.2 µs per byte of text (a header of empty lists
# is the worst case), and each module built ~50 µs and ~2 KB: so everything a file can ask for is refused or
# built in well under a second, within ~100 MB, and a header above a cap is refused in milliseconds.
#: bytes of JSON header (safetensors allows 100 MB)
MAX_HEADER_BYTES = 8 * 2**20
#: JSON values in the header, counted by its commas and brackets before it is parsed (an upper bound)
MAX_HEADER_VALUES = 500_000
#: tensors in one file: a model's parameters and running statistics, an optimizer's, a checkpoint's extras
MAX_TENSORS = 16_384
#: modules an architecture may describe (weightless ones, such as Dropout, are not bounded by the weights)
MAX_MODULES = 4_096
#: levels of nesting of any JSON in the header (a module inside a module takes about three)
MAX_DEPTH = 64
#: digits of an integer in the header (a generator's 128-bit state has 39): far beyond any size, far below 4,300
MAX_DIGITS = 50
#: axes of one tensor (NumPy's own limit is 64)
MAX_DIMS = 32

#: safetensors' dtype names, as little-endian NumPy dtypes
_DTYPES = {"F32": "<f4", "F64": "<f8", "I64": "<i8", "I32": "<i4", "U8": "u1", "BOOL": "?"}
_CODES = {np.dtype(numpy_dtype): code for code, numpy_dtype in _DTYPES.items()}
_FLOATS = {"float32": "F32", "float64": "F64"}
#: which dtypes a tensor may have, by the first part of its name: the model's are the file's declared
#: dtype ("declared"), an optimizer's and a module's carried state floats, a callback's and an engine's (the
#: HOGWILD! workers' optimizer states and places in their epoch) any of _DTYPES
_KINDS = {"model/": "declared", "optimizer/": "floats", "module/": "floats", "callback/": "any", "engine/": "any"}
#: the metadata "contents" of a weights file (save_weights): only the model's arrays, under their plain
#: state_dict names, all of the declared dtype, and no architecture
WEIGHTS = "weights"


def _safetensors_numpy():
    try:
        import safetensors.numpy
    except ImportError:
        raise ImportError("saving and loading models needs safetensors: pip install 'descend[io]'") from None
    return safetensors.numpy


@naming_arguments
def save(model: Module, path: str | os.PathLike, optimizer: Any = None,
         preprocessing: Preprocessing | None = None) -> Path:
    """Write `model` (and optionally its optimizer's state) to one file, atomically; returns the path.

    `preprocessing` records how the training inputs were scaled and what they looked like, for
    `descend predict` (read it back with `read_preprocessing`).

    >>> import descend as dc, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny.dsc")
    >>> model = dc.nn.MLP([2, 3, 1], rng=0)
    >>> _ = dc.save(model, path)
    >>> bool((dc.load(path).flat_buffer().data == model.flat_buffer().data).all())
    True
    """
    if not isinstance(model, Module):
        raise DescendTypeError(f"model must be a descend Module (a layer or a model); got {type(model).__name__}")
    if optimizer is not None and getattr(optimizer, "buffer", None) is not model.flat_buffer():
        raise DescendValueError(
            f"optimizer must be the one training this model (made from model.parameters()); got {optimizer!r:.100}"
        )
    tensors = {f"model/{name}": value for name, value in model.state_dict().items()}
    metadata = {"architecture": json.dumps(module_spec(model)), "dtype": model.flat_buffer().dtype.name}
    if optimizer is not None:
        state = optimizer.state_dict()
        tensors.update({f"optimizer/{name}": value for name, value in state["arrays"].items()})
        metadata["optimizer"] = json.dumps(state["scalars"])
    if preprocessing is not None:
        if not isinstance(preprocessing, Preprocessing):
            raise DescendTypeError(f"preprocessing must be a descend.preprocessing.Preprocessing or None; "
                                   f"got {type(preprocessing).__name__}")
        metadata["preprocessing"] = json.dumps(preprocessing.record())
    return write_file(path, tensors, metadata)


def write_file(path: str | os.PathLike, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> Path:
    """Write named arrays and string metadata as a descend file, atomically; returns the path.

    The format, its version, the descend version and a SHA-256 of the
    tensors' bytes, their table (names, dtypes, shapes) and the metadata are
    added to `metadata`, so a reader can tell a damaged file from a good
    one. A file that a reader would refuse for its size (the caps above) is
    not written: a SizeLimitError says which cap.
    """
    writable_target("path", path)  # refused before the work, not after
    tensors = {name: np.ascontiguousarray(value, dtype=np.asarray(value).dtype.newbyteorder("<"))
               for name, value in tensors.items()}
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "descend_version": __version__,
        **metadata,
        "sha256_covers": CHECKSUM_COVERS,
    }
    table = {name: [_code(name, value), list(value.shape)] for name, value in tensors.items()}
    metadata["sha256"] = _digest((tensors[name].data for name in sorted(tensors)), metadata, table)
    payload = _safetensors_numpy().save(tensors, metadata=metadata)
    header = payload[8 : 8 + struct.unpack("<Q", payload[:8])[0]]
    problem = _header_too_large(header) or _too_many("tensors", len(tensors), MAX_TENSORS) or \
        _too_many("modules", metadata.get("architecture", "").count('"class"'), MAX_MODULES)
    if problem:
        raise SizeLimitError(f"cannot write {str(path)!r}: {problem}, and a reader would refuse it")
    return write_atomically(path, lambda stream: stream.write(payload))


def _code(name: str, value: np.ndarray) -> str:
    """The safetensors name of `value`'s dtype ("F32"); a DescendTypeError for a dtype a model file cannot hold."""
    code = _CODES.get(value.dtype)
    if code is None:
        raise DescendTypeError(f"tensor {name!r} has dtype {value.dtype}; a model file holds {', '.join(_DTYPES)}")
    return code


def _digest(chunks: Iterable[memoryview], metadata: dict[str, Any], table: dict[str, list[Any]] | None) -> str:
    """The SHA-256 of the tensors' bytes, one tensor after another in name order, then of the other metadata,
    then (unless `table` is None, as in descend 0.1.0's files) of each tensor's [dtype, shape] by name."""
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    digest.update(json.dumps({k: v for k, v in metadata.items() if k != "sha256"}, sort_keys=True).encode())
    if table is not None:
        digest.update(json.dumps(table, sort_keys=True).encode())
    return digest.hexdigest()


def read_header(path: str | os.PathLike) -> tuple[dict[str, Any], bytes]:
    """Check a file is a well-formed, undamaged descend file; return its header and raw bytes.

    In the header, each tensor's entry gains "values", its number of values.

    The header length is checked before the header is read, and the whole
    header (sizes, caps, the tensor table against the file) before the data
    is read; then the SHA-256. A damaged or hostile file is refused quickly
    and cheaply, with a ModelFileError naming it.
    """
    path = checked_path("path", path)
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)  # a FIFO cannot make it wait
    except FileNotFoundError:
        raise ModelFileError(f"no model file at {str(path)!r}") from None
    except OSError as error:
        raise ModelFileError(f"cannot read a model file at {str(path)!r}: {error.strerror}") from None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise ModelFileError(f"no model file at {str(path)!r}: it is not a regular file")
        stream = os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise
    with stream:
        size = info.st_size
        start = stream.read(16)
        header_size = struct.unpack("<Q", start[:8])[0] if len(start) >= 8 else None
        if header_size is None or header_size > min(MAX_HEADER_BYTES, size - 8) or start[8:9] != b"{":
            raise ModelFileError(_what_it_is_instead(path, start, size, header_size))
        stream.seek(8)
        header_bytes = stream.read(header_size)
        header, entries = _parse_header(path, header_bytes, size - 8 - header_size)
        stream.seek(0)
        raw = stream.read()
    if len(raw) != size or raw[8 : 8 + header_size] != header_bytes:
        raise ModelFileError(f"{path} changed while it was being read; read it again once it is written")
    metadata = header["__metadata__"]
    data = memoryview(raw)[8 + header_size :]
    table = None if "sha256_covers" not in metadata else {name: [e.code, e.shape] for name, e in entries.items()}
    spans = (entries[name] for name in sorted(entries))
    if _digest((data[entry.start : entry.stop] for entry in spans), metadata, table) != metadata["sha256"]:
        raise ModelFileError(f"{path} is damaged: its contents do not match the SHA-256 in its header")
    for name, entry in entries.items():
        header[name]["values"] = entry.values
    return header, raw


def _what_it_is_instead(path: Path, start: bytes, size: int, header_size: int | None) -> str:
    """Why a file is no descend file, from its first bytes: a pickle, a zip, cut short, too large a header..."""
    if start[:1] == b"\x80" and start[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return f"{path} looks like a Python pickle; descend never loads pickles (they can run code)"
    if start[:4] == b"PK\x03\x04":
        return f"{path} is a zip archive (a PyTorch .pt file?), not a descend model file"
    if header_size is None:
        return f"{path} is truncated: {size} bytes, too short for a header"
    if start[8:9] == b"{" and header_size > MAX_HEADER_BYTES:
        return f"{path}: its header claims {header_size} bytes; descend reads headers of at most {MAX_HEADER_BYTES}"
    if start[8:9] == b"{":
        return f"{path} is truncated: its header claims {header_size} bytes but the file holds {size - 8}"
    return f"{path} is not a descend model file (no safetensors header)"


class _Entry(NamedTuple):
    """A tensor's dtype (safetensors' name), shape, place in the data section [start, stop), number of values."""

    code: str
    shape: list[int]
    start: int
    stop: int
    values: int


def _parse_header(path: Path, header_bytes: bytes, data_size: int) -> tuple[dict[str, Any], dict[str, _Entry]]:
    """The header of a file whose data section holds `data_size` bytes, and its tensor table, checked.

    Its format and version, its metadata (strings, a SHA-256, a float dtype)
    and every tensor's entry, which together must tile the data section.
    """
    problem = _header_too_large(header_bytes)
    if problem:
        raise ModelFileError(f"{path}: {problem}")
    try:
        text = header_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise ModelFileError(f"{path} is not a descend model file: its header is not UTF-8 text") from None
    header = parse_json(path, text, "header", constants=False)
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ModelFileError(f"{path} is a safetensors file but not a descend model (no 'format: {FORMAT}' in its metadata)")
    version = metadata.get("format_version", "?")
    if version != str(FORMAT_VERSION):
        raise ModelFileError(
            f"{path} has descend file format version {str(version):.20} (written by descend "
            f"{str(metadata.get('descend_version', '?')):.20}); this descend reads version {FORMAT_VERSION}. "
            "Load it with the descend version that wrote it."
        )
    odd = next((key for key, value in metadata.items() if not isinstance(value, str)), None)
    if odd is not None:
        raise ModelFileError(f"{path}: its metadata {odd!r:.40} is a {type(metadata[odd]).__name__}; "
                             "metadata are strings")
    if not isinstance(metadata.get("sha256"), str):
        raise ModelFileError(
            f"{path} carries no SHA-256 of its contents, so damage to it could not be detected; descend refuses "
            "such files (descend 0.1.0 wrote some before checksums, and other tools may rewrite a file without it). "
            "Load it with the descend version that wrote it and save it again with this one."
        )
    if metadata.get("sha256_covers", CHECKSUM_COVERS) != CHECKSUM_COVERS:
        raise ModelFileError(f"{path}: its SHA-256 covers {metadata['sha256_covers']!r:.40}; "
                             f"this descend knows {CHECKSUM_COVERS!r}")
    dtype = metadata.get("dtype", "float32")
    if dtype not in _FLOATS:
        raise ModelFileError(f"{path}: parameters of dtype {dtype!r:.40}; descend models are float32 or float64")
    problem = _too_many("tensors", len(header) - 1, MAX_TENSORS)
    if problem:
        raise ModelFileError(f"{path}: {problem}")
    weights_only = metadata.get("contents") == WEIGHTS
    entries = {name: _check_entry(path, name, entry, data_size, _FLOATS[dtype], weights_only)
               for name, entry in header.items() if name != "__metadata__"}
    end = 0
    for name, entry in sorted(entries.items(), key=lambda item: (item[1].start, item[1].stop)):
        if entry.start != end:
            raise ModelFileError(
                f"{path} is damaged: tensor {name!r} starts at byte {entry.start} of the data section, where "
                f"{'the tensors before it end' if end else 'the data begins'} at {end}: the tensors must tile it"
            )
        end = entry.stop
    if end != data_size:
        raise ModelFileError(f"{path} is damaged or not a model file: its tensors hold {end} bytes, "
                             f"its data section {data_size}")
    return header, entries


def _check_entry(path: Path, name: str, entry: Any, data_size: int, declared: str, weights_only: bool) -> _Entry:
    """Where a tensor lies, once its header entry is checked against the file's size and its dtype against its kind
    (in a weights file, every tensor is the model's)."""
    shape = entry.get("shape") if isinstance(entry, dict) else None
    offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
    code = entry.get("dtype") if isinstance(entry, dict) else None
    if not (isinstance(code, str) and code in _DTYPES and isinstance(shape, list) and len(shape) <= MAX_DIMS
            and all(type(side) is int and side >= 0 for side in shape) and isinstance(offsets, list)
            and len(offsets) == 2 and all(type(offset) is int for offset in offsets)):
        raise ModelFileError(
            f"{path}: tensor {name!r:.80} has a malformed header entry {json.dumps(entry)[:120]}; expected "
            f"{{'dtype': one of {', '.join(_DTYPES)}, 'shape': at most {MAX_DIMS} whole numbers >= 0, "
            "'data_offsets': [start, stop]}"
        )
    kind = "declared" if weights_only else next((kind for prefix, kind in _KINDS.items() if name.startswith(prefix)), None)
    if kind is None:
        raise ModelFileError(f"{path}: tensor {name!r:.80} belongs to nothing a descend file holds "
                             f"(names start with {', '.join(_KINDS)})")
    allowed = {"declared": (declared,), "floats": tuple(_FLOATS.values()), "any": tuple(_DTYPES)}[kind]
    if code not in allowed:
        raise ModelFileError(
            f"{path}: tensor {name!r:.80} has dtype {code}; expected {' or '.join(allowed)} (this file's parameters "
            f"are {declared}); integer or bool weights are refused, not cast"
        )
    start, stop = offsets
    values = math.prod(shape)  # Python ints: at most MAX_DIMS sides of MAX_DIGITS digits, no overflow
    expected = np.dtype(_DTYPES[code]).itemsize * values
    if not 0 <= start <= stop <= data_size or stop - start != expected:
        raise ModelFileError(
            f"{path} is damaged or truncated: tensor {name!r:.80} of shape {tuple(shape)} needs {expected} bytes "
            f"at [{start}, {stop}) but the data section holds {data_size}"
        )
    return _Entry(code, shape, start, stop, values)


def _header_too_large(header: bytes) -> str | None:
    """What is wrong with a header's size (bytes, or JSON values counted before parsing), None if nothing."""
    if len(header) > MAX_HEADER_BYTES:
        return f"its header has {len(header)} bytes; descend reads headers of at most {MAX_HEADER_BYTES}"
    values = header.count(b",") + header.count(b"[") + header.count(b"{")  # strings' commas count too: a bound
    return _too_many("JSON values in its header", values, MAX_HEADER_VALUES)


def _too_many(what: str, count: int, cap: int) -> str | None:
    """The words for `count` of `what` above `cap`, None if within it."""
    return f"it holds {count} {what}; descend reads at most {cap}" if count > cap else None


class _Refused(Exception):
    """A number json met that a model file never holds; parse_json turns it into a ModelFileError."""


def _whole_number(text: str) -> int:
    """An integer of at most MAX_DIGITS digits (Python's own limit, 4300, would raise a bare ValueError)."""
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise _Refused(f"an integer of {len(text.lstrip('-'))} digits ({text[:12]}...); at most {MAX_DIGITS} are read")
    return int(text)


def _no_constant(text: str) -> None:
    raise _Refused(f"{text}, where only finite numbers may stand")


def parse_json(path: str | os.PathLike, text: str, what: str, constants: bool = True) -> Any:
    """`text` (part of the file at `path`) as JSON, nested at most MAX_DEPTH deep; else a ModelFileError about `what`.

    Integers have at most MAX_DIGITS digits; with `constants=False`, NaN and
    Infinity are refused (a tensor table holds none).

    >>> parse_json("m.dsc", '{"epoch": 3}', "training state")
    {'epoch': 3}
    >>> parse_json("m.dsc", '[' + '9' * 5000 + ']', "architecture")
    Traceback (most recent call last):
    ...
    descend.errors.ModelFileError: m.dsc: its architecture holds an integer of 5000 digits (999999999999...); at most 50 are read
    """
    try:
        value = json.loads(text, parse_int=_whole_number, parse_constant=None if constants else _no_constant)
    except _Refused as refused:
        raise ModelFileError(f"{path}: its {what} holds {refused}") from None
    except RecursionError:
        raise ModelFileError(f"{path}: its {what} is nested deeper than {MAX_DEPTH} levels") from None
    except (TypeError, ValueError):
        raise ModelFileError(f"{path}: its {what} is not JSON") from None
    pending = [(value, 1)] if isinstance(value, (dict, list)) else []
    while pending:  # only containers are visited: a list of a million numbers costs one visit
        item, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise ModelFileError(f"{path}: its {what} is nested deeper than {MAX_DEPTH} levels")
        pending.extend((inner, depth + 1) for inner in _contents(item) if isinstance(inner, (dict, list)))
    return value


def _contents(item: dict | list) -> Iterable[Any]:
    """The values a JSON container holds."""
    return item.values() if isinstance(item, dict) else item


@naming_arguments
def load(path: str | os.PathLike, custom_objects: dict[str, Any] | None = None) -> Module:
    """Rebuild the model saved at `path`: its architecture from JSON, its weights from safetensors.

    A model of your own class, saved from a script, is recorded as
    '__main__.Net': pass the class, `custom_objects={"Net": Net}` (and any
    registered function the model takes, by name), or import the module that
    defines it first. Weights that are NaN or infinite load, with a
    ModelFileWarning naming them. A weights file (save_weights) has no
    architecture: read it into a model built in code with `load_weights`.

    >>> import descend as dc, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny.dsc")
    >>> _ = dc.save(dc.nn.MLP([2, 3, 1], rng=0), path)
    >>> load(path).sizes
    [2, 3, 1]
    """
    custom_objects = check_custom_objects(custom_objects)  # the caller's mistake, named before the file is read
    header, raw = read_header(path)
    return build_model(path, header, raw, custom_objects)


def build_model(path: str | os.PathLike, header: dict[str, Any], raw: bytes,
                custom_objects: dict[str, Any] | None = None) -> Module:
    """The model a checked file (`read_header`'s header and bytes) describes, with its weights."""
    metadata = header["__metadata__"]
    if metadata.get("contents") == WEIGHTS:
        raise ModelFileError(
            f"{path} holds only weights (written by save_weights), not the model's architecture: build the model "
            f"in code ({str(metadata.get('model_class', 'its class')).rsplit('.', 1)[-1]:.80}(...)), then "
            "dc.load_weights(model, path)"
        )
    spec = read_architecture(path, metadata)
    held = sum(entry["values"] for name, entry in header.items() if name.startswith("model/"))
    try:
        # the architecture may ask for no more weights than the file holds: a hostile header cannot make us allocate
        with init.values_limit(held):
            model = build_module(spec, custom_objects)
    except SizeLimitError as error:
        raise ModelFileError(f"{path}: the weights do not fit the architecture, which needs more than the file "
                             f"holds: {error}") from None
    except Exception as error:  # the file is the input: whatever its architecture breaks, the file is at fault
        raise ModelFileError(f"{path}: cannot rebuild the model: {type(error).__name__}: {error}") from None
    model.astype(np.dtype(metadata.get("dtype", "float32")))
    weights = under(read_tensors(header, raw), "model/")
    try:
        model.load_state_dict(weights)
    except DescendValueError as error:
        raise ModelFileError(f"{path}: the weights do not fit the architecture: {error}") from None
    bad = [name for name, value in weights.items() if not np.isfinite(value).all()]
    if bad:
        warn(f"{path}: the weights {', '.join(bad[:4])}{' and more' if len(bad) > 4 else ''} hold NaN or "
             "infinite values; the model will compute NaN", ModelFileWarning)
    return model


def read_architecture(path: str | os.PathLike, metadata: dict[str, str]) -> dict[str, Any]:
    """The architecture (module_spec) in a checked file's metadata, its modules counted before and after parsing."""
    text = metadata.get("architecture")
    if not isinstance(text, str):
        raise ModelFileError(f"{path}: the architecture in its header is missing")
    problem = _too_many("modules in its architecture", text.count('"class"'), MAX_MODULES)
    spec = None if problem else parse_json(path, text, "architecture")
    if isinstance(spec, (dict, list)):  # counted again, exactly: "\u0063lass" is "class" too
        pending, modules = [spec], 0
        while pending:
            item = pending.pop()
            modules += isinstance(item, dict) and "class" in item
            pending.extend(inner for inner in _contents(item) if isinstance(inner, (dict, list)))
        problem = _too_many("modules in its architecture", modules, MAX_MODULES)
    if problem:
        raise ModelFileError(f"{path}: {problem}")
    return spec


def read_tensors(header: dict[str, Any], raw: bytes) -> dict[str, np.ndarray]:
    """Every array of a checked file (its `header` and `raw` bytes, from read_header), by name: copies in native
    byte order. The tensor table was checked against the file when it was read; it is not parsed again."""
    base = 8 + struct.unpack("<Q", raw[:8])[0]
    tensors = {}
    for name, entry in header.items():
        if name != "__metadata__":
            dtype = np.dtype(_DTYPES[entry["dtype"]])
            tensors[name] = (np.frombuffer(raw, dtype, entry["values"], base + entry["data_offsets"][0])
                             .reshape(entry["shape"]).astype(dtype.newbyteorder("=")))
    return tensors


def under(tensors: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The arrays whose names start with `prefix` ("model/", "optimizer/"), by the rest of their names."""
    return {name[len(prefix) :]: value for name, value in tensors.items() if name.startswith(prefix)}


@naming_arguments
def save_weights(model: Module, path: str | os.PathLike) -> Path:
    """Write only `model`'s weights and state arrays, under their `state_dict` names, atomically; returns the path.

    PyTorch's way (torch.save(model.state_dict())), in safetensors: the file
    holds no architecture, so it loads into a model built in code, whatever
    class or script defined it. Any safetensors reader sees the plain names.

    >>> import descend as dc, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny.weights")
    >>> _ = dc.save_weights(dc.nn.MLP([2, 3, 1], rng=0), path)
    >>> model = dc.load_weights(dc.nn.MLP([2, 3, 1], rng=1), path)
    >>> bool((model.flat_buffer().data == dc.nn.MLP([2, 3, 1], rng=0).flat_buffer().data).all())
    True
    """
    if not isinstance(model, Module):
        raise DescendTypeError(f"model must be a descend Module (a layer or a model); got {type(model).__name__}")
    metadata = {"contents": WEIGHTS, "dtype": model.flat_buffer().dtype.name,
                "model_class": qualified_name(type(model))}
    return write_file(path, model.state_dict(), metadata)


@naming_arguments
def load_weights(model: Module, path: str | os.PathLike) -> Module:
    """Copy the weights saved at `path` into `model`, in place; returns the model.

    `path` is a weights file (save_weights) or a whole model file (save),
    whose weights are taken and architecture ignored. Names and shapes must
    match `model.state_dict()`'s exactly; what differs is named.

    >>> import descend as dc, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny.weights")
    >>> _ = dc.save_weights(dc.nn.Linear(2, 1, rng=0), path)
    >>> model = load_weights(dc.nn.Linear(2, 1, rng=1), path)  # built with other weights, then overwritten
    >>> model.weight.data.tolist() == dc.nn.Linear(2, 1, rng=0).weight.data.tolist()
    True
    """
    if not isinstance(model, Module):
        raise DescendTypeError(f"model must be a descend Module (a layer or a model); got {type(model).__name__}")
    header, raw = read_header(path)
    tensors = read_tensors(header, raw)
    if header["__metadata__"].get("contents") != WEIGHTS:
        tensors = under(tensors, "model/")
    try:
        model.load_state_dict(tensors)
    except DescendValueError as error:
        raise ModelFileError(f"{path}: its weights do not fit {type(model).__name__}: {error}") from None
    return model


@naming_arguments
def load_optimizer_state(path: str | os.PathLike, optimizer: Any) -> None:
    """Restore an optimizer's state (momentum, moments, step count) saved with `save(..., optimizer=)`.

    >>> import descend as dc, tempfile, os
    >>> path, model = os.path.join(tempfile.mkdtemp(), "tiny.dsc"), dc.nn.Linear(2, 1, rng=0)
    >>> optimizer = dc.optim.Adam(model.parameters())
    >>> optimizer.step()  # one step: the moments and the step count are its state
    >>> _ = dc.save(model, path, optimizer=optimizer)
    >>> resumed = dc.optim.Adam(dc.load(path).parameters())
    >>> load_optimizer_state(path, resumed)
    >>> resumed.iterations
    1
    """
    header, raw = read_header(path)
    if "optimizer" not in header["__metadata__"]:
        raise ModelFileError(f"{path} holds no optimizer state; save with save(model, path, optimizer=opt)")
    scalars = parse_json(path, header["__metadata__"]["optimizer"], "optimizer state")
    optimizer.load_state_dict({"arrays": under(read_tensors(header, raw), "optimizer/"), "scalars": scalars})


@naming_arguments
def read_preprocessing(path: str | os.PathLike) -> Preprocessing | None:
    """How the training inputs of the model saved at `path` were scaled and what they looked like, every field
    checked (a ModelFileError names the file and the field); None for a file saved without it.

    >>> import descend as dc, tempfile, os, numpy as np
    >>> from descend.preprocessing import Preprocessing
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny.dsc")
    >>> record = Preprocessing.of(np.ones((4, 2), np.float32), "blobs", scale=255)
    >>> _ = dc.save(dc.nn.MLP([2, 3, 1], rng=0), path, preprocessing=record)
    >>> read_preprocessing(path) == record
    True
    """
    header, _ = read_header(path)
    text = header["__metadata__"].get("preprocessing")
    if text is None:
        return None
    record = parse_json(path, text, "preprocessing record", constants=False)
    try:
        return Preprocessing.from_record(record)
    except (DescendTypeError, DescendValueError) as error:
        raise ModelFileError(f"{path}: its preprocessing record is malformed: {error}") from None

"""Model files: weights in safetensors, the architecture and optimizer state as JSON in its header.

A descend file is a plain safetensors file, readable by any safetensors
tool. Its header metadata says `format: descend-model`, the format version,
the model's architecture (`module_spec`), a SHA-256 of its contents and,
when saved with one, the optimizer's hyperparameters. No pickle, no code:
loading builds the model from the registry of known classes, asking for no
more weights than the file holds, and copies the arrays in. A checkpoint
(descend.checkpoint) is the same kind of file with more in it.

Writes are atomic: a temporary file in the same folder, flushed to disk,
then renamed over the target, so an existing model file is never left half
written.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from descend.checks import naming_arguments
from descend.errors import DescendTypeError, DescendValueError, ModelFileError, SizeLimitError
from descend.files import checked_file_path, checked_path, write_atomically
from descend.nn import init
from descend.nn.module import Module, build_module, module_spec
from descend.version import __version__

FORMAT = "descend-model"
FORMAT_VERSION = 1
MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit
_DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8, "BOOL": np.bool_}


def _safetensors_numpy():
    try:
        import safetensors.numpy
    except ImportError:
        raise ImportError("saving and loading models needs safetensors: pip install 'descend[io]'") from None
    return safetensors.numpy


@naming_arguments
def save(model: Module, path: str | os.PathLike, optimizer: Any = None) -> Path:
    """Write `model` (and optionally its optimizer's state) to one file, atomically; returns the path.

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
    return write_file(path, tensors, metadata)


def write_file(path: str | os.PathLike, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> Path:
    """Write named arrays and string metadata as a descend file, atomically; returns the path.

    The format, its version, the descend version and a SHA-256 of the
    tensor data and the metadata are added to `metadata`, so a reader can
    tell a damaged file from a good one.
    """
    tensors = {name: np.ascontiguousarray(value) for name, value in tensors.items()}
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "descend_version": __version__,
        **metadata,
    }
    metadata["sha256"] = _digest((tensors[name].data for name in sorted(tensors)), metadata)
    path = checked_file_path("path", path)
    payload = _safetensors_numpy().save(tensors, metadata=metadata)
    return write_atomically(path, lambda stream: stream.write(payload))


def _digest(chunks: Iterable[memoryview], metadata: dict[str, Any]) -> str:
    """The SHA-256 of the tensors' bytes, one tensor after another in name order, then of the other metadata."""
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    digest.update(json.dumps({k: v for k, v in metadata.items() if k != "sha256"}, sort_keys=True).encode())
    return digest.hexdigest()


def read_header(path: str | os.PathLike) -> tuple[dict[str, Any], bytes]:
    """Check a file is a well-formed, undamaged descend file; return its header and raw bytes.

    In the header, each tensor's entry gains "values", its number of values.

    Every size in the header is checked against the file before anything is
    allocated, so a damaged or hostile file is refused quickly and cheaply.
    """
    path = checked_path("path", path)
    if not path.is_file():
        raise ModelFileError(f"no model file at {str(path)!r}")
    raw = path.read_bytes()
    header_size = struct.unpack("<Q", raw[:8])[0] if len(raw) >= 8 else None
    if header_size is None or header_size > min(MAX_HEADER_BYTES, len(raw) - 8) or raw[8:9] != b"{":
        raise ModelFileError(_what_it_is_instead(path, raw, header_size))
    try:
        header = json.loads(raw[8 : 8 + header_size])
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ModelFileError(f"{path} is not a descend model file: its header is not JSON") from None
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ModelFileError(f"{path} is a safetensors file but not a descend model (no 'format: {FORMAT}' in its metadata)")
    version = metadata.get("format_version", "?")
    if version != str(FORMAT_VERSION):
        raise ModelFileError(
            f"{path} has descend file format version {version} (written by descend {metadata.get('descend_version', '?')}); "
            f"this descend reads version {FORMAT_VERSION}. Load it with the descend version that wrote it."
        )
    data_size = len(raw) - 8 - header_size
    entries = {name: _check_entry(path, name, entry, data_size) for name, entry in header.items() if name != "__metadata__"}
    if "sha256" in metadata:  # files of descend 0.1.0 before checksums carry none
        data = memoryview(raw)[8 + header_size :]
        spans = (entries[name] for name in sorted(entries))
        if _digest((data[entry.start : entry.stop] for entry in spans), metadata) != metadata["sha256"]:
            raise ModelFileError(f"{path} is damaged: its contents do not match the SHA-256 in its header")
    for name, entry in entries.items():
        header[name]["values"] = entry.values
    return header, raw


def _what_it_is_instead(path: Path, raw: bytes, header_size: int | None) -> str:
    """Why a file is no safetensors file, in words: a pickle, a zip, cut short, or something else."""
    if raw[:1] == b"\x80" and raw[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return f"{path} looks like a Python pickle; descend never loads pickles (they can run code)"
    if raw[:4] == b"PK\x03\x04":
        return f"{path} is a zip archive (a PyTorch .pt file?), not a descend model file"
    if header_size is None:
        return f"{path} is truncated: {len(raw)} bytes, too short for a header"
    if raw[8:9] == b"{" and header_size <= MAX_HEADER_BYTES:
        return f"{path} is truncated: its header claims {header_size} bytes but the file holds {len(raw) - 8}"
    return f"{path} is not a descend model file (no safetensors header)"


class _Entry(NamedTuple):
    """A tensor's place in the data section, [start, stop), and its number of values."""

    start: int
    stop: int
    values: int


def _check_entry(path: Path, name: str, entry: Any, data_size: int) -> _Entry:
    """Where a tensor lies, once its header entry is checked against the file's size."""
    try:
        dtype = np.dtype(_DTYPES[entry["dtype"]])
        shape = [int(s) for s in entry["shape"]]
        start, stop = (int(o) for o in entry["data_offsets"])
    except (KeyError, TypeError, ValueError):
        raise ModelFileError(f"{path}: tensor {name!r} has a malformed header entry") from None
    values = int(np.prod(shape, dtype=object))
    expected = dtype.itemsize * values
    if min(shape, default=0) < 0 or not 0 <= start <= stop <= data_size or stop - start != expected:
        raise ModelFileError(
            f"{path} is damaged or truncated: tensor {name!r} of shape {tuple(shape)} needs {expected} bytes "
            f"at [{start}, {stop}) but the data section holds {data_size}"
        )
    return _Entry(start, stop, values)


@naming_arguments
def load(path: str | os.PathLike) -> Module:
    """Rebuild the model saved at `path`: its architecture from JSON, its weights from safetensors."""
    header, raw = read_header(path)
    return build_model(path, header, raw)


def build_model(path: str | os.PathLike, header: dict[str, Any], raw: bytes) -> Module:
    """The model a checked file (`read_header`'s header and bytes) describes, with its weights."""
    metadata = header["__metadata__"]
    try:
        spec = json.loads(metadata["architecture"])
    except (KeyError, TypeError, ValueError, RecursionError):
        raise ModelFileError(f"{path}: the architecture in its header is missing or not JSON") from None
    held = sum(entry["values"] for name, entry in header.items() if name.startswith("model/"))
    try:
        # the architecture may ask for no more weights than the file holds: a hostile header cannot make us allocate
        with init.values_limit(held):
            model = build_module(spec)
    except SizeLimitError as error:
        raise ModelFileError(f"{path}: the weights do not fit the architecture, which needs more than the file "
                             f"holds: {error}") from None
    except Exception as error:  # the file is the input: whatever its architecture breaks, the file is at fault
        raise ModelFileError(f"{path}: cannot rebuild the model: {type(error).__name__}: {error}") from None
    dtype = metadata.get("dtype", "float32")
    if dtype not in ("float32", "float64"):
        raise ModelFileError(f"{path}: parameters of dtype {dtype!r}; descend models are float32 or float64")
    model.astype(np.dtype(dtype))
    try:
        model.load_state_dict(under(read_tensors(path, raw), "model/"))
    except DescendValueError as error:
        raise ModelFileError(f"{path}: the weights do not fit the architecture: {error}") from None
    return model


def read_tensors(path: str | os.PathLike, raw: bytes) -> dict[str, np.ndarray]:
    """Every array of a checked file (its `raw` bytes), by name."""
    try:
        return _safetensors_numpy().load(raw)
    except Exception as error:  # safetensors' own checks: overlapping or unordered tensors, say
        raise ModelFileError(f"{path}: its tensors cannot be read: {error}") from None


def under(tensors: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The arrays whose names start with `prefix` ("model/", "optimizer/"), by the rest of their names."""
    return {name[len(prefix) :]: value for name, value in tensors.items() if name.startswith(prefix)}


@naming_arguments
def load_optimizer_state(path: str | os.PathLike, optimizer: Any) -> None:
    """Restore an optimizer's state (momentum, moments, step count) saved with `save(..., optimizer=)`."""
    header, raw = read_header(path)
    if "optimizer" not in header["__metadata__"]:
        raise ModelFileError(f"{path} holds no optimizer state; save with save(model, path, optimizer=opt)")
    try:
        scalars = json.loads(header["__metadata__"]["optimizer"])
    except (TypeError, ValueError, RecursionError):
        raise ModelFileError(f"{path}: its optimizer state is not JSON") from None
    optimizer.load_state_dict({"arrays": under(read_tensors(path, raw), "optimizer/"), "scalars": scalars})

"""Model files: weights in safetensors, the architecture and optimizer state as JSON in its header.

A descend file is a plain safetensors file, readable by any safetensors
tool. Its header metadata says `format: descend-model`, the format version,
the model's architecture (`module_spec`) and, when saved with one, the
optimizer's hyperparameters. No pickle, no code: loading builds the model
from the registry of known classes and copies the arrays in.

Writes are atomic: a temporary file in the same folder, flushed to disk,
then renamed over the target, so an existing model file is never left half
written.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from descend.errors import DescendValueError, ModelFileError
from descend.files import write_atomically
from descend.nn.module import Module, build_module, module_spec

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


def save(model: Module, path: str | os.PathLike, optimizer: Any = None) -> Path:
    """Write `model` (and optionally its optimizer's state) to one file, atomically; returns the path.

    >>> import descend as dc, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny.dsc")
    >>> model = dc.nn.MLP([2, 3, 1], rng=0)
    >>> _ = dc.save(model, path)
    >>> bool((dc.load(path).flat_buffer().data == model.flat_buffer().data).all())
    True
    """
    from descend import __version__

    tensors = {f"model/{name}": np.ascontiguousarray(value) for name, value in model.state_dict().items()}
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "descend_version": __version__,
        "architecture": json.dumps(module_spec(model)),
        "dtype": model.flat_buffer().dtype.name,
    }
    if optimizer is not None:
        state = optimizer.state_dict()
        tensors.update({f"optimizer/{name}": np.ascontiguousarray(value) for name, value in state["arrays"].items()})
        metadata["optimizer"] = json.dumps(state["scalars"])
    payload = _safetensors_numpy().save(tensors, metadata=metadata)
    return write_atomically(path, lambda stream: stream.write(payload))


def read_header(path: str | os.PathLike) -> tuple[dict[str, Any], bytes]:
    """Check a file is a well-formed descend file; return its header and raw bytes.

    Every size in the header is checked against the file before anything is
    allocated, so a damaged or hostile file is refused quickly and cheaply.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"no model file at {str(path)!r}")
    raw = path.read_bytes()
    header_size = struct.unpack("<Q", raw[:8])[0] if len(raw) >= 8 else None
    if header_size is None or header_size > min(MAX_HEADER_BYTES, len(raw) - 8) or raw[8:9] != b"{":
        raise ModelFileError(_what_it_is_instead(path, raw, header_size))
    try:
        header = json.loads(raw[8 : 8 + header_size])
    except (UnicodeDecodeError, json.JSONDecodeError):
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
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        _check_entry(path, name, entry, data_size)
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


def _check_entry(path: Path, name: str, entry: Any, data_size: int) -> None:
    try:
        dtype = np.dtype(_DTYPES[entry["dtype"]])
        shape = [int(s) for s in entry["shape"]]
        start, stop = (int(o) for o in entry["data_offsets"])
    except (KeyError, TypeError, ValueError):
        raise ModelFileError(f"{path}: tensor {name!r} has a malformed header entry") from None
    expected = dtype.itemsize * int(np.prod(shape, dtype=object))
    if min(shape, default=0) < 0 or not 0 <= start <= stop <= data_size or stop - start != expected:
        raise ModelFileError(
            f"{path} is damaged or truncated: tensor {name!r} of shape {tuple(shape)} needs {expected} bytes "
            f"at [{start}, {stop}) but the data section holds {data_size}"
        )


def load(path: str | os.PathLike) -> Module:
    """Rebuild the model saved at `path`: its architecture from JSON, its weights from safetensors."""
    header, raw = read_header(path)
    metadata = header["__metadata__"]
    try:
        spec = json.loads(metadata["architecture"])
    except (KeyError, json.JSONDecodeError):
        raise ModelFileError(f"{path}: the architecture in its header is missing or not JSON") from None
    try:
        model = build_module(spec)
    except (DescendValueError, TypeError) as error:
        raise ModelFileError(f"{path}: cannot rebuild the model: {error}") from None
    dtype = metadata.get("dtype", "float32")
    if dtype not in ("float32", "float64"):
        raise ModelFileError(f"{path}: parameters of dtype {dtype!r}; descend models are float32 or float64")
    model.astype(np.dtype(dtype))
    tensors = _safetensors_numpy().load(raw)
    state = {name[len("model/") :]: value for name, value in tensors.items() if name.startswith("model/")}
    try:
        model.load_state_dict(state)
    except DescendValueError as error:
        raise ModelFileError(f"{path}: the weights do not fit the architecture: {error}") from None
    return model


def load_optimizer_state(path: str | os.PathLike, optimizer: Any) -> None:
    """Restore an optimizer's state (momentum, moments, step count) saved with `save(..., optimizer=)`."""
    header, raw = read_header(path)
    if "optimizer" not in header["__metadata__"]:
        raise ModelFileError(f"{path} holds no optimizer state; save with save(model, path, optimizer=opt)")
    tensors = _safetensors_numpy().load(raw)
    arrays = {name[len("optimizer/") :]: value for name, value in tensors.items() if name.startswith("optimizer/")}
    optimizer.load_state_dict({"arrays": arrays, "scalars": json.loads(header["__metadata__"]["optimizer"])})

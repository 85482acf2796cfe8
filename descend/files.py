"""Writing files so that nothing is ever left half written."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from descend.errors import DescendTypeError, DescendValueError


def write_atomically(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Call `write(stream)` on a temporary file beside `path`, flush it to disk, then rename it over `path`.

    A reader sees the old file or the new one, never a part; if `write`
    fails, the temporary file is removed and `path` is untouched. The file
    gets mode 0644 (mkstemp's 0600 would hide a model from other users).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)
    return path


def checked_path(name: str, path: Any) -> Path:
    """`path` as a Path when it is a str or os.PathLike; else a DescendTypeError naming the argument."""
    if not isinstance(path, (str, os.PathLike)):
        raise DescendTypeError(
            f"{name} must be a file path (str or os.PathLike); got {type(path).__name__} {path!r:.80}"
        )
    return Path(path)


def checked_file_path(name: str, path: Any) -> Path:
    """`path` as a Path a file can be written at: not a folder, and not below a file."""
    path = checked_path(name, path)
    if path.is_dir():
        raise DescendValueError(
            f"{name} {str(path)!r} is a folder; expected a file path, e.g. {str(path / 'model.dsc')!r}"
        )
    if any(parent.exists() and not parent.is_dir() for parent in path.parents):
        raise DescendValueError(f"{name} {str(path)!r} lies inside a file, not a folder; expected a path in a folder")
    return path


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)

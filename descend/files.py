"""Writing files so that nothing is ever left half written, and nothing that is not a file is ever replaced.

Every file descend writes goes through `write_atomically` (or `write_text`,
built on it). What happens depends on what is at the path already:

| at the path                  | what a write does                                                      |
| ---------------------------- | ---------------------------------------------------------------------- |
| nothing, or a regular file   | a temporary file beside it, flushed to disk, renamed over it          |
| a symbolic link              | the link is followed: the file it points to is replaced as above, the |
|                              | link stays; a link to nothing, or a loop of links, is refused          |
| a character device           | written through, in place (`--out /dev/null` discards the output)     |
| a folder, a FIFO, a socket,  | refused with a DescendValueError naming the argument: replacing it    |
| a block device               | would destroy it, and writing into it is never what was meant          |

A path with a NUL byte is refused too (the system would cut it short). On the reading side,
`regular_file` refuses what is not a regular file before anything opens it: a FIFO would block the
reader until a writer came, a device would never end.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from descend.errors import DataError, DescendTypeError, DescendValueError

#: the kinds of thing a path can name that a write refuses, by the test that finds them
_REFUSED = {"a FIFO (named pipe)": stat.S_ISFIFO, "a socket": stat.S_ISSOCK, "a block device": stat.S_ISBLK}


class Target(NamedTuple):
    """Where a write to `given` lands: `path`, its symbolic links followed; `device`: a character device there."""

    given: Path
    path: Path
    device: bool


def write_atomically(path: str | os.PathLike, write: Callable[[BinaryIO], object], name: str = "path") -> Path:
    """Call `write(stream)` on a temporary file beside `path`, flush it to disk, then rename it over `path`.

    A reader sees the old file or the new one, never a part; if `write`
    fails, the temporary file is removed and `path` is untouched. A new file
    gets mode 0644 (mkstemp's 0600 would hide a model from other users); a
    replaced one keeps its mode. A symbolic link is followed and stays a
    link; a character device (/dev/null) is written through; a folder, FIFO,
    socket or block device is refused with a DescendValueError naming the
    argument `name` (the table at the top of descend/files.py). Returns `path`.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = write_atomically(folder / "model.dsc", lambda stream: stream.write(b"old"))
    >>> (folder / "latest").symlink_to("model.dsc")
    >>> _ = write_atomically(folder / "latest", lambda stream: stream.write(b"new"))
    >>> (folder / "latest").is_symlink(), (folder / "model.dsc").read_bytes()
    (True, b'new')
    """
    target = writable_target(name, path)
    if target.device:
        _write_through(target.path, write)
        return target.given
    folder = target.path.parent
    folder.mkdir(parents=True, exist_ok=True)
    mode = _existing_mode(target.path)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644 if mode is None else mode)
        if writable_target(name, target.path) != target._replace(given=target.path):  # a link, a device meanwhile
            raise DescendValueError(f"{name} {str(path)!r} changed while it was being written; nothing was replaced")
        os.replace(temporary, target.path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _sync_folder(folder)
    return target.given


def write_text(path: str | os.PathLike, text: str, name: str = "path") -> Path:
    """Write `text` as UTF-8 at `path` by the rules of `write_atomically` (a JSON record, a CSV, a report)."""
    data = text.encode("utf-8")
    return write_atomically(path, lambda stream: stream.write(data), name=name)


def writable_target(name: str, path: Any) -> Target:
    """Where a write to `path` lands, once it is checked that the write destroys nothing (see the module's table).

    `name` is the argument's name for the error message: "path", "--out".
    """
    path = checked_file_path(name, path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return Target(path, path, device=False)
    except OSError as error:  # a component is a file (ENOTDIR), a name too long, no permission
        raise DescendValueError(f"{name} {str(path)!r} cannot be written: {error.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        try:
            resolved = path.resolve(strict=True)
        except FileNotFoundError:
            raise DescendValueError(
                f"{name} {str(path)!r} is a symbolic link to {os.readlink(path)!r}, which does not exist; "
                "write to the file itself, or remove the link"
            ) from None
        except (RuntimeError, OSError):  # a loop of links
            raise DescendValueError(f"{name} {str(path)!r} is a symbolic link that loops; remove the link") from None
        return _target_of(name, path, resolved, os.stat(resolved))
    return _target_of(name, path, path, info)


def _target_of(name: str, given: Path, path: Path, info: os.stat_result) -> Target:
    """The Target for `path` (the resolved `given`) whose status is `info`, or a DescendValueError naming `name`."""
    shown = repr(str(given)) if given == path else f"{str(given)!r} (a link to {str(path)!r})"
    if stat.S_ISREG(info.st_mode):
        return Target(given, path, device=False)
    if stat.S_ISCHR(info.st_mode):
        return Target(given, path, device=True)
    if stat.S_ISDIR(info.st_mode):
        raise DescendValueError(
            f"{name} {shown} is a folder; expected a file path, e.g. {str(given / 'model.dsc')!r}"
        )
    kind = next((kind for kind, test in _REFUSED.items() if test(info.st_mode)), "not a regular file")
    raise DescendValueError(
        f"{name} {shown} is {kind}; descend writes regular files (replaced whole) and character devices "
        "such as /dev/null, and never replaces anything else. Choose a file path"
    )


def checked_path(name: str, path: Any) -> Path:
    """`path` as a Path when it is a str or os.PathLike without a NUL byte; else a descend error naming the argument."""
    if not isinstance(path, (str, os.PathLike)):
        raise DescendTypeError(
            f"{name} must be a file path (str or os.PathLike); got {type(path).__name__} {path!r:.80}"
        )
    text = os.fspath(path)
    if (b"\0" if isinstance(text, bytes) else "\0") in text:
        raise DescendValueError(f"{name} {text!r:.120} holds a NUL byte, which no file name may hold")
    return Path(os.fsdecode(text))


def regular_file(name: str, path: Any, expected: str = "a data file") -> Path:
    """`path` as a Path to a regular file to read (links followed), refusing by `name` a folder, FIFO, socket,
    device, missing file or dangling link with a DataError that says what was `expected`.

    >>> regular_file("INPUT", "/dev/null", "a .npy file")
    Traceback (most recent call last):
    ...
    descend.errors.DataError: INPUT: '/dev/null' is not a regular file (a FIFO, socket or device); expected a .npy file
    """
    path = checked_path(name, path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise DataError(f"{name}: no file at {str(path)!r}") from None
    except OSError as error:
        raise DataError(f"{name}: cannot read {str(path)!r}: {error.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file (a FIFO, socket or device)"
        raise DataError(f"{name}: {str(path)!r} is {kind}; expected {expected}")
    return path


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


def _write_through(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write into the character device at `path` in place; its status is checked again once it is open.

    O_NONBLOCK keeps the open from waiting should a FIFO have taken the
    device's place; it is cleared before writing.
    """
    descriptor = os.open(path, os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK | os.O_NOFOLLOW)
    try:
        if not stat.S_ISCHR(os.fstat(descriptor).st_mode):
            raise DescendValueError(f"{str(path)!r} changed while it was being written; nothing was written")
        os.set_blocking(descriptor, True)
        stream = os.fdopen(descriptor, "wb")
    except BaseException:
        os.close(descriptor)
        raise
    with stream:
        write(stream)


def _existing_mode(path: Path) -> int | None:
    """The permission bits of the file at `path`, None when there is none."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None


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

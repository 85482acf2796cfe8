"""A run folder that one `descend train` holds at a time, that no new run clobbers, and that a refused run never makes.

`locked(RUN)` takes RUN/.lock with `flock(LOCK_EX | LOCK_NB)` for as long as the run lives: a second
process into the same folder is refused at once (bad usage, exit 2) before it reads or writes anything
there. The lock dies with its process, so a killed run leaves nothing that blocks `--resume`. A run
that fails before it begins training (`RunFolder.started` is still False) takes away the folders it
made; RUN/run.json is written only once training begins, so a refused run never rewrites another's.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import click

from descend.checkpoint import checkpoint_files

#: the lock file inside a run folder
LOCK = ".lock"
#: what `descend train` writes into a run folder, besides its checkpoints/ (and the lock while it runs)
RUN_FILES = ("run.json", "metrics.jsonl", "model.dsc", "test.json", "curves.png", "filters.png", "feature_maps.png",
             "reconstructions.png", "perturbations.png", "vocab.json", "sample.txt")


class RunFolder:
    """A locked run folder: where it is, the folders this run made, and whether training has begun."""

    def __init__(self, path: Path, made: list[Path]):
        self.path, self.made = path, made
        #: set once training begins (and run.json is written): from then on the folder is the run's to keep
        self.started = False

    def checkpoints(self) -> list[Path]:
        """The checkpoint files in RUN/checkpoints, oldest first, by the library's own naming."""
        return checkpoint_files(self.path / "checkpoints")

    def another_run(self) -> list[str]:
        """What of another run this folder holds: its files and checkpoints by name (empty if none)."""
        found = [name for name in RUN_FILES[:3] if (self.path / name).exists()]
        checkpoints = self.checkpoints()
        if checkpoints:
            found.append(f"{len(checkpoints)} checkpoints (newest {checkpoints[-1].name})")
        return found

    def make_way(self, overwrite: bool) -> None:
        """Refuse a folder that holds another run, as bad usage naming --resume and --overwrite; with
        `overwrite`, delete that run's files (only those descend train writes) so the new run starts clean."""
        found = self.another_run()
        if not found:
            return
        if not overwrite:
            raise click.UsageError(
                f"{self.path} holds another run ({', '.join(found)}); go on with it with --resume {self.path}, "
                f"replace it with --overwrite, or train into another folder with --out")
        for old in [*(self.path / name for name in RUN_FILES), *self.checkpoints()]:
            old.unlink(missing_ok=True)


@contextlib.contextmanager
def locked(path: str | os.PathLike) -> Iterator[RunFolder]:
    """Hold the run folder `path` (made if missing) for the life of the block; bad usage if another process holds it.

    If the block fails before `started` is set, the folders made here are taken away again (those
    still empty), so a refused run leaves nothing behind. RUN/.lock is removed on the way out.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise click.UsageError(f"{path} is a file; a run folder must be a folder (choose another --out)")
    made = [folder for folder in (path, *path.parents) if not folder.exists()][::-1]
    path.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = _lock(path)
    except BaseException:
        _take_away(made)
        raise
    folder = RunFolder(path, made)
    try:
        yield folder
    finally:
        _release(path / LOCK, descriptor)
        if not folder.started:
            _take_away(made)


def _lock(path: Path) -> int:
    """The descriptor of PATH/.lock, locked; bad usage when another process holds it."""
    lock = path / LOCK
    while True:
        descriptor = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                raise click.UsageError(f"{lock} is not a lock file descend made; remove it, or use another folder")
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise click.UsageError(
                    f"{path} is in use: another descend train run holds it ({lock}); wait for that run to end, "
                    "or train into another folder with --out") from None
        except BaseException:
            os.close(descriptor)
            raise
        # the run that held the lock may have removed the file between our open and our lock: then we
        # hold a file no one else will open, and must lock the one at the path now
        try:
            if os.path.samestat(os.fstat(descriptor), os.stat(lock, follow_symlinks=False)):
                return descriptor
        except FileNotFoundError:
            pass
        os.close(descriptor)


def _release(lock: Path, descriptor: int) -> None:
    """Remove the lock file (still held, so no one else has it), then let go of the lock."""
    try:
        lock.unlink(missing_ok=True)
    finally:
        os.close(descriptor)


def _take_away(made: list[Path]) -> None:
    """Remove the folders a refused run made, innermost first, where nothing else was put in them."""
    for folder in reversed(made):
        try:
            folder.rmdir()
        except OSError:
            return

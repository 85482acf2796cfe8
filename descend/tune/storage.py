"""A study's run folder: its lock, its record (study.json), its storage, and resuming it after a kill.

RUN/ holds study.json (what the study searches: metric, direction, space, storage URL, sampler, pruner,
epochs), study.db (the default storage: SQLite), models/ (the model of each trial that was the best when it
finished), and at the end trials.csv, best.dsc and the pictures. One search holds the folder at a time
(`flock` on RUN/.lock, released by the kernel if the process dies, so a killed study never blocks its resume).

A folder that already holds a study is refused unless `resume=True`, and resuming refuses a study of
another metric, direction or space. Nothing of the existing study is written before those checks pass.
On resume, trials the killed process left RUNNING are marked failed (`lost`) and run again with the same
parameters: the lock proves no one else is running them. A new study that ends in an error before any trial
finished (a build function that fails, a metric fit does not record) is removed again, so the same call can
be made once the mistake is fixed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from descend.errors import DescendValueError
from descend.files import write_text
from descend.tune.driver import fail_and_retry
from descend.tune.objective import open_storage

RECORD = "study.json"
DATABASE = "study.db"
LOCK = ".lock"
#: the settings a resumed study must share with the study in its folder
KEPT = ("metric", "direction", "space", "storage")


def sqlite_url(run: Path) -> str:
    """The default storage of the study in `run`: an SQLite file, study.db, by absolute path.

    >>> sqlite_url(Path("/tmp/run"))
    'sqlite:////tmp/run/study.db'
    """
    return f"sqlite:///{(run / DATABASE).absolute()}"


@contextlib.contextmanager
def study_folder(run: str | os.PathLike, settings: dict[str, Any], resume: bool) -> Iterator[tuple[Any, str]]:
    """Hold the run folder `run` for a search with `settings` (study.json's fields); yields (optuna storage, study name).

    Refuses (DescendValueError naming `run` or `resume`) a folder that another search holds, that holds
    another study when `resume` is False, or that holds no study or one of other settings when it is True.
    Folders made here are removed again if the search fails before its study exists.
    """
    path = Path(run)
    if path.exists() and not path.is_dir():
        raise DescendValueError(f"run={str(run)!r} is a file; a study's run folder must be a folder")
    made = [folder for folder in (path, *path.parents) if not folder.exists()][::-1]
    path.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    created = False
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DescendValueError(f"run={str(run)!r} is in use: another search holds {path / LOCK}; wait for it "
                                    "to end, or choose another run folder") from None
        record = _read_record(path)
        if record is not None and not resume:
            raise DescendValueError(
                f"run={str(run)!r} holds another study ({record['metric']} {record['direction']}d over "
                f"{', '.join(record['space'])}); pass resume=True (descend tune --resume) to go on with it, "
                "or choose another run folder")
        if record is None and resume:
            raise DescendValueError(f"resume=True, but run={str(run)!r} holds no study ({RECORD} is missing); "
                                    "start one with resume=False")
        if record is not None:
            settings = {**settings, "storage": settings["storage"] or record["storage"],
                        "study_name": record["study_name"]}
            differ = [key for key in KEPT if record[key] != settings[key]]
            if differ:
                raise DescendValueError(
                    f"resume=True, but the study in run={str(run)!r} has other settings: "
                    + "; ".join(f"{key} was {record[key]!r}, now {settings[key]!r}" for key in differ))
        url = settings["storage"] or sqlite_url(path)
        storage = open_storage(url)
        if record is None:
            write_text(path / RECORD, json.dumps({**settings, "storage": url}, indent=1) + "\n")
        created = True
        try:
            yield storage, settings["study_name"]
        except BaseException:
            if record is None and not _finished_any(storage, settings["study_name"]):
                # refused at its first trial (a build error, a metric fit does not record): leave no study
                _remove_study(path, storage, settings["study_name"], own_file=settings["storage"] is None)
                created = False
            raise
    finally:
        with contextlib.suppress(OSError):
            (path / LOCK).unlink()
        os.close(descriptor)
        if not created:
            for folder in reversed(made):
                with contextlib.suppress(OSError):
                    folder.rmdir()


def _finished_any(storage: Any, study_name: str) -> bool:
    """Whether the study `study_name` in `storage` holds a trial that ran to its end or was pruned."""
    import optuna

    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:  # the study was never created
        return False
    ended = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return any(trial.state in ended for trial in storage.get_all_trials(study_id, deepcopy=False))


def _remove_study(path: Path, storage: Any, study_name: str, own_file: bool) -> None:
    """Remove a study this search created and nothing finished in: the run folder's files, or the study from a
    database server that other studies may share."""
    import shutil

    import optuna

    if own_file:
        storage.engine.dispose()
        (path / DATABASE).unlink(missing_ok=True)
    else:
        with contextlib.suppress(KeyError):
            optuna.delete_study(study_name=study_name, storage=storage)
    (path / RECORD).unlink(missing_ok=True)
    shutil.rmtree(path / "models", ignore_errors=True)


def _read_record(path: Path) -> dict[str, Any] | None:
    """study.json of the folder `path`, checked (None when there is none)."""
    file = path / RECORD
    if not file.exists():
        return None
    try:
        record = json.loads(file.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise DescendValueError(f"{file} is not a study record descend wrote ({error}); it was left as it is") \
            from None
    if not isinstance(record, dict) or any(key not in record for key in (*KEPT, "study_name")):
        raise DescendValueError(f"{file} lacks some of {', '.join((*KEPT, 'study_name'))}; it was left as it is")
    return record


def recover_lost_trials(study: Any, retries: int) -> int:
    """Mark the trials a killed search left RUNNING failed (`lost`) and enqueue their parameters again;
    returns how many. Called on resume, with the folder's lock held, so none of them is running anywhere.

    >>> import optuna
    >>> study = optuna.create_study()
    >>> _ = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    >>> recover_lost_trials(study, retries=2), len(study.get_trials(states=(optuna.trial.TrialState.WAITING,)))
    (1, 1)
    """
    import optuna

    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for trial in running:
        fail_and_retry(study, trial._trial_id, dict(trial.params), "the search ended while this trial ran", retries)
    return len(running)

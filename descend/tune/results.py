"""What a search leaves in its run folder: trials.csv, best.dsc, and the table the command prints.

trials.csv has one row per trial: number, state, value (the metric of its last epoch), epochs run,
seconds, each parameter, the seed, and for a retried trial `retry_of` and why it was lost.
best.dsc is the model of the best complete trial (ties: the earliest), copied from models/, where each
trial that was the best when it finished left its model; the others are removed.
"""

from __future__ import annotations

import csv
import io
import math
import shutil
from pathlib import Path
from typing import Any

from descend.errors import DescendValueError
from descend.files import write_atomically, write_text
from descend.tune.objective import model_path

#: trials.csv's first columns; the parameters follow, then these
LEADING = ("number", "state", "value", "epochs", "seconds")
TRAILING = ("seed", "retry_of", "lost", "error")


def trial_rows(study: Any) -> list[dict[str, Any]]:
    """One dict per trial of the Optuna `study`, in trial order: trials.csv's rows.

    >>> import optuna
    >>> study = optuna.create_study()
    >>> study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
    >>> list(trial_rows(study)[0])[:6]
    ['number', 'state', 'value', 'epochs', 'seconds', 'x']
    """
    names = sorted({name for trial in study.get_trials(deepcopy=False) for name in trial.params})
    rows = []
    for trial in study.get_trials(deepcopy=False):
        attrs = trial.user_attrs
        row = {"number": trial.number, "state": trial.state.name, "value": trial.value,
               "epochs": attrs.get("epochs"), "seconds": attrs.get("seconds")}
        row.update({name: trial.params.get(name) for name in names})
        row.update({name: attrs.get(name) for name in TRAILING})
        rows.append(row)
    return rows


def best_trial(study: Any, direction: str) -> Any:
    """The best complete trial of `study` (the earliest of equals); a DescendValueError when none completed.

    >>> import optuna
    >>> study = optuna.create_study(direction="maximize")
    >>> study.optimize(lambda trial: [0.5, 0.9, 0.9][trial.number], n_trials=3)
    >>> best_trial(study, "maximize").number
    1
    """
    import optuna

    complete = [trial for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                if trial.value is not None and math.isfinite(trial.value)]
    if not complete:
        states = [trial.state.name for trial in study.get_trials(deepcopy=False)]
        raise DescendValueError(f"the search completed no trial (their states: {', '.join(states) or 'none'}); "
                                "see trials.csv for their errors, or widen the space and the budget")
    sign = 1.0 if direction == "maximize" else -1.0
    return max(complete, key=lambda trial: (sign * trial.value, -trial.number))


def write_trials(rows: list[dict[str, Any]], path: Path) -> Path:
    """`rows` as a CSV file at `path`, written atomically (empty cells for missing values)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]) if rows else list(LEADING), lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: "" if value is None else value for key, value in row.items()} for row in rows)
    return write_text(path, text.getvalue())


def keep_best(run: Path, number: int) -> Path:
    """Copy trial `number`'s saved model to run/best.dsc, atomically, and remove the other trials' models (its own
    stays, for a resumed search that finds no better one)."""
    models = run / "models"
    source = model_path(models, number)
    if not source.exists():
        raise DescendValueError(f"the best trial, {number}, left no model in {models}; was the run folder changed "
                                "while the search ran?")
    with open(source, "rb") as stream:
        best = write_atomically(run / "best.dsc", lambda target: shutil.copyfileobj(stream, target))
    for other in models.glob("trial-*.dsc"):
        if other != source:
            other.unlink()
    return best


def best_so_far(rows: list[dict[str, Any]], direction: str) -> tuple[list[int], list[float]]:
    """The search's progress against its cost: after each finished trial (in trial order), the epochs trained
    by all trials so far and the best complete value so far (NaN before the first complete trial).

    What a pruner saves shows here: the same best value reached after fewer epochs.

    >>> rows = [{"state": "COMPLETE", "value": 0.5, "epochs": 3}, {"state": "PRUNED", "value": 0.2, "epochs": 1},
    ...         {"state": "COMPLETE", "value": 0.8, "epochs": 3}]
    >>> best_so_far(rows, "maximize")
    ([3, 4, 7], [0.5, 0.5, 0.8])
    """
    better = max if direction == "maximize" else min
    epochs, values, trained, best = [], [], 0, math.nan
    for row in rows:
        if row["state"] not in ("COMPLETE", "PRUNED", "FAIL"):
            continue
        trained += row["epochs"] or 0
        if row["state"] == "COMPLETE" and row["value"] is not None and math.isfinite(row["value"]):
            best = row["value"] if math.isnan(best) else better(best, row["value"])
        epochs.append(trained)
        values.append(best)
    return epochs, values


def table(rows: list[dict[str, Any]], best: int | None, limit: int = 20) -> str:
    """The trials as a text table (the first `limit` rows), the best marked with *.

    >>> print(table([{"number": 0, "state": "COMPLETE", "value": 0.5, "epochs": 2, "seconds": 1.0, "lr": 0.1}], 0))
      number  state     value  epochs  seconds  lr
    * 0       COMPLETE  0.5    2       1        0.1
    """
    if not rows:
        return "(no trials)"
    columns = [name for name in rows[0] if name not in TRAILING or any(row.get(name) is not None for row in rows)]
    cells = [[_cell(row.get(name)) for name in columns] for row in rows[:limit]]
    widths = [max(len(name), *(len(line[k]) for line in cells)) for k, name in enumerate(columns)]
    lines = ["  " + "  ".join(name.ljust(width) for name, width in zip(columns, widths)).rstrip()]
    for row, line in zip(rows, cells):
        mark = "* " if row["number"] == best else "  "
        lines.append(mark + "  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)

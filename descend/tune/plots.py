"""A search's pictures, drawn with matplotlib: the optimization history, each parameter against the metric,
and the parameters' importances (`optuna.importance`, its default evaluator).

>>> import optuna, tempfile, pathlib
>>> study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
>>> study.optimize(lambda trial: -(trial.suggest_float("x", -1, 1) ** 2), n_trials=5)
>>> from descend.tune.results import trial_rows
>>> paths = draw_all(study, trial_rows(study), "value", "maximize", pathlib.Path(tempfile.mkdtemp()))
>>> [path.name for path in paths]
['history.png', 'parameters.png', 'importances.png']
"""

from __future__ import annotations

import math
import numbers
from pathlib import Path
from typing import Any

from descend.viz.figures import grid_shape, new_figure, save_figure


def plot_history(rows: list[dict[str, Any]], metric: str, direction: str, path: Path) -> Path:
    """Each trial's value by trial number (complete: dots; pruned: crosses at their last report), and the
    best so far as a step line."""
    figure = new_figure(6.4, 4.0)
    axes = figure.add_subplot(1, 1, 1)
    best, line = None, []
    better = max if direction == "maximize" else min
    for row in rows:
        if row["state"] == "COMPLETE" and _finite(row["value"]):
            best = row["value"] if best is None else better(best, row["value"])
        line.append(best if best is not None else math.nan)
    for state, marker, label in (("COMPLETE", "o", "complete"), ("PRUNED", "x", "pruned")):
        chosen = [row for row in rows if row["state"] == state and _finite(row["value"])]
        axes.scatter([row["number"] for row in chosen], [row["value"] for row in chosen], marker=marker, label=label)
    axes.step([row["number"] for row in rows], line, where="post", color="black", label="best so far")
    axes.set_xlabel("trial")
    axes.set_ylabel(metric)
    axes.set_title("Optimization history")
    axes.legend()
    return save_figure(figure, path)


def plot_parameters(rows: list[dict[str, Any]], names: list[str], metric: str, logs: dict[str, bool],
                    path: Path) -> Path:
    """One panel per parameter: its value against the metric for every complete or pruned trial."""
    panels = grid_shape(len(names))
    figure = new_figure(3.2 * panels[1], 2.8 * panels[0])
    for index, name in enumerate(names):
        axes = figure.add_subplot(*panels, index + 1)
        for state, marker in (("COMPLETE", "o"), ("PRUNED", "x")):
            chosen = [row for row in rows if row["state"] == state and _finite(row["value"])
                      and row.get(name) is not None]
            axes.scatter([_position(row[name]) for row in chosen], [row["value"] for row in chosen],
                         marker=marker, label=state.lower())
        if logs.get(name):
            axes.set_xscale("log")
        axes.set_xlabel(name)
        axes.set_ylabel(metric)
        if index == 0:
            axes.legend(fontsize="small")  # complete: dots, pruned: crosses at their last report
    figure.suptitle(f"Each parameter against {metric}")
    figure.tight_layout()
    return save_figure(figure, path)


def plot_importances(importances: dict[str, float], path: Path) -> Path:
    """Each parameter's importance (Optuna's evaluator, summing to 1) as a horizontal bar."""
    figure = new_figure(6.4, 0.5 + 0.45 * max(len(importances), 1))
    axes = figure.add_subplot(1, 1, 1)
    names = list(importances)[::-1]
    axes.barh(names, [importances[name] for name in names])
    axes.set_xlabel("importance")
    axes.set_title("Parameter importances")
    return save_figure(figure, path)


def draw_all(study: Any, rows: list[dict[str, Any]], metric: str, direction: str, run: Path) -> list[Path]:
    """The three pictures of `study` in `run`; importances only once two complete trials differ (else skipped)."""
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    distributions = {name: value for trial in complete for name, value in trial.distributions.items()}
    names = sorted(distributions)
    logs = {name: getattr(distribution, "log", False) for name, distribution in distributions.items()}
    paths = [plot_history(rows, metric, direction, run / "history.png")]
    if names:
        paths.append(plot_parameters(rows, names, metric, logs, run / "parameters.png"))
    if len(complete) >= 2 and len({trial.value for trial in complete}) > 1:
        paths.append(plot_importances(optuna.importance.get_param_importances(study), run / "importances.png"))
    return paths


def _finite(value: Any) -> bool:
    return isinstance(value, numbers.Real) and math.isfinite(value)


def _position(value: Any) -> Any:
    """Where a value sits on an axis: numbers as themselves, a choice (a string, a boolean) by its text."""
    return value if isinstance(value, numbers.Real) and not isinstance(value, bool) else str(value)

"""Figures of training runs: named curves, a run's History, the learning-rate range test, HOGWILD!'s speed-up."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from descend.errors import DescendValueError
from descend.viz.figures import new_figure, save_figure


def plot_curves(curves: dict[str, Any], path: str | os.PathLike, title: str, xlabel: str, ylabel: str,
                log_y: bool = False) -> Path:
    """Save one line per named series on shared axes; returns the PNG's path.

    Each series is its y values (n,), drawn at x = 1..n, or an (x, y) pair of sequences of one length.
    """
    if not curves:
        raise DescendValueError("plot_curves needs at least one named curve")
    figure = new_figure(7, 4.5)
    axes = figure.add_subplot(1, 1, 1)
    for name, values in curves.items():
        xs, ys = values if isinstance(values, tuple) else (np.arange(1, len(values) + 1), values)
        axes.plot(xs, ys, label=name, marker="o" if len(ys) < 30 else None)
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    if log_y:
        axes.set_yscale("log")
    axes.grid(alpha=0.3)
    axes.legend()
    return save_figure(figure, path)


def plot_history(history: Any, path: str | os.PathLike, title: str = "Training") -> Path:
    """A run's curves by epoch, side by side: loss, accuracy (for classifiers), and the learning rate.

    `history`: the History that fit (or fit_spark) returned; validation curves are drawn where it has them.
    """
    if not len(history):
        raise DescendValueError("plot_history needs a History with at least one epoch")
    first = history.epochs[0]
    panels = [("loss", "loss")] + ([("accuracy", "accuracy (fraction right)")] if "accuracy" in first else [])
    panels += [("lr", "learning rate")] if "lr" in first else []
    from matplotlib.ticker import MaxNLocator

    figure = new_figure(4.4 * len(panels), 4.0)
    figure.suptitle(title)
    figure.subplots_adjust(wspace=0.45, top=0.8)  # room for the long tick labels of a slowly decaying rate
    epochs = np.arange(1, len(history) + 1)
    for index, (metric, label) in enumerate(panels):
        axes = figure.add_subplot(1, len(panels), index + 1)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        if metric == "lr":
            axes.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3), useOffset=False)
        marker = "o" if len(epochs) < 30 else None
        axes.plot(epochs, history[metric], marker=marker, label="training" if metric != "lr" else "at epoch end")
        if f"val_{metric}" in first:
            axes.plot(epochs, history[f"val_{metric}"], marker=marker, label="validation")
        axes.set_title(label[0].upper() + label[1:])
        axes.set_xlabel("epoch")
        axes.set_ylabel(label)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    return save_figure(figure, path)


def plot_lr_find(result: Any, path: str | os.PathLike, title: str = "Learning-rate range test") -> Path:
    """The loss against the learning rate (log scale), with both readings and the suggested rate marked.

    `result`: what descend.lr_find returned (learning_rates, losses and smoothed_losses of one length).
    """
    figure = new_figure(7, 4.5)
    axes = figure.add_subplot(1, 1, 1)
    axes.plot(result.learning_rates, result.losses, alpha=0.3, label="loss of each minibatch")
    axes.plot(result.learning_rates, result.smoothed_losses, label="smoothed")
    axes.axvline(result.steepest, color="C2", linestyle=":", label=f"steepest fall: {result.steepest:.2e}")
    axes.axvline(result.tenth_of_lowest, color="C4", linestyle=":",
                 label=f"a tenth of the lowest loss's rate: {result.tenth_of_lowest:.2e}")
    axes.plot([result.suggestion], [np.interp(np.log(result.suggestion), np.log(result.learning_rates),
                                              result.smoothed_losses)],
              marker="o", markersize=9, color="C3", linestyle="none", label=f"suggestion: {result.suggestion:.2e}")
    axes.set_xscale("log")
    finite = result.smoothed_losses[np.isfinite(result.smoothed_losses)]
    axes.set_ylim(finite.min() * 0.9, min(finite.max(), 2 * finite[0]) * 1.1)
    axes.set_title(title)
    axes.set_xlabel("learning rate (log scale)")
    axes.set_ylabel("training loss")
    axes.grid(alpha=0.3)
    axes.legend()
    return save_figure(figure, path)


def plot_speedup(runs: Any, path: str | os.PathLike, title: str = "HOGWILD! speed-up over serial SGD") -> Path:
    """Speed-up against workers, one line per lock mode, beside the ideal (linear) speed-up.

    `runs`: descend.hogwild.compare.Run records (workers, lock, speedup).
    """
    runs = list(runs)
    if not runs:
        raise DescendValueError("plot_speedup needs at least one run")
    figure = new_figure(6.5, 4.5)
    axes = figure.add_subplot(1, 1, 1)
    most = max(run.workers for run in runs)
    axes.plot([1, most], [1, most], linestyle="--", color="grey", label="linear")
    for lock in dict.fromkeys(run.lock for run in runs):
        mine = sorted((run.workers, run.speedup) for run in runs if run.lock == lock)
        axes.plot(*zip(*mine), marker="o", label=f"lock={lock}")
    axes.set_title(title)
    axes.set_xlabel("workers")
    axes.set_ylabel("updates per second / serial SGD's")
    axes.set_xticks(range(1, most + 1))
    axes.grid(alpha=0.3)
    axes.legend()
    return save_figure(figure, path)

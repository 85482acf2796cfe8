"""The crash course's own pictures: the figures that only the sections in this folder draw.

descend.viz holds the figures a training run or a library user needs; these teach one idea of one
section each. Every section imports this module as `import course_figures`, which works however the
section runs: as a script (`python examples/NN_name.py`, `descend tour`, the tests), since Python
puts a script's folder on its import path, and as a notebook (jupytext), whose kernel starts in
the notebook's folder. Each function draws one figure, saves it as a PNG and returns its path.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from descend.errors import DescendValueError, ShapeError
from descend.tensor import array_of
from descend.viz import draw_image_grid, grid_shape, new_figure, save_figure


def plot_line_fit(x: Any, y: Any, slope: float, intercept: float, losses: Any, path: str | os.PathLike,
                  title: str = "y = mx + c fitted by gradient descent") -> Path:
    """The data (N,) and (N,) with the fitted line beside the loss after each step (steps,)."""
    x, y = np.ravel(x), np.ravel(y)
    figure = new_figure(11, 4.2)
    axes = figure.add_subplot(1, 2, 1)
    axes.scatter(x, y, s=10, alpha=0.6, label="data")
    ends = np.array([x.min(), x.max()])
    axes.plot(ends, slope * ends + intercept, color="C3", label=f"fit: y = {slope:.3f}x + {intercept:.3f}")
    axes.set_title(title)
    axes.set_xlabel("x")
    axes.set_ylabel("y")
    axes.legend()
    curve = figure.add_subplot(1, 2, 2)
    curve.plot(np.arange(1, len(losses) + 1), losses)
    curve.set_yscale("log")
    curve.set_title("Mean squared error after each step")
    curve.set_xlabel("gradient-descent step")
    curve.set_ylabel("mean squared error (log scale)")
    curve.grid(alpha=0.3)
    return save_figure(figure, path)


def plot_descent_paths(surface: Callable[[np.ndarray, np.ndarray], np.ndarray], paths: dict[str, Any],
                       path: str | os.PathLike, minimum: Any = None,
                       title: str = "Paths of the optimizers on the loss surface") -> Path:
    """Each optimizer's path (steps, 2) of (w1, w2) on the contours of `surface(w1, w2)`, and its loss by step.

    `surface` takes two arrays of the same shape and returns the loss at each point; `minimum`, a
    point (2,), is marked with a star. Contours are spaced geometrically, so the valley floor shows.
    """
    if not paths:
        raise DescendValueError("plot_descent_paths needs at least one named path")
    tracks = [np.asarray(track, dtype=np.float64) for track in paths.values()]
    points = np.concatenate(tracks + ([np.reshape(minimum, (1, 2))] if minimum is not None else []))
    low, high = points.min(axis=0), points.max(axis=0)
    margin = 0.15 * (high - low) + 0.1
    w1, w2 = np.meshgrid(np.linspace(low[0] - margin[0], high[0] + margin[0], 200),
                         np.linspace(low[1] - margin[1], high[1] + margin[1], 200))
    figure = new_figure(12, 5)
    figure.subplots_adjust(wspace=0.4)  # room between the colour bar and the second plot's label
    axes = figure.add_subplot(1, 2, 1)
    heights = surface(w1, w2)
    floor = max(float(heights.min()), 1e-6 * float(heights.max()))
    levels = axes.contour(w1, w2, heights, levels=np.geomspace(floor * 1.01, float(heights.max()), 20),
                          cmap="viridis", linewidths=0.7)
    figure.colorbar(levels, ax=axes, label="loss")
    if minimum is not None:
        # drawn above the paths, which end on it, with a white rim to stand out on the darkest contours
        axes.plot(*np.ravel(minimum), marker="*", markersize=16, color="black", markeredgecolor="white",
                  linestyle="none", label="minimum", zorder=5)
    curve = figure.add_subplot(1, 2, 2)
    for name, track in paths.items():
        track = np.asarray(track, dtype=np.float64)
        axes.plot(track[:, 0], track[:, 1], marker=".", markersize=3, linewidth=1, label=name)
        curve.plot(surface(track[:, 0], track[:, 1]), label=name)
    axes.set_title(title)
    axes.set_xlabel("w1")
    axes.set_ylabel("w2")
    # below the axes, not on them: wherever it sits inside, some start or minimum falls under it
    axes.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    curve.set_yscale("log")
    curve.set_title("Loss against steps")
    curve.set_xlabel("step")
    curve.set_ylabel("loss (log scale)")
    curve.grid(alpha=0.3)
    curve.legend(fontsize=8)
    return save_figure(figure, path)


def plot_decision_boundaries(classifiers: dict[str, Callable[[np.ndarray], Any]], x: Any, y: Any,
                             path: str | os.PathLike, title: str = "Decision boundaries") -> Path:
    """Side by side, the class each classifier gives every point of the plane, over the points x (N, 2), y (N,).

    Each classifier is a function from points (M, 2) to class labels (M,).
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ShapeError(f"plot_decision_boundaries needs 2-D points x (N, 2); got shape {x.shape}")
    low, high = x.min(axis=0) - 0.5, x.max(axis=0) + 0.5
    g1, g2 = np.meshgrid(np.linspace(low[0], high[0], 300), np.linspace(low[1], high[1], 300))
    grid = np.column_stack([g1.ravel(), g2.ravel()])
    figure = new_figure(5.5 * len(classifiers), 4.8)
    figure.suptitle(title)
    for index, (name, classify) in enumerate(classifiers.items()):
        axes = figure.add_subplot(1, len(classifiers), index + 1)
        regions = np.asarray(classify(grid)).reshape(g1.shape)
        axes.contourf(g1, g2, regions, alpha=0.3, cmap="coolwarm")
        axes.scatter(x[:, 0], x[:, 1], c=y, cmap="coolwarm", s=8, edgecolors="k", linewidths=0.2)
        accuracy = float(np.mean(np.asarray(classify(x)) == y))
        axes.set_title(f"{name}: training accuracy {accuracy:.1%}")
        axes.set_xlabel("x1")
        axes.set_ylabel("x2")
    return save_figure(figure, path)


def plot_first_layer(weight: Any, image_shape: tuple[int, int], path: str | os.PathLike, limit: int = 64,
                     title: str = "What the first hidden units look for") -> Path:
    """The first `limit` hidden units' incoming weights, a weight (in_features, units) column each, as images."""
    weight = np.asarray(array_of(weight), dtype=np.float64)
    if weight.ndim != 2 or weight.shape[0] != image_shape[0] * image_shape[1]:
        raise ShapeError(f"plot_first_layer needs a weight ({image_shape[0] * image_shape[1]}, units) for "
                         f"{image_shape} images; got shape {weight.shape}")
    units = weight[:, :limit].T.reshape(-1, *image_shape)
    rows, columns = grid_shape(len(units))
    figure = new_figure(8, 8 * rows / columns + 0.6)
    draw_image_grid(figure, units, f"{title} (weights into {len(units)} units; light = positive)")
    return save_figure(figure, path)


def plot_weight_histograms(weights: dict[str, Any], path: str | os.PathLike,
                           title: str = "Weights of the first layer") -> Path:
    """One histogram per named weight array (any shape), on a shared axis of weight values."""
    if not weights:
        raise DescendValueError("plot_weight_histograms needs at least one named weight array")
    arrays = {name: np.ravel(array_of(value)) for name, value in
              weights.items()}
    extent = max(float(np.abs(array).max()) for array in arrays.values())
    bins = np.linspace(-extent, extent, 80)
    figure = new_figure(4 * len(arrays), 3.8)
    figure.suptitle(title)
    figure.subplots_adjust(top=0.82, wspace=0.35)
    for index, (name, array) in enumerate(arrays.items()):
        axes = figure.add_subplot(1, len(arrays), index + 1)
        axes.hist(array, bins=bins, color=f"C{index}")
        zero = float(np.mean(np.abs(array) < 1e-3))
        axes.set_title(f"{name} ({zero:.0%} within 0.001 of 0)", fontsize=9)
        axes.set_xlabel("weight value")
        axes.set_ylabel("count")
        axes.set_yscale("log")
    return save_figure(figure, path)


def plot_learning_curves(histories: dict[str, Any], path: str | os.PathLike, metric: str = "loss",
                         title: str = "Training and validation curves") -> Path:
    """Side by side, one panel per named History: `metric` on the training data and on the validation data."""
    if not histories:
        raise DescendValueError("plot_learning_curves needs at least one named History")
    figure = new_figure(4 * len(histories), 4.0)
    figure.suptitle(title)
    figure.subplots_adjust(top=0.82, wspace=0.3)
    shared = None
    for index, (name, history) in enumerate(histories.items()):
        if f"val_{metric}" not in history.epochs[0]:
            raise DescendValueError(f"the History of {name!r} has no val_{metric}: train it with validation=")
        axes = figure.add_subplot(1, len(histories), index + 1, sharey=shared)
        shared = shared or axes
        epochs = np.arange(1, len(history) + 1)
        axes.plot(epochs, history[metric], label=f"training {metric}")
        axes.plot(epochs, history[f"val_{metric}"], label=f"validation {metric}")
        axes.set_title(name, fontsize=10)
        axes.set_xlabel("epoch")
        axes.set_ylabel(metric)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    return save_figure(figure, path)


def plot_grouped_bars(groups: dict[str, Any], names: list[str], path: str | os.PathLike, title: str,
                      ylabel: str) -> Path:
    """Bars side by side per name, one colour per group, on a log scale; each group's values are (len(names),)."""
    figure = new_figure(8, 4.5)
    axes = figure.add_subplot(1, 1, 1)
    width = 0.8 / len(groups)
    for index, (label, values) in enumerate(groups.items()):
        axes.bar(np.arange(len(names)) + (index - (len(groups) - 1) / 2) * width, values, width, label=label)
    axes.set_xticks(np.arange(len(names)), names, rotation=25, ha="right")
    axes.set_yscale("log")
    axes.set_title(title)
    axes.set_ylabel(ylabel)
    axes.legend()
    return save_figure(figure, path)

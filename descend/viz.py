"""Pictures: every figure descend draws, as PNG files.

Figures are drawn on matplotlib's Agg canvas directly, so nothing here
needs a screen or changes the user's matplotlib backend.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from descend.errors import DescendTypeError, DescendValueError, ShapeError
from descend.nn.conv import Conv2d
from descend.nn.module import Module
from descend.tensor import Tensor, no_grad


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("pictures need matplotlib: pip install 'descend[viz]'") from None
    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Any, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, bbox_inches="tight")
    return path


def _grid(count: int) -> tuple[int, int]:
    columns = int(np.ceil(np.sqrt(count)))
    return int(np.ceil(count / columns)), columns


def _image_grid(figure: Any, images: np.ndarray, title: str, labels: list[str] | None = None) -> None:
    """Draw images (k, H, W) in a near-square grid, each scaled to its own range, gray."""
    rows, columns = _grid(len(images))
    figure.suptitle(title)
    for index, image in enumerate(images):
        axes = figure.add_subplot(rows, columns, index + 1)
        axes.imshow(image, cmap="gray", interpolation="nearest")
        axes.set_xticks([])
        axes.set_yticks([])
        if labels:
            axes.set_title(labels[index], fontsize=7)


def plot_curves(curves: dict[str, Any], path: str | os.PathLike, title: str, xlabel: str, ylabel: str,
                log_y: bool = False) -> Path:
    """Save one line per named series (a list of y values, or an (x, y) pair of lists) on shared axes."""
    if not curves:
        raise DescendValueError("plot_curves needs at least one named curve")
    figure = _figure(7, 4.5)
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
    return _save(figure, path)


def plot_filters(layer: Module, path: str | os.PathLike = "filters.png") -> Path:
    """Save the learned filters of a Conv2d layer as a grid of images, one per output channel.

    Each filter (in_channels, kh, kw) is shown averaged over its input
    channels, gray scaled to its own range. Returns the PNG's path.
    """
    if not isinstance(layer, Conv2d):
        raise DescendTypeError(f"plot_filters needs a Conv2d layer (e.g. model.layers[0]); got {type(layer).__name__}")
    weights = layer.weight.data.mean(axis=1)
    figure = _figure(8, 8 * _grid(len(weights))[0] / _grid(len(weights))[1] + 0.6)
    kh, kw = layer.kernel_size
    title = f"{len(weights)} learned {kh}x{kw} filters of Conv2d({layer.in_channels} -> {layer.out_channels}); light = positive"
    _image_grid(figure, weights, title, [f"filter {i}" for i in range(len(weights))])
    return _save(figure, path)


def feature_maps(model: Module, image: Any) -> list[tuple[str, np.ndarray]]:
    """The activations of one image after each Conv2d of a Sequential model.

    Each convolution's output is taken after the layers that follow it
    without changing its shape (batch norm, the activation function).
    image: (C, H, W) or (1, C, H, W). Returns [(what was applied, maps of shape (channels, h, w)), ...].
    """
    layers = getattr(model, "layers", None)
    if layers is None:
        raise DescendTypeError(f"feature_maps needs a model with .layers (a Sequential); got {type(model).__name__}")
    x = np.asarray(image.data if isinstance(image, Tensor) else image, dtype=model.flat_buffer().dtype)
    x = x[None] if x.ndim == 3 else x
    if x.ndim != 4 or x.shape[0] != 1:
        raise ShapeError(f"feature_maps needs one image of shape (C, H, W) or (1, C, H, W); got {x.shape}")
    maps: list[tuple[str, np.ndarray]] = []
    names: list[str] = []
    current, kept = Tensor(x), None
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            for layer in layers:
                current = layer(current)
                if isinstance(layer, Conv2d) or (names and current.shape != kept.shape):
                    if names:
                        maps.append((", ".join(names), kept.data[0]))
                    names = [repr(layer)] if isinstance(layer, Conv2d) else []
                elif names:
                    names.append(type(layer).__name__)
                kept = current if names else None
            if names:
                maps.append((", ".join(names), kept.data[0]))
    finally:
        model.train(was_training)
    if not maps:
        raise DescendValueError("feature_maps found no Conv2d layer in the model")
    return maps


def plot_feature_maps(model: Module, image: Any, path: str | os.PathLike = "feature_maps.png", limit: int = 16) -> Path:
    """Save one image and its activations after each convolution (up to `limit` channels a row) as one PNG."""
    maps = [(name, activations[:limit]) for name, activations in feature_maps(model, image)]
    picture = np.asarray(image.data if isinstance(image, Tensor) else image)
    picture = picture.reshape(-1, *picture.shape[-2:]).mean(axis=0)
    columns = max(len(activations) for _, activations in maps)
    figure = _figure(1.2 * columns + 1, 1.5 * (len(maps) + 1) + 0.5)
    figure.suptitle("Feature maps of one image: a row per convolution (after its activation), a column per channel")
    axes = figure.add_subplot(len(maps) + 1, columns, 1)
    axes.imshow(picture, cmap="gray", interpolation="nearest")
    axes.set_title("input image", fontsize=7)
    axes.set_xticks([])
    axes.set_yticks([])
    for row, (name, activations) in enumerate(maps, start=1):
        for index, activation in enumerate(activations):
            axes = figure.add_subplot(len(maps) + 1, columns, row * columns + index + 1)
            axes.imshow(activation, cmap="viridis", interpolation="nearest")
            axes.set_xticks([])
            axes.set_yticks([])
            axes.set_title(f"ch {index}", fontsize=6)
            if index == 0:
                axes.set_ylabel(f"conv {row}", fontsize=7)
    return _save(figure, path)


def plot_score_histogram(normal: Any, anomalous: Any, path: str | os.PathLike, threshold: float | None = None,
                         title: str = "Anomaly scores") -> Path:
    """Save overlaid histograms of the scores of normal and anomalous rows, with the threshold if given."""
    normal, anomalous = np.asarray(normal, dtype=np.float64), np.asarray(anomalous, dtype=np.float64)
    if normal.size == 0 or anomalous.size == 0:
        raise DescendValueError("plot_score_histogram needs scores of both normal and anomalous rows")
    figure = _figure(7, 4.5)
    axes = figure.add_subplot(1, 1, 1)
    edges = np.histogram_bin_edges(np.concatenate([normal, anomalous]), bins=60)
    axes.hist(normal, bins=edges, alpha=0.6, density=True, label=f"normal ({normal.size})")
    axes.hist(anomalous, bins=edges, alpha=0.6, density=True, label=f"anomalous ({anomalous.size})")
    if threshold is not None:
        axes.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.4g}")
    axes.set_title(title)
    axes.set_xlabel("reconstruction error (mean squared, per row)")
    axes.set_ylabel("density")
    axes.legend()
    return _save(figure, path)


def plot_reconstructions(originals: Any, reconstructions: Any, path: str | os.PathLike,
                         labels: list[str] | None = None, title: str = "Inputs (top) and reconstructions (bottom)") -> Path:
    """Save pairs of images, each input above its reconstruction; rows of 784 are shown as 28x28."""
    originals, reconstructions = _as_images(originals), _as_images(reconstructions)
    count = len(originals)
    figure = _figure(1.3 * count + 0.5, 3.2)
    figure.suptitle(title)
    for index in range(count):
        for row, images in enumerate((originals, reconstructions)):
            axes = figure.add_subplot(2, count, row * count + index + 1)
            axes.imshow(images[index], cmap="gray", interpolation="nearest", vmin=0, vmax=1)
            axes.set_xticks([])
            axes.set_yticks([])
            if row == 0 and labels:
                axes.set_title(labels[index], fontsize=7)
    return _save(figure, path)


def plot_capsule_perturbations(pictures: Any, steps: Any, path: str | os.PathLike, predicted: int | None = None,
                                title: str | None = None) -> Path:
    """Save the paper's perturbation figure: row d decodes the capsule with dimension d moved by each step.

    `pictures` (digit_dim, len(steps), pixels) from CapsNet.perturbations; rows of 784 are shown as 28x28.
    """
    pictures = np.asarray(pictures, dtype=np.float64)
    if pictures.ndim != 3 or pictures.shape[1] != len(steps):
        raise ShapeError(f"pictures must be (dimensions, {len(steps)} steps, pixels); got shape {pictures.shape}")
    dimensions, count = pictures.shape[:2]
    images = _as_images(pictures.reshape(dimensions * count, -1))
    figure = _figure(0.75 * count + 1.0, 0.75 * dimensions + 0.8)
    figure.suptitle(title or f"Each dimension of the digit capsule{'' if predicted is None else f' of a {predicted}'}"
                            " nudged from -0.25 to 0.25, then decoded")
    for row in range(dimensions):
        for column in range(count):
            axes = figure.add_subplot(dimensions, count, row * count + column + 1)
            axes.imshow(images[row * count + column], cmap="gray", interpolation="nearest", vmin=0, vmax=1)
            axes.set_xticks([])
            axes.set_yticks([])
            if row == 0:
                axes.set_title(f"{float(steps[column]) + 0.0:+.2f}", fontsize=7)
            if column == 0:
                axes.set_ylabel(f"dim {row}", fontsize=7)
    return _save(figure, path)


def _as_images(values: Any) -> np.ndarray:
    array = np.asarray(values.data if isinstance(values, Tensor) else values, dtype=np.float64)
    if array.ndim == 2:
        side = int(round(np.sqrt(array.shape[1])))
        if side * side != array.shape[1]:
            raise ShapeError(f"rows of {array.shape[1]} values are not square images")
        return array.reshape(-1, side, side)
    return array.reshape(len(array), *array.shape[-2:])


def plot_codes(codes: Any, labels: Any, path: str | os.PathLike, title: str = "The 2-D code of each input") -> Path:
    """Save a scatter plot of 2-D codes, coloured by label (e.g. the digit)."""
    codes, labels = np.asarray(codes, dtype=np.float64), np.asarray(labels)
    if codes.ndim != 2 or codes.shape[1] != 2 or len(labels) != len(codes):
        raise ShapeError(f"plot_codes needs codes (N, 2) and N labels; got {codes.shape} and {labels.shape}")
    figure = _figure(6.5, 5.5)
    axes = figure.add_subplot(1, 1, 1)
    points = axes.scatter(codes[:, 0], codes[:, 1], c=labels, cmap="tab10", s=4, alpha=0.7)
    figure.colorbar(points, ax=axes, label="label")
    axes.set_title(title)
    axes.set_xlabel("code unit 1")
    axes.set_ylabel("code unit 2")
    return _save(figure, path)


def plot_speedup(runs: Any, path: str | os.PathLike, title: str = "HOGWILD! speed-up over serial SGD") -> Path:
    """Speed-up against workers, one line per lock mode, beside the ideal (linear) speed-up.

    `runs`: descend.hogwild.compare.Run records (workers, lock, speedup).
    """
    runs = list(runs)
    if not runs:
        raise DescendValueError("plot_speedup needs at least one run")
    figure = _figure(6.5, 4.5)
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
    return _save(figure, path)


def plot_line_fit(x: Any, y: Any, slope: float, intercept: float, losses: Any, path: str | os.PathLike,
                  title: str = "y = mx + c fitted by gradient descent") -> Path:
    """The data (N,) and (N,) with the fitted line beside the loss after each step (steps,)."""
    x, y = np.ravel(x), np.ravel(y)
    figure = _figure(11, 4.2)
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
    return _save(figure, path)


def plot_descent_paths(surface: Any, paths: dict[str, Any], path: str | os.PathLike, minimum: Any = None,
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
    figure = _figure(12, 5)
    figure.subplots_adjust(wspace=0.4)  # room between the colour bar and the second plot's label
    axes = figure.add_subplot(1, 2, 1)
    heights = surface(w1, w2)
    floor = max(float(heights.min()), 1e-6 * float(heights.max()))
    levels = axes.contour(w1, w2, heights, levels=np.geomspace(floor * 1.01, float(heights.max()), 20),
                          cmap="viridis", linewidths=0.7)
    figure.colorbar(levels, ax=axes, label="loss")
    if minimum is not None:
        axes.plot(*np.ravel(minimum), marker="*", markersize=14, color="black", linestyle="none", label="minimum")
    curve = figure.add_subplot(1, 2, 2)
    for name, track in paths.items():
        track = np.asarray(track, dtype=np.float64)
        axes.plot(track[:, 0], track[:, 1], marker=".", markersize=3, linewidth=1, label=name)
        curve.plot(surface(track[:, 0], track[:, 1]), label=name)
    axes.set_title(title)
    axes.set_xlabel("w1")
    axes.set_ylabel("w2")
    axes.legend(fontsize=8)
    curve.set_yscale("log")
    curve.set_title("Loss against steps")
    curve.set_xlabel("step")
    curve.set_ylabel("loss (log scale)")
    curve.grid(alpha=0.3)
    curve.legend(fontsize=8)
    return _save(figure, path)


def plot_decision_boundaries(classifiers: dict[str, Any], x: Any, y: Any, path: str | os.PathLike,
                             title: str = "Decision boundaries") -> Path:
    """Side by side, the class each classifier gives every point of the plane, over the points x (N, 2), y (N,).

    Each classifier is a function from points (M, 2) to class labels (M,).
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ShapeError(f"plot_decision_boundaries needs 2-D points x (N, 2); got shape {x.shape}")
    low, high = x.min(axis=0) - 0.5, x.max(axis=0) + 0.5
    g1, g2 = np.meshgrid(np.linspace(low[0], high[0], 300), np.linspace(low[1], high[1], 300))
    grid = np.column_stack([g1.ravel(), g2.ravel()])
    figure = _figure(5.5 * len(classifiers), 4.8)
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
    return _save(figure, path)


def plot_first_layer(weight: Any, image_shape: tuple[int, int], path: str | os.PathLike, limit: int = 64,
                     title: str = "What the first hidden units look for") -> Path:
    """The first `limit` hidden units' incoming weights, a weight (in_features, units) column each, as images."""
    weight = np.asarray(weight.data if isinstance(weight, Tensor) else weight, dtype=np.float64)
    if weight.ndim != 2 or weight.shape[0] != image_shape[0] * image_shape[1]:
        raise ShapeError(f"plot_first_layer needs a weight ({image_shape[0] * image_shape[1]}, units) for "
                         f"{image_shape} images; got shape {weight.shape}")
    units = weight[:, :limit].T.reshape(-1, *image_shape)
    rows, columns = _grid(len(units))
    figure = _figure(8, 8 * rows / columns + 0.6)
    _image_grid(figure, units, f"{title} (weights into {len(units)} units; light = positive)")
    return _save(figure, path)


def plot_lr_find(result: Any, path: str | os.PathLike, title: str = "Learning-rate range test") -> Path:
    """The loss against the learning rate (log scale), with both readings and the suggested rate marked.

    `result`: what descend.lr_find returned.
    """
    figure = _figure(7, 4.5)
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
    return _save(figure, path)


def plot_weight_histograms(weights: dict[str, Any], path: str | os.PathLike,
                           title: str = "Weights of the first layer") -> Path:
    """One histogram per named weight array, on a shared axis of weight values."""
    if not weights:
        raise DescendValueError("plot_weight_histograms needs at least one named weight array")
    arrays = {name: np.ravel(np.asarray(value.data if isinstance(value, Tensor) else value)) for name, value in
              weights.items()}
    extent = max(float(np.abs(array).max()) for array in arrays.values())
    bins = np.linspace(-extent, extent, 80)
    figure = _figure(4 * len(arrays), 3.8)
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
    return _save(figure, path)


def plot_learning_curves(histories: dict[str, Any], path: str | os.PathLike, metric: str = "loss",
                         title: str = "Training and validation curves") -> Path:
    """Side by side, one panel per named History: `metric` on the training data and on the validation data."""
    if not histories:
        raise DescendValueError("plot_learning_curves needs at least one named History")
    figure = _figure(4 * len(histories), 4.0)
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
    return _save(figure, path)


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

    figure = _figure(4.4 * len(panels), 4.0)
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
    return _save(figure, path)

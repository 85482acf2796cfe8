"""Figures of what an autoencoder gives: anomaly scores, reconstructions beside their inputs, 2-D codes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from descend.errors import DescendValueError, ShapeError
from descend.viz.figures import as_images, new_figure, save_figure


def plot_score_histogram(normal: Any, anomalous: Any, path: str | os.PathLike, threshold: float | None = None,
                         title: str = "Anomaly scores") -> Path:
    """Save overlaid histograms of the scores of normal (n,) and anomalous rows (m,), with the threshold if given."""
    normal, anomalous = np.asarray(normal, dtype=np.float64), np.asarray(anomalous, dtype=np.float64)
    if normal.size == 0 or anomalous.size == 0:
        raise DescendValueError("plot_score_histogram needs scores of both normal and anomalous rows")
    figure = new_figure(7, 4.5)
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
    return save_figure(figure, path)


def plot_reconstructions(originals: Any, reconstructions: Any, path: str | os.PathLike, labels: list[str] | None = None,
                         title: str = "Inputs (top) and reconstructions (bottom)") -> Path:
    """Save pairs of images, each input above its reconstruction, with `labels` above the inputs if given.

    originals and reconstructions: N images each, (N, H, W), (N, C, H, W), or rows (N, H*W) such as 784 for 28x28.
    """
    originals, reconstructions = as_images(originals), as_images(reconstructions)
    count = len(originals)
    figure = new_figure(1.3 * count + 0.5, 3.2)
    figure.suptitle(title)
    for index in range(count):
        for row, images in enumerate((originals, reconstructions)):
            axes = figure.add_subplot(2, count, row * count + index + 1)
            axes.imshow(images[index], cmap="gray", interpolation="nearest", vmin=0, vmax=1)
            axes.set_xticks([])
            axes.set_yticks([])
            if row == 0 and labels:
                axes.set_title(labels[index], fontsize=7)
    return save_figure(figure, path)


def plot_codes(codes: Any, labels: Any, path: str | os.PathLike, title: str = "The 2-D code of each input") -> Path:
    """Save a scatter plot of 2-D codes (N, 2), coloured by their labels (N,) (e.g. the digit)."""
    codes, labels = np.asarray(codes, dtype=np.float64), np.asarray(labels)
    if codes.ndim != 2 or codes.shape[1] != 2 or len(labels) != len(codes):
        raise ShapeError(f"plot_codes needs codes (N, 2) and N labels; got {codes.shape} and {labels.shape}")
    figure = new_figure(6.5, 5.5)
    axes = figure.add_subplot(1, 1, 1)
    points = axes.scatter(codes[:, 0], codes[:, 1], c=labels, cmap="tab10", s=4, alpha=0.7)
    figure.colorbar(points, ax=axes, label="label")
    axes.set_title(title)
    axes.set_xlabel("code unit 1")
    axes.set_ylabel("code unit 2")
    return save_figure(figure, path)

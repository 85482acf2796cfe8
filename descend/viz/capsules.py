"""Figures of capsule networks: what the decoder draws as one digit capsule's dimensions are nudged."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from descend.errors import ShapeError
from descend.viz.figures import as_images, new_figure, save_figure


def plot_capsule_perturbations(pictures: Any, steps: Any, path: str | os.PathLike, predicted: int | None = None,
                                title: str | None = None) -> Path:
    """Save the paper's perturbation figure: row d decodes the capsule with dimension d moved by each step.

    `pictures` (digit_dim, len(steps), pixels) from CapsNet.perturbations; rows of 784 are shown as 28x28.
    """
    pictures = np.asarray(pictures, dtype=np.float64)
    if pictures.ndim != 3 or pictures.shape[1] != len(steps):
        raise ShapeError(f"pictures must be (dimensions, {len(steps)} steps, pixels); got shape {pictures.shape}")
    dimensions, count = pictures.shape[:2]
    images = as_images(pictures.reshape(dimensions * count, -1))
    figure = new_figure(0.75 * count + 1.0, 0.75 * dimensions + 0.8)
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
    return save_figure(figure, path)

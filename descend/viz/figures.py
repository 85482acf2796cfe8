"""The canvas every descend figure is drawn on, saving it as a PNG, and grids of images.

Figures are drawn on matplotlib's Agg canvas directly, so nothing here
needs a screen or changes the user's matplotlib backend.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from descend.errors import DescendValueError, ShapeError
from descend.files import writable_target, write_atomically
from descend.tensor import array_of

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def new_figure(width: float, height: float) -> Figure:
    """A blank figure of width x height inches at 100 dots per inch, on its own Agg canvas (no pyplot, no screen)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("pictures need matplotlib: pip install 'descend[viz]'") from None
    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, path: str | os.PathLike) -> Path:
    """Write `figure` at `path`, trimmed to what is drawn, making its folder if needed; returns the path.

    A PNG, or the format the path's suffix names (".svg", ".pdf", any that
    matplotlib writes; another suffix is a DescendValueError). Written
    atomically by descend.files' rules: a file is replaced whole, a link
    followed, /dev/null written through, anything else refused.
    """
    checked = writable_target("path", path).given  # what is at the path first: a FIFO is refused as one
    image_format = checked.suffix[1:].lower() or "png"
    formats = figure.canvas.get_supported_filetypes()
    if image_format not in formats:
        raise DescendValueError(f"path {str(checked)!r} names a .{image_format} file; a figure is written as "
                                f"{', '.join('.' + name for name in sorted(formats))}")
    return write_atomically(checked, lambda stream: figure.savefig(stream, format=image_format, bbox_inches="tight"))


def grid_shape(count: int) -> tuple[int, int]:
    """(rows, columns) of the near-square grid that holds `count` panels, filled row by row.

    >>> grid_shape(10), grid_shape(16), grid_shape(3)
    ((3, 4), (4, 4), (2, 2))
    """
    columns = int(np.ceil(np.sqrt(count)))
    return int(np.ceil(count / columns)), columns


def draw_image_grid(figure: Figure, images: np.ndarray, title: str, labels: list[str] | None = None) -> None:
    """Draw images (k, H, W) on `figure` in a near-square grid, each gray and scaled to its own range.

    `title` goes above the grid; `labels`, k of them, above each image.
    """
    rows, columns = grid_shape(len(images))
    figure.suptitle(title)
    for index, image in enumerate(images):
        axes = figure.add_subplot(rows, columns, index + 1)
        axes.imshow(image, cmap="gray", interpolation="nearest")
        axes.set_xticks([])
        axes.set_yticks([])
        if labels:
            axes.set_title(labels[index], fontsize=7)


def as_images(values: Any) -> np.ndarray:
    """Images (N, H, W) from rows of square images (N, H*W), or from any array (N, ..., H, W) such as (N, 1, H, W).

    >>> as_images(np.zeros((5, 784))).shape, as_images(np.zeros((5, 1, 28, 28))).shape
    ((5, 28, 28), (5, 28, 28))
    """
    array = np.asarray(array_of(values), dtype=np.float64)
    if array.ndim == 2:
        side = int(round(np.sqrt(array.shape[1])))
        if side * side != array.shape[1]:
            raise ShapeError(f"rows of {array.shape[1]} values are not square images")
        return array.reshape(-1, side, side)
    return array.reshape(len(array), *array.shape[-2:])

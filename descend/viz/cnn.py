"""Figures of convolutional networks: a Conv2d layer's learned filters, and one image's feature maps."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from descend.errors import DescendTypeError, DescendValueError, ShapeError
from descend.nn.conv import Conv2d
from descend.nn.module import Module
from descend.tensor import Tensor, array_of, no_grad
from descend.viz.figures import draw_image_grid, grid_shape, new_figure, save_figure


def plot_filters(layer: Module, path: str | os.PathLike = "filters.png") -> Path:
    """Save the learned filters of a Conv2d layer as a grid of images, one per output channel.

    Each filter (in_channels, kh, kw) is shown averaged over its input
    channels, gray scaled to its own range. Returns the PNG's path.
    """
    if not isinstance(layer, Conv2d):
        raise DescendTypeError(f"plot_filters needs a Conv2d layer (e.g. model.layers[0]); got {type(layer).__name__}")
    weights = layer.weight.data.mean(axis=1)
    rows, columns = grid_shape(len(weights))
    figure = new_figure(8, 8 * rows / columns + 0.6)
    kh, kw = layer.kernel_size
    title = (f"{len(weights)} learned {kh}x{kw} filters of Conv2d({layer.in_channels} -> {layer.out_channels}); "
             "light = positive")
    draw_image_grid(figure, weights, title, [f"filter {i}" for i in range(len(weights))])
    return save_figure(figure, path)


def feature_maps(model: Module, image: Any) -> list[tuple[str, np.ndarray]]:
    """The activations of one image after each Conv2d of a Sequential model.

    Each convolution's output is taken after the layers that follow it
    without changing its shape (batch norm, the activation function).
    image: (C, H, W) or (1, C, H, W). Returns [(what was applied, maps of shape (channels, h, w)), ...].
    """
    layers = getattr(model, "layers", None)
    if layers is None:
        raise DescendTypeError(f"feature_maps needs a model with .layers (a Sequential); got {type(model).__name__}")
    x = np.asarray(array_of(image), dtype=model.flat_buffer().dtype)
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
    """Save one image and its activations after each convolution (up to `limit` channels a row) as one PNG.

    image: (C, H, W) or (1, C, H, W), shown averaged over its channels; the rows are feature_maps(model, image).
    """
    maps = [(name, activations[:limit]) for name, activations in feature_maps(model, image)]
    picture = array_of(image)
    picture = picture.reshape(-1, *picture.shape[-2:]).mean(axis=0)
    columns = max(len(activations) for _, activations in maps)
    figure = new_figure(1.2 * columns + 1, 1.5 * (len(maps) + 1) + 0.5)
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
    return save_figure(figure, path)

"""Pictures: the figures descend draws for training runs and models, as PNG files.

Each plot function draws one figure on matplotlib's Agg canvas (no screen, the user's backend left alone),
saves it as a PNG and returns its path. The crash course's own figures live beside it, in
examples/course_figures.py, drawn with the helpers of descend.viz.figures.
"""

from descend.viz.autoencoders import plot_codes, plot_reconstructions, plot_score_histogram
from descend.viz.capsules import plot_capsule_perturbations
from descend.viz.cnn import feature_maps, plot_feature_maps, plot_filters
from descend.viz.figures import as_images, draw_image_grid, grid_shape, new_figure, save_figure
from descend.viz.training import plot_curves, plot_history, plot_lr_find, plot_speedup

__all__ = [
    "as_images", "draw_image_grid", "feature_maps", "grid_shape", "new_figure", "plot_capsule_perturbations",
    "plot_codes", "plot_curves", "plot_feature_maps", "plot_filters", "plot_history", "plot_lr_find",
    "plot_reconstructions", "plot_score_histogram", "plot_speedup", "save_figure",
]

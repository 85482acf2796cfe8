"""Pictures: every public figure, descend.viz's and the crash course's (examples/course_figures.py), is a PNG
with the panels, titles, axis labels and legends it promises; bad arguments are refused.

The `drawn` fixture keeps each matplotlib Figure as it is saved, so the plot functions stay what users
call: functions that write a PNG and return its path.
"""

import numpy as np
import pytest
from helpers import course_figures

import descend as dc
from descend import nn, viz
from descend.errors import DescendError
from descend.hogwild.compare import Run

PNG = b"\x89PNG\r\n\x1a\n"
course = course_figures()


@pytest.fixture
def drawn(monkeypatch):
    """Every Figure saved during the test, in order; each is still written to its file."""
    from matplotlib.figure import Figure

    figures = []
    save = Figure.savefig

    def keep(figure, *args, **kwargs):
        figures.append(figure)
        return save(figure, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    return figures


def saved(drawn, path):
    """The one figure the call saved, once `path` is checked to hold a PNG."""
    assert path.read_bytes()[:8] == PNG
    (figure,) = drawn
    return figure


def panels(figure):
    """(title, x label, y label) of each of a figure's axes, colour bars included, in the order they were added."""
    return [(axes.get_title(), axes.get_xlabel(), axes.get_ylabel()) for axes in figure.axes]


def legend(axes):
    return [text.get_text() for text in axes.get_legend().get_texts()]


def moons_history(epochs=3, validation=True):
    """The History of a small classifier trained on two moons, with validation records if asked."""
    moons = dc.data.make_moons(n=64, noise=0.1, seed=0)
    model = nn.MLP([2, 8, 2], rng=0)
    return dc.fit(model, nn.CrossEntropyLoss(), dc.optim.SGD(model.parameters(), lr=0.1), moons, epochs=epochs,
                  batch_size=16, validation=moons if validation else None, progress=False)


# -- descend.viz: training runs ------------------------------------------------------------
def test_curves_draw_one_line_per_named_series_on_one_panel(tmp_path, drawn):
    path = viz.plot_curves({"a": [3, 2, 1], "b": ([1, 2], [1.0, 0.5])}, tmp_path / "c.png", "t", "x", "y", log_y=True)
    figure = saved(drawn, path)
    assert panels(figure) == [("t", "x", "y")]
    (axes,) = figure.axes
    assert legend(axes) == ["a", "b"] and axes.get_yscale() == "log"
    assert [list(line.get_xdata()) for line in axes.get_lines()] == [[1, 2, 3], [1, 2]]


def test_history_has_a_panel_each_for_loss_accuracy_and_learning_rate(tmp_path, drawn):
    history = moons_history()
    figure = saved(drawn, viz.plot_history(history, tmp_path / "h.png", "Moons"))
    assert figure.get_suptitle() == "Moons"
    assert panels(figure) == [("Loss", "epoch", "loss"),
                              ("Accuracy (fraction right)", "epoch", "accuracy (fraction right)"),
                              ("Learning rate", "epoch", "learning rate")]
    assert [legend(axes) for axes in figure.axes] == [["training", "validation"]] * 2 + [["at epoch end"]]
    loss, accuracy, _ = figure.axes
    np.testing.assert_allclose(loss.get_lines()[1].get_ydata(), history["val_loss"])
    np.testing.assert_allclose(accuracy.get_lines()[0].get_xdata(), [1, 2, 3])


def test_history_without_validation_draws_training_curves_only(tmp_path, drawn):
    figure = saved(drawn, viz.plot_history(moons_history(validation=False), tmp_path / "h.png"))
    assert figure.get_suptitle() == "Training"
    assert [legend(axes) for axes in figure.axes] == [["training"]] * 2 + [["at epoch end"]]


def test_lr_find_marks_both_readings_and_the_suggestion(tmp_path, drawn):
    rates = np.geomspace(1e-4, 1.0, 20)
    losses = np.concatenate([np.full(10, 2.0), np.linspace(2.0, 0.5, 8), [3.0, 9.0]])
    found = dc.LearningRateRange(rates, losses, losses, steepest=1e-2, tenth_of_lowest=3e-3)
    figure = saved(drawn, viz.plot_lr_find(found, tmp_path / "lr.png", "Range"))
    assert panels(figure) == [("Range", "learning rate (log scale)", "training loss")]
    (axes,) = figure.axes
    assert axes.get_xscale() == "log"
    assert legend(axes) == ["loss of each minibatch", "smoothed", "steepest fall: 1.00e-02",
                            "a tenth of the lowest loss's rate: 3.00e-03", "suggestion: 3.00e-03"]


def test_speedup_draws_a_line_per_lock_mode_beside_the_linear_one(tmp_path, drawn):
    runs = [Run(workers, lock, 1e6 * workers, speedup, 0.5, 0.9, 1.0)
            for lock, speedups in (("none", [1.0, 1.8, 3.1]), ("mutex", [0.9, 1.1, 1.2]))
            for workers, speedup in zip((1, 2, 4), speedups)]
    figure = saved(drawn, viz.plot_speedup(runs, tmp_path / "s.png"))
    assert panels(figure) == [("HOGWILD! speed-up over serial SGD", "workers", "updates per second / serial SGD's")]
    (axes,) = figure.axes
    assert legend(axes) == ["linear", "lock=none", "lock=mutex"]
    assert list(axes.get_xticks()) == [1, 2, 3, 4]
    assert list(axes.get_lines()[1].get_ydata()) == [1.0, 1.8, 3.1]


# -- descend.viz: convolutional networks ---------------------------------------------------
def test_filters_are_a_grid_with_one_panel_per_output_channel(tmp_path, drawn):
    model = nn.SimpleCNN(channels=(5, 6), hidden=8, rng=0)
    figure = saved(drawn, viz.plot_filters(model.layers[0], tmp_path / "f.png"))
    assert figure.get_suptitle() == "5 learned 3x3 filters of Conv2d(1 -> 5); light = positive"
    assert panels(figure) == [(f"filter {i}", "", "") for i in range(5)]
    assert [axes.get_subplotspec().get_geometry()[:2] for axes in figure.axes] == [(2, 3)] * 5


def test_feature_maps_are_a_row_per_convolution_below_the_image(tmp_path, drawn):
    model = nn.SimpleCNN(channels=(4, 6), hidden=8, rng=0)
    image = np.random.default_rng(0).random((1, 28, 28), dtype=np.float32)
    figure = saved(drawn, viz.plot_feature_maps(model, image, tmp_path / "m.png", limit=5))
    assert figure.get_suptitle().startswith("Feature maps of one image")
    rows = [[(f"ch {i}", "", f"conv {row}" if i == 0 else "") for i in range(channels)]
            for row, channels in ((1, 4), (2, 5))]
    assert panels(figure) == [("input image", "", ""), *rows[0], *rows[1]]
    maps = viz.feature_maps(model, image)
    assert [m.shape for _, m in maps] == [(4, 28, 28), (6, 14, 14)]
    assert maps[0][0].endswith("ReLU")
    np.testing.assert_array_equal(figure.axes[-1].get_images()[0].get_array(), maps[1][1][4])


def test_feature_maps_show_each_conv_after_batch_norm_and_activation():
    model = nn.SimpleCNN(channels=(3,), hidden=4, batch_norm=True, rng=0)
    (name, maps), = viz.feature_maps(model, np.zeros((1, 1, 28, 28), np.float32))
    assert "BatchNorm2d" in name and "ReLU" in name and maps.shape == (3, 28, 28)


# -- descend.viz: autoencoders and capsules ------------------------------------------------
def test_score_histogram_overlays_both_kinds_of_rows_and_marks_the_threshold(tmp_path, drawn):
    path = viz.plot_score_histogram([0.1, 0.2, 0.2, 0.3, 0.1], [0.8, 0.9, 1.2], tmp_path / "s.png", threshold=0.5)
    figure = saved(drawn, path)
    assert panels(figure) == [("Anomaly scores", "reconstruction error (mean squared, per row)", "density")]
    assert legend(figure.axes[0]) == ["normal (5)", "anomalous (3)", "threshold 0.5"]


def test_reconstructions_put_each_input_above_its_reconstruction(tmp_path, drawn):
    rows, images = np.random.default_rng(0).random((3, 16)), np.zeros((3, 1, 4, 4))
    figure = saved(drawn, viz.plot_reconstructions(rows, images, tmp_path / "r.png", labels=["a", "b", "c"]))
    assert figure.get_suptitle() == "Inputs (top) and reconstructions (bottom)"
    on_grid = sorted(figure.axes, key=lambda axes: axes.get_subplotspec().num1)
    assert [axes.get_subplotspec().get_geometry()[:2] for axes in on_grid] == [(2, 3)] * 6
    assert [axes.get_title() for axes in on_grid] == ["a", "b", "c", "", "", ""]
    np.testing.assert_array_equal(on_grid[1].get_images()[0].get_array(), rows[1].reshape(4, 4))
    np.testing.assert_array_equal(on_grid[4].get_images()[0].get_array(), np.zeros((4, 4)))


def test_codes_are_a_scatter_coloured_by_label(tmp_path, drawn):
    codes, labels = np.random.default_rng(0).standard_normal((50, 2)), np.arange(50) % 10
    figure = saved(drawn, viz.plot_codes(codes, labels, tmp_path / "c.png"))
    assert panels(figure) == [("The 2-D code of each input", "code unit 1", "code unit 2"), ("", "", "label")]
    np.testing.assert_array_equal(figure.axes[0].collections[0].get_offsets(), codes)


def test_capsule_perturbations_are_a_row_per_dimension_and_a_column_per_step(tmp_path, drawn):
    steps = [-0.25, 0.0, 0.25]
    figure = saved(drawn, viz.plot_capsule_perturbations(np.zeros((2, 3, 16)), steps, tmp_path / "p.png", predicted=7))
    assert figure.get_suptitle() == "Each dimension of the digit capsule of a 7 nudged from -0.25 to 0.25, then decoded"
    assert panels(figure) == [("-0.25", "", "dim 0"), ("+0.00", "", ""), ("+0.25", "", ""),
                              ("", "", "dim 1"), ("", "", ""), ("", "", "")]


# -- the crash course's figures (examples/course_figures.py) -------------------------------
def test_line_fit_shows_the_line_beside_the_loss_by_step(tmp_path, drawn):
    x = np.linspace(0, 1, 20)
    figure = saved(drawn, course.plot_line_fit(x, 2 * x + 1, 2.0, 1.0, [1.0, 0.1, 0.01], tmp_path / "l.png"))
    assert panels(figure) == [("y = mx + c fitted by gradient descent", "x", "y"),
                              ("Mean squared error after each step", "gradient-descent step",
                               "mean squared error (log scale)")]
    fit, curve = figure.axes
    assert legend(fit) == ["data", "fit: y = 2.000x + 1.000"] and curve.get_yscale() == "log"


def test_descent_paths_are_drawn_on_the_contours_beside_their_losses(tmp_path, drawn):
    paths = {"fast": [[1.0, 1.0], [0.1, 0.1], [0.0, 0.0]], "slow": [[1.0, 1.0], [0.8, 0.9]]}
    figure = saved(drawn, course.plot_descent_paths(lambda w1, w2: w1 ** 2 + 4 * w2 ** 2 + 0.1, paths,
                                                    tmp_path / "d.png", minimum=[0.0, 0.0]))
    assert panels(figure) == [("Paths of the optimizers on the loss surface", "w1", "w2"), ("", "", "loss"),
                              ("Loss against steps", "step", "loss (log scale)")]
    contours, _, curve = figure.axes
    assert legend(contours) == ["minimum", "fast", "slow"] and legend(curve) == ["fast", "slow"]
    np.testing.assert_allclose(curve.get_lines()[0].get_ydata(), [5.1, 0.15, 0.1])
    # the legend sits below the contours, where it can hide neither a path nor the starred minimum
    renderer = figure.canvas.get_renderer()
    key, plot = contours.get_legend().get_window_extent(renderer), contours.get_window_extent(renderer)
    assert key.y1 < plot.y0 and not key.contains(*contours.transData.transform([0.0, 0.0]))


def test_decision_boundaries_are_a_panel_per_classifier_with_its_accuracy(tmp_path, drawn):
    x, y = np.array([[-1.0, 0.0], [-2.0, 1.0], [1.0, 0.0], [2.0, 1.0]]), np.array([0, 0, 1, 1])
    classifiers = {"sign of x1": lambda p: (p[:, 0] > 0).astype(int), "always 1": lambda p: np.ones(len(p), int)}
    figure = saved(drawn, course.plot_decision_boundaries(classifiers, x, y, tmp_path / "b.png", "Two ways"))
    assert figure.get_suptitle() == "Two ways"
    assert panels(figure) == [("sign of x1: training accuracy 100.0%", "x1", "x2"),
                              ("always 1: training accuracy 50.0%", "x1", "x2")]


def test_first_layer_draws_each_units_weights_as_an_image(tmp_path, drawn):
    weight = nn.Linear(64, 10, rng=0).weight
    figure = saved(drawn, course.plot_first_layer(weight, (8, 8), tmp_path / "w.png", limit=6, title="Units"))
    assert figure.get_suptitle() == "Units (weights into 6 units; light = positive)"
    assert panels(figure) == [("", "", "")] * 6
    np.testing.assert_allclose(figure.axes[2].get_images()[0].get_array(), weight.data[:, 2].reshape(8, 8))


def test_weight_histograms_are_a_panel_per_array_with_its_share_near_zero(tmp_path, drawn):
    weights = {"half zero": np.array([0.0, 0.0, 1.0, -1.0]), "none zero": np.array([[1.0, 2.0], [-1.0, -2.0]])}
    figure = saved(drawn, course.plot_weight_histograms(weights, tmp_path / "h.png"))
    assert figure.get_suptitle() == "Weights of the first layer"
    assert panels(figure) == [("half zero (50% within 0.001 of 0)", "weight value", "count"),
                              ("none zero (0% within 0.001 of 0)", "weight value", "count")]
    assert [axes.get_yscale() for axes in figure.axes] == ["log", "log"]


def test_learning_curves_are_a_panel_per_history_on_a_shared_scale(tmp_path, drawn):
    histories = {"plain": moons_history(epochs=2), "longer": moons_history(epochs=3)}
    figure = saved(drawn, course.plot_learning_curves(histories, tmp_path / "l.png", title="Curves"))
    assert figure.get_suptitle() == "Curves"
    assert panels(figure) == [("plain", "epoch", "loss"), ("longer", "epoch", "loss")]
    assert [legend(axes) for axes in figure.axes] == [["training loss", "validation loss"]] * 2
    assert figure.axes[0].get_ylim() == figure.axes[1].get_ylim()


def test_grouped_bars_put_a_bar_per_group_at_each_name(tmp_path, drawn):
    groups = {"normal": [1.0, 2.0, 3.0], "anomalous": [10.0, 20.0, 30.0]}
    figure = saved(drawn, course.plot_grouped_bars(groups, ["a", "b", "c"], tmp_path / "g.png", "Errors", "error"))
    assert panels(figure) == [("Errors", "", "error")]
    (axes,) = figure.axes
    assert [label.get_text() for label in axes.get_xticklabels()] == ["a", "b", "c"]
    assert legend(axes) == ["normal", "anomalous"] and axes.get_yscale() == "log"
    assert [bar.get_height() for bar in axes.patches] == [1.0, 2.0, 3.0, 10.0, 20.0, 30.0]


# -- bad arguments -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: viz.plot_filters(nn.Linear(2, 2)), ["Conv2d", "Linear"]),
        (lambda: viz.feature_maps(nn.SimpleCNN(rng=0), np.zeros((2, 1, 28, 28))), ["one image", "(2, 1, 28, 28)"]),
        (lambda: viz.feature_maps(nn.Sequential(nn.ReLU()), np.zeros((1, 2, 2))), ["no Conv2d"]),
        (lambda: viz.feature_maps(nn.Linear(2, 2), np.zeros((1, 2, 2))), ["Sequential"]),
        (lambda: viz.plot_curves({}, "c.png", "t", "x", "y"), ["at least one"]),
        (lambda: viz.plot_history(dc.History(), "h.png"), ["at least one epoch"]),
        (lambda: viz.plot_speedup([], "s.png"), ["at least one run"]),
        (lambda: viz.plot_score_histogram([0.1], [], "s.png"), ["both normal and anomalous"]),
        (lambda: viz.plot_reconstructions(np.zeros((2, 15)), np.zeros((2, 15)), "r.png"), ["15 values", "square"]),
        (lambda: viz.plot_codes(np.zeros((4, 3)), np.zeros(4), "c.png"), ["(N, 2)", "(4, 3)"]),
        (lambda: viz.plot_capsule_perturbations(np.zeros((2, 4, 16)), [0.0] * 3, "p.png"), ["3 steps", "(2, 4, 16)"]),
        (lambda: course.plot_descent_paths(lambda a, b: a, {}, "d.png"), ["at least one named path"]),
        (lambda: course.plot_decision_boundaries({}, np.zeros((4, 3)), np.zeros(4), "b.png"), ["(N, 2)", "(4, 3)"]),
        (lambda: course.plot_first_layer(np.zeros((63, 4)), (8, 8), "w.png"), ["(64, units)", "(63, 4)"]),
        (lambda: course.plot_weight_histograms({}, "h.png"), ["at least one named weight array"]),
        (lambda: course.plot_learning_curves({}, "l.png"), ["at least one named History"]),
        (lambda: course.plot_learning_curves({"run": moons_history(1, validation=False)}, "l.png"),
         ["'run'", "val_loss", "validation="]),
    ],
)
def test_bad_arguments_are_refused(call, words, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DescendError) as raised:
        call()
    for word in words:
        assert word in str(raised.value)
    assert not list(tmp_path.iterdir()), "a refused call writes nothing"

"""Each crash-course section runs start to finish in its quick mode, prints the figures it teaches with, and
draws its pictures.

The numbers asserted are the quick mode's (DESCEND_QUICK=1: small slices, an epoch or a few), so they say
that a section still computes what it did, not how well a full run does. Where a section makes a claim
that holds in the quick mode too (the fitted line is the least-squares one, backpropagation agrees with
finite differences, lock-free workers reach the locked ones' loss), the claim is asserted; the rest are
held to the values of a reference run, with room for another machine's BLAS and thread count. Timings
and speed-ups are never asserted.
"""

import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from helpers import EXAMPLES, skip_outside_ci
from pytest import approx

SECTIONS = sorted(EXAMPLES.glob("[0-9][0-9]_*.py"))


def numbers(pattern, output):
    """The groups of the first line matching `pattern`, as floats (thousands separators dropped)."""
    found = re.search(pattern, output, re.MULTILINE)
    assert found, f"no line matches {pattern!r}; the section printed:\n{output}"
    return [float(group.replace(",", "")) for group in found.groups()]


def rows(pattern, output):
    """{first group: the other groups as floats} for every line matching `pattern`."""
    return {found[0].strip(): [float(group.replace(",", "")) for group in found[1:]]
            for found in re.findall(pattern, output, re.MULTILINE)}


def check_linear_regression(output):
    assert numbers(r"^after 60 steps: m = (\S+), c = (\S+), loss (\S+)$", output) == approx([1.941, 0.979, 0.094],
                                                                                             abs=0.005)
    fit_m, fit_c, exact_m, exact_c = numbers(r"^fit: m = (\S+), c = (\S+); least squares: m = (\S+), c = (\S+)$",
                                             output)
    assert [exact_m, exact_c] == approx([1.962, 0.976], abs=0.001)
    assert [fit_m, fit_c] == approx([exact_m, exact_c], abs=0.002)  # dc.fit reaches the least-squares line


def check_logistic_regression(output):
    assert numbers(r"^(\d+) training and (\d+) test digits of (\d+) pixels, (\d+) classes$", output) == [
        1348, 449, 64, 10]
    (accuracy,) = numbers(r"^test accuracy (\S+) after 5 epochs$", output)
    assert accuracy == approx(0.9465, abs=0.02)
    confusion = np.array([[int(count) for count in counts.split()]
                          for _, counts in re.findall(r"^\s+(\d)((?:\s+\d+){10})$", output, re.MULTILINE)])
    assert confusion.shape == (10, 10) and confusion.sum() == 449
    assert np.trace(confusion) / 449 == approx(accuracy, abs=6e-5)  # the table counts the same predictions


def check_optimizers(output):
    ends = rows(r"^(.+?)\s+ends at w = \((\S+), (\S+)\), loss (\S+)$", output)
    minimum = numbers(r"^the minimum \(least squares\)\s+at w = \((\S+), (\S+)\), loss (\S+)$", output)
    assert minimum == approx([1.509, -0.515, 0.0103], abs=0.001)
    assert ends == {
        "gradient descent (lr 0.3)": approx([1.086, -0.019, 0.0300], abs=0.01),
        "SGD, batch 8 (lr 0.3)": approx([1.096, -0.008, 0.0305], abs=0.01),
        "SGD + momentum 0.9 (lr 0.1)": approx([1.544, -0.554, 0.0104], abs=0.01),
        "SGD + 1/t decay (lr 0.3, decay 0.01)": approx([0.920, 0.228, 0.0540], abs=0.01),
    }
    assert all(loss >= minimum[2] - 1e-4 for _, _, loss in ends.values())  # nothing goes below the minimum
    assert ends["SGD + momentum 0.9 (lr 0.1)"][2] < 1.05 * minimum[2]  # momentum rolls along the valley floor


def check_why_deep(output):
    (linear,) = numbers(r"^logistic regression\s+training accuracy (\S+)$", output)
    (deep,) = numbers(r"^MLP 2-32-32-2, ReLU\s+training accuracy (\S+)$", output)
    assert [linear, deep] == approx([0.868, 0.978], abs=0.02)
    assert deep > linear + 0.05  # a line cannot separate the moons, a ReLU network can


def check_backpropagation(output):
    assert re.search(r"^\s+v5\s+=\s+v3 − v4\s+=\s+11\.652$", output, re.MULTILINE)  # the trace's last row
    for line in ("∂f/∂x1 = 5.500", "∂f/∂x2 = 1.716", "f = 11.652"):
        assert re.search(f"^{re.escape(line)}$", output, re.MULTILINE)
    checked, weights, difference, largest = numbers(
        r"^(\d+) of (\d+) weights checked: largest difference (\S+) \(gradients up to (\S+)\)$", output)
    assert (checked, weights) == (40, 610) and difference < 1e-8 and largest == approx(0.065, abs=0.005)
    assert "softsign: [-0.75  -0.667 -0.5    0.     0.5    0.667  0.75 ]" in output  # an op of the learner's own
    assert re.search(r"^gradcheck: True$", output, re.MULTILINE)


def check_hidden_layers(output):
    assert numbers(r"^test accuracy (\S+)$", output) == approx([0.861], abs=0.03)


def check_learning_rate(output):
    steps, start, _, steepest, tenth, suggestion = numbers(
        r"^LearningRateRange\((\d+) steps from (\S+) to (\S+); steepest fall at (\S+), a tenth of the lowest loss's "
        r"rate (\S+): suggested learning rate (\S+)\)$", output)
    assert steps <= 60 and start == 1e-6 and suggestion == min(steepest, tenth)
    assert abs(math.log(suggestion / 6.51e-2)) < math.log(2)
    accuracy = rows(r"^lr (\S+): test accuracy (\S+)$", output)
    rates = [float(rate) for rate in accuracy]
    assert rates == approx([suggestion / 10, suggestion, suggestion * 10], rel=0.01)
    below, suggested, above = (values[0] for values in accuracy.values())
    assert suggested == approx(0.9599, abs=0.03) and suggested > max(below, above)
    searches = rows(r"^(.+?): best test accuracy (\S+) after (\d+) epochs in (\d+) trials$", output)
    random_search, pruned_search = searches["random search"], searches["TPE + ASHA pruning"]
    assert random_search[1:] == [30, 10] and pruned_search[2] == 10  # the same 10 trials of at most 3 epochs
    assert pruned_search[1] < 0.7 * random_search[1]  # pruning stopped some trials after their first epoch
    assert min(random_search[0], pruned_search[0]) > 0.88 and pruned_search[0] == approx(random_search[0], abs=0.03)


def check_regularization(output):
    runs = rows(r"^(.+?)\s+training loss (\S+), validation loss (\S+), validation accuracy (\S+)$", output)
    assert runs == {
        "no penalty": approx([0.0117, 0.2234, 0.9399], abs=0.02),
        "L2 (weight decay 1e-3)": approx([0.0199, 0.2238, 0.9376], abs=0.02),
        "L1 (1e-4)": approx([0.0248, 0.2301, 0.9376], abs=0.02),
        "dropout 0.5": approx([0.1787, 0.3123, 0.9154], abs=0.03),
    }
    training = {name: values[0] for name, values in runs.items()}
    assert min(training, key=training.get) == "no penalty" and max(training, key=training.get) == "dropout 0.5"


def check_cnn(output):
    assert "(layers.3): Conv2d(32 -> 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))" in output
    assert numbers(r"^([\d,]+) parameters; a dense layer", output) == [421_642]
    assert numbers(r"^test accuracy: (\S+)$", output) == approx([0.4492], abs=0.05)


def check_rnn(output):
    assert numbers(r"^Text\('shakespeare', ([\d,]+) characters, vocab_size (\d+)", output) == [5_057_279, 84]
    (entropy,) = numbers(r"^validation cross-entropy: (\S+) nats per character$", output)
    assert entropy == approx(4.403, abs=0.02) and entropy < math.log(84)  # better than a uniform guess
    assert re.search(r"^ROMEO:", output, re.MULTILINE)
    errors = rows(r"^(RNN|GRU|LSTM)\s+held-out mean squared error by epoch: \[(\S+)\]$", output)
    assert errors == {"RNN": approx([0.1904], rel=0.05), "GRU": approx([0.5667], rel=0.05),
                      "LSTM": approx([0.8761], rel=0.05)}


def check_autoencoders(output):
    assert numbers(r"^training reconstruction error by epoch: \[(\S+)\]$", output) == approx([0.1286], abs=0.005)
    (auc,) = numbers(r"^ROC AUC of the reconstruction error for the unseen digit 9: (\S+)$", output)
    assert auc == approx(0.457, abs=0.03)
    assert numbers(r"^threshold (\S+); test images flagged", output) == approx([0.1525], abs=0.005)
    flagged = rows(r"^\s+(digits 0-8|digit 9)\s+(\d+)\s+(\d+)$", output)
    assert sum(flagged["digits 0-8"]) == 906 and sum(flagged["digit 9"]) == 94
    assert flagged["digits 0-8"][1] == approx(7, abs=5)  # contamination 0.01 flags about 1% of the normal digits
    wide, narrow = numbers(r"^ROC AUC for the unseen 9s: code of 64 numbers (\S+), code of 16 numbers (\S+)$", output)
    assert wide == auc and narrow == approx(0.432, abs=0.03)
    columns = rows(r"^(\w+)\s+(-?\d+\.\d{3})\s+(\d+\.\d{3})$", output)
    assert list(columns) == ["amount", "hour", "distance_from_home_km", "merchant_risk", "items", "account_age_days",
                             "amount_per_item"]
    assert columns["amount"] == approx([69.523, 83.489]) and columns["account_age_days"] == approx([1032.08, 719.162])
    (held_out_auc,) = numbers(r"^ROC AUC on the held-out rows: (\S+)$", output)
    assert held_out_auc == approx(0.988, abs=0.02)
    caught, planted, false_alarms, normal = numbers(
        r"^flagged (\d+) of (\d+) planted anomalies and (\d+) of (\d+) normal rows$", output)
    assert (planted, normal) == (29, 1171) and caught == approx(27, abs=2) and false_alarms == approx(30, abs=10)
    (share, anomalies) = numbers(r"^the largest error is on the planted column for (\d+)% of (\d+) anomalies$", output)
    assert anomalies == 29 and share >= 85
    per_column = rows(r"^  (\w+)\s+(\d+) of (\d+)$", output)
    assert sum(total for _, total in per_column.values()) == 29
    assert numbers(r"^reconstruction error through two numbers: (\S+)$", output) == approx([0.0732], abs=0.005)
    table = rows(r"^(\w*Autoencoder)\s+([\d,]+)\s+\S+\s+(\S+)$", output)
    assert table == {"Autoencoder": approx([435_536, 0.1249], abs=0.01),
                     "DenoisingAutoencoder": approx([435_536, 0.1220], abs=0.01),
                     "SparseAutoencoder": approx([435_536, 0.1259], abs=0.01),
                     "VariationalAutoencoder": approx([451_984, 0.1835], abs=0.01),
                     "ConvAutoencoder": approx([9_569, 0.1682], abs=0.01)}


def hogwild_table(text):
    """{(workers, lock): (speed-up, final loss, quality)} of one table of descend.hogwild.compare.format_table."""
    table = re.findall(r"^\s+(\d+)\s+(none|mutex)\s+[\d,]+\s+(\S+)x\s+(\S+)\s+(\S+)$", text, re.MULTILINE)
    return {(int(workers), lock): (float(speedup), float(loss), float(quality))
            for workers, lock, speedup, loss, quality in table}


def check_hogwild(output):
    cores = os.cpu_count() or 1
    assert numbers(r"^([\d,]+) training rows, ([\d,]+) features, (\d+) per row$", output) == [20_000, 100_000, 20]
    workers, accuracy = numbers(r"^(\d+) lock-free workers: test accuracy (\S+)$", output)
    assert workers == cores and accuracy == approx(0.56, abs=0.05)
    assert numbers(r"^  epoch 2: loss (\S+),", output) == approx([0.605], abs=0.01)
    sparse, ratings = (hogwild_table(part) for part in output.split("test RMSE", 1))
    expected = {(count, lock) for count in {1, 2, cores} for lock in ("none", "mutex")}
    assert set(sparse) == expected and set(ratings) == expected
    assert sparse[1, "none"][0] == 1.0 and ratings[1, "none"][0] == 1.0  # speed-up is against this run
    assert [loss for _, loss, _ in sparse.values()] == approx([0.6057] * len(expected), abs=0.002)  # clashes do no harm
    assert sparse[1, "none"][2] == sparse[1, "mutex"][2] == approx(0.5715, abs=0.01)  # one worker is serial SGD
    assert [loss for _, loss, _ in ratings.values()] == approx([0.9399] * len(expected), abs=0.002)
    assert [rmse for _, _, rmse in ratings.values()] == approx([0.994] * len(expected), abs=0.002)
    (local,) = numbers(r"^local\s+test accuracy (\S+)$", output)
    (lock_free,) = numbers(r"^hogwild\s+test accuracy (\S+)$", output)
    # the workers race by design, each stepping at the full learning rate: their curve is noisy for a few epochs
    # (0.87 to 0.95 at the fifth on two loaded cores) and lands from 0.964 to 0.971 at the tenth
    assert local == approx(0.9644, abs=0.02) and lock_free == approx(local, abs=0.04)


def check_spark(output):
    assert numbers(r"^Spark \S+: ([\d,]+) training rows in (\d+) partitions$", output) == [1348, 2]
    (local,) = numbers(r"^local loop\s+test accuracy (\S+)$", output)
    (averaged,) = numbers(r"^Spark local\[2\], averaging every 10 steps\s+test accuracy (\S+)$", output)
    assert local == approx(0.922, abs=0.02) and averaged == approx(local, abs=0.03)
    assert numbers(r"^weights and momentum sent to the driver per epoch: (\S+) MB$", output) == approx([0.3], abs=0.05)
    predictions = re.findall(r"^\|\s+(\d)\|\s+(\d)\.0\|\[", output, re.MULTILINE)
    assert len(predictions) == 5 and sum(label == guess for label, guess in predictions) >= 4


def check_capsules(output):
    squashed = rows(r"^\|s\| =\s+(\S+)  ->  \|squash\(s\)\| = (\S+)$", output)
    assert {float(s): length for s, (length,) in squashed.items()} == {
        s: approx(s * s / (1 + s * s), abs=6e-5) for s in (0.1, 0.5, 1.0, 2.0, 10.0)}
    lengths = [[float(value) for value in found.split()] for found in
               re.findall(r"^\d iteration\(s\): output capsule lengths \[(.+)\]$", output, re.MULTILINE)]
    assert lengths == [approx([0.448, 0.321], abs=0.002), approx([0.477, 0.303], abs=0.002),
                       approx([0.51, 0.28], abs=0.002)]
    agreeing, scattered = zip(*lengths)
    assert list(agreeing) == sorted(agreeing) and list(scattered) == sorted(scattered, reverse=True)
    assert numbers(r"^([\d,]+) parameters \(the paper's CapsNet: ([\d,]+)\)$", output) == [1_638_480, 8_215_568]
    assert numbers(r"^test accuracy: (\S+)$", output) == approx([0.1367], abs=0.05)


#: per section: what its output must say, and the pictures it draws
SECTION_CHECKS = {
    "01_linear_regression": (check_linear_regression, ["line_fit.png"]),
    "02_logistic_regression": (check_logistic_regression, ["logistic_loss.png", "logistic_templates.png"]),
    "03_optimizers": (check_optimizers, ["optimizer_paths.png"]),
    "04_why_deep": (check_why_deep, ["moons_boundaries.png"]),
    "05_backpropagation": (check_backpropagation, ["gradient_check.png"]),
    "06_hidden_layers": (check_hidden_layers, ["hidden_units.png", "hidden_units_before.png"]),
    "07_learning_rate": (check_learning_rate, ["lr_comparison.png", "lr_find.png", "search_comparison.png"]),
    "08_regularization": (check_regularization, ["regularization_curves.png", "regularization_weights.png"]),
    "09_cnn": (check_cnn, ["09_cnn_feature_maps.png", "09_cnn_filters.png"]),
    "10_rnn": (check_rnn, ["10_rnn_adding.png", "10_rnn_char_loss.png"]),
    "11_autoencoders": (check_autoencoders, ["11_autoencoders_codes.png", "11_autoencoders_mnist_scores.png",
                                             "11_autoencoders_mnist_worst.png",
                                             "11_autoencoders_transaction_errors.png"]),
    "12_hogwild": (check_hogwild, ["hogwild_dense.png", "hogwild_factorization.png", "hogwild_speedup.png"]),
    "13_spark": (check_spark, ["spark_training.png"]),
    "14_capsules": (check_capsules, ["14_capsule_perturbations.png", "14_capsule_reconstructions.png"]),
}


def quick_environment(out):
    return {**os.environ, "DESCEND_QUICK": "1", "DESCEND_OUT": str(out), "MPLBACKEND": "Agg"}


@pytest.mark.parametrize("script", SECTIONS, ids=[script.stem for script in SECTIONS])
def test_example_runs_quickly_prints_its_figures_and_draws(script, tmp_path):
    result = subprocess.run([sys.executable, str(script)], env=quick_environment(tmp_path), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    check, pictures = SECTION_CHECKS[script.stem]
    check(result.stdout)
    assert sorted(path.name for path in tmp_path.glob("*.png")) == pictures
    assert all(path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for path in tmp_path.glob("*.png"))


def test_the_course_has_every_section_and_each_opens_as_a_notebook():
    try:
        import jupytext
    except ImportError:
        skip_outside_ci("jupytext is not installed (make test installs it)")
    assert [int(script.name[:2]) for script in SECTIONS] == list(range(1, 15))
    assert sorted(SECTION_CHECKS) == [script.stem for script in SECTIONS]
    for script in SECTIONS:
        notebook = jupytext.read(script)
        kinds = [cell.cell_type for cell in notebook.cells]
        assert kinds[0] == "markdown" and notebook.cells[0].source.startswith(f"# {int(script.name[:2])}. "), script
        assert "code" in kinds and kinds.count("markdown") >= 2, script


def test_a_section_run_as_a_notebook_finds_the_course_figures(tmp_path):
    """A notebook's kernel starts in the notebook's folder with '' first on its path, not the script's folder."""
    try:
        import jupytext
    except ImportError:
        skip_outside_ci("jupytext is not installed (make test installs it)")
    notebook = jupytext.read(EXAMPLES / "01_linear_regression.py")
    code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    result = subprocess.run([sys.executable, "-c", code], cwd=EXAMPLES, env=quick_environment(tmp_path),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "line_fit.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

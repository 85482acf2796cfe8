"""No public function writes into an array it was given: the caller's data means after a call what it meant before.

One table of every public entry point that takes data (tensors, the training engines, the data helpers, the
anomaly scores, ONNX export, the scikit-learn front, HOGWILD!'s estimators), each row a call on fresh inputs.
The one test runs every row twice: on read-only inputs (`flags.writeable = False`, for sparse matrices on
their data, indices and row pointers), where a write raises at once, and on writable ones, where a write
that a read-only flag would have turned into a copy shows up as changed bits. Either way every input must
be bit-identical to a copy taken before. The sparse inputs include a CSR matrix with duplicate and unsorted
column indices, the shape that HOGWILD!'s SGDClassifier used to rewrite in place (issue 17).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np
import pytest
from helpers import imported

import descend as dc
from descend import anomaly, hogwild, nn, optim
from descend.data import Dataset, as_dataset, batches, make_blobs

scipy_sparse = imported("scipy.sparse")


# -- the inputs: small, fresh for every call ----------------------------------------------------------------
def features(n: int = 48, width: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, width)).astype(np.float32)


def labels(n: int = 48, classes: int = 3) -> np.ndarray:
    return np.arange(n, dtype=np.int64) % classes


def targets(n: int = 48) -> np.ndarray:
    return np.random.default_rng(1).normal(size=(n, 1)).astype(np.float32)


def messy_csr() -> Any:
    """A CSR matrix whose rows repeat a column and list columns out of order (not in canonical format)."""
    rng = np.random.default_rng(2)
    rows, per_row, width = 40, 5, 12
    indices = rng.integers(0, width, size=(rows, per_row)).astype(np.int32)
    indices[:, -1] = indices[:, 0]  # every row holds its first column twice, and most rows are unsorted
    data = rng.uniform(0.5, 1.5, size=rows * per_row).astype(np.float32)
    matrix = scipy_sparse.csr_matrix((data, indices.ravel(), np.arange(0, rows * per_row + 1, per_row,
                                                                            dtype=np.int32)), shape=(rows, width))
    assert not matrix.has_canonical_format
    return matrix


def tidy_csr() -> Any:
    x, _ = dc.data.make_sparse_classification(n_rows=40, n_features=12, nnz_per_row=4, seed=3)
    return x


def binary_labels(n: int = 40) -> np.ndarray:
    return np.arange(n, dtype=np.int64) % 2


def model() -> nn.Module:
    return nn.MLP([4, 6, 3], rng=0)


def autoencoder() -> nn.Module:
    return nn.Autoencoder([4, 2], output="linear", rng=0)


def fitted_sgd(x: Any, y: np.ndarray) -> hogwild.SGDClassifier:
    return hogwild.SGDClassifier(epochs=1).fit(x.copy() if hasattr(x, "copy") else x, y.copy())


def fitted_factorization() -> hogwild.MatrixFactorization:
    return hogwild.MatrixFactorization(rank=2, epochs=1).fit(np.array([0, 1, 2]), np.array([0, 1, 0]),
                                                            np.array([1.0, 2.0, 3.0]))


def classifier(**settings: Any) -> Any:
    from descend.sklearn import NeuralNetClassifier

    return NeuralNetClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0, **settings)


def regressor(**settings: Any) -> Any:
    from descend.sklearn import NeuralNetRegressor

    return NeuralNetRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0, **settings)


def outlier_detector() -> Any:
    from descend.sklearn import AutoencoderOutlierDetector

    return AutoencoderOutlierDetector(hidden_layer_sizes=(3,), max_iter=2, random_state=0)


# -- the table ------------------------------------------------------------------------------------------------
class Entry(NamedTuple):
    """A public entry point: `inputs()` makes fresh data (a tuple), `call(*inputs, tmp)` hands it over."""

    name: str
    inputs: Callable[[], tuple]
    call: Callable[..., Any]


def entry(name: str, inputs: Callable[[], tuple], call: Callable[..., Any]) -> Entry:
    return Entry(name, inputs, call)


def xy() -> tuple:
    return features(), labels()


def xy_and_validation() -> tuple:
    return features(), labels(), features(seed=5), labels()


def step_on(net: Any, state: dict | None = None, optimizer_state: dict | None = None) -> None:
    """One SGD step with momentum on a parameter or a model, after loading the given states."""
    parameters = [net] if isinstance(net, nn.Parameter) else list(net.parameters())
    if state is not None:
        net.load_state_dict(state)
    optimizer = optim.SGD(parameters, lr=0.1, momentum=0.9)
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)
    for p in parameters:
        p.grad[...] = 1.0
    optimizer.step()


def momentum_state() -> dict:
    net = model()
    optimizer = optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    for p in net.parameters():
        p.grad[...] = 1.0
    optimizer.step()
    return optimizer.state_dict()


def fit_local(x, y, xv, yv, tmp):
    net = model()
    dc.fit(net, nn.CrossEntropyLoss(), optim.SGD(net.parameters(), lr=0.1), (x, y), epochs=1, batch_size=16,
           validation=(xv, yv), progress=False)


def fit_hogwild(x, y, xv, yv, tmp):
    net = model()
    dc.fit(net, nn.CrossEntropyLoss(), optim.SGD(net.parameters(), lr=0.1), (x, y), epochs=1, batch_size=16,
           validation=(xv, yv), engine="hogwild", workers=1, progress=False)


def fit_dataset(x, y, tmp, **options):
    net = model()
    dc.fit(net, nn.CrossEntropyLoss(), optim.Adam(net.parameters()), Dataset(x, y), epochs=1, batch_size=16,
           progress=False, **options)


def fit_regression(x, y, tmp):
    net = nn.MLP([4, 3, 1], rng=0)
    dc.fit(net, nn.MSELoss(), optim.SGD(net.parameters(), lr=0.01, momentum=0.9), (x, y), epochs=1, batch_size=16,
           progress=False)


def lr_find(x, y, tmp):
    net = model()
    data = x if y is None else (x, y)
    dc.lr_find(net, nn.CrossEntropyLoss(), optim.SGD(net.parameters(), lr=0.1), data, steps=8, batch_size=16)


def detector(x) -> anomaly.AnomalyDetector:
    return anomaly.AnomalyDetector(autoencoder(), contamination=0.1).fit(x.copy())


def with_sgd(method: str) -> Callable[..., Any]:
    def call(x, y, tmp):
        clf = fitted_sgd(x, y)
        return getattr(clf, method)(x, y) if method == "score" else getattr(clf, method)(x)
    return call


SPARSE_KINDS = {
    "messy_csr": messy_csr,
    "tidy_csr": tidy_csr,
    "csc": lambda: messy_csr().tocsc(),
    "coo_with_duplicates": lambda: messy_csr().tocoo(),
    "dense": lambda: tidy_csr().toarray(),
}

ENTRY_POINTS = [
    # tensors
    entry("tensor", lambda: (features(),), lambda x, tmp: dc.tensor(x)),
    entry("tensor_backward", lambda: (features(),),
          lambda x, tmp: (dc.tensor(x, requires_grad=True) ** 2).sum().backward()),
    entry("tensor_in_an_op", lambda: (features(), features(seed=1)), lambda x, w, tmp: dc.tensor(x) + w),
    entry("parameter_then_a_step", lambda: (features(),), lambda w, tmp: step_on(nn.Parameter(w))),
    entry("load_state_dict_then_a_step", lambda: (model().state_dict(),), lambda state, tmp: step_on(model(), state)),
    entry("optimizer_load_state_dict_then_a_step", lambda: (momentum_state(),),
          lambda state, tmp: step_on(model(), optimizer_state=state)),
    # training and its helpers
    entry("fit_local", xy_and_validation, fit_local),
    entry("fit_hogwild_one_worker", xy_and_validation, fit_hogwild),
    entry("fit_a_dataset", xy, fit_dataset),
    entry("fit_float64_without_shuffling", lambda: (features().astype(np.float64), labels()),
          lambda x, y, tmp: fit_dataset(x, y, tmp, shuffle=False)),
    entry("fit_regression", lambda: (features(), targets()), fit_regression),
    entry("evaluate", xy, lambda x, y, tmp: dc.evaluate(model(), nn.CrossEntropyLoss(), (x, y))),
    entry("evaluate_a_dataset", xy, lambda x, y, tmp: dc.evaluate(model(), nn.CrossEntropyLoss(), Dataset(x, y))),
    entry("predict", lambda: (features(),), lambda x, tmp: dc.predict(model(), x)),
    entry("lr_find", xy, lr_find),
    entry("lr_find_a_dataset", xy, lambda x, y, tmp: lr_find(Dataset(x, y), None, tmp)),
    # data helpers
    entry("dataset", xy, lambda x, y, tmp: Dataset(x, y)),
    entry("dataset_rows", lambda: (features(), labels(), np.array([3, 1, 2])),
          lambda x, y, rows, tmp: Dataset(x, y)[rows]),
    entry("dataset_split_and_subset", xy, lambda x, y, tmp: (Dataset(x, y).split(0.5), Dataset(x, y).subset(5))),
    entry("as_dataset", xy, lambda x, y, tmp: as_dataset((x, y), "train")),
    entry("as_dataset_of_float_targets", lambda: (features(), targets()),
          lambda x, y, tmp: as_dataset((x, y), "train")),
    entry("batches", xy, lambda x, y, tmp: [Dataset(x, y)[rows] for rows in batches(len(x), 16, rng=0)]),
    entry("make_blobs_centers", lambda: (np.array([[0.0, 0.0], [3.0, 3.0]]),),
          lambda centers, tmp: make_blobs(n=10, centers=centers)),
    # anomaly scores
    entry("reconstruction_error", lambda: (features(),), lambda x, tmp: anomaly.reconstruction_error(autoencoder(), x)),
    entry("feature_errors", lambda: (features(),), lambda x, tmp: anomaly.feature_errors(autoencoder(), x)),
    entry("threshold_for", lambda: (np.linspace(0.0, 1.0, 20),),
          lambda scores, tmp: anomaly.threshold_for(scores, 0.1)),
    entry("anomaly_detector_fit", lambda: (features(),),
          lambda x, tmp: anomaly.AnomalyDetector(autoencoder(), contamination=0.1).fit(x)),
    *[entry(f"anomaly_detector_{method}", lambda: (features(),),
            lambda x, tmp, method=method: getattr(detector(x), method)(x))
      for method in ("score_samples", "decision_function", "predict", "explain")],
    # the scikit-learn front
    entry("sklearn_classifier_fit", xy, lambda x, y, tmp: classifier().fit(x, y)),
    entry("sklearn_classifier_fit_early_stopping", xy,
          lambda x, y, tmp: classifier(early_stopping=True, validation_fraction=0.25).fit(x, y)),
    entry("sklearn_classifier_fit_float64_string_labels", lambda: (features().astype(np.float64),
                                                                   np.array(["a", "b", "c"])[labels()]),
          lambda x, y, tmp: classifier().fit(x, y)),
    entry("sklearn_classifier_partial_fit", lambda: (features(), labels(), np.array([0, 1, 2])),
          lambda x, y, classes, tmp: classifier().partial_fit(x, y, classes=classes)),
    *[entry(f"sklearn_classifier_{method}", xy,
            lambda x, y, tmp, method=method: (lambda clf: clf.score(x, y) if method == "score" else
                                              getattr(clf, method)(x))(classifier().fit(x.copy(), y.copy())))
      for method in ("predict", "predict_proba", "predict_log_proba", "score")],
    entry("sklearn_regressor_fit", lambda: (features(), targets()[:, 0]), lambda x, y, tmp: regressor().fit(x, y)),
    entry("sklearn_regressor_fit_early_stopping", lambda: (features(), targets()[:, 0]),
          lambda x, y, tmp: regressor(early_stopping=True, validation_fraction=0.25).fit(x, y)),
    entry("sklearn_regressor_partial_fit", lambda: (features(), targets()[:, 0]),
          lambda x, y, tmp: regressor().partial_fit(x, y)),
    *[entry(f"sklearn_regressor_{method}", lambda: (features(), targets()[:, 0]),
            lambda x, y, tmp, method=method: (lambda reg: reg.score(x, y) if method == "score" else
                                              getattr(reg, method)(x))(regressor().fit(x.copy(), y.copy())))
      for method in ("predict", "score")],
    entry("sklearn_outliers_fit", lambda: (features(),), lambda x, tmp: outlier_detector().fit(x)),
    entry("sklearn_outliers_partial_fit", lambda: (features(),), lambda x, tmp: outlier_detector().partial_fit(x)),
    entry("sklearn_outliers_fit_predict", lambda: (features(),), lambda x, tmp: outlier_detector().fit_predict(x)),
    *[entry(f"sklearn_outliers_{method}", lambda: (features(),),
            lambda x, tmp, method=method: getattr(outlier_detector().fit(x.copy()), method)(x))
      for method in ("score_samples", "decision_function", "predict")],
    # ONNX export's example input
    entry("onnx_export", lambda: (features(),), lambda x, tmp: dc.onnx.export(model(), tmp / "model.onnx", x)),
    # HOGWILD!'s estimators, on every kind of sparse input and on dense arrays
    *[entry(f"sgd_classifier_fit_{kind}", lambda make=make: (make(), binary_labels()),
            lambda x, y, tmp: hogwild.SGDClassifier(epochs=1).fit(x, y))
      for kind, make in SPARSE_KINDS.items()],
    *[entry(f"sgd_classifier_{method}_{kind}", lambda make=make: (make(), binary_labels()), with_sgd(method))
      for kind, make in SPARSE_KINDS.items()
      for method in ("predict", "predict_proba", "decision_function", "score")],
    entry("sgd_classifier_fit_string_labels", lambda: (messy_csr(), np.where(binary_labels() == 1, "spam", "ham")),
          lambda x, y, tmp: hogwild.SGDClassifier(epochs=1).fit(x, y)),
    entry("as_csr", lambda: (messy_csr(),), lambda x, tmp: hogwild.as_csr(x)),
    entry("matrix_factorization_fit", lambda: (np.array([0, 1, 2, 1]), np.array([0, 1, 0, 0]),
                                              np.array([1.0, 2.0, 3.0, 4.0])),
          lambda rows, cols, values, tmp: hogwild.MatrixFactorization(rank=2, epochs=1).fit(rows, cols, values)),
    entry("matrix_factorization_fit_float32_int32",
          lambda: (np.array([0, 1, 2], np.int32), np.array([0, 1, 0], np.int32), np.array([1.0, 2.0, 3.0], np.float32)),
          lambda rows, cols, values, tmp: hogwild.MatrixFactorization(rank=2, epochs=1).fit(rows, cols, values)),
    entry("matrix_factorization_fit_with_shape_two_workers",
          lambda: (np.array([0, 1, 2, 1]), np.array([0, 1, 0, 0]), np.array([1.0, 2.0, 3.0, 4.0])),
          lambda rows, cols, values, tmp: hogwild.MatrixFactorization(rank=2, epochs=1, workers=2).fit(
              rows, cols, values, shape=(4, 3))),
    entry("sgd_classifier_fit_two_workers_mutex", lambda: (messy_csr(), binary_labels()),
          lambda x, y, tmp: hogwild.SGDClassifier(epochs=1, workers=2, lock="mutex", alpha=1e-3).fit(x, y)),
    entry("matrix_factorization_predict", lambda: (np.array([0, 2]), np.array([1, 0])),
          lambda rows, cols, tmp: fitted_factorization().predict(rows, cols)),
    entry("matrix_factorization_rmse", lambda: (np.array([0, 2]), np.array([1, 0]), np.array([1.0, 3.0], np.float32)),
          lambda rows, cols, values, tmp: fitted_factorization().rmse(rows, cols, values)),
]


# -- walking and freezing what was handed over ----------------------------------------------------------------
SPARSE_PARTS = {"csr": ("data", "indices", "indptr"), "csc": ("data", "indices", "indptr"),
                "bsr": ("data", "indices", "indptr"), "coo": ("data", "row", "col")}


def arrays_in(value: Any, where: str) -> Iterator[tuple[str, np.ndarray]]:
    """Every array the caller handed over, with where it sits (`x.indices`, `inputs[1]`)."""
    if isinstance(value, np.ndarray):
        yield where, value
    elif scipy_sparse.issparse(value):
        for part in SPARSE_PARTS[value.format]:
            yield f"{where}.{part}", getattr(value, part)
    elif isinstance(value, (tuple, list)):
        for k, item in enumerate(value):
            yield from arrays_in(item, f"{where}[{k}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from arrays_in(item, f"{where}[{key!r}]")


def freeze(inputs: tuple) -> None:
    for _, array in arrays_in(inputs, "inputs"):
        array.flags.writeable = False


def test_every_entry_point_has_a_unique_name():
    names = [row.name for row in ENTRY_POINTS]
    assert len(names) == len(set(names)), sorted(name for name in names if names.count(name) > 1)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("read_only", [True, False], ids=["read_only", "writable"])
@pytest.mark.parametrize("row", ENTRY_POINTS, ids=[row.name for row in ENTRY_POINTS])
def test_an_entry_point_leaves_the_callers_arrays_bit_identical(row: Entry, read_only: bool, tmp_path):
    if row.name == "onnx_export":
        imported("onnx")
    inputs = row.inputs()
    before = [(where, array.copy()) for where, array in arrays_in(inputs, "inputs")]
    assert before, f"{row.name} hands over no array"
    shapes = [getattr(value, "shape", None) for value in inputs]
    if read_only:
        freeze(inputs)
    row.call(*inputs, tmp_path)
    after = list(arrays_in(inputs, "inputs"))
    assert [where for where, _ in after] == [where for where, _ in before]
    assert [getattr(value, "shape", None) for value in inputs] == shapes
    for (where, copy), (_, array) in zip(before, after):
        assert array.dtype == copy.dtype and array.shape == copy.shape, f"{where} became {array.dtype} {array.shape}"
        assert array.tobytes() == copy.tobytes(), f"{row.name} wrote into {where}"


def test_sgd_classifier_learns_the_same_from_the_same_matrix_twice():
    """The symptom of the bug: a second fit on the same X learned nothing once the first had rewritten it."""
    x, y = messy_csr(), binary_labels()
    first = hogwild.SGDClassifier(epochs=2).fit(x, y)
    second = hogwild.SGDClassifier(epochs=2).fit(x, y)
    np.testing.assert_array_equal(first.coef_, second.coef_)
    canonical = x.copy()
    canonical.sum_duplicates()
    np.testing.assert_array_equal(hogwild.SGDClassifier(epochs=2).fit(canonical, y).coef_, first.coef_)

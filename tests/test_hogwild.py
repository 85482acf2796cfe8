"""HOGWILD!: the lock-free estimators against a plain serial SGD, real parallelism, locks, the dense engine, bad input."""

import math

import numpy as np
import pytest

import descend as dc
from descend import hogwild, nn, optim
from descend.errors import (
    DescendError, DescendTypeError, DescendValueError, NonFiniteError, ShapeError, SizeLimitError,
)
from descend import memory
from descend.hogwild import factorization, kernels, linear, workers

scipy_sparse = pytest.importorskip("scipy.sparse")


@pytest.fixture(scope="module")
def small():
    X, y = dc.data.make_sparse_classification(n_rows=600, n_features=300, nnz_per_row=6, seed=1)
    return X, y


def serial_sgd(X, y, loss, lr, decay, alpha, l1, epochs, seed, intercept_scale=0.01):
    """The same SGD written plainly, one row at a time in Python: the reference HOGWILD! must equal with one worker."""
    n, features = X.shape
    weights = np.zeros(features, dtype=np.float32)
    intercept = 0.0
    scale = (n / np.maximum(np.bincount(X.indices, minlength=features), 1)).astype(np.float32)
    labels = np.where(y == 1, 1.0, -1.0)
    for epoch in range(epochs):
        for position, row in enumerate(np.random.default_rng([seed, epoch]).permutation(n)):
            step_lr = lr / (1 + decay * (epoch * n + position) / n)
            columns = X.indices[X.indptr[row] : X.indptr[row + 1]]
            values = X.data[X.indptr[row] : X.indptr[row + 1]].astype(np.float64)
            score = intercept + float(np.dot(weights[columns].astype(np.float64), values))
            label = labels[row]
            if loss == "log":
                slope = -label / (1 + math.exp(label * score))
            elif loss == "hinge":
                slope = -label if label * score < 1 else 0.0
            else:
                slope = score - label
            for column, value in zip(columns, values):
                weight = float(weights[column])
                weight -= step_lr * (slope * value + alpha * scale[column] * weight)
                if l1:
                    shrink = step_lr * l1 * scale[column]
                    weight = max(weight - shrink, 0.0) if weight > 0 else min(weight + shrink, 0.0)
                weights[column] = weight
            intercept -= intercept_scale * step_lr * slope
    return weights, intercept


@pytest.mark.parametrize("loss, alpha, l1", [("log", 0.0, 0.0), ("log", 1e-3, 1e-2), ("hinge", 1e-3, 0.0),
                                             ("squared", 0.0, 1e-2)])
def test_one_lock_free_worker_equals_plain_serial_sgd(small, loss, alpha, l1):
    X, y = small
    clf = hogwild.SGDClassifier(loss=loss, lr=0.3, decay=0.5, alpha=alpha, l1=l1, epochs=2, workers=1).fit(X, y)
    weights, intercept = serial_sgd(X, y, loss, 0.3, 0.5, alpha, l1, epochs=2, seed=0)
    np.testing.assert_allclose(clf.coef_, weights, rtol=1e-5, atol=1e-6)
    assert clf.intercept_ == pytest.approx(intercept, rel=1e-5, abs=1e-6)
    if l1:
        assert (clf.coef_ == 0).sum() > 0  # truncation lands weights on zero: the model is sparse


def full_log_loss(clf, X, y):
    margin = np.where(y == clf.classes_[1], 1.0, -1.0) * clf.decision_function(X)
    return float(np.mean(np.logaddexp(0.0, -margin)))


@pytest.fixture(scope="module")
def medium():
    return dc.data.make_sparse_classification(n_rows=60_000, n_features=20_000, nnz_per_row=20, seed=0)


@pytest.mark.parametrize("alpha", [0.0, 1e-4])
def test_two_lock_free_workers_reach_the_serial_loss(medium, alpha):
    X, y = medium
    serial = hogwild.SGDClassifier(epochs=3, workers=1, alpha=alpha).fit(X, y)
    parallel = hogwild.SGDClassifier(epochs=3, workers=2, alpha=alpha).fit(X, y)
    assert full_log_loss(parallel, X, y) == pytest.approx(full_log_loss(serial, X, y), rel=0.01)


def test_two_lock_free_workers_really_run_at_once():
    X, y = dc.data.make_sparse_classification(n_rows=400_000, n_features=50_000, nnz_per_row=20, seed=2)
    parallel = hogwild.SGDClassifier(epochs=2, workers=2).fit(X, y)
    for spans in (record["spans"] for record in parallel.history_):
        first, second = spans
        overlap = min(first.stop, second.stop) - max(first.start, second.start)
        # a kernel that held the GIL would make the second thread wait for the first: no overlap at all
        assert overlap > 0.5 * min(first.stop - first.start, second.stop - second.start)


@pytest.mark.parametrize("lock", ["mutex", "round-robin"])
def test_locking_modes_train_the_same_model_and_finish_with_uneven_shares(medium, lock):
    X, y = medium[0][:10_001], medium[1][:10_001]  # 10,001 rows: three workers get shares of unequal size
    free = hogwild.SGDClassifier(epochs=2, workers=3).fit(X, y)
    locked = hogwild.SGDClassifier(epochs=2, workers=3, lock=lock).fit(X, y)
    assert full_log_loss(locked, X, y) == pytest.approx(full_log_loss(free, X, y), rel=0.02)


def test_classifier_api_probabilities_labels_and_scikit_learn_clone(small):
    from sklearn.base import clone

    X, y = small
    labels = np.where(y == 1, "spam", "ham")
    clf = hogwild.SGDClassifier(lr=2.0, epochs=3, workers=2).fit(X, labels)
    assert clf.classes_.tolist() == ["ham", "spam"]
    probabilities = clf.predict_proba(X)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert set(clf.predict(X)) <= {"ham", "spam"}
    assert clf.score(X, labels) > 0.7
    assert clone(clf).get_params() == clf.get_params()


def test_other_sparse_formats_and_dense_arrays_are_converted(small):
    X, y = small
    reference = hogwild.SGDClassifier(epochs=1).fit(X, y).coef_
    for converted in (X.tocoo(), X.tocsc(), X.tolil(), X.toarray()):
        np.testing.assert_array_equal(hogwild.SGDClassifier(epochs=1).fit(converted, y).coef_, reference)


def test_matrix_factorization_recovers_a_low_rank_matrix_lock_free():
    train, test = dc.data.make_low_rank_matrix(n_rows=300, n_cols=200, rank=4, density=0.3, noise=0.05, seed=0)
    model = hogwild.MatrixFactorization(rank=4, epochs=40, workers=2, lr=0.03, l2=0.01).fit(
        train.rows, train.cols, train.values, shape=train.shape)
    assert model.history_[-1]["loss"] < model.history_[0]["loss"]
    baseline = float(np.sqrt(np.mean(test.values.astype(np.float64) ** 2)))  # predicting 0 everywhere
    assert model.rmse(test.rows, test.cols, test.values) < 0.3 * baseline


def _bad_sparse(small):
    X, y = small
    nan = X.copy()
    nan.data[5] = np.nan
    return X, y, nan


BAD_INPUT = [
    (lambda X, y, nan: hogwild.SGDClassifier().fit(X, np.arange(len(y)) % 3), DescendValueError,
     ["exactly two classes", "got 3"]),
    (lambda X, y, nan: hogwild.SGDClassifier().fit(nan, y), DescendValueError, ["NaN", "row"]),
    (lambda X, y, nan: hogwild.SGDClassifier(workers=0).fit(X, y), DescendValueError, ["workers", ">= 1"]),
    (lambda X, y, nan: hogwild.SGDClassifier(workers=10**6).fit(X, y), DescendValueError, ["workers", "at most"]),
    (lambda X, y, nan: hogwild.SGDClassifier(lock="spin").fit(X, y), DescendValueError, ["lock", "'mutex'"]),
    (lambda X, y, nan: hogwild.SGDClassifier(loss="cubic").fit(X, y), DescendValueError, ["loss", "'hinge'"]),
    (lambda X, y, nan: hogwild.SGDClassifier(schedule="cyclic").fit(X, y), DescendValueError, ["'inverse-time'"]),
    (lambda X, y, nan: hogwild.SGDClassifier().fit(X, y[:-1]), ShapeError, ["one label per row"]),
    (lambda X, y, nan: hogwild.SGDClassifier().fit("rows", y), DescendTypeError, ["CSR", "got str"]),
    (lambda X, y, nan: hogwild.SGDClassifier().predict(X), DescendValueError, ["not fitted"]),
    (lambda X, y, nan: hogwild.SGDClassifier(epochs=1).fit(X, y).predict(X[:, :10]), ShapeError,
     ["10 features", "expects 300"]),
    (lambda X, y, nan: hogwild.SGDClassifier(loss="hinge", epochs=1).fit(X, y).predict_proba(X), DescendValueError,
     ["loss='log'"]),
    (lambda X, y, nan: hogwild.MatrixFactorization().fit([0, 1], [0.5, 1], [1.0, 2.0]), DescendTypeError,
     ["cols", "integer"]),
    (lambda X, y, nan: hogwild.MatrixFactorization().fit([0, 1], [0, 1], [1.0, np.nan]), DescendValueError, ["NaN"]),
    (lambda X, y, nan: hogwild.MatrixFactorization(epochs=1).fit([0], [0], [1.0]).predict([3], [0]),
     DescendValueError, ["rows", "outside"]),
    (lambda X, y, nan: dc.data.make_sparse_classification(n_features=5, nnz_per_row=6), DescendValueError,
     ["nnz_per_row", "at most"]),
]


@pytest.mark.parametrize("call, error, words", BAD_INPUT, ids=[f"bad{i}" for i in range(len(BAD_INPUT))])
def test_bad_input_names_what_was_expected(small, call, error, words):
    with pytest.raises(error) as raised:
        call(*_bad_sparse(small))
    for word in words:
        assert word in str(raised.value)


def _digits_model(seed=0):
    model = nn.MLP([64, 64, 10], rng=seed)
    return model, optim.SGD(model.parameters(), lr=0.05, momentum=0.9)


def test_dense_hogwild_trains_to_the_local_engines_accuracy():
    train, test = dc.data.load_digits()
    accuracy = {}
    for engine, options in (("local", {}), ("hogwild", {"workers": 2})):
        model, optimizer = _digits_model()
        history = dc.fit(model, nn.CrossEntropyLoss(), optimizer, train, epochs=12, batch_size=32, validation=test,
                         engine=engine, progress=False, **options)
        accuracy[engine] = dc.evaluate(model, nn.CrossEntropyLoss(), test)["accuracy"]
        assert history["val_accuracy"][-1] == pytest.approx(accuracy[engine])
    assert accuracy["hogwild"] == pytest.approx(accuracy["local"], abs=0.03)
    assert accuracy["hogwild"] > 0.93


def test_dense_hogwild_workers_overlap_and_share_one_buffer():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12_000, 64)).astype(np.float32)
    y = (x[:, :2].sum(axis=1) > 0).astype(np.int64)
    model, optimizer = _digits_model()
    before = model.flat_buffer().data.copy()
    history = dc.fit(model, nn.CrossEntropyLoss(), optimizer, (x, y), epochs=2, batch_size=16, engine="hogwild",
                     workers=2, progress=False)
    first, second = history.worker_spans[-1]
    assert min(first.stop, second.stop) - max(first.start, second.start) > 0
    assert optimizer.iterations == 2 * 12_000 // 16
    assert not np.array_equal(model.flat_buffer().data, before)  # the shared updates came back into the model
    assert history["accuracy"][-1] > 0.9
    assert optimizer.state["momentum_buffer"].any()  # the workers' momentum came back, averaged


def test_dense_hogwild_reports_a_workers_error_and_refuses_what_it_cannot_do():
    train, _ = dc.data.load_digits()
    linear = nn.LogisticRegression(64, 10, rng=0)
    blowing_up = optim.SGD(linear.parameters(), lr=1e38)  # the second step overflows float32
    with pytest.raises(NonFiniteError, match="worker"), np.errstate(all="ignore"):
        dc.fit(linear, nn.CrossEntropyLoss(), blowing_up, train, epochs=1, engine="hogwild", workers=2, progress=False)
    model, optimizer = _digits_model()
    with pytest.raises(DescendValueError, match="shuffles"):
        dc.fit(model, nn.CrossEntropyLoss(), optimizer, train, engine="hogwild", shuffle=False, progress=False)
    with pytest.raises(DescendValueError, match="engine='hogwild'"):
        dc.fit(model, nn.CrossEntropyLoss(), optimizer, train, workers=2, progress=False)
    with pytest.raises(DescendError, match="workers"):
        dc.fit(model, nn.CrossEntropyLoss(), optimizer, train, engine="hogwild", workers=0, progress=False)


def test_dense_hogwild_brings_back_running_statistics():
    train, test = dc.data.load_digits()
    model = nn.Sequential(nn.Linear(64, 32, rng=0), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10, rng=1))
    norm = model.layers[1]
    history = dc.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.05, momentum=0.9), train,
                     epochs=3, batch_size=32, validation=test, engine="hogwild", workers=2, progress=False)
    assert norm.running_mean.any() and not np.allclose(norm.running_var, 1.0)
    # the last validation ran with the statistics the model ends with: the workers', not the initial ones
    assert history["val_accuracy"][-1] == pytest.approx(dc.evaluate(model, nn.CrossEntropyLoss(), test)["accuracy"])
    assert max(history["val_accuracy"]) > 0.9


# -- the compiled kernels never see bad input: everything they read is checked in Python first (issue 17) ------


class KernelReached(Exception):
    """Raised by a stand-in kernel: the input got past the checks."""


#: every compiled entry point of descend.hogwild.kernels, and the module that calls it
KERNEL_CALLERS = {"sparse_linear_pass": linear, "factorization_pass": factorization}


def test_every_compiled_kernel_has_a_caller_whose_checks_are_tested():
    from numba.core.registry import CPUDispatcher

    public = {name for name, value in vars(kernels).items()
              if isinstance(value, CPUDispatcher) and not name.startswith("_") and value.__module__ == kernels.__name__}
    assert public == set(KERNEL_CALLERS)


@pytest.fixture
def unreachable_kernels(monkeypatch):
    """Replace every kernel, where its caller looks it up, by one that raises KernelReached."""
    def reached(*arguments):
        raise KernelReached

    for name, caller in KERNEL_CALLERS.items():
        monkeypatch.setattr(caller, name, reached)


def tiny_csr(n_rows=6, n_features=5):
    """A valid CSR matrix with two values in every row, and labels of two classes."""
    indices = np.array([[k % n_features, (k + 2) % n_features] for k in range(n_rows)], dtype=np.int32).ravel()
    indices = np.sort(indices.reshape(n_rows, 2), axis=1).ravel()
    X = scipy_sparse.csr_matrix((np.ones(2 * n_rows, np.float32), indices, np.arange(0, 2 * n_rows + 1, 2)),
                                shape=(n_rows, n_features))
    return X, np.arange(n_rows) % 2


def tampered(X, **arrays):
    """X with some of its arrays replaced after construction, past scipy's own checks (as a user can)."""
    X = X.copy()
    for name, array in arrays.items():
        setattr(X, name, np.asarray(array))
    return X


def with_value(X, where, value, name="indices"):
    """X with one entry of one of its arrays set to `value`."""
    array = getattr(X, name).copy()
    if name == "data":
        array = array.astype(np.float64)
    array[where] = value
    return tampered(X, **{name: array})


X0, Y0 = tiny_csr()
BAD_CSR = [
    ("column_index_beyond_n_features", with_value(X0, 5, 70), ["column index 70", "row 2", "n_features=5"]),
    ("huge_column_index", tampered(X0, indices=np.where(np.arange(12) == 3, 10**10, X0.indices.astype(np.int64))),
     ["column index 10000000000", "row 1"]),
    ("negative_column_index", with_value(X0, 0, -1), ["column index -1", "row 0"]),
    ("decreasing_indptr", tampered(X0, indptr=[0, 2, 4, 3, 8, 10, 12]), ["indptr decreases", "row 2", "4 to 3"]),
    ("indptr_not_starting_at_zero", tampered(X0, indptr=[1, 2, 4, 6, 8, 10, 12]), ["indptr", "start at 0", "from 1"]),
    ("indptr_ending_beyond_nnz", tampered(X0, indptr=[0, 2, 4, 6, 8, 10, 40]), ["indptr", "to 40", "nnz = 12"]),
    ("indptr_of_the_wrong_length", tampered(X0, indptr=[0, 2, 4, 6, 12]), ["indptr has length 5", "7"]),
    ("float_indices", tampered(X0, indices=X0.indices.astype(np.float64)), ["indices", "integer", "float64"]),
    ("nan_value", with_value(X0, 7, np.nan, "data"), ["NaN", "row 3"]),
    ("infinite_value", with_value(X0, 1, -np.inf, "data"), ["infinite", "row 0"]),
    ("value_beyond_float32", with_value(X0, 4, 1e39, "data"), ["1e+39", "float32", "row 2"]),
    ("csc_row_index_beyond_n_rows", with_value(X0.tocsc(), 0, 9), ["row index 9", "column 0", "n_rows=6"]),
    ("coo_column_index_beyond_n_features", tampered(X0.tocoo(), col=np.where(np.arange(12) == 2, 8, X0.tocoo().col)),
     ["column index 8", "entry 2", "n_features=5"]),
]


@pytest.mark.parametrize("X, words", [(X, words) for _, X, words in BAD_CSR], ids=[name for name, _, _ in BAD_CSR])
def test_sgd_classifier_checks_the_csr_structure_before_its_kernel_runs(unreachable_kernels, X, words):
    with pytest.raises(DescendError) as raised:
        hogwild.SGDClassifier(epochs=1).fit(X, Y0)
    assert isinstance(raised.value, (DescendValueError, DescendTypeError))
    missing = [word for word in words if word not in str(raised.value)]
    assert not missing, f"{missing} not in: {raised.value}"


@pytest.mark.parametrize("fit", [
    lambda: hogwild.SGDClassifier().fit(X0, np.where(Y0 == 1, np.nan, 0.0)),
    lambda: hogwild.SGDClassifier().fit(X0, Y0[:-1]),
    lambda: hogwild.SGDClassifier().fit(X0, np.array([0, "a", 1, 0, 1, 0], dtype=object)),
    lambda: hogwild.SGDClassifier(seed=-1).fit(X0, Y0),
    lambda: hogwild.SGDClassifier(seed=0.5).fit(X0, Y0),
], ids=["nan_labels", "one_label_short", "labels_that_do_not_sort", "negative_seed", "float_seed"])
def test_sgd_classifier_checks_labels_and_seed_before_its_kernel_runs(unreachable_kernels, fit):
    with pytest.raises((DescendValueError, DescendTypeError)):
        fit()


def test_sgd_classifier_refuses_more_features_than_memory_before_allocating(unreachable_kernels, monkeypatch):
    monkeypatch.setattr(memory, "physical_memory", lambda: 10**9)
    wide = scipy_sparse.csr_matrix((2, 10**8), dtype=np.float32)  # 16 bytes a feature: 1.6 GB
    with pytest.raises(SizeLimitError, match="100000000 features"):
        hogwild.SGDClassifier().fit(wide, [0, 1])


def test_sgd_classifier_with_good_input_does_reach_its_kernel(unreachable_kernels):
    """The stand-in is where the estimator looks its kernel up: without this the tests above prove nothing."""
    with pytest.raises(KernelReached):
        hogwild.SGDClassifier(epochs=1).fit(X0, Y0)


def test_predict_checks_the_matrix_and_its_width(small):
    X, y = small
    clf = hogwild.SGDClassifier(epochs=1).fit(X, y)
    with pytest.raises(DescendValueError, match="column index 300 at row 0"):
        clf.predict(with_value(X, 0, 300))
    with pytest.raises(ShapeError, match="301 features, but the model expects 300"):
        clf.predict(scipy_sparse.hstack([X, X[:, :1]]).tocsr())


ENTRIES = ([0, 1, 2, 1], [0, 1, 0, 2], [1.0, 2.0, 3.0, 4.0])
BAD_ENTRIES = [
    ("row_beyond_shape", lambda: hogwild.MatrixFactorization().fit(*ENTRIES, shape=(2, 3)), DescendValueError,
     ["rows holds 2", "entry 2"]),
    ("col_beyond_shape", lambda: hogwild.MatrixFactorization().fit(*ENTRIES, shape=(3, 2)), DescendValueError,
     ["cols holds 2", "entry 3"]),
    ("negative_row", lambda: hogwild.MatrixFactorization().fit([0, -1], [0, 1], [1.0, 2.0]), DescendValueError,
     ["rows", ">= 0", "-1"]),
    ("float_rows", lambda: hogwild.MatrixFactorization().fit([0.0, 1.0], [0, 1], [1.0, 2.0]), DescendTypeError,
     ["rows", "integer", "float64"]),
    ("uint64_rows_beyond_int64",
     lambda: hogwild.MatrixFactorization().fit(np.array([2**63 + 1], np.uint64), [0], [1.0]), DescendValueError,
     ["rows", "2**63"]),
    ("nan_value", lambda: hogwild.MatrixFactorization().fit([0, 1], [0, 1], [1.0, np.nan]), DescendValueError,
     ["values", "NaN", "at 1"]),
    ("value_beyond_float32", lambda: hogwild.MatrixFactorization().fit([0, 1], [0, 1], [1e39, 1.0]),
     DescendValueError, ["values", "float32", "1e+39"]),
    ("string_values", lambda: hogwild.MatrixFactorization().fit([0, 1], [0, 1], ["a", "b"]), DescendTypeError,
     ["values", "numbers"]),
    ("lengths_differ", lambda: hogwild.MatrixFactorization().fit([0, 1], [0], [1.0, 2.0]), ShapeError,
     ["one entry each"]),
    ("shape_of_three", lambda: hogwild.MatrixFactorization().fit(*ENTRIES, shape=(3, 3, 3)), DescendTypeError,
     ["shape", "pair"]),
    ("shape_of_zero", lambda: hogwild.MatrixFactorization().fit(*ENTRIES, shape=(0, 3)), DescendValueError,
     ["shape[0]", ">= 1"]),
    ("huge_index", lambda: hogwild.MatrixFactorization().fit([10**11], [0], [1.0]), SizeLimitError,
     ["rows and cols", "rank=10", "GB"]),
    ("huge_rank", lambda: hogwild.MatrixFactorization(rank=10**12).fit([1], [0], [1.0]), SizeLimitError,
     ["rank=1000000000000", "3,000,000,000,000"]),
    ("huge_shape", lambda: hogwild.MatrixFactorization(rank=10).fit([1], [0], [1.0], shape=(10**6, 10**11)),
     SizeLimitError, ["shape", "100000000000"]),
    ("negative_seed", lambda: hogwild.MatrixFactorization(seed=-3).fit(*ENTRIES), DescendValueError, ["seed", "-3"]),
    ("string_seed", lambda: hogwild.MatrixFactorization(seed="zero").fit(*ENTRIES), DescendTypeError,
     ["seed", "'zero'"]),
]


@pytest.mark.parametrize("call, error, words", [row[1:] for row in BAD_ENTRIES], ids=[row[0] for row in BAD_ENTRIES])
def test_matrix_factorization_checks_its_entries_before_its_kernel_runs(unreachable_kernels, call, error, words):
    with pytest.raises(error) as raised:
        call()
    assert type(raised.value) is error
    missing = [word for word in words if word not in str(raised.value)]
    assert not missing, f"{missing} not in: {raised.value}"


def test_matrix_factorization_with_good_input_does_reach_its_kernel(unreachable_kernels):
    with pytest.raises(KernelReached):
        hogwild.MatrixFactorization().fit(*ENTRIES)


def test_matrix_factorization_predict_and_rmse_check_their_indices():
    model = hogwild.MatrixFactorization(rank=2, epochs=1).fit(*ENTRIES)  # shape (3, 3)
    with pytest.raises(DescendValueError, match="cols holds 3 at entry 1, outside the model's 3 columns"):
        model.predict([0, 1], [0, 3])
    with pytest.raises(ShapeError, match="one entry each"):
        model.predict([0, 1], [0])
    with pytest.raises(ShapeError, match="one entry per"):
        model.rmse([0, 1], [0, 1], [1.0])

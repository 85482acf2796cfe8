"""scikit-learn estimators: estimator checks, pipelines and search, clone and pickle, partial_fit, seeds, bad input."""

import pickle
import re
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

import scipy.sparse  # noqa: E402  (scikit-learn brings it)
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import make_blobs, make_classification, make_multilabel_classification  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import descend as dc  # noqa: E402
from descend import anomaly  # noqa: E402
from descend.sklearn import AutoencoderOutlierDetector, NeuralNetClassifier, NeuralNetRegressor  # noqa: E402

ESTIMATORS = [NeuralNetClassifier(), NeuralNetRegressor(), AutoencoderOutlierDetector()]

# every test here fits briefly on purpose; scikit-learn's convergence warning would only be noise
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@parametrize_with_checks(ESTIMATORS, xfail_strict=True)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def classification_data(n=240, n_features=4, n_classes=3, seed=0):
    X, y = make_classification(n_samples=n, n_features=n_features, n_informative=n_features, n_redundant=0,
                               n_classes=n_classes, n_clusters_per_class=1, class_sep=2.0, random_state=seed)
    return X, y


def regression_data(n=200, n_targets=1, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    Y = np.stack([X @ [1.0, -2.0, 0.5] + 0.3, np.sin(X[:, 0]) + X[:, 1] ** 2 / 4][:n_targets], axis=1)
    return X, Y[:, 0] if n_targets == 1 else Y


def quick_classifier(**settings):
    return NeuralNetClassifier(**{"hidden_layer_sizes": (16,), "batch_size": 16, "learning_rate_init": 0.01,
                                  "max_iter": 30, "random_state": 0, **settings})


def quick_regressor(**settings):
    return NeuralNetRegressor(**{"hidden_layer_sizes": (16,), "batch_size": 16, "learning_rate_init": 0.01,
                                 "max_iter": 40, "random_state": 0, **settings})


# -- what the estimators learn --------------------------------------------------

def test_classifier_learns_string_labels_and_gives_probabilities():
    X, y = classification_data()
    labels = np.array(["cat", "dog", "eel"])[y]
    clf = quick_classifier().fit(X, labels)
    assert clf.classes_.tolist() == ["cat", "dog", "eel"] and clf.n_features_in_ == 4
    assert clf.score(X, labels) > 0.9
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 3) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X))
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), proba)
    assert clf.model_.flat_buffer().dtype == np.float32  # trained in float32
    assert clf.out_activation_ == "softmax" and clf.n_iter_ == len(clf.loss_curve_)


def test_classifier_learns_multilabel_indicators():
    X, Y = make_multilabel_classification(n_samples=200, n_features=6, n_classes=3, random_state=0)
    clf = quick_classifier(max_iter=60).fit(X, Y)
    assert clf.out_activation_ == "logistic" and clf.classes_.tolist() == [0, 1, 2]
    assert clf.predict(X).shape == Y.shape and set(np.unique(clf.predict(X))) <= {0, 1}
    proba = clf.predict_proba(X)
    assert proba.shape == Y.shape and ((proba > 0.5) == clf.predict(X)).all()
    assert (clf.predict(X) == Y).mean() > 0.8


def test_regressor_fits_one_and_several_targets():
    X, y = regression_data()
    one = quick_regressor().fit(X, y)
    assert one.predict(X).shape == (len(X),) and one.score(X, y) > 0.95
    X, Y = regression_data(n_targets=2)
    two = quick_regressor().fit(X, Y)
    assert two.n_outputs_ == 2 and two.predict(X).shape == (len(X), 2) and two.score(X, Y) > 0.8


def test_regressor_trains_with_sgd_momentum_and_dropout():
    X, y = regression_data()
    reg = quick_regressor(solver="sgd", momentum=0.9, nesterovs_momentum=True, dropout=0.1, alpha=1e-3).fit(X, y)
    assert reg.score(X, y) > 0.9
    assert type(reg.optimizer_).__name__ == "SGD" and reg.optimizer_.nesterov


def test_outlier_detector_flags_planted_outliers():
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(300, 2))
    normal = latent @ rng.normal(size=(2, 6)) + 0.05 * rng.normal(size=(300, 6))  # rows near a 2-D plane
    detector = make_pipeline(StandardScaler(), AutoencoderOutlierDetector(code_size=2, batch_size=32, max_iter=60,
                                                                          learning_rate_init=0.01, random_state=0))
    detector.fit(normal)
    planted = rng.normal(scale=3.0, size=(10, 6))  # off the plane
    assert (detector.predict(planted) == -1).mean() >= 0.9
    assert abs((detector.predict(normal) == -1).mean() - 0.1) < 0.01  # contamination of the training rows
    assert detector.score_samples(planted).max() < np.median(detector.score_samples(normal))


def test_outlier_scores_are_descends_reconstruction_errors():
    X, _ = make_blobs(n_samples=100, n_features=4, random_state=0)
    detector = AutoencoderOutlierDetector(max_iter=5, random_state=0, contamination=0.2).fit(X)
    scores = detector.score_samples(X)
    np.testing.assert_allclose(scores, -anomaly.reconstruction_error(detector.model_, X), rtol=1e-4)
    np.testing.assert_allclose(detector.decision_function(X), scores - detector.offset_)
    assert (detector.predict(X) == -1).sum() == 20


@pytest.mark.parametrize("hidden_layer_sizes, sizes", [
    (8, [4, 8, 3]), ((8, 5), [4, 8, 5, 3]), (np.array([6]), [4, 6, 3]), ((), [4, 3]),
])
def test_hidden_layer_sizes_shape_the_network(hidden_layer_sizes, sizes):
    X, y = classification_data(n=60)
    clf = NeuralNetClassifier(hidden_layer_sizes=hidden_layer_sizes, activation="logistic", max_iter=2).fit(X, y)
    assert clf.model_.sizes == sizes and clf.hidden_layer_sizes is hidden_layer_sizes


# -- scikit-learn's machinery ---------------------------------------------------

def test_pipeline_and_grid_search_over_the_classifier():
    X, y = classification_data(n=150)
    pipeline = Pipeline([("scale", StandardScaler()), ("net", quick_classifier(max_iter=15))])
    search = GridSearchCV(pipeline, {"net__hidden_layer_sizes": [(4,), (16,)], "net__alpha": [1e-4, 1e-2]}, cv=3)
    search.fit(X, y)
    assert set(search.best_params_) == {"net__hidden_layer_sizes", "net__alpha"}
    assert search.best_score_ > 0.8 and search.score(X, y) > 0.8
    assert search.best_estimator_.named_steps["net"].n_features_in_ == 4


def test_grid_search_over_the_regressor_and_the_detector():
    X, y = regression_data(n=120)
    search = GridSearchCV(quick_regressor(max_iter=10), {"learning_rate_init": [1e-3, 1e-2]}, cv=2).fit(X, y)
    assert search.best_params_ == {"learning_rate_init": 1e-2}
    blobs, _ = make_blobs(n_samples=90, n_features=3, random_state=0)
    scorer = lambda estimator, X, y=None: float(estimator.score_samples(X).mean())  # noqa: E731
    search = GridSearchCV(AutoencoderOutlierDetector(max_iter=5, random_state=0), {"code_size": [1, 2]}, cv=2,
                          scoring=scorer).fit(blobs)
    assert search.best_params_["code_size"] in (1, 2)


@pytest.mark.parametrize("make, data", [
    (quick_classifier, classification_data),
    (quick_regressor, regression_data),
    (lambda: AutoencoderOutlierDetector(max_iter=5, random_state=0), classification_data),
], ids=["classifier", "regressor", "detector"])
def test_clone_gives_an_unfitted_twin_and_pickle_keeps_predictions_and_training_state(make, data):
    X, y = data()
    estimator = make().fit(X, y)
    twin = clone(estimator)
    assert twin.get_params() == estimator.get_params() and not hasattr(twin, "model_")
    with pytest.raises(NotFittedError):
        twin.predict(X)
    restored = pickle.loads(pickle.dumps(estimator))
    method = "score_samples" if hasattr(estimator, "score_samples") else "predict"
    np.testing.assert_array_equal(getattr(restored, method)(X), getattr(estimator, method)(X))
    assert restored.model_.flat_buffer() is restored.optimizer_.buffer  # parameters are views of one buffer again
    # the optimizer's state (Adam's moments, its step count) came along: training on gives the same weights
    restored.partial_fit(X, y)
    estimator.partial_fit(X, y)
    np.testing.assert_array_equal(restored.model_.flat_buffer().data, estimator.model_.flat_buffer().data)


def test_the_network_saves_as_a_descend_model_file_not_a_pickle(tmp_path):
    X, y = classification_data()
    clf = quick_classifier().fit(X, y)
    path = dc.save(clf.model_, tmp_path / "classifier.dsc", optimizer=clf.optimizer_)
    network = dc.load(path)
    logits = dc.predict(network, X.astype(np.float32))
    np.testing.assert_array_equal(clf.classes_[logits.argmax(axis=1)], clf.predict(X))
    np.testing.assert_allclose(logits, dc.predict(clf.model_, X), rtol=1e-6)


# -- partial_fit, warm_start, stopping ---------------------------------------------

def test_partial_fit_trains_one_epoch_per_call_and_needs_classes_first():
    X, y = classification_data()
    clf = quick_classifier()
    with pytest.raises(ValueError, match=re.escape("partial_fit needs classes= on its first call")):
        clf.partial_fit(X, y)
    clf.partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])  # a batch may lack some classes
    assert clf.n_iter_ == 1 and clf.classes_.tolist() == [0, 1, 2]
    for _ in range(9):
        clf.partial_fit(X, y)
    assert clf.n_iter_ == 10 and clf.loss_curve_[-1] < clf.loss_curve_[1]
    assert clf.score(X, y) > 0.85
    with pytest.raises(ValueError, match=re.escape("labels [7] that are not among classes_")):
        clf.partial_fit(X[:5], [0, 1, 2, 7, 0])
    with pytest.raises(ValueError, match="differs from the classes of the first call"):
        clf.partial_fit(X, y, classes=[0, 1])


def test_partial_fit_from_scratch_matches_fit_for_one_epoch():
    X, y = regression_data()
    by_fit = quick_regressor(max_iter=1).fit(X, y)
    by_partial = quick_regressor().partial_fit(X, y)
    np.testing.assert_array_equal(by_fit.model_.flat_buffer().data, by_partial.model_.flat_buffer().data)


def test_warm_start_continues_and_cold_start_begins_again():
    X, y = regression_data()
    warm = quick_regressor(max_iter=5, warm_start=True).fit(X, y)
    first = warm.loss_curve_[-1]
    warm.fit(X, y)
    assert warm.n_iter_ == 10 and len(warm.loss_curve_) == 10 and warm.loss_curve_[-1] < first
    cold = quick_regressor(max_iter=5).fit(X, y)
    cold.fit(X, y)
    assert cold.n_iter_ == 5
    with pytest.raises(ValueError, match="y has 2 targets per row; the network was fitted with 1"):
        warm.fit(X, np.stack([y, y], axis=1))


def test_tol_stops_training_as_scikit_learns_mlp_and_max_iter_warns():
    from sklearn.neural_network import MLPRegressor

    X, y = regression_data()
    stopped = quick_regressor(max_iter=100, tol=10.0, n_iter_no_change=3).fit(X, y)
    theirs = MLPRegressor(hidden_layer_sizes=(16,), batch_size=16, learning_rate_init=0.01, max_iter=100, tol=10.0,
                          n_iter_no_change=3, random_state=0).fit(X, y)
    # the first epoch sets the best loss; more than three without a gain of 10 end it
    assert stopped.n_iter_ == theirs.n_iter_ == 5
    with pytest.warns(ConvergenceWarning, match="max_iter=2 epochs ran"):
        quick_regressor(max_iter=2).fit(X, y)


def test_early_stopping_holds_out_rows_and_stops_on_their_accuracy():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 5)), rng.integers(0, 2, 200)  # noise labels: the validation accuracy soon stalls
    clf = quick_classifier(hidden_layer_sizes=(64,), max_iter=200, early_stopping=True, n_iter_no_change=3,
                           validation_fraction=0.2).fit(X, y)
    assert clf.n_iter_ < 200 and len(clf.validation_scores_) == clf.n_iter_ and clf.best_loss_ is None
    assert clf.best_validation_score_ == max(clf.validation_scores_)


def test_verbose_prints_each_epoch(capsys):
    X, y = classification_data(n=60)
    quick_classifier(max_iter=3, verbose=True, early_stopping=True).fit(X, y)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 6 and lines[0].startswith("Iteration 1, loss = ") and lines[1].startswith("Validation score: ")


# -- seeds -------------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda seed: quick_classifier(random_state=seed, dropout=0.2),
    lambda seed: quick_regressor(random_state=seed, early_stopping=True),
    lambda seed: AutoencoderOutlierDetector(max_iter=5, random_state=seed),
], ids=["classifier", "regressor", "detector"])
def test_random_state_repeats_runs_exactly(make):
    X, y = classification_data(n=120)

    def weights(seed):
        return make(seed).fit(X, y).model_.flat_buffer().data.copy()

    np.testing.assert_array_equal(weights(3), weights(3))
    assert not np.array_equal(weights(3), weights(4))
    assert not np.array_equal(weights(None), weights(None))
    generator = np.random.RandomState(0)
    assert not np.array_equal(weights(generator), weights(generator))  # a RandomState is drawn from, run by run


# -- bad input ------------------------------------------------------------------------

X4, Y4 = classification_data(n=60)

BAD_INPUT = [
    (NeuralNetClassifier, lambda e: e.predict(X4[:, :3]), ValueError,
     "X has 3 features, but NeuralNetClassifier is expecting 4 features as input"),
    (NeuralNetRegressor, lambda e: e.predict(X4[:, :3]), ValueError,
     "X has 3 features, but NeuralNetRegressor is expecting 4 features as input"),
    (AutoencoderOutlierDetector, lambda e: e.score_samples(X4[:, :3]), ValueError,
     "X has 3 features, but AutoencoderOutlierDetector is expecting 4 features as input"),
    (NeuralNetClassifier, lambda e: e.partial_fit(X4[:, :3], Y4), ValueError, "X has 3 features"),
    (NeuralNetClassifier, lambda e: e.predict(np.where(X4 > 1, np.nan, X4)), ValueError, "Input X contains NaN"),
    (NeuralNetClassifier, lambda e: e.fit(np.where(X4 > 1, np.nan, X4), Y4), ValueError, "Input X contains NaN"),
    (NeuralNetRegressor, lambda e: e.fit(X4, np.where(Y4 > 1, np.inf, Y4)), ValueError, "Input y contains infinity"),
    (NeuralNetClassifier, lambda e: e.fit(X4, X4[:, 0]), ValueError, "Unknown label type: continuous"),
    (NeuralNetClassifier, lambda e: e.fit(X4, Y4[:-1]), ValueError, "inconsistent numbers of samples"),
    (NeuralNetClassifier, lambda e: e.fit(X4, None), ValueError, "requires y to be passed"),
    (NeuralNetClassifier, lambda e: e.fit(X4, np.stack([Y4, Y4], axis=1)), ValueError, "multiclass-multioutput"),
    (NeuralNetClassifier, lambda e: e.fit(X4[:, 0], Y4), ValueError, "Expected 2D array, got 1D array instead"),
    (NeuralNetClassifier, lambda e: e.fit(scipy.sparse.csr_matrix(X4), Y4), TypeError, "dense data is required"),
    (NeuralNetClassifier, lambda e: e.set_params(hidden_layer_sizes=(8, 0)).fit(X4, Y4), ValueError,
     "hidden_layer_sizes[1] must be an integer >= 1; got 0"),
    (NeuralNetClassifier, lambda e: e.set_params(hidden_layer_sizes="8").fit(X4, Y4), TypeError,
     "hidden_layer_sizes must be an integer or a sequence of integers"),
    (NeuralNetClassifier, lambda e: e.set_params(activation="swish", warm_start=False).fit(X4, Y4), ValueError,
     "activation must be one of 'relu'"),
    (NeuralNetRegressor, lambda e: e.set_params(solver="lbfgs").fit(X4, Y4), ValueError,
     "solver must be one of 'adam', 'sgd'; got 'lbfgs'"),
    (NeuralNetRegressor, lambda e: e.set_params(learning_rate_init=0).fit(X4, Y4), ValueError,
     "learning_rate_init must be a finite number > 0; got 0"),
    (NeuralNetRegressor, lambda e: e.set_params(batch_size=0).fit(X4, Y4), ValueError,
     "batch_size must be an integer >= 1; got 0"),
    (NeuralNetRegressor, lambda e: e.set_params(momentum=1.0).fit(X4, Y4), ValueError, "momentum must be"),
    (NeuralNetRegressor, lambda e: e.set_params(dropout=1.5).fit(X4, Y4), ValueError, "dropout must be"),
    (AutoencoderOutlierDetector, lambda e: e.set_params(contamination=0.7).fit(X4), ValueError,
     "contamination must be a finite number in (0, 0.5]; got 0.7"),
    (AutoencoderOutlierDetector, lambda e: e.set_params(code_size=0).fit(X4), ValueError,
     "code_size must be an integer >= 1; got 0"),
]


@pytest.mark.parametrize("cls, call, error, words", BAD_INPUT, ids=[w[:40] for *_, w in BAD_INPUT])
def test_bad_input_gets_a_clear_error(cls, call, error, words):
    estimator = cls(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X4) if cls is AutoencoderOutlierDetector else estimator.fit(X4, Y4)
    with pytest.raises(error, match=re.escape(words)):
        call(estimator)


@pytest.mark.parametrize("cls", [NeuralNetClassifier, NeuralNetRegressor, AutoencoderOutlierDetector])
def test_predicting_before_fit_says_not_fitted(cls):
    with pytest.raises(NotFittedError, match="is not fitted yet"):
        cls().predict(X4)

"""scikit-learn's meaning of its own MLP parameters (issue 19, item 9): from the same weights, descend's estimators
train as MLPClassifier and MLPRegressor do (alpha, learning_rate, power_t, momentum, Adam's beta_1, beta_2 and
epsilon, tol and n_iter_no_change, warm_start, partial_fit), and warn where they warn."""

import re
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.datasets import make_classification, make_multilabel_classification  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402

from descend import nn  # noqa: E402
from descend.errors import DescendTypeError, DescendValueError  # noqa: E402
from descend.sklearn import AutoencoderOutlierDetector, NeuralNetClassifier, NeuralNetRegressor  # noqa: E402

#: 150 rows in batches of 32: the last batch has 22, so alpha's per-batch scaling is seen on a short batch too
BATCH = 32


def classes(n=150):
    X, y = make_classification(n_samples=n, n_features=4, n_informative=4, n_redundant=0, n_classes=3,
                               n_clusters_per_class=1, class_sep=1.0, random_state=0)
    return X.astype(np.float32), y


def targets(n=150):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 3)).astype(np.float32)
    return X, X @ [1.0, -2.0, 0.5] + 0.3 + 0.1 * rng.normal(size=n)


def labels(n=150):
    X, Y = make_multilabel_classification(n_samples=n, n_features=5, n_classes=3, random_state=0)
    return (X / X.max()).astype(np.float32), Y


def linears(estimator):
    return [module for module in estimator.model_.modules() if isinstance(module, nn.Linear)]


def trained_alike(ours_class, theirs_class, data, epochs, **settings):
    """Both estimators fitted one epoch; descend's then given scikit-learn's weights and its stopping rule's state,
    and both fitted `epochs` more with warm_start (each with a fresh solver, as scikit-learn's fit starts one)."""
    X, y = data
    common = dict(hidden_layer_sizes=(6,), batch_size=BATCH, shuffle=False, random_state=0, max_iter=1, **settings)
    ours, theirs = ours_class(**common), theirs_class(**common)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(X, y)
        theirs.fit(X, y)
        for layer, coef, intercept in zip(linears(ours), theirs.coefs_, theirs.intercepts_, strict=True):
            layer.weight.data[...] = coef
            layer.bias.data[...] = intercept
        ours.t_, ours.best_loss_ = theirs.t_, theirs.best_loss_
        ours._no_improvement_count = theirs._no_improvement_count
        for estimator in (ours, theirs):
            estimator.set_params(warm_start=True, max_iter=epochs).fit(X, y)
    return ours, theirs


def assert_same_weights(ours, theirs, rtol=2e-4, atol=2e-6):
    for layer, coef, intercept in zip(linears(ours), theirs.coefs_, theirs.intercepts_, strict=True):
        np.testing.assert_allclose(layer.weight.data, coef, rtol=rtol, atol=atol)
        np.testing.assert_allclose(layer.bias.data, intercept, rtol=rtol, atol=atol)


SOLVERS = {
    "sgd-nesterov-alpha": dict(solver="sgd", learning_rate_init=0.1, momentum=0.9, alpha=0.05),
    "sgd-plain-momentum": dict(solver="sgd", learning_rate_init=0.05, momentum=0.5, nesterovs_momentum=False,
                               alpha=1e-3),
    "sgd-invscaling": dict(solver="sgd", learning_rate="invscaling", learning_rate_init=0.5, power_t=0.25,
                           momentum=0.9, alpha=0.01),
    "adam-betas-alpha": dict(solver="adam", learning_rate_init=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-7,
                             alpha=0.05),
}


@pytest.mark.parametrize("case", SOLVERS)
def test_the_classifier_trains_as_mlpclassifier_from_the_same_weights(case):
    ours, theirs = trained_alike(NeuralNetClassifier, MLPClassifier, classes(), epochs=4, **SOLVERS[case])
    assert_same_weights(ours, theirs)
    # the loss is scikit-learn's: cross-entropy plus alpha·‖W‖²/(2n) per batch, weighed by rows (the first
    # epoch's came from each one's own starting weights)
    np.testing.assert_allclose(ours.loss_curve_[1:], theirs.loss_curve_[1:], rtol=1e-5)
    assert ours.t_ == theirs.t_ == 5 * 150
    if ours.solver == "sgd":  # (scikit-learn's Adam keeps its bias-corrected rate there)
        assert ours.optimizer_.lr == pytest.approx(theirs._optimizer.learning_rate, rel=1e-12)


def test_partial_fit_goes_on_with_the_solver_as_scikit_learns_does():
    ours, theirs = trained_alike(NeuralNetClassifier, MLPClassifier, classes(), epochs=2, **SOLVERS["sgd-invscaling"])
    X, y = classes()
    for _ in range(2):
        ours.partial_fit(X, y)
        theirs.partial_fit(X, y)
    assert_same_weights(ours, theirs)
    assert ours.optimizer_.lr == pytest.approx(theirs._optimizer.learning_rate, rel=1e-12)


def test_the_adaptive_rate_falls_by_five_as_in_scikit_learn():
    """tol=10: no epoch improves enough, so every second epoch past n_iter_no_change=1 divides the rate by 5."""
    ours, theirs = trained_alike(NeuralNetClassifier, MLPClassifier, classes(), epochs=5, solver="sgd",
                                 learning_rate="adaptive", learning_rate_init=0.2, momentum=0.9, tol=10.0,
                                 n_iter_no_change=1)
    assert ours.optimizer_.lr == pytest.approx(theirs._optimizer.learning_rate, rel=1e-12)
    assert ours.optimizer_.lr == pytest.approx(0.2 / 5**2)  # cut after the second and the fourth epoch
    assert_same_weights(ours, theirs)
    assert ours.best_loss_ == pytest.approx(theirs.best_loss_, rel=1e-5)


def test_the_regressor_trains_as_mlpregressor_and_its_loss_is_half_the_squared_error():
    ours, theirs = trained_alike(NeuralNetRegressor, MLPRegressor, targets(), epochs=3, solver="sgd",
                                 learning_rate_init=0.01, momentum=0.9, alpha=0.1)
    assert_same_weights(ours, theirs)
    np.testing.assert_allclose(ours.loss_curve_[1:], theirs.loss_curve_[1:], rtol=1e-5)


def test_multilabel_classification_sums_the_labels_losses_as_mlpclassifier():
    ours, theirs = trained_alike(NeuralNetClassifier, MLPClassifier, labels(), epochs=3, solver="adam",
                                 learning_rate_init=0.05, alpha=0.01)
    assert ours.out_activation_ == theirs.out_activation_ == "logistic"
    assert_same_weights(ours, theirs)
    np.testing.assert_allclose(ours.loss_curve_[1:], theirs.loss_curve_[1:], rtol=1e-5)


def test_alpha_moves_each_weight_by_lr_alpha_w_over_the_batch_rows_and_leaves_the_biases_alone():
    X, y = classes()

    def one_step(alpha, lr=0.1):
        """One full batch of 150 rows, plain SGD: one step from the weights random_state=0 gives."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return linears(NeuralNetClassifier(hidden_layer_sizes=(6,), solver="sgd", momentum=0.0, batch_size=150,
                                               learning_rate_init=lr, alpha=alpha, max_iter=1, random_state=0
                                               ).fit(X, y))

    start = one_step(0.0, lr=1e-30)  # a step of 1e-30 leaves float32 weights where they began
    for before, without, with_alpha in zip(start, one_step(0.0), one_step(10.0), strict=True):
        np.testing.assert_allclose(with_alpha.weight.data - without.weight.data,
                                   -0.1 * 10.0 * before.weight.data / 150, rtol=1e-3, atol=1e-7)
        np.testing.assert_array_equal(with_alpha.bias.data, without.bias.data)


# -- warnings where scikit-learn warns, and nowhere else ---------------------------------------------------------------
WARNS = {
    "max_iter reached while improving": (dict(max_iter=3), True),
    "stopped by tol before max_iter": (dict(max_iter=50, tol=10.0, n_iter_no_change=2), False),
    "stopped by tol at max_iter": (dict(max_iter=4, tol=10.0, n_iter_no_change=2), False),
    "adaptive rate cut at the last epoch": (dict(solver="sgd", learning_rate="adaptive", learning_rate_init=0.01,
                                                 max_iter=4, tol=10.0, n_iter_no_change=2), True),
    "early stopping before max_iter": (dict(early_stopping=True, max_iter=50, tol=10.0, n_iter_no_change=2), False),
}


def warned(estimator, data, method="fit"):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        getattr(estimator, method)(*data)
    return any(issubclass(w.category, ConvergenceWarning) for w in caught)


@pytest.mark.parametrize("case", WARNS)
def test_a_convergence_warning_comes_exactly_where_scikit_learn_gives_one(case):
    settings, expected = WARNS[case]
    common = dict(hidden_layer_sizes=(6,), batch_size=BATCH, random_state=0, **settings)
    data = classes()
    assert warned(NeuralNetClassifier(**common), data) == warned(MLPClassifier(**common), data) == expected


def test_partial_fit_never_warns_and_refuses_early_stopping_as_scikit_learns_does():
    X, y = classes()
    assert not warned(NeuralNetClassifier(max_iter=1), (X, y, np.unique(y)), "partial_fit")
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping=True"):
        MLPClassifier(early_stopping=True).partial_fit(X, y, classes=np.unique(y))
    with pytest.raises(DescendValueError, match=re.escape("partial_fit does not support early_stopping=True")):
        NeuralNetClassifier(early_stopping=True).partial_fit(X, y, classes=np.unique(y))


def test_early_stopping_ends_with_the_weights_of_the_best_validation_score():
    X, y = classes()
    clf = NeuralNetClassifier(hidden_layer_sizes=(6,), early_stopping=True, validation_fraction=0.2, max_iter=40,
                              n_iter_no_change=3, learning_rate_init=0.05, random_state=0).fit(X, y)
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    best = int(np.argmax(clf.validation_scores_))
    assert best < len(clf.validation_scores_) - 1  # later epochs were worse: their weights are not kept
    held_out = clf._validation_split(X.astype(np.float32), np.searchsorted(clf.classes_, y))[1]
    assert clf._validation_score(*held_out) == clf.best_validation_score_


# -- bad settings ------------------------------------------------------------------------------------------------------
BAD = [
    (dict(learning_rate="sometimes"), DescendValueError, "learning_rate must be one of 'constant', 'invscaling', "
                                                         "'adaptive'"),
    (dict(learning_rate=0.01), DescendValueError, "learning_rate must be one of"),
    (dict(power_t=-0.5), DescendValueError, "power_t must be a finite number >= 0; got -0.5"),
    (dict(beta_1=1.0), DescendValueError, "beta_1 must be a finite number in [0, 1); got 1.0"),
    (dict(beta_2="high"), DescendTypeError, "beta_2 must be a real number"),
    (dict(epsilon=0.0), DescendValueError, "epsilon must be a finite number > 0; got 0.0"),
    (dict(early_stopping=True, validation_fraction=0.01), DescendValueError, "The validation set is too small"),
]


@pytest.mark.parametrize("make", [NeuralNetClassifier, NeuralNetRegressor, AutoencoderOutlierDetector])
@pytest.mark.parametrize("settings, error, words", BAD, ids=[words[:30] for *_, words in BAD])
def test_bad_settings_are_refused_by_name(make, settings, error, words):
    X, y = classes(n=60)
    estimator = make(hidden_layer_sizes=(4,), max_iter=2, **settings)
    with pytest.raises(error, match=re.escape(words)):
        estimator.fit(X) if make is AutoencoderOutlierDetector else estimator.fit(X, y)

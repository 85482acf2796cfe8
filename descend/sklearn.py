"""scikit-learn estimators over descend's networks: NeuralNetClassifier, NeuralNetRegressor, AutoencoderOutlierDetector.

Each estimator builds a descend model (an `nn.MLP`, or an `nn.Autoencoder` for the outlier detector) and
trains it with `descend.fit` and descend's optimizers; scikit-learn's own helpers check the input at the
boundary, so the estimators pass scikit-learn's estimator checks and work in Pipeline, GridSearchCV, clone.

scikit-learn's MLP parameters mean here what they mean there (its _multilayer_perceptron.py and
_stochastic_optimizers.py are the reference): `alpha` adds alpha·‖W‖²/(2·n) to each minibatch's loss of
n rows, on the layers' weights only, never their biases; `learning_rate` "invscaling" sets the SGD rate to
learning_rate_init / (t_ + 1)^power_t after each epoch (t_ counts the rows trained on), "adaptive" divides
it by 5 each time n_iter_no_change + 1 epochs in a row fail to improve by tol (and stops below 1e-6);
`beta_1`, `beta_2`, `epsilon` are Adam's; fit stops once the training loss (with early_stopping, the
validation score: accuracy, or R² for the regressor) has failed to improve by tol for more than
n_iter_no_change epochs in a row, and a ConvergenceWarning comes only when max_iter epochs ran without
that. The loss is scikit-learn's too, summed over a row's outputs: cross-entropy, binary cross-entropy
summed over the labels for multilabel y, and half the squared error summed over the targets for the
regressor; Adam adds epsilon to √v before the bias correction, as scikit-learn does (`Adam(eps_hat=True)`).
From the same weights, with shuffle=False, the two train to the same weights within float32 rounding
(tests/test_sklearn_meaning.py). What differs: a binary classifier has two softmax outputs where
scikit-learn has one logistic output; random_state seeds descend's own draws (initial weights,
shuffling, the validation split), so runs repeat exactly but are not scikit-learn's runs; n_iter_
counts the epochs of every call (scikit-learn's, those of the latest); a regressor with k targets
reports k times scikit-learn's loss_ (the sum it trains on, where scikit-learn reports the mean).

The network is float32 and trains in float32. Predictions are computed from its weights in float64, so a
row's prediction agrees, to float64 rounding, whatever batch it comes in: float32 BLAS rounds a one-row
product and a many-row product differently, by about 1e-7, which scikit-learn's checks would see.

The fitted network is `model_`, a descend Module: `descend.save(estimator.model_, path)` writes it as a
descend model file (safetensors weights and a JSON architecture, no pickle), `descend.load(path)` reads it
back and `descend.predict(model, X)` gives its raw outputs (logits for the classifier). Pickling the
whole estimator (scikit-learn's way, e.g. joblib.dump) is the user's choice; the network goes into the
pickle as its JSON architecture and plain arrays (weights, optimizer state) and is rebuilt on load.

>>> import numpy as np
>>> from descend.sklearn import NeuralNetClassifier
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(200, 4))
>>> y = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
>>> clf = NeuralNetClassifier((16,), batch_size=20, learning_rate_init=0.01, tol=1e-3, random_state=0).fit(X, y)
>>> clf.classes_.tolist(), clf.predict_proba(X[:3]).shape, bool(clf.score(X, y) > 0.9)
(['no', 'yes'], (3, 2), True)
"""

from __future__ import annotations

import contextlib
import math
import numbers
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from sklearn import exceptions
from sklearn.base import BaseEstimator, ClassifierMixin, OutlierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils import Tags, check_random_state
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from descend.anomaly import reconstruction_error, threshold_for
from descend.checks import check_fraction, check_integer, check_real
from descend.errors import DescendError, DescendTypeError, DescendValueError
from descend.nn.autoencoders import Autoencoder
from descend.nn.layers import Linear
from descend.nn.losses import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from descend.nn.models import MLP
from descend.nn.module import Module, build_module, module_spec
from descend.nn.parameter import Parameter
from descend.ops import log_softmax
from descend.optim import SGD, Adam, Optimizer, build_optimizer
from descend.tensor import Tensor
from descend.training import Callback, TrainingState
from descend.training import fit as descend_fit
from descend.training import predict as descend_predict

#: accepted activation names -> descend's: scikit-learn's "logistic" is descend's "sigmoid"
ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "logistic": "sigmoid", "sigmoid": "sigmoid",
               "leaky_relu": "leaky_relu", "elu": "elu"}
SOLVERS = ("adam", "sgd")
LEARNING_RATES = ("constant", "invscaling", "adaptive")
#: scikit-learn's "adaptive" rate stops training once it is this small
SMALLEST_ADAPTIVE_RATE = 1e-6
_FLOATS = (np.float64, np.float32)  # what validate_data may hand over; anything else becomes float64


class NotFittedError(DescendValueError, exceptions.NotFittedError):
    """predict, score or transform before fit: a descend error that scikit-learn's own checks recognise too."""


class _NeuralNetEstimator(BaseEstimator):
    """What the estimators share: hyperparameters, the network's training with descend.fit, prediction, pickling.

    A subclass says which network to build (`_new_network`) and which loss trains it (`_loss`).
    """

    def __init__(self, hidden_layer_sizes: int | Sequence[int] = (100,), activation: str = "relu",
                 dropout: float = 0.0, solver: str = "adam", alpha: float = 1e-4, batch_size: int | str = "auto",
                 learning_rate: str = "constant", learning_rate_init: float = 1e-3, power_t: float = 0.5,
                 momentum: float = 0.9, nesterovs_momentum: bool = True, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8, max_iter: int = 200, shuffle: bool = True, tol: float = 1e-4,
                 n_iter_no_change: int = 10, early_stopping: bool = False, validation_fraction: float = 0.1,
                 random_state: Any = None, verbose: bool = False, warm_start: bool = False):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.dropout = dropout
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    def _new_network(self, n_features: int, n_outputs: int, rng: np.random.Generator) -> Module:
        """The untrained network: (N, n_features) -> (N, n_outputs)."""
        raise NotImplementedError(f"{type(self).__name__} must define _new_network")

    def _loss(self) -> Module:
        """The loss the network is trained to lower, a mean over every output of the batch."""
        raise NotImplementedError(f"{type(self).__name__} must define _loss")

    def _loss_scale(self) -> float:
        """What turns `_loss()`'s mean over every output into scikit-learn's loss, a mean over rows of a sum over
        a row's outputs (1 where they are the same)."""
        return 1.0

    def _validation_score(self, x: np.ndarray, targets: np.ndarray | None) -> float:
        """early_stopping's score of the held-out rows, higher is better (scikit-learn's `score`)."""
        raise NotImplementedError(f"{type(self).__name__} must define _validation_score")

    # -- training -------------------------------------------------------------
    def _check_hyperparameters(self) -> None:
        """Refuse out-of-range settings before any training, each error naming the parameter."""
        _layer_sizes(self.hidden_layer_sizes)
        if self.solver not in SOLVERS:
            raise DescendValueError(f"solver must be one of {', '.join(map(repr, SOLVERS))}; got {self.solver!r}")
        check_real("alpha", self.alpha, low=0.0)
        if not isinstance(self.learning_rate, str) or self.learning_rate not in LEARNING_RATES:
            raise DescendValueError(
                f"learning_rate must be one of {', '.join(map(repr, LEARNING_RATES))} (the rate's schedule; "
                f"learning_rate_init is the rate); got {self.learning_rate!r}"
            )
        check_real("learning_rate_init", self.learning_rate_init, low=0.0, low_open=True)
        check_real("power_t", self.power_t, low=0.0)
        check_real("momentum", self.momentum, low=0.0, high=1.0, high_open=True)
        check_real("beta_1", self.beta_1, low=0.0, high=1.0, high_open=True)
        check_real("beta_2", self.beta_2, low=0.0, high=1.0, high_open=True)
        check_real("epsilon", self.epsilon, low=0.0, low_open=True)
        check_integer("max_iter", self.max_iter, low=1)
        check_real("tol", self.tol, low=0.0)
        check_integer("n_iter_no_change", self.n_iter_no_change, low=1)
        check_fraction("validation_fraction", self.validation_fraction)
        if not (self.batch_size == "auto" or isinstance(self.batch_size, numbers.Integral)):
            raise DescendTypeError(f"batch_size must be 'auto' or an integer >= 1; got {self.batch_size!r}")
        if self.batch_size != "auto":
            check_integer("batch_size", self.batch_size, low=1)

    def _continues(self, incremental: bool) -> bool:
        """True when this call trains the existing network further (partial_fit, or fit with warm_start)."""
        return hasattr(self, "model_") and (incremental or bool(self.warm_start))

    def _start(self, n_features: int, n_outputs: int) -> None:
        """A fresh network and optimizer, seeded from random_state; forget earlier training.

        What scikit-learn's stopping rule keeps starts here too, and lives on through warm starts and
        partial_fit as there: the best loss (or validation score and its weights), the epochs without
        improvement, and t_, the rows trained on.
        """
        seeds = check_random_state(self.random_state).randint(np.iinfo(np.int32).max, size=2)
        self.model_ = self._new_network(n_features, n_outputs, np.random.default_rng(int(seeds[0])))
        self.optimizer_ = self._new_optimizer(self.model_)
        self._seed = int(seeds[1])  # keys the shuffling, dropout and validation split of every later epoch
        self._inference_model = _float64_copy(self.model_)
        self.n_outputs_ = n_outputs
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_: list[float] = []
        self._no_improvement_count = 0
        self._best_weights: np.ndarray | None = None
        self.validation_scores_: list[float] | None = None
        self.best_loss_: float | None = None
        self._start_stopping_rule()

    def _start_stopping_rule(self) -> None:
        """Start what the stopping rule compares with, for the loss or (early_stopping) the validation score,
        unless an earlier fit started it: the best loss, or the validation scores and the best of them."""
        if self.early_stopping and self.validation_scores_ is None:
            self.validation_scores_, self.best_validation_score_, self.best_loss_ = [], -np.inf, None
        elif not self.early_stopping and self.best_loss_ is None:
            self.best_loss_ = np.inf

    def _new_optimizer(self, model: Module) -> Optimizer:
        """Adam (beta_1, beta_2, and epsilon where scikit-learn adds it), or SGD with (Nesterov) momentum, over the
        model's flat buffer, at learning_rate_init; alpha is in the loss (`_MLPLoss`), not a weight decay."""
        if self.solver == "adam":
            return Adam(model.parameters(), lr=self.learning_rate_init, betas=(self.beta_1, self.beta_2),
                        eps=self.epsilon, eps_hat=True)
        return SGD(model.parameters(), lr=self.learning_rate_init, momentum=self.momentum,
                   nesterov=bool(self.nesterovs_momentum) and self.momentum > 0)

    def _train(self, x: np.ndarray, targets: np.ndarray | None, incremental: bool) -> None:
        """Train with descend.fit: one epoch for partial_fit, else up to max_iter with scikit-learn's stopping rule.

        x (N, n_features); targets (N,) class indices, (N, k) values, or None for an autoencoder. As in
        scikit-learn, fit starts a fresh solver (momentum, Adam's moments, the rate) even with warm_start;
        partial_fit goes on with the one it has.
        """
        if incremental and self.early_stopping:
            raise DescendValueError("partial_fit does not support early_stopping=True: it trains one epoch on the "
                                    "rows it is given, with none held out; use fit, or early_stopping=False")
        if not incremental:
            self.optimizer_ = self._new_optimizer(self.model_)
        self._start_stopping_rule()
        x = x.astype(self.model_.flat_buffer().dtype, copy=False)
        train, held_out = _data(x, targets), None
        if self.early_stopping:
            train, validation = self._validation_split(x, targets)
            held_out = (validation[0], validation[1] if len(validation) == 2 else None)
        rules = _ScikitLearnRules(self, len(train[0]), held_out, self.n_iter_)
        loss = _MLPLoss(self._loss(), self._loss_scale(), _weights_of(self.model_), float(self.alpha))
        epochs = 1 if incremental else self.max_iter
        history = descend_fit(self.model_, loss, self.optimizer_, train, epochs=epochs,
                              batch_size=self._rows_per_batch(len(train[0])), shuffle=bool(self.shuffle),
                              seed=self._seed, callbacks=[rules], progress=False)
        self.n_iter_ += len(history)
        self.loss_ = self.loss_curve_[-1]
        if self.early_stopping and self._best_weights is not None:
            self.model_.flat_buffer().data[...] = self._best_weights  # scikit-learn ends with its best epoch's weights
        if not incremental and len(history) == self.max_iter and not rules.stopped:
            watched = "validation score" if self.early_stopping else "loss"
            warnings.warn(
                f"{type(self).__name__}: max_iter={self.max_iter} epochs ran and the {watched} had not yet stopped "
                f"improving by tol={self.tol}; raise max_iter, or fit again with warm_start=True",
                ConvergenceWarning,
            )

    def _validation_split(self, x: np.ndarray, targets: np.ndarray | None) -> tuple[tuple, tuple]:
        """Hold out validation_fraction of the rows (stratified for class labels), the same rows on every call."""
        if math.ceil(len(x) * self.validation_fraction) < 2:  # what train_test_split holds out
            raise DescendValueError(
                f"The validation set is too small: validation_fraction={self.validation_fraction} of {len(x)} rows "
                "holds out fewer than 2. Increase 'validation_fraction' or the size of your dataset."
            )
        if targets is None:
            train_x, validation_x = train_test_split(x, test_size=self.validation_fraction, random_state=self._seed)
            return (train_x,), (validation_x,)
        stratify = targets if targets.ndim == 1 else None
        train_x, validation_x, train_y, validation_y = train_test_split(
            x, targets, test_size=self.validation_fraction, random_state=self._seed, stratify=stratify)
        return (train_x, train_y), (validation_x, validation_y)

    def _rows_per_batch(self, n_rows: int) -> int:
        """batch_size, with 'auto' meaning min(200, n_rows) as in scikit-learn's MLP."""
        return min(200, n_rows) if self.batch_size == "auto" else int(self.batch_size)

    # -- prediction -----------------------------------------------------------
    def _checked_x(self, X: Any) -> np.ndarray:
        """X after scikit-learn's checks against the fitted estimator: (N, n_features_in_) float."""
        try:
            check_is_fitted(self)
        except exceptions.NotFittedError as error:
            raise NotFittedError(str(error)) from None
        return _validated(self, X, reset=False, dtype=_FLOATS)

    def _inference(self) -> Module:
        """The float64 twin of model_, holding model_'s current weights (read fresh, in case model_ was trained on)."""
        np.copyto(self._inference_model.flat_buffer().data, self.model_.flat_buffer().data)
        return self._inference_model

    def _outputs(self, X: Any) -> np.ndarray:
        """The network's raw outputs in float64: X (N, n_features_in_) -> (N, n_outputs_)."""
        x = self._checked_x(X)
        return descend_predict(self._inference(), x)

    # -- pickling -------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """The estimator's state with the network and optimizer as architecture JSON and arrays.

        Parameters are views into one flat buffer; pickled as they are, they would come back as separate
        arrays that the optimizer no longer updates, so the network is rebuilt on load instead.
        """
        state = dict(super().__getstate__())
        if "model_" in state:
            state["model_"] = {"architecture": module_spec(self.model_), "weights": self.model_.state_dict()}
            state["optimizer_"] = self.optimizer_.state_dict()
            del state["_inference_model"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Rebuild the network and optimizer that `__getstate__` described."""
        state = dict(state)
        if "model_" in state:
            model = build_module(state["model_"]["architecture"])
            model.load_state_dict(state["model_"]["weights"])
            optimizer = build_optimizer(state["optimizer_"]["scalars"], model.parameters())
            optimizer.load_state_dict(state["optimizer_"])
            state.update(model_=model, optimizer_=optimizer, _inference_model=_float64_copy(model))
        super().__setstate__(state)


class NeuralNetClassifier(ClassifierMixin, _NeuralNetEstimator):
    """A multi-layer perceptron classifier: descend's MLP trained on softmax cross-entropy.

    Shapes: X (n_samples, n_features); y (n_samples,) of class labels (any sortable type), or
    (n_samples, n_classes) of 0/1 for multilabel data, trained on per-label sigmoid cross-entropy.

    Parameters:
        hidden_layer_sizes: units of each hidden layer, e.g. (100,) or (64, 32); () for a linear model.
        activation: 'relu', 'tanh', 'logistic' (= 'sigmoid'), 'leaky_relu' or 'elu', after each hidden layer.
        dropout: fraction of each hidden layer's units zeroed in training, in [0, 1).
        solver: 'adam' or 'sgd' (with momentum and nesterovs_momentum).
        alpha: L2 penalty as scikit-learn's: alpha·‖W‖²/(2n) added to the loss of each minibatch of n rows, on
            the layers' weights only (gradient alpha·W/n; biases are not penalised).
        batch_size: rows per minibatch; 'auto' is min(200, n_samples).
        learning_rate: the SGD rate's schedule: 'constant'; 'invscaling', learning_rate_init / (t_ + 1)^power_t
            set after each epoch (t_: the rows trained on so far); 'adaptive', divided by 5 whenever the
            stopping rule below would stop, until it is below 1e-6. Adam keeps learning_rate_init.
        learning_rate_init: the optimizer's first learning rate.
        power_t: the exponent of 'invscaling'.
        momentum, nesterovs_momentum: SGD's momentum in [0, 1), and whether it is Nesterov's.
        beta_1, beta_2, epsilon: Adam's (its betas and eps).
        max_iter: most epochs per fit (partial_fit always runs one).
        shuffle: reshuffle the rows every epoch.
        tol, n_iter_no_change: fit stops once the training loss (the validation score with early_stopping) has
            failed to improve by tol for more than n_iter_no_change epochs in a row; reaching max_iter before
            that gives a ConvergenceWarning.
        early_stopping, validation_fraction: hold out that fraction of the rows (stratified), stop on their
            accuracy, and end with the weights of the best one. partial_fit refuses it.
        random_state: None, an int or a RandomState; seeds the weights, shuffling, dropout and the split.
        verbose: print each epoch's loss (and validation score), as scikit-learn prints them.
        warm_start: fit starts from the fitted network's weights instead of new ones (with a fresh solver, as
            in scikit-learn).

    Learned: classes_, n_features_in_ (and feature_names_in_), n_outputs_, out_activation_ ('softmax' or,
    for multilabel y, 'logistic'), model_ (the descend MLP: (N, n_features_in_) -> logits (N, n_outputs_)),
    optimizer_, n_iter_ (epochs trained in all), t_ (rows trained on), loss_, loss_curve_, best_loss_
    (None with early_stopping), validation_scores_ and best_validation_score_ (with early_stopping).
    """

    def fit(self, X: Any, y: Any) -> NeuralNetClassifier:
        """Train on X (n_samples, n_features) and labels y (n_samples,) or 0/1 (n_samples, n_classes); returns self."""
        return self._fit(X, y, classes=None, incremental=False)

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> NeuralNetClassifier:
        """One epoch over X and y; returns self. The first call needs classes=, every label y may ever hold.

        For multilabel y (n_samples, n_classes) the columns are the classes and classes= may be left out.
        """
        return self._fit(X, y, classes=classes, incremental=True)

    def _fit(self, X: Any, y: Any, classes: Any, incremental: bool) -> NeuralNetClassifier:
        self._check_hyperparameters()
        continues = self._continues(incremental)
        X, y = _validated(self, X, y, multi_output=True, dtype=_FLOATS, reset=not continues)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        multilabel = _is_multilabel(y)
        if continues:
            self._check_same_task(y, classes, multilabel)
        else:
            self.classes_ = self._first_classes(y, classes, incremental, multilabel)
            self.out_activation_ = "logistic" if multilabel else "softmax"
            self._start(X.shape[1], len(self.classes_))
        self._train(X, self._encoded(y), incremental)
        return self

    def _new_network(self, n_features: int, n_outputs: int, rng: np.random.Generator) -> Module:
        return _mlp(self, n_features, n_outputs, rng)

    def _loss(self) -> Module:
        return BCEWithLogitsLoss() if self.out_activation_ == "logistic" else CrossEntropyLoss()

    def _loss_scale(self) -> float:
        return float(self.n_outputs_) if self.out_activation_ == "logistic" else 1.0  # summed over the labels

    def _validation_score(self, x: np.ndarray, targets: np.ndarray | None) -> float:
        """The held-out rows' accuracy (for multilabel y, the fraction of rows with every label right)."""
        logits = descend_predict(self._inference(), x)
        if self.out_activation_ == "logistic":
            return float(((logits > 0) == (targets > 0.5)).all(axis=1).mean())
        return float((logits.argmax(axis=1) == targets).mean())

    @staticmethod
    def _first_classes(y: np.ndarray, classes: Any, incremental: bool, multilabel: bool) -> np.ndarray:
        if multilabel:
            return np.arange(y.shape[1])
        if not incremental:
            return unique_labels(y)
        if classes is None:
            raise DescendValueError(
                "partial_fit needs classes= on its first call: every label y may hold over all calls, "
                "e.g. classes=np.unique(y_all); got classes=None"
            )
        return unique_labels(classes)

    def _check_same_task(self, y: np.ndarray, classes: Any, multilabel: bool) -> None:
        """Refuse labels the fitted network has no output for."""
        if multilabel != (self.out_activation_ == "logistic"):
            was = "multilabel indicators" if self.out_activation_ == "logistic" else "class labels (n_samples,)"
            raise DescendValueError(
                f"y must hold {was} as in the first fit; got y of shape {y.shape}. "
                "Fit with warm_start=False to start over"
            )
        if multilabel and y.shape[1] != len(self.classes_):
            raise DescendValueError(
                f"y has {y.shape[1]} label columns; the network was fitted with {len(self.classes_)}"
            )
        if classes is not None and not np.array_equal(unique_labels(classes), self.classes_):
            raise DescendValueError(
                f"classes={list(unique_labels(classes))!r} differs from the classes of the first call, "
                f"{self.classes_.tolist()!r}"
            )

    def _encoded(self, y: np.ndarray) -> np.ndarray:
        """What the network learns: class indices (n_samples,) int64, or multilabel indicators (n_samples, k) float."""
        if self.out_activation_ == "logistic":
            return y.astype(self.model_.flat_buffer().dtype)
        unknown = np.setdiff1d(unique_labels(y), self.classes_)
        if len(unknown):
            raise DescendValueError(
                f"y holds labels {unknown[:10].tolist()} that are not among classes_ {self.classes_[:10].tolist()}; "
                "pass every label in classes= on the first call to partial_fit, or fit with warm_start=False"
            )
        return np.searchsorted(self.classes_, y).astype(np.int64)

    def predict(self, X: Any) -> np.ndarray:
        """The most likely class of every row: X (n_samples, n_features) -> (n_samples,) of classes_.

        Multilabel: (n_samples, n_classes) of 0/1, a label where its probability is above one half.
        """
        logits = self._outputs(X)
        if self.out_activation_ == "logistic":
            return (logits > 0).astype(np.int64)
        return self.classes_[logits.argmax(axis=1)]

    def predict_proba(self, X: Any) -> np.ndarray:
        """P(class | x): X (n_samples, n_features) -> (n_samples, n_classes) float64, columns in classes_ order.

        softmax of the logits (rows sum to 1), or for multilabel each label's sigmoid.
        """
        logits = self._outputs(X)
        if self.out_activation_ == "logistic":
            return 0.5 * np.tanh(0.5 * logits) + 0.5  # the sigmoid, without overflow in exp
        return np.exp(log_softmax(logits).data)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """log P(class | x): X (n_samples, n_features) -> (n_samples, n_classes), computed stably from the logits."""
        logits = self._outputs(X)
        if self.out_activation_ == "logistic":
            return -np.logaddexp(0.0, -logits)
        return log_softmax(logits).data

    def __sklearn_tags__(self) -> Tags:
        """scikit-learn's tags, saying that multilabel y is supported."""
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class NeuralNetRegressor(RegressorMixin, _NeuralNetEstimator):
    """A multi-layer perceptron regressor: descend's MLP trained on mean squared error.

    Shapes: X (n_samples, n_features); y (n_samples,) or (n_samples, n_targets) for several targets.
    predict gives (n_samples,) for one target, else (n_samples, n_targets). The output layer is linear,
    so scale y to about unit size (e.g. sklearn.compose.TransformedTargetRegressor with StandardScaler).

    Parameters: as NeuralNetClassifier's (hidden_layer_sizes, activation, dropout, solver, alpha,
    batch_size, learning_rate, learning_rate_init, power_t, momentum, nesterovs_momentum, beta_1, beta_2,
    epsilon, max_iter, shuffle, tol, n_iter_no_change, early_stopping, validation_fraction, random_state,
    verbose, warm_start); early_stopping watches the held-out rows' R², and its split is not stratified.
    The loss is scikit-learn's: half the squared error, summed over the targets, averaged over the rows;
    for one target that is scikit-learn's loss_, for k targets k times it (scikit-learn trains on this
    sum but reports its mean).

    Learned: n_features_in_ (and feature_names_in_), n_outputs_, model_ (the descend MLP:
    (N, n_features_in_) -> (N, n_outputs_)), optimizer_, n_iter_, t_, loss_, loss_curve_, best_loss_,
    validation_scores_, best_validation_score_.
    """

    def fit(self, X: Any, y: Any) -> NeuralNetRegressor:
        """Train on X (n_samples, n_features) and targets y (n_samples,) or (n_samples, n_targets); returns self."""
        return self._fit(X, y, incremental=False)

    def partial_fit(self, X: Any, y: Any) -> NeuralNetRegressor:
        """One epoch over X and y, starting a network on the first call; returns self."""
        return self._fit(X, y, incremental=True)

    def _fit(self, X: Any, y: Any, incremental: bool) -> NeuralNetRegressor:
        self._check_hyperparameters()
        continues = self._continues(incremental)
        X, y = _validated(self, X, y, multi_output=True, y_numeric=True, dtype=_FLOATS, reset=not continues)
        if y.dtype.kind not in "biuf":  # y_numeric converts only object arrays: strings get through
            raise DescendTypeError(f"y must hold numbers (regression targets); got dtype {y.dtype}")
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        targets = y.reshape(len(y), -1)
        if not continues:
            self._start(X.shape[1], targets.shape[1])
        elif targets.shape[1] != self.n_outputs_:
            raise DescendValueError(
                f"y has {targets.shape[1]} targets per row; the network was fitted with {self.n_outputs_}. "
                "Fit with warm_start=False to start over"
            )
        self._train(X, targets.astype(self.model_.flat_buffer().dtype), incremental)
        return self

    def _new_network(self, n_features: int, n_outputs: int, rng: np.random.Generator) -> Module:
        return _mlp(self, n_features, n_outputs, rng)

    def _loss(self) -> Module:
        return MSELoss()

    def _loss_scale(self) -> float:
        return self.n_outputs_ / 2.0  # half the squared error, summed over the targets

    def _validation_score(self, x: np.ndarray, targets: np.ndarray | None) -> float:
        """The held-out rows' R² (over several targets, their mean)."""
        return float(r2_score(targets, descend_predict(self._inference(), x)))

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets: X (n_samples, n_features) -> (n_samples,) for one target, else (n_samples, n_targets)."""
        outputs = self._outputs(X)
        return outputs.ravel() if self.n_outputs_ == 1 else outputs

    def __sklearn_tags__(self) -> Tags:
        """scikit-learn's tags, saying that y may hold several targets per row."""
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class AutoencoderOutlierDetector(OutlierMixin, _NeuralNetEstimator):
    """Outlier detection by reconstruction: rows the autoencoder, trained on X, rebuilds badly are outliers.

    The network is descend's Autoencoder n_features -> hidden_layer_sizes -> code_size, mirrored back to
    n_features with a linear output, trained on mean squared reconstruction error (descend.anomaly scores
    with it). score_samples is minus a row's mean squared reconstruction error (higher = more normal,
    scikit-learn's convention); offset_ is set so that a `contamination` fraction of the training rows
    score below it; decision_function = score_samples − offset_, negative for outliers; predict gives
    −1 for outliers and +1 for inliers. Features on very different scales dominate the error: standardize
    them first, e.g. make_pipeline(StandardScaler(), AutoencoderOutlierDetector()).

    Shapes: X (n_samples, n_features) -> scores, decisions and predictions (n_samples,).

    Parameters:
        hidden_layer_sizes: units of the encoder's layers between the input and the code (the decoder mirrors them).
        code_size: units of the code, the bottleneck; 'auto' is max(1, n_features // 2).
        contamination: the expected fraction of outliers in the training data, in (0, 0.5].
        activation, solver, alpha, batch_size, learning_rate, learning_rate_init, power_t, momentum,
        nesterovs_momentum, beta_1, beta_2, epsilon, max_iter, shuffle, tol, n_iter_no_change, early_stopping,
        validation_fraction, random_state, verbose, warm_start: as NeuralNetClassifier's; the loss is the mean
        squared reconstruction error, and early_stopping watches minus its mean over the held-out rows.

    Learned: offset_, n_features_in_ (and feature_names_in_), model_ (the descend Autoencoder:
    (N, n_features_in_) -> (N, n_features_in_)), optimizer_, n_iter_, t_, loss_, loss_curve_, best_loss_,
    validation_scores_, best_validation_score_.
    partial_fit trains one epoch and sets offset_ from the rows of that call.
    """

    def __init__(self, hidden_layer_sizes: int | Sequence[int] = (32,), code_size: int | str = "auto",
                 contamination: float = 0.1, activation: str = "relu", solver: str = "adam", alpha: float = 1e-4,
                 batch_size: int | str = "auto", learning_rate: str = "constant", learning_rate_init: float = 1e-3,
                 power_t: float = 0.5, momentum: float = 0.9, nesterovs_momentum: bool = True, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-8, max_iter: int = 200, shuffle: bool = True,
                 tol: float = 1e-4, n_iter_no_change: int = 10, early_stopping: bool = False,
                 validation_fraction: float = 0.1, random_state: Any = None, verbose: bool = False,
                 warm_start: bool = False):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.code_size = code_size
        self.contamination = contamination
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    def fit(self, X: Any, y: Any = None) -> AutoencoderOutlierDetector:
        """Train the autoencoder on X (n_samples, n_features) and set offset_; y is ignored. Returns self."""
        return self._fit(X, incremental=False)

    def partial_fit(self, X: Any, y: Any = None) -> AutoencoderOutlierDetector:
        """One epoch over X, starting a network on the first call; offset_ then comes from X. Returns self."""
        return self._fit(X, incremental=True)

    def _fit(self, X: Any, incremental: bool) -> AutoencoderOutlierDetector:
        self._check_hyperparameters()
        contamination = check_real("contamination", self.contamination, low=0.0, high=0.5, low_open=True)
        if self.code_size != "auto":
            check_integer("code_size", self.code_size, low=1)
        continues = self._continues(incremental)
        X = _validated(self, X, dtype=_FLOATS, reset=not continues)
        if not continues:
            self._start(X.shape[1], X.shape[1])
        self._train(X, None, incremental)
        self.offset_ = -threshold_for(reconstruction_error(self._inference(), X), contamination)
        return self

    def _new_network(self, n_features: int, n_outputs: int, rng: np.random.Generator) -> Module:
        code = max(1, n_features // 2) if self.code_size == "auto" else self.code_size
        return Autoencoder([n_features, *_layer_sizes(self.hidden_layer_sizes), code],
                           activation=_activation_name(self.activation), output="linear", rng=rng)

    def _loss(self) -> Module:
        return MSELoss()

    def _validation_score(self, x: np.ndarray, targets: np.ndarray | None) -> float:
        """Minus the held-out rows' mean squared reconstruction error."""
        return -float(reconstruction_error(self._inference(), x).mean())

    def score_samples(self, X: Any) -> np.ndarray:
        """Minus each row's mean squared reconstruction error: (n_samples, n_features) -> (n_samples,).

        Higher is more normal, scikit-learn's convention.
        """
        x = self._checked_x(X)
        return -reconstruction_error(self._inference(), x)

    def decision_function(self, X: Any) -> np.ndarray:
        """score_samples − offset_: (n_samples, n_features) -> (n_samples,), negative for outliers."""
        return self.score_samples(X) - self.offset_

    def predict(self, X: Any) -> np.ndarray:
        """+1 for inliers, −1 for outliers: (n_samples, n_features) -> (n_samples,) int."""
        return np.where(self.decision_function(X) < 0, -1, 1)


class _MLPLoss(Module):
    """scikit-learn's MLP loss of a minibatch of n rows: scale · loss(output, target) + alpha · Σ‖W‖² / (2n).

    `scale` makes the loss's mean over every output scikit-learn's mean over rows of a sum over each row's
    outputs; the penalty covers the layers' weights W, not their biases, and is per row of the batch, so
    its gradient is alpha · W / n, as scikit-learn's _backprop adds it. fit weighs each batch by its rows,
    so an epoch's loss is scikit-learn's loss_ with the penalty in it.
    """

    reduction = "mean"

    def __init__(self, loss: Module, scale: float, weights: list[Parameter], alpha: float):
        self.loss, self.scale, self.weights, self.alpha = loss, scale, weights, alpha

    def forward(self, output: Tensor, target: np.ndarray) -> Tensor:
        """The batch's loss, a scalar: output (n, k) and its target -> ()."""
        loss = self.loss(output, target)
        if self.scale != 1.0:
            loss = loss * self.scale
        if self.alpha:
            squares = (self.weights[0] * self.weights[0]).sum()
            for weight in self.weights[1:]:
                squares = squares + (weight * weight).sum()
            loss = loss + squares * (0.5 * self.alpha / len(target))
        return loss


class _ScikitLearnRules(Callback):
    """What scikit-learn's MLP does after each epoch, in its order (_fit_stochastic, SGDOptimizer):

    count the rows trained on (t_) and keep the loss; print it with verbose; count the epochs without an
    improvement of tol in the loss, or with early_stopping in the validation score (keeping the best
    weights); with learning_rate="invscaling" set the SGD rate to learning_rate_init / (t_ + 1)^power_t;
    once the count passes n_iter_no_change, with learning_rate="adaptive" divide the SGD rate by 5 and count
    again (stopping once it is below 1e-6), else stop (`stopped`).
    """

    def __init__(self, estimator: _NeuralNetEstimator, rows: int,
                 validation: tuple[np.ndarray, np.ndarray | None] | None, epochs_before: int):
        self.estimator, self.rows, self.validation, self.epochs_before = estimator, rows, validation, epochs_before
        self.stopped = False

    def on_epoch_end(self, state: TrainingState, record: dict[str, float]) -> None:
        """Keep the loss, count the epochs without improvement, set the rate, and stop as scikit-learn would."""
        estimator, optimizer = self.estimator, state.optimizer
        estimator.t_ += self.rows
        estimator.loss_curve_.append(record["loss"])
        self._say(f"Iteration {self.epochs_before + int(record['epoch'])}, loss = {record['loss']:.8f}")
        improved = self._validation_improved(state) if self.validation is not None else self._loss_improved()
        estimator._no_improvement_count = 0 if improved else estimator._no_improvement_count + 1
        sgd = estimator.solver == "sgd"
        if sgd and estimator.learning_rate == "invscaling":
            _set_rate(optimizer, estimator.learning_rate_init / (estimator.t_ + 1) ** estimator.power_t)
        if estimator._no_improvement_count <= estimator.n_iter_no_change:
            return
        watched = "Validation score" if self.validation is not None else "Training loss"
        news = (f"{watched} did not improve more than tol={estimator.tol:f} for {estimator.n_iter_no_change} "
                "consecutive epochs.")
        if sgd and estimator.learning_rate == "adaptive" and optimizer.lr > SMALLEST_ADAPTIVE_RATE:
            _set_rate(optimizer, optimizer.lr / 5.0)
            estimator._no_improvement_count = 0
            self._say(f"{news} Setting learning rate to {optimizer.lr:f}")
            return
        too_small = "Learning rate too small. " if sgd and estimator.learning_rate == "adaptive" else ""
        self._say(f"{news} {too_small}Stopping.")
        state.stop = self.stopped = True

    def _loss_improved(self) -> bool:
        """Whether the epoch's loss beat the best by tol; the best is kept whenever beaten at all."""
        estimator, loss = self.estimator, self.estimator.loss_curve_[-1]
        improved = not loss > estimator.best_loss_ - estimator.tol
        estimator.best_loss_ = min(estimator.best_loss_, loss)
        return improved

    def _validation_improved(self, state: TrainingState) -> bool:
        """Whether the held-out rows' score beat the best by tol; a better score keeps its weights."""
        estimator = self.estimator
        score = estimator._validation_score(*self.validation)
        estimator.validation_scores_.append(score)
        self._say(f"Validation score: {score:f}")
        improved = not score < estimator.best_validation_score_ + estimator.tol
        if score > estimator.best_validation_score_:
            estimator.best_validation_score_ = score
            estimator._best_weights = state.model.flat_buffer().data.copy()
        return improved

    def _say(self, line: str) -> None:
        if self.estimator.verbose:
            print(line)


def _set_rate(optimizer: Optimizer, rate: float) -> None:
    """Give the optimizer a new rate from the next step on, as scikit-learn's SGD changes its rate.

    scikit-learn's velocity holds rate · gradients (v ← μ·v − lr·g); descend's, torch's way, holds the
    gradients alone and is multiplied by the rate at each step. Scaling descend's by old/new when the
    rate changes keeps the two the same velocity, so the steps after the change are scikit-learn's too.
    """
    velocity = optimizer.state.get("momentum_buffer")
    if velocity is not None:
        velocity *= optimizer.lr / rate
    optimizer.lr = rate


def _weights_of(model: Module) -> list[Parameter]:
    """The weights of the model's dense layers (scikit-learn's coefs_), which alpha penalises; biases are not."""
    return [module.weight for module in model.modules() if isinstance(module, Linear)]


def _mlp(estimator: _NeuralNetEstimator, n_features: int, n_outputs: int, rng: np.random.Generator) -> Module:
    """The estimator's MLP: (N, n_features) -> hidden_layer_sizes -> (N, n_outputs)."""
    return MLP([n_features, *_layer_sizes(estimator.hidden_layer_sizes), n_outputs],
               activation=_activation_name(estimator.activation), dropout=estimator.dropout, rng=rng)


@contextlib.contextmanager
def _as_descend_errors() -> Iterator[None]:
    """scikit-learn's plain ValueError and TypeError raised inside come out as descend's, with the same message
    (which names the input, what came and what is expected, and which scikit-learn's own checks match)."""
    try:
        yield
    except DescendError:
        raise
    except ValueError as error:
        raise DescendValueError(str(error)) from None
    except TypeError as error:
        raise DescendTypeError(str(error)) from None


def _validated(estimator: BaseEstimator, *args: Any, **kwargs: Any) -> Any:
    """scikit-learn's validate_data (X and y checked against the estimator), its errors raised as descend's."""
    with _as_descend_errors():
        return validate_data(estimator, *args, **kwargs)


def _layer_sizes(hidden_layer_sizes: Any) -> list[int]:
    """hidden_layer_sizes as a list of ints >= 1: an int is one layer, a sequence one size per layer."""
    sizes = [hidden_layer_sizes] if isinstance(hidden_layer_sizes, numbers.Integral) else hidden_layer_sizes
    if isinstance(sizes, np.ndarray) and sizes.ndim == 1:
        sizes = sizes.tolist()
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
        raise DescendTypeError(
            f"hidden_layer_sizes must be an integer or a sequence of integers, e.g. (100,) or (64, 32); "
            f"got {type(hidden_layer_sizes).__name__} {hidden_layer_sizes!r}"
        )
    return [check_integer(f"hidden_layer_sizes[{index}]", size, low=1) for index, size in enumerate(sizes)]


def _activation_name(activation: Any) -> str:
    """descend's name for an activation given by its descend or scikit-learn name."""
    if activation not in ACTIVATIONS:
        raise DescendValueError(f"activation must be one of {', '.join(map(repr, ACTIVATIONS))}; got {activation!r}")
    return ACTIVATIONS[activation]


def _is_multilabel(y: np.ndarray) -> bool:
    """True for multilabel indicators (n_samples, k) of 0/1, False for labels (n_samples,); else raise."""
    with _as_descend_errors():
        check_classification_targets(y)
    kind = type_of_target(y, input_name="y")
    if kind not in ("binary", "multiclass", "multilabel-indicator"):
        raise DescendValueError(
            f"y must hold class labels, shape (n_samples,), or multilabel indicators of 0/1, shape (n_samples, k); "
            f"got {kind} targets of shape {y.shape}"
        )
    return kind == "multilabel-indicator"


def _data(x: np.ndarray, targets: np.ndarray | None) -> tuple:
    """What descend.fit takes: (x, y), or (x,) for an autoencoder, which learns to give back x."""
    return (x,) if targets is None else (x, targets)


def _float64_copy(model: Module) -> Module:
    """The same network in float64, for predictions that do not depend on how rows are batched."""
    twin = build_module(module_spec(model)).astype(np.float64)
    twin.load_state_dict(model.state_dict())
    return twin

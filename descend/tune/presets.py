"""The build function of `descend tune`: a preset model (descend.nn.presets) from one trial's parameters.

A space for a preset names some of PARAMETERS; the others keep the preset's defaults, as `descend train`
has them: lr (SGD 0.05, Adam 1e-3), momentum 0.9, weight_decay 1e-4, dropout 0.2, the preset's hidden
widths, optimizer "sgd" (with the preset's inverse-time decay) or "adam", activation "relu" (mlp only),
batch_size (which `search` gives fit). `hidden` is one width: the mlp's one hidden layer, the cnn's dense layer.

>>> import numpy as np
>>> from descend.data import Dataset
>>> build = PresetBuild("mlp", Dataset(np.zeros((4, 64), np.float32), np.arange(4)))
>>> model, loss, optimizer = build({"lr": 0.1, "hidden": 16, "optimizer": "adam"})
>>> model.sizes, type(optimizer).__name__, optimizer.lr
([64, 16, 4], 'Adam', 0.1)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from descend.data.dataset import Dataset
from descend.errors import DescendValueError
from descend.nn import presets
from descend.nn.models import MLP
from descend.optim.adaptive import Adam

#: the parameters a space for a preset may name
PARAMETERS = ("lr", "momentum", "hidden", "dropout", "weight_decay", "optimizer", "activation", "batch_size")
OPTIMIZERS = ("sgd", "adam")


def check_names(space: dict[str, Any], model_name: str) -> None:
    """Refuse a space naming a parameter the preset `model_name` does not take, naming those it does.

    >>> check_names({"lrr": None}, "mlp")
    Traceback (most recent call last):
    ...
    descend.errors.DescendValueError: space: unknown parameter 'lrr' for --model mlp; the known parameters are lr, momentum, hidden, dropout, weight_decay, optimizer, activation, batch_size
    """
    known = known_parameters(model_name)
    for name in space:
        if name not in known:
            raise DescendValueError(f"space: unknown parameter {name!r} for --model {model_name}; the known "
                                    f"parameters are {', '.join(known)}")


def known_parameters(model_name: str) -> tuple[str, ...]:
    """The parameters a space may name for the preset `model_name`.

    >>> known_parameters("logistic")
    ('lr', 'momentum', 'weight_decay', 'optimizer', 'batch_size')
    """
    names = PARAMETERS
    if model_name not in presets.HIDDEN or model_name in presets.CHAR_MODELS or model_name == "capsnet":
        names = tuple(name for name in names if name not in ("hidden", "dropout"))
    if model_name != "mlp":
        names = tuple(name for name in names if name != "activation")
    return names


@dataclass
class PresetBuild:
    """Builds the preset `model_name` for `data` from a trial's parameters: (model, loss, optimizer).

    A plain dataclass of a name and a Dataset, so it travels to worker processes and Spark tasks. The
    weights come from descend's global seed, which `search` sets per trial.
    """

    model_name: str
    data: Dataset

    def __call__(self, params: dict[str, Any]) -> tuple[Any, Any, Any]:
        check_names(params, self.model_name)
        hidden = None if "hidden" not in params else [params["hidden"]]
        dropout = params.get("dropout", 0.2)
        if self.model_name == "mlp" and "activation" in params:
            widths = hidden or list(presets.HIDDEN["mlp"])
            # presets.model("mlp") with another activation than its relu
            model = MLP([self.data.n_features, *widths, self.data.n_classes], activation=params["activation"],
                        dropout=dropout)
        else:
            model = presets.model(self.model_name, self.data, hidden=hidden, dropout=dropout, seed=None)
        optimizer_name = params.get("optimizer", "sgd")
        if optimizer_name not in OPTIMIZERS:
            raise DescendValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {optimizer_name!r}")
        if optimizer_name == "adam":
            optimizer = Adam(model.parameters(), lr=params.get("lr", 1e-3), weight_decay=params.get("weight_decay", 0))
        else:
            optimizer = presets.optimizer_for(model, lr=params.get("lr"), momentum=params.get("momentum", 0.9),
                                              weight_decay=params.get("weight_decay", 1e-4))
        return model, presets.loss_for(model), optimizer

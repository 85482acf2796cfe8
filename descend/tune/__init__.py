"""Hyperparameter search on Optuna: search spaces, pruning of bad trials, trials in processes or Spark tasks.

>>> from descend import tune
>>> space = {"lr": tune.loguniform(1e-3, 1.0), "momentum": tune.uniform(0.0, 0.99),
...          "hidden": tune.int(64, 1024, log=True), "optimizer": tune.choice(["sgd", "adam"])}
>>> space["hidden"]
integer(64, 1024, log=True)

`tune.search(build, space, train, validation=..., ...)` runs the search (descend.tune.search); `tune.read_space`
reads a space from a TOML file's `[space]` table, and `tune.lr_range(dc.lr_find(...))` narrows the learning
rate's range to where the range test saw the loss fall (descend.tune.space).
"""

from descend.tune import presets, results, space
from descend.tune.pruning import PruningCallback
from descend.tune.search import Study, search
from descend.tune.space import (Choice, Distribution, Integer, Uniform, choice, integer, loguniform, lr_range, read_space,
                                uniform)

int = integer  # noqa: A001 - the issue's spelling, tune.int(64, 1024, log=True), beside tune.uniform

__all__ = ["search", "Study", "PruningCallback", "uniform", "loguniform", "int", "integer", "choice", "lr_range", "read_space",
           "Distribution", "Uniform", "Integer", "Choice"]

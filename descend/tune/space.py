"""Search spaces: the distributions a trial's parameters are drawn from, in Python or in a TOML file.

A space is a dict from parameter name to a distribution. Each distribution is checked when it is made
(an empty or reversed range, a log range touching 0, an empty choice) and asks Optuna's trial for its
value (`suggest`), so Optuna's samplers (TPE, random) see the range and the scale themselves.

In TOML, a `[space]` table holds one inline table per parameter, with one key naming the distribution:

    [space]
    lr = { loguniform = [1e-3, 1.0] }
    momentum = { uniform = [0.0, 0.99] }
    hidden = { int = [64, 1024], log = true }
    optimizer = { choice = ["sgd", "adam"] }

>>> space = {"lr": loguniform(1e-3, 1.0), "hidden": integer(64, 1024, log=True), "act": choice(["relu", "tanh"])}
>>> space["hidden"]
integer(64, 1024, log=True)
"""

from __future__ import annotations

import math
import numbers
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from descend.errors import DescendTypeError, DescendValueError


class Distribution:
    """What one parameter of a space may be; `suggest(trial, name)` asks an Optuna trial for a value."""

    def suggest(self, trial: Any, name: str) -> Any:
        """The value Optuna's sampler picks for this parameter of `trial`."""
        raise NotImplementedError

    def optuna(self) -> Any:
        """The matching optuna.distributions object (what `study.ask(fixed_distributions)` takes)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Uniform(Distribution):
    """A real number drawn evenly from [low, high] (or its logarithm evenly, with `log`).

    >>> Uniform(0.0, 0.5)
    uniform(0.0, 0.5)
    """

    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        _check_range("uniform" if not self.log else "loguniform", self.low, self.high, self.log, whole=False)

    def suggest(self, trial: Any, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=self.log)

    def optuna(self) -> Any:
        from optuna.distributions import FloatDistribution

        return FloatDistribution(self.low, self.high, log=self.log)

    def __repr__(self) -> str:
        return f"{'loguniform' if self.log else 'uniform'}({self.low!r}, {self.high!r})"


@dataclass(frozen=True)
class Integer(Distribution):
    """A whole number from [low, high], both included; with `log`, drawn evenly on a log scale.

    >>> Integer(1, 4)
    integer(1, 4)
    """

    low: int
    high: int
    log: bool = False

    def __post_init__(self) -> None:
        _check_range("int", self.low, self.high, self.log, whole=True)

    def suggest(self, trial: Any, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, log=self.log)

    def optuna(self) -> Any:
        from optuna.distributions import IntDistribution

        return IntDistribution(self.low, self.high, log=self.log)

    def __repr__(self) -> str:
        return f"integer({self.low!r}, {self.high!r}{', log=True' if self.log else ''})"


@dataclass(frozen=True)
class Choice(Distribution):
    """One of a few options (strings, numbers or booleans), none preferred.

    >>> Choice(("sgd", "adam"))
    choice(['sgd', 'adam'])
    """

    options: tuple[Any, ...]

    def __post_init__(self) -> None:
        if isinstance(self.options, (str, bytes)) or not isinstance(self.options, Sequence) or not self.options:
            raise DescendValueError(f"choice: options must be a non-empty list such as ['sgd', 'adam']; "
                                    f"got {self.options!r}")
        for option in self.options:
            if option is not None and not isinstance(option, (str, numbers.Real)):
                raise DescendTypeError(f"choice: each option must be a string, a number, a boolean or None "
                                       f"(what a study's storage keeps); got {type(option).__name__} {option!r}")
        if len(set(self.options)) != len(self.options):
            raise DescendValueError(f"choice: the options {list(self.options)!r} repeat one; give each once")

    def suggest(self, trial: Any, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.options))

    def optuna(self) -> Any:
        from optuna.distributions import CategoricalDistribution

        return CategoricalDistribution(list(self.options))

    def __repr__(self) -> str:
        return f"choice({list(self.options)!r})"


def uniform(low: float, high: float) -> Uniform:
    """A real number drawn evenly from [low, high].

    >>> uniform(0.0, 0.99)
    uniform(0.0, 0.99)
    """
    return Uniform(low, high)


def loguniform(low: float, high: float) -> Uniform:
    """A positive real number whose logarithm is drawn evenly: as likely in [1e-3, 1e-2] as in [1e-2, 1e-1].

    >>> loguniform(1e-3, 1.0)
    loguniform(0.001, 1.0)
    """
    return Uniform(low, high, log=True)


def integer(low: int, high: int, log: bool = False) -> Integer:
    """A whole number from [low, high], both included; `log=True` draws it evenly on a log scale
    (`tune.int` is this function).

    >>> integer(64, 1024, log=True)
    integer(64, 1024, log=True)
    """
    return Integer(low, high, log)


def choice(options: Sequence[Any]) -> Choice:
    """One of `options` (strings, numbers, booleans): an optimizer, an activation, a batch size.

    >>> choice(["sgd", "adam"])
    choice(['sgd', 'adam'])
    """
    return Choice(tuple(options) if isinstance(options, list) else options)


def lr_range(found: Any, spread: float = 10.0) -> Uniform:
    """A log-uniform learning rate around what `dc.lr_find` measured: from its suggestion / `spread` up to
    suggestion * `spread`, but never past the largest rate the range test tried before the loss blew up.

    The range test costs about one epoch; searching the narrowed range spends the trials where the
    loss falls instead of on rates that crawl or diverge.

    >>> import numpy as np
    >>> from descend.lr_find import LearningRateRange
    >>> rates = np.geomspace(1e-4, 1.0, 5)
    >>> lr_range(LearningRateRange(rates, np.ones(5), np.ones(5), steepest=0.2, tenth_of_lowest=0.05))
    loguniform(0.005, 0.5)
    >>> lr_range(LearningRateRange(rates, np.ones(5), np.ones(5), steepest=0.2, tenth_of_lowest=0.3), spread=10)
    loguniform(0.02, 1.0)
    """
    from descend.lr_find import LearningRateRange

    if not isinstance(found, LearningRateRange):
        raise DescendTypeError(f"found must be what dc.lr_find returns (a LearningRateRange); got "
                               f"{type(found).__name__} {found!r:.100}")
    if isinstance(spread, bool) or not isinstance(spread, numbers.Real) or not (math.isfinite(spread) and spread > 1):
        raise DescendValueError(f"spread must be a finite number above 1 (the range is suggestion / spread to "
                                f"suggestion * spread); got {spread!r}")
    largest = float(found.learning_rates[-1])
    low = min(found.suggestion / spread, largest / spread)
    return loguniform(float(f"{low:.6g}"), float(f"{min(found.suggestion * spread, largest):.6g}"))


def check_space(space: Any) -> dict[str, Distribution]:
    """`space` as a dict of names to distributions, checked: a non-empty mapping of string names.

    >>> list(check_space({"lr": loguniform(0.01, 1.0)}))
    ['lr']
    """
    if not isinstance(space, Mapping) or not space:
        raise DescendTypeError(f"space must be a non-empty dict of parameter names to distributions such as "
                               f"{{'lr': tune.loguniform(1e-3, 1.0)}}; got {space!r:.200}")
    for name, distribution in space.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise DescendValueError(f"space: parameter names must be identifiers such as 'lr'; got {name!r}")
        if not isinstance(distribution, Distribution):
            raise DescendTypeError(f"space[{name!r}] must be a distribution (tune.uniform, tune.loguniform, tune.int, "
                                   f"tune.choice); got {type(distribution).__name__} {distribution!r:.100}")
    return dict(space)


def describe(space: dict[str, Distribution]) -> dict[str, str]:
    """Each parameter's distribution as text: what a study folder records, to refuse resuming another space.

    >>> describe({"lr": loguniform(0.01, 1.0)})
    {'lr': 'loguniform(0.01, 1.0)'}
    """
    return {name: repr(distribution) for name, distribution in space.items()}


#: the TOML keys naming a distribution, and the function each calls
KINDS = {"uniform": uniform, "loguniform": loguniform, "int": integer, "choice": choice}


def read_space(path: str | os.PathLike) -> dict[str, Distribution]:
    """The `[space]` table of the TOML file at `path` as a space (see this module's docstring for the format).

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "space.toml"
    >>> _ = path.write_text('[space]\\nlr = { loguniform = [1e-3, 1.0] }\\nact = { choice = ["relu", "tanh"] }\\n')
    >>> read_space(path)
    {'lr': loguniform(0.001, 1.0), 'act': choice(['relu', 'tanh'])}
    """
    try:
        with open(path, "rb") as stream:
            entries = tomllib.load(stream)
    except UnicodeDecodeError as error:
        raise DescendValueError(f"space file {path} is not UTF-8 text (offset {error.start}); a TOML file is UTF-8") \
            from None
    except tomllib.TOMLDecodeError as error:
        raise DescendValueError(f"space file {path} is not valid TOML: {error}") from None
    table = entries.get("space")
    if not isinstance(table, dict) or not table:
        raise DescendValueError(f"space file {path} has no [space] table of parameters; expected e.g.\n"
                                "[space]\nlr = { loguniform = [1e-3, 1.0] }")
    return {name: parse_entry(name, entry, path) for name, entry in table.items()}


def parse_entry(name: str, entry: Any, path: str | os.PathLike = "<space>") -> Distribution:
    """One `[space]` entry, `{ loguniform = [1e-3, 1.0] }` or `{ int = [64, 1024], log = true }`, as a distribution.

    >>> parse_entry("hidden", {"int": [64, 1024], "log": True})
    integer(64, 1024, log=True)
    """
    where = f"space file {path}: {name}"
    kinds = [key for key in entry if key in KINDS] if isinstance(entry, dict) else []
    if len(kinds) != 1:
        raise DescendValueError(f"{where} = {entry!r:.100}; expected a table with one of {', '.join(KINDS)}, "
                                "e.g. { loguniform = [1e-3, 1.0] }")
    kind, extra = kinds[0], {key: value for key, value in entry.items() if key != kinds[0]}
    value = entry[kind]
    if set(extra) - ({"log"} if kind == "int" else set()):
        raise DescendValueError(f"{where}: unknown keys {sorted(extra)} beside {kind}"
                                + ("; int takes only log = true" if kind == "int" else ""))
    if kind == "choice":
        if not isinstance(value, list):
            raise DescendValueError(f"{where}: choice takes a list, e.g. {{ choice = ['sgd', 'adam'] }}; got {value!r}")
        return choice(value)
    if not isinstance(value, list) or len(value) != 2:
        raise DescendValueError(f"{where}: {kind} takes [low, high]; got {value!r}")
    if kind == "int":
        log = extra.get("log", False)
        if not isinstance(log, bool):
            raise DescendValueError(f"{where}: log must be true or false; got {log!r}")
        return integer(value[0], value[1], log=log)
    return KINDS[kind](value[0], value[1])


def _check_range(kind: str, low: Any, high: Any, log: bool, whole: bool) -> None:
    """Refuse a bound of the wrong type, a non-finite one, an empty or reversed range, a log range touching 0."""
    for side, bound in (("low", low), ("high", high)):
        wrong = isinstance(bound, bool) or not isinstance(bound, numbers.Integral if whole else numbers.Real)
        if wrong:
            raise DescendTypeError(f"{kind}: {side} must be {'an integer' if whole else 'a real number'}; "
                                   f"got {type(bound).__name__} {bound!r}")
        if not math.isfinite(bound):
            raise DescendValueError(f"{kind}: {side} must be finite; got {bound!r}")
    if not low < high:
        shape = "empty" if low == high else "reversed"
        raise DescendValueError(f"{kind}: the range [{low!r}, {high!r}] is {shape}; expected low < high")
    if log and low <= 0:
        raise DescendValueError(f"{kind}: a log range must be above 0; got low={low!r} (log of {low!r} is not "
                                f"finite), e.g. [{high / 1000:g}, {high!r}]")

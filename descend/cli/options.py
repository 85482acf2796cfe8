"""What the commands' options share: click types and callbacks built from the library's own names and checks.

A callback turns a string from the command line (or a value from a --config file) into what the
library takes, or raises click.BadParameter, which click reports as bad usage (exit 2) naming the option.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any

import click
import numpy as np

from descend.errors import DescendError, SizeLimitError
from descend.memory import physical_memory
from descend.nn import presets
from descend.nn.init import values_limit
from descend.nn.module import Module
from descend.training import ENGINES
from descend.training.step import check_every

#: option types over the library's names
MODEL_CHOICE = click.Choice(presets.NAMES)
CLASSIFIER_CHOICE = click.Choice(presets.CLASSIFIERS)
ENGINE = click.Choice(tuple(ENGINES))
#: a seed for NumPy's generators: an integer >= 0
SEED = click.IntRange(min=0)
#: bytes each starting value of a model costs in training: the float32 weight, its gradient, two optimizer moments
BYTES_PER_VALUE = 16


class FiniteRange(click.FloatRange):
    """click's FloatRange that also refuses nan and inf, which pass its comparisons; bad usage, exit 2."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not np.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


class LateChoice(click.Choice):
    """click's Choice over a tuple of names in a module imported only when the choices are needed.

    `where` is "module:NAME". Spark's sync modes live in descend.spark, whose engine is optional:
    `descend --help` and the commands that never touch Spark should not import it.
    """

    def __init__(self, where: str):
        # click's __init__ would store the choices now; they are looked up on first use instead
        self.where, self.case_sensitive, self._choices = where, True, None

    @property
    def choices(self) -> tuple[str, ...]:
        if self._choices is None:
            module, name = self.where.split(":")
            self._choices = tuple(getattr(importlib.import_module(module), name))
        return self._choices


SYNC = LateChoice("descend.spark.engine:SYNCS")


class DataChoice(click.Choice):
    """click's Choice over the data sets' names that also takes the path of an existing .parquet file or folder of
    them (a user's table, as Spark writes one); bad usage, exit 2, for anything else."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and is_table(value):
            return click.Path(exists=True).convert(value, param, ctx)
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            self.fail(f"{value!r} is neither a data set ({', '.join(map(repr, self.choices))}) nor a .parquet file",
                      param, ctx)


def is_table(data_name: str | None) -> bool:
    """Whether a --data names a user's .parquet file (or a folder of them, as Spark writes one), not a data set.

    >>> is_table("runs/train.parquet/"), is_table("digits")
    (True, False)
    """
    return bool(data_name and data_name.rstrip("/").endswith(".parquet"))


#: the columns of a user's .parquet table (for train and evaluate; predict takes --features alone)
FEATURES = click.option("--features", default="features", show_default=True,
                        help="A .parquet table's column of features (a list of numbers per row).")
LABEL = click.option("--label", default="label", show_default=True,
                     help="A .parquet table's column of integer class labels.")


def check_columns(data_name: str, features: str, label: str | None = None) -> None:
    """Refuse --features or --label (other than their defaults) beside a --data that is a named data set.

    >>> check_columns("digits", "pixels")
    Traceback (most recent call last):
    ...
    click.exceptions.UsageError: --features names a column of a .parquet --data; --data digits has its own
    """
    for flag, value, default in (("--features", features, "features"), ("--label", label, "label")):
        if value is not None and value != default:
            raise click.UsageError(f"{flag} names a column of a .parquet --data; --data {data_name} has its own")


class _NotNumbers(ValueError):
    """A part of a comma-separated value that is not an integer."""


def comma_separated(convert: Callable[[list[str]], Any], expected: str) -> Callable[..., Any]:
    """A callback that splits a comma-separated value, converts the parts and names the option when that fails.

    `convert` raises ValueError with the reason (click adds the option's name); a part that is not
    a number gets "expected `expected`". A list from a --config file arrives already joined by commas.
    """
    def callback(context: click.Context, parameter: click.Parameter, value: Any) -> Any:
        if value is None:
            return None
        parts = [part.strip() for part in str(value).split(",") if part.strip()]
        try:
            return convert(parts)
        except _NotNumbers:
            raise click.BadParameter(f"expected {expected}; got {value!r}") from None
        except ValueError as error:
            raise click.BadParameter(f"{error}; got {value!r}") from None

    return callback


def _integers(parts: list[str]) -> list[int]:
    try:
        return [int(part) for part in parts]
    except ValueError:
        raise _NotNumbers from None


def _layer_widths(parts: list[str]) -> tuple[int, ...] | None:
    sizes = tuple(_integers(parts))
    if any(size < 1 for size in sizes):
        raise ValueError("layer widths must be positive")
    return sizes or None  # an empty --hidden "" keeps the model's own widths


def _digits(parts: list[str]) -> list[int]:
    digits = sorted(set(_integers(parts)))
    if not digits or digits[0] < 0 or digits[-1] > 9:
        raise ValueError("digits must lie in 0..9")
    return digits


def _worker_counts(parts: list[str]) -> list[int]:
    counts = _integers(parts)
    if not counts or min(counts) < 1:
        raise ValueError("worker counts must be positive")
    most = most_workers()
    if max(counts) > most:
        raise ValueError(f"worker counts must be at most {most} (8 per core on this {os.cpu_count()}-core machine)")
    return counts


def most_workers() -> int:
    """The most HOGWILD! workers the library allows on this machine (descend.hogwild.workers.max_workers)."""
    from descend.hogwild.workers import max_workers  # here: descend.hogwild loads numba and scikit-learn

    return max_workers()


def _lock_modes(parts: list[str]) -> list[str]:
    from descend.hogwild.locks import LOCKS  # here: descend.hogwild loads numba and scikit-learn

    unknown = [lock for lock in parts if lock not in LOCKS]
    if not parts or unknown:
        raise ValueError(f"lock modes are {', '.join(LOCKS)}")
    return parts


#: --hidden 512,256 -> (512, 256)
hidden_sizes = comma_separated(_layer_widths, "comma-separated layer widths such as 512,256")
#: --normal 0,1,2 -> [0, 1, 2], sorted, each once
digit_list = comma_separated(_digits, "comma-separated digits such as 0,1,2")
#: --workers 1,2,4 -> [1, 2, 4]
count_list = comma_separated(_worker_counts, "comma-separated worker counts such as 1,2,4")
#: --lock none,mutex -> ["none", "mutex"], each one of HOGWILD!'s lock modes
lock_list = comma_separated(_lock_modes, "lock modes such as none,mutex")
#: --sections 1,5,13 -> [1, 5, 13]
section_numbers = comma_separated(_integers, "comma-separated section numbers such as 1,5,13")


def checkpoint_every(context: click.Context, parameter: click.Parameter, value: Any) -> int | str:
    """--checkpoint-every: "epoch" or a positive number of steps, checked as `fit` checks it."""
    text = str(value)
    if text != "epoch":
        try:
            value = int(text)
        except ValueError:
            raise click.BadParameter(f"expected 'epoch' or a number of steps such as 500; got {text!r}") from None
    try:
        return check_every(value)
    except DescendError:
        raise click.BadParameter(f"a number of steps must be positive; got {text!r}") from None


def named_values(context: click.Context, parameter: click.Parameter, values: tuple[str, ...]) -> dict[str, float]:
    """NAME=NUMBER arguments -> {name: number}; a name given twice is refused (which value would it be?)."""
    inputs = {}
    for item in values:
        name, equals, number = item.partition("=")
        try:
            if not equals or not name.strip():
                raise ValueError
            value = float(number)
        except ValueError:
            raise click.BadParameter(f"expected NAME=NUMBER such as x1=2; got {item!r}") from None
        if name.strip() in inputs:
            raise click.BadParameter(f"{name.strip()} is given twice ({name.strip()}={inputs[name.strip()]:g} and "
                                     f"{item!r}); give each variable once")
        inputs[name.strip()] = value
    return inputs


def within_memory(build: Callable[[], Module], options: str) -> Module:
    """`build()`, a model, under the library's cap on starting values (descend.nn.init.values_limit): at most
    what this machine's memory holds in training. A bigger model is bad usage naming `options` (e.g.
    "--hidden"), refused before the layer that passes the cap is allocated: an absurd width at once, a
    recurrent stack as a whole before its first layer (descend.nn.init.check_room)."""
    memory = physical_memory()
    if memory is None:  # the system does not say: no cap
        return build()
    allowed = memory // BYTES_PER_VALUE
    try:
        with values_limit(allowed):
            return build()
    except SizeLimitError as error:
        raise click.UsageError(
            f"{options} ask for a model too big to train on this machine, whose {memory / 2**30:.1f} GiB hold "
            f"{allowed} values at {BYTES_PER_VALUE} bytes each in training: {error}; choose smaller sizes"
        ) from None

"""The `descend` command: a thin layer over the Python API, built on click.

Exit codes: 0 success, 2 bad usage, 1 failure (a one-line error; the
traceback only with --debug). Every command also takes --config FILE.toml.

One module per command (train, anomaly, hogwild, models: evaluate, predict
and generate, explain, lr_find, tour, bench, tune, spark_cluster), the options they share in
options.py; this module makes the group and registers them on it.
"""

from __future__ import annotations

import json
from typing import Any

import click

from descend.cli import anomaly, bench, explain, hogwild, lr_find, models, spark_cluster, tour, train, tune
from descend.errors import DescendError
from descend.version import __version__


class Group(click.Group):
    """Turns every error but bad usage into a one-line message and exit code 1; the traceback only with --debug."""

    def invoke(self, context: click.Context) -> Any:
        try:
            return super().invoke(context)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise  # bad usage (exit 2), and the exits click reports itself
        except Exception as error:
            if context.params.get("debug"):
                raise
            click.echo(f"error: {one_line(error)}", err=True)
            context.exit(1)


def one_line(error: Exception) -> str:
    """The line `descend` prints for an error: descend's own message as it is; any other is named by its class."""
    if isinstance(error, (DescendError, OSError, ImportError)):
        return str(error)
    if isinstance(error, MemoryError):
        return f"not enough memory: {error}; choose smaller sizes"
    # not one of descend's errors: a bug, still one line without --debug
    return (f"{type(error).__name__}: {error} (a bug in descend: run again with --debug for the traceback, "
            "and report it)")


@click.group(cls=Group)
@click.option("--debug", is_flag=True, help="Show the full traceback when something fails.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Threads for descend's compiled kernels and for BLAS [default: every core].")
@click.option("--kernels", "kernel_backend", type=click.Choice(("numba", "numpy")), default=None,
              help="numba: the compiled kernels; numpy: the NumPy reference alone [default: $DESCEND_KERNELS, "
                   "else numba].")
@click.version_option(__version__, prog_name="descend")
def main(debug: bool, threads: int | None, kernel_backend: str | None) -> None:
    """descend: deep learning from first principles.

    Example: descend train --model mlp --data mnist --epochs 5
    (and: descend --threads 2 train ...)
    """
    from descend import kernels

    if kernel_backend is not None:
        kernels.use(kernel_backend)
    if threads is not None:
        kernels.set_threads(threads)


def read_config(context: click.Context, parameter: click.Parameter, value: str | None) -> None:
    """Make a TOML file's entries this command's defaults: flags on the command line still win.

    The file holds the options as keys (`epochs = 10`, `batch-size = 64`, `hidden = [512, 256]`),
    at its top level or in a table named after the command (`[train]`), so one file can serve several.
    """
    if value is None:
        return
    import tomllib

    try:
        with open(value, "rb") as stream:
            entries = tomllib.load(stream)
    except UnicodeDecodeError as error:
        raise click.BadParameter(f"{value} is not UTF-8 text (byte {error.object[error.start]:#04x} at offset "
                                 f"{error.start}); a TOML file is UTF-8", context, parameter) from None
    except tomllib.TOMLDecodeError as error:
        raise click.BadParameter(f"{value} is not valid TOML: {error}", context, parameter) from None
    command = context.command
    table = entries.get(context.info_name, entries)
    if not isinstance(table, dict):
        raise click.BadParameter(f"{value} sets {context.info_name} = {table!r}; expected a table "
                                 f"[{context.info_name}] of options", context, parameter)
    table = {key: item for key, item in table.items() if not isinstance(item, dict)}
    options = {}
    for option in command.params:
        if isinstance(option, click.Option) and option.expose_value:
            options[option.name] = option
            options.update((flag.lstrip("-").replace("-", "_"), option) for flag in option.opts)
    defaults = {}
    for key, item in table.items():
        option = options.get(key.replace("-", "_"))
        if option is None:
            known = ", ".join(sorted({flag.lstrip("-") for option in command.params if isinstance(option, click.Option)
                                      for flag in option.opts} - {"config", "help"}))
            raise click.BadParameter(f"{value} sets {key!r}, which `descend {context.info_name}` does not have; "
                                     f"its options are {known}", context, parameter)
        expected = _expected_toml(option, item)
        if expected:
            raise click.BadParameter(f"{value} sets {key} = {json.dumps(item, default=str)}, a TOML "
                                     f"{_toml_type(item)}; {option.opts[0]} takes {expected}", context, parameter)
        defaults[option.name] = ",".join(map(str, item)) if isinstance(item, list) else item
    context.default_map = {**(context.default_map or {}), **defaults}


def _expected_toml(option: click.Option, item: Any) -> str | None:
    """What `option` takes when the TOML value `item` is of the wrong type (None when it fits).

    click would convert it silently: int(1.9) is 1 and int(True) is 1, so a file saying
    `epochs = 1.9` or `epochs = true` would train one epoch. Options whose callback reads the
    value (comma-separated lists, --checkpoint-every) check it themselves.
    """
    kind, number = option.type, isinstance(item, (int, float)) and not isinstance(item, bool)
    if option.is_flag or isinstance(kind, click.types.BoolParamType):
        return None if isinstance(item, bool) else "true or false"
    if isinstance(kind, click.types.IntParamType):
        return None if number and isinstance(item, int) else "an integer"
    if isinstance(kind, click.types.FloatParamType):
        return None if number else "a number"
    if option.callback is not None:
        return None
    return None if isinstance(item, str) else "a string"


def _toml_type(item: Any) -> str:
    """TOML's word for the type of a parsed value."""
    names = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array"}
    return next((word for kind, word in names.items() if isinstance(item, kind)), type(item).__name__)


def register(command: click.Command) -> None:
    """Add `command` to `descend`, with the --config FILE.toml option every descend command takes."""
    command.params.append(click.Option(
        ["--config"], type=click.Path(exists=True, dir_okay=False), is_eager=True, expose_value=False,
        callback=read_config, help="Take options from a TOML file (its top level or its [command] table); "
                                   "flags given here win."))
    main.add_command(command)


for _command in (train.train, models.evaluate, models.predict, models.generate, anomaly.anomaly, hogwild.hogwild,
                 explain.explain, lr_find.lr_find, tour.tour, bench.bench, tune.tune,
                 spark_cluster.spark_cluster):
    register(_command)

"""The `descend` command: a thin layer over the Python API, built on click.

Exit codes: 0 success, 2 bad usage, 1 failure (a one-line error; the
traceback only with --debug). Every command also takes --config FILE.toml.

One module per command (train, anomaly, hogwild, models: evaluate, predict
and generate, explain, lr_find, tour, bench), the options they share in
options.py; this module makes the group and registers them on it.
"""

from __future__ import annotations

from typing import Any

import click

from descend.cli import anomaly, bench, explain, hogwild, lr_find, models, tour, train
from descend.errors import DescendError
from descend.version import __version__


class Group(click.Group):
    """Turns descend's own errors into a one-line message and exit code 1."""

    def invoke(self, context: click.Context) -> Any:
        try:
            return super().invoke(context)
        except (DescendError, OSError, ImportError) as error:
            if context.params.get("debug"):
                raise
            click.echo(f"error: {error}", err=True)
            context.exit(1)


@click.group(cls=Group)
@click.option("--debug", is_flag=True, help="Show the full traceback when something fails.")
@click.version_option(__version__, prog_name="descend")
def main(debug: bool) -> None:
    """descend: deep learning from first principles.

    Example: descend train --model mlp --data mnist --epochs 5
    """


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
    except tomllib.TOMLDecodeError as error:
        raise click.BadParameter(f"{value} is not valid TOML: {error}", context, parameter) from None
    command = context.command
    table = entries.get(context.info_name, entries)
    table = {key: item for key, item in table.items() if not isinstance(item, dict)}
    names = {}
    for option in command.params:
        if isinstance(option, click.Option) and option.expose_value:
            names[option.name] = option.name
            names.update((flag.lstrip("-").replace("-", "_"), option.name) for flag in option.opts)
    defaults = {}
    for key, item in table.items():
        name = names.get(key.replace("-", "_"))
        if name is None:
            known = ", ".join(sorted({flag.lstrip("-") for option in command.params if isinstance(option, click.Option)
                                      for flag in option.opts} - {"config", "help"}))
            raise click.BadParameter(f"{value} sets {key!r}, which `descend {context.info_name}` does not have; "
                                     f"its options are {known}", context, parameter)
        defaults[name] = ",".join(map(str, item)) if isinstance(item, list) else item
    context.default_map = {**(context.default_map or {}), **defaults}


def register(command: click.Command) -> None:
    """Add `command` to `descend`, with the --config FILE.toml option every descend command takes."""
    command.params.append(click.Option(
        ["--config"], type=click.Path(exists=True, dir_okay=False), is_eager=True, expose_value=False,
        callback=read_config, help="Take options from a TOML file (its top level or its [command] table); "
                                   "flags given here win."))
    main.add_command(command)


for _command in (train.train, models.evaluate, models.predict, models.generate, anomaly.anomaly, hogwild.hogwild,
                 explain.explain, lr_find.lr_find, tour.tour, bench.bench):
    register(_command)

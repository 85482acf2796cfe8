"""`descend explain`: backpropagation by hand for a formula at a point, as a textbook tabulates it."""

from __future__ import annotations

import json

import click

from descend.cli.options import named_values
from descend.errors import DescendError
from descend.files import write_text


@click.command()
@click.argument("formula")
@click.argument("values", nargs=-1, callback=named_values)
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the tables as an HTML page.")
@click.option("--json", "as_json", is_flag=True, help="Print the value, the gradients and both tables as JSON.")
def explain(formula: str, values: dict[str, float], html_path: str | None, as_json: bool) -> None:
    """Backpropagation by hand: the forward trace and the reverse sweep of adjoints for a formula at a point.

    The formula may use numbers, variables, + - * / ** (or ^) and log, ln, exp, sin, cos, tanh,
    sigmoid, relu, sqrt, abs, softplus.

    Example: descend explain "ln(x1) + x1*x2 - sin(x2)" x1=2 x2=5
    """
    from descend.explain import explain_formula

    try:
        explanation = explain_formula(formula, **values)
    except DescendError as error:  # a formula that cannot be read is bad usage, not a failure
        raise click.UsageError(str(error)) from None
    if html_path:
        write_text(html_path, f"<!doctype html><meta charset='utf-8'>{explanation._repr_html_()}\n", name="--html")
    if as_json:
        click.echo(json.dumps({"forward": explanation.forward_rows, "reverse": explanation.reverse_rows,
                               "summary": explanation.summary_lines()}))
    else:
        click.echo(str(explanation))

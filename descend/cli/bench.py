"""`descend bench`: one side-by-side benchmark script of benchmarks/, run with the arguments given."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from descend.errors import DescendError

#: benchmark name -> its script in benchmarks/
BENCHMARKS = {"mlp": "mlp_mnist.py", "cnn": "cnn_mnist.py", "rnn": "char_rnn.py", "anomaly": "anomaly_mnist.py",
              "hogwild": "hogwild.py", "spark": "spark_mnist.py"}
#: benchmarks/ of this checkout: beside the descend package
CHECKOUT_BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("name", type=click.Choice(tuple(BENCHMARKS)))
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
@click.option("--benchmarks", "benchmarks_dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="The benchmarks folder [default: benchmarks/ of this checkout].")
def bench(name: str, arguments: tuple[str, ...], benchmarks_dir: str | None) -> None:
    """Run one side-by-side benchmark (descend against PyTorch, scikit-learn or Spark MLlib in the same run).

    Arguments after the name go to the benchmark script (after `--` for its own --help). The
    figures print as the benchmark goes; nothing is asserted.

    Example: descend bench mlp --epochs 2      (and: descend bench mlp -- --help)
    """
    folder = Path(benchmarks_dir) if benchmarks_dir else CHECKOUT_BENCHMARKS
    script = folder / BENCHMARKS[name]
    if not script.is_file():
        raise click.UsageError(f"no {script}; pass --benchmarks with the folder of descend's benchmark scripts")
    done = subprocess.run([sys.executable, str(script), *arguments])
    if done.returncode:
        raise DescendError(f"the {name} benchmark stopped with exit code {done.returncode}")

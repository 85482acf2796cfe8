"""`descend bench`: the whole benchmark suite (benchmarks/suite.py), or one benchmark script of benchmarks/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
from click.core import ParameterSource

from descend.errors import DescendError

#: benchmark name -> its script in benchmarks/
BENCHMARKS = {"mlp": "mlp_mnist.py", "cnn": "cnn_mnist.py", "rnn": "char_rnn.py", "anomaly": "anomaly_mnist.py",
              "hogwild": "hogwild.py", "spark": "spark_mnist.py", "tune": "tune_mnist.py"}
#: the suite every workload runs in, side by side with PyTorch
SUITE = "suite.py"
#: benchmarks/ of this checkout: beside the descend package
CHECKOUT_BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
#: the suite's options: parameter name -> its flag in benchmarks/suite.py ("mode" is --quick/--full)
SUITE_OPTIONS = {"mode": "", "rounds": "--rounds", "threads": "--threads", "kernels": "--kernels",
                 "workloads": "--workloads", "json_path": "--json", "profile": "--profile"}


def suite_arguments(context: click.Context, given_only: bool) -> list[str]:
    """The suite's options of this command as command-line arguments; with `given_only`, only those the user set.

    A benchmark script gets only the options the user set (`descend bench rnn --rounds 5` as before the
    suite existed); the suite gets them all.
    """
    arguments = []
    for name, flag in SUITE_OPTIONS.items():
        value = context.params[name]
        if given_only and context.get_parameter_source(name) not in (ParameterSource.COMMANDLINE, ParameterSource.DEFAULT_MAP):
            continue
        if name == "mode":
            arguments.append(f"--{value}")
        elif name == "profile":
            arguments += ["--profile"] if value else []
        elif value is not None:
            arguments += [flag, str(value)]
    return arguments


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("name", required=False, type=click.Choice(tuple(BENCHMARKS)))
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
@click.option("--quick", "mode", flag_value="quick", default=True,
              help="The suite's short timings, a few minutes on two cores [the default].")
@click.option("--full", "mode", flag_value="full",
              help="Longer timings and the accuracy runs (MLP, CNN, LSTM): about 30-40 minutes on two cores.")
@click.option("--rounds", type=click.IntRange(min=1), default=None,
              help="Alternating rounds per workload; the medians count [default: 2, 3 with --full].")
@click.option("--threads", type=click.IntRange(min=1), default=2, show_default=True,
              help="Threads of each side's process (torch's, and descend's kernels and BLAS).")
@click.option("--kernels", type=click.Choice(["numba", "numpy"]), default=None,
              help="descend's kernels, as DESCEND_KERNELS of its side [default: descend's choice].")
@click.option("--workloads", default=None,
              help="Comma-separated workloads of the suite: mlp128, mlp32, cnn, lstm, gru, rnn, autoencoder, capsnet "
                   "[default: all].")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Write every figure, the medians and the machine to this file (benchmarks/report.py reads it).")
@click.option("--profile", is_flag=True, help="Also print where descend's time goes, op by op.")
@click.option("--benchmarks", "benchmarks_dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="The benchmarks folder [default: benchmarks/ of this checkout].")
@click.pass_context
def bench(context: click.Context, name: str | None, arguments: tuple[str, ...], mode: str, rounds: int | None,
          threads: int, kernels: str | None, workloads: str | None, json_path: str | None, profile: bool,
          benchmarks_dir: str | None) -> None:
    """Benchmark descend against PyTorch: every workload of the suite, or the benchmark NAME.

    Without NAME, the suite runs each workload (MLP, CNN, LSTM, GRU, RNN, autoencoder, CapsNet) with
    descend and with PyTorch, each side in its own process, alternating, and prints one table: time per
    step, the ratio, the target and whether it is met, the losses or accuracies, descend's kernels.

    With NAME, one side-by-side benchmark script of benchmarks/ runs with the arguments after the name
    (after `--` for its own --help); the suite's options given go to it too. Nothing is asserted.

    Example: descend bench --workloads mlp128,cnn      (and: descend bench mlp --epochs 2)
    """
    folder = Path(benchmarks_dir) if benchmarks_dir else CHECKOUT_BENCHMARKS
    if name is None:
        if arguments:
            raise click.UsageError(f"{' '.join(arguments)}: not an option of the suite; see descend bench --help")
        script, script_arguments = folder / SUITE, suite_arguments(context, given_only=False)
    else:
        script, script_arguments = folder / BENCHMARKS[name], [*arguments, *suite_arguments(context, given_only=True)]
    if not script.is_file():
        raise click.UsageError(f"no {script}; pass --benchmarks with the folder of descend's benchmark scripts")
    done = subprocess.run([sys.executable, str(script), *script_arguments])
    if done.returncode == 2 and name is None:
        context.exit(2)  # the suite refused its options (an unknown workload): bad usage, and it said why
    if done.returncode:
        raise DescendError(f"the {name or 'suite'} benchmark stopped with exit code {done.returncode}")

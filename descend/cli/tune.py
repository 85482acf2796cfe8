"""`descend tune`: hyperparameter search over a preset model's parameters, into a run folder, resumable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from descend.cli.datasets import BATCH_SIZES, DATASETS, check_fits, load_splits
from descend.cli.options import CLASSIFIER_CHOICE, SEED
from descend.files import write_text

#: the command's own record in the run folder: what --resume reads back (the study's is study.json)
OPTIONS_FILE = "tune.json"
#: the options a resumed search takes from OPTIONS_FILE (--trials, --quiet and --json may be given anew)
KEPT = ("model_name", "data_name", "space", "epochs", "batch_size", "metric", "direction", "sampler", "pruner",
        "seed", "storage")


@click.command()
@click.option("--model", "model_name", type=CLASSIFIER_CHOICE, default="mlp", show_default=True,
              help="The preset whose parameters are searched.")
@click.option("--data", "data_name", type=click.Choice(DATASETS), default="mnist", show_default=True)
@click.option("--space", "space_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A TOML file whose [space] table gives each parameter's range, e.g. "
                   "lr = { loguniform = [1e-3, 1.0] } (parameters: lr, momentum, hidden, dropout, weight_decay, "
                   "optimizer, activation, batch_size).")
@click.option("--trials", type=int, default=20, show_default=True, help="Trials to finish (a resumed study's count).")
@click.option("--epochs", type=click.IntRange(min=1), default=3, show_default=True, help="Most epochs per trial.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="[128; 32 for digits]")
@click.option("--metric", default="val_accuracy", show_default=True, help="The epoch record's key to optimize.")
@click.option("--direction", type=click.Choice(("maximize", "minimize")), default=None,
              help="[minimize for a loss, else maximize]")
@click.option("--sampler", type=click.Choice(("tpe", "random")), default="tpe", show_default=True)
@click.option("--pruner", type=click.Choice(("asha", "hyperband", "median", "none")), default="asha",
              show_default=True)
@click.option("--parallel", type=click.IntRange(min=1), default=None,
              help="Trials at once [1; spark: the cluster's cores]: local worker processes, or Spark tasks.")
@click.option("--backend", type=click.Choice(("local", "spark")), default="local", show_default=True)
@click.option("--master", default="local[*]", show_default=True, help="Spark master for --backend spark.")
@click.option("--storage", default=None,
              help="Database URL of the study [RUN/study.db, SQLite]; e.g. postgresql://... for a cluster.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Run folder [default: runs/tune-MODEL-DATA].")
@click.option("--resume", "resume_dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Go on with the study in this folder with the options it was started with (only --trials, "
                   "--parallel, --backend, --master, --quiet and --json may be given too).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the best trial as JSON instead of the table.")
@click.pass_context
def tune(context: click.Context, resume_dir: str | None, out_dir: str | None, trials: int, parallel: int | None,
         backend: str, master: str, quiet: bool, as_json: bool, **given: Any) -> None:
    """Search a preset's hyperparameters with Optuna (TPE, pruning bad trials early); keep the best model.

    Writes into the run folder: study.db, trials.csv, best.dsc, history.png, parameters.png, importances.png.

    Example: descend tune --model mlp --data mnist --space space.toml --trials 40 --parallel 2
    """
    from descend import tune as tuning
    from descend.errors import DescendValueError

    if trials <= 0:
        raise click.BadParameter(f"must be at least 1; got {trials}", context, param_hint="--trials")
    if resume_dir is not None:
        options = _resumed(context, Path(resume_dir), given, out_dir)
        run = Path(resume_dir)
    else:
        if given["space_path"] is None:
            raise click.UsageError("--space FILE.toml is needed (or --resume RUN)")
        space_entries = _space_entries(given.pop("space_path"))
        options = {**given, "space": space_entries}
        run = Path(out_dir or f"runs/tune-{options['model_name']}-{options['data_name']}")
    options["direction"] = options["direction"] or ("minimize" if "loss" in options["metric"] else "maximize")
    space = {name: tuning.space.parse_entry(name, entry) for name, entry in options["space"].items()}
    tuning.presets.check_names(space, options["model_name"])
    check_fits(options["model_name"], options["data_name"])
    from descend.nn import presets

    train, validation, _ = load_splits(options["data_name"], images=options["model_name"] in presets.IMAGE_MODELS)
    spark = None
    if backend == "spark":
        from descend.spark.session import spark_session

        spark = spark_session(master)
    record = run / OPTIONS_FILE
    wrote_record = resume_dir is None and not (run / "study.json").exists()
    if wrote_record:
        run.mkdir(parents=True, exist_ok=True)
        write_text(record, json.dumps(options, indent=1) + "\n")
    try:
        study = tuning.search(
            tuning.presets.PresetBuild(options["model_name"], train), space, train, validation=validation,
            metric=options["metric"], direction=options["direction"], trials=trials, epochs=options["epochs"],
            batch_size=options["batch_size"] or BATCH_SIZES[options["data_name"]], sampler=options["sampler"],
            pruner=options["pruner"], parallel=parallel, backend=backend, run=run, storage=options["storage"],
            resume=resume_dir is not None, seed=options["seed"], spark=spark, progress=not quiet)
    except DescendValueError:
        if wrote_record and not (run / "study.json").exists():  # refused before the study began: leave no trace
            record.unlink(missing_ok=True)
            if not any(run.iterdir()):
                run.rmdir()
        raise
    if as_json:
        click.echo(json.dumps({"best_trial": study.best_number, "best_value": study.best_value,
                               "best_params": study.best_params, "run": str(run)}))
        return
    rows = sorted(study.trials, key=lambda row: (row["state"] != "COMPLETE",
                                                 -(row["value"] or 0.0) if options["direction"] == "maximize"
                                                 else (row["value"] or 0.0)))
    click.echo(tuning.results.table(rows, study.best_number))
    click.echo(f"best: trial {study.best_number}, {options['metric']} {study.best_value:.4f}, {study.best_params}\n"
               f"written to {run}: trials.csv, best.dsc, history.png, parameters.png, importances.png")


def _space_entries(path: str) -> dict[str, Any]:
    """The [space] table of the TOML file `path`, checked by reading it as a space, as JSON-ready entries."""
    import tomllib

    from descend.tune.space import read_space

    read_space(path)
    with open(path, "rb") as stream:
        return tomllib.load(stream)["space"]


def _resumed(context: click.Context, run: Path, given: dict[str, Any], out_dir: str | None) -> dict[str, Any]:
    """The options RUN/tune.json recorded; bad usage if other options were given, or RUN holds no such record."""
    record = run / OPTIONS_FILE
    if not record.exists():
        raise click.UsageError(f"{run} holds no `descend tune` study ({OPTIONS_FILE} is missing); start one with "
                               "--space and --out")
    changed = [name for name, value in given.items()
               if context.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE]
    if changed or out_dir is not None:
        raise click.UsageError(f"--resume goes on with the options the study was started with; drop "
                               f"{', '.join('--' + name.replace('_name', '').replace('_path', '').replace('_', '-') for name in changed) or '--out'}")
    options = json.loads(record.read_text())
    missing = [name for name in KEPT if name not in options]
    if missing:
        raise click.UsageError(f"{record} lacks {', '.join(missing)}; it is not a record descend tune wrote")
    return options

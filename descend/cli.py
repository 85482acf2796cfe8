"""The `descend` command: a thin layer over the Python API, built on click.

Exit codes: 0 success, 2 bad usage, 1 failure (a one-line error; the
traceback only with --debug).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import numpy as np

import descend as dc
from descend import nn, optim
from descend.errors import DescendError
from descend.files import write_atomically

MODELS = ("mlp", "logistic", "cnn", "lenet", "capsnet")
CHAR_MODELS = ("char-lstm", "char-gru", "char-rnn")
TEXTS = ("shakespeare",)
IMAGE_MODELS = ("cnn", "lenet", "capsnet")
DATASETS = ("mnist", "digits")


class _FiniteRange(click.FloatRange):
    """click's FloatRange that also refuses nan and inf, which pass its comparisons; bad usage, exit 2."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not np.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def _load_data(name: str, images: bool = False) -> tuple[Any, Any, Any]:
    """(train, validation, test): the test split is kept out of training and model choice.

    With `images`, x is (N, 1, side, side) for convolutional models.
    """
    if name == "mnist":
        return dc.data.load_mnist(shape="images" if images else "flat", validation_split=True)
    train, test = dc.data.load_digits()
    parts = (*train.split(0.8, seed=0), test)
    if images:
        parts = tuple(dc.data.Dataset(part.x.reshape(-1, 1, 8, 8), part.y, name=part.name) for part in parts)
    return parts


def _build_model(name: str, train_set: Any, hidden: list[int] | None, dropout: float, seed: int) -> nn.Module:
    n_classes = train_set.n_classes
    if name == "logistic":
        return nn.LogisticRegression(train_set.n_features, n_classes, rng=seed)
    if name == "cnn":
        width = hidden[0] if hidden else 128
        return nn.SimpleCNN(n_classes, image_size=train_set.x.shape[-1], hidden=width, dropout=dropout, rng=seed)
    if name in ("lenet", "capsnet") and train_set.x.shape[-1] != 28:
        raise click.UsageError(f"{name} is built for 28x28 images; use --data mnist")
    if name == "lenet":
        return nn.LeNet5(n_classes, rng=seed)
    if name == "capsnet":  # a laptop's CapsNet unless --hidden says otherwise (256,32 is the paper's)
        conv_channels, primary_caps = (hidden + [8])[:2] if hidden else (64, 8)
        return nn.CapsNet(conv_channels=conv_channels, primary_caps=primary_caps, n_classes=n_classes, rng=seed)
    sizes = hidden if hidden else [512, 256]
    return nn.MLP([train_set.n_features, *sizes, n_classes], activation="relu", dropout=dropout, rng=seed)


def _loss_for(model: nn.Module) -> nn.Module:
    """What a classifier trains on: the margin loss with the paper's reconstruction for a CapsNet, else cross-entropy."""
    if isinstance(model, nn.CapsNet):
        return nn.MarginLoss(reconstruction_weight=0.0005 if model.decoder is not None else 0.0)
    return nn.CrossEntropyLoss()


def _optimizer_for(model: nn.Module, lr: float | None, momentum: float, weight_decay: float, decay: float) -> Any:
    """Adam at 1e-3 for a CapsNet, as in the paper; SGD with momentum and inverse-time decay for the others."""
    if isinstance(model, nn.CapsNet):
        return optim.Adam(model.parameters(), lr=lr or 1e-3)
    return optim.SGD(model.parameters(), lr=lr or 0.05, momentum=momentum, weight_decay=weight_decay,
                     schedule=optim.InverseTimeDecay(decay=decay) if decay > 0 else None)


def _hidden_sizes(context: click.Context, parameter: click.Parameter, value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        sizes = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated layer widths such as 512,256; got {value!r}") from None
    if any(size < 1 for size in sizes):
        raise click.BadParameter(f"layer widths must be positive; got {value!r}")
    return sizes


def _read_config(context: click.Context, parameter: click.Parameter, value: str | None) -> None:
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


class _Command(click.Command):
    """A descend command: it takes --config FILE.toml besides its own options."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.params.append(click.Option(
            ["--config"], type=click.Path(exists=True, dir_okay=False), is_eager=True, expose_value=False,
            callback=_read_config, help="Take options from a TOML file (its top level or its [command] table); "
                                        "flags given here win."))


class _Group(click.Group):
    """Turns descend's own errors into a one-line message and exit code 1; its commands take --config."""

    command_class = _Command

    def invoke(self, context: click.Context) -> Any:
        try:
            return super().invoke(context)
        except (DescendError, OSError, ImportError) as error:
            if context.params.get("debug"):
                raise
            click.echo(f"error: {error}", err=True)
            context.exit(1)


@click.group(cls=_Group)
@click.option("--debug", is_flag=True, help="Show the full traceback when something fails.")
@click.version_option(dc.__version__, prog_name="descend")
def main(debug: bool) -> None:
    """descend: deep learning from first principles.

    Example: descend train --model mlp --data mnist --epochs 5
    """


class _Report(dc.Callback):
    """Writes each epoch's record to metrics.jsonl and prints it as a line or as JSON."""

    def __init__(self, run: Path, epochs: int, quiet: bool, as_json: bool):
        self.run, self.epochs, self.quiet, self.as_json = run, epochs, quiet, as_json

    def on_epoch_end(self, state: dc.TrainingState, record: dict[str, float]) -> None:
        # the whole History each time, atomically: a resumed run's file never repeats or loses a line
        lines = "".join(json.dumps(epoch) + "\n" for epoch in state.history.epochs)
        write_atomically(self.run / "metrics.jsonl", lambda stream: stream.write(lines.encode()))
        if self.as_json:
            click.echo(json.dumps(record))
        elif not self.quiet:
            shown = "  ".join(f"{name} {value:.4f}" for name, value in record.items()
                              if name not in ("epoch", "lr", "seconds"))
            click.echo(f"epoch {record['epoch']}/{self.epochs}  {shown}  lr {record['lr']:.4g}  {record['seconds']:.1f}s")


def _checkpoint_every(context: click.Context, parameter: click.Parameter, value: Any) -> int | str:
    if str(value) == "epoch":
        return "epoch"
    try:
        steps = int(value)
    except ValueError:
        raise click.BadParameter(f"expected 'epoch' or a number of steps such as 500; got {value!r}") from None
    if steps < 1:
        raise click.BadParameter(f"a number of steps must be positive; got {value!r}")
    return steps


@main.command()
@click.option("--model", "model_name", type=click.Choice(MODELS + CHAR_MODELS), default="mlp", show_default=True,
              help="What to train.")
@click.option("--data", "data_name", type=click.Choice(DATASETS + TEXTS), default=None,
              help="Data set [mnist; shakespeare for char models].")
@click.option("--text", "text_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A .txt file to train a char model on instead of --data.")
@click.option("--epochs", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="[128; 64 for char models]")
@click.option("--lr", type=_FiniteRange(min=0, min_open=True), default=None,
              help="Learning rate [SGD 0.05; Adam 1e-3 for capsnet, 2e-3 for char models].")
@click.option("--momentum", type=_FiniteRange(0, 1, max_open=True), default=0.9, show_default=True)
@click.option("--hidden", default=None, callback=_hidden_sizes,
              help="Hidden layer widths [mlp: 512,256; cnn: its dense width, 128; char models: 256; "
                   "capsnet: convolution channels and primary capsule types, 64,8 (the paper's: 256,32)].")
@click.option("--layers", type=click.IntRange(min=1), default=1, show_default=True, help="Recurrent layers.")
@click.option("--embed", type=click.IntRange(min=1), default=64, show_default=True, help="Character embedding size.")
@click.option("--seq-length", type=click.IntRange(min=1), default=64, show_default=True,
              help="Characters per training sequence.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Train on the first N examples only.")
@click.option("--dropout", type=_FiniteRange(0, 1, max_open=True), default=0.2, show_default=True)
@click.option("--weight-decay", type=_FiniteRange(min=0), default=1e-4, show_default=True, help="L2 penalty.")
@click.option("--decay", type=_FiniteRange(min=0), default=1e-4, show_default=True,
              help="Inverse-time learning-rate decay per step.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--engine", type=click.Choice(("local", "hogwild", "spark")), default="local", show_default=True,
              help="local: this process; hogwild: lock-free worker processes on one shared buffer; "
                   "spark: data-parallel on a Spark cluster (mlp, logistic).")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="HOGWILD! worker processes [one per core].")
@click.option("--master", default="local[*]", show_default=True, help="Spark master for --engine spark (local[2], yarn, spark://host:7077).")
@click.option("--sync", type=click.Choice(("average", "gradient")), default="average", show_default=True,
              help="Spark: average models every --sync-every steps, or sum gradients every step.")
@click.option("--sync-every", type=click.IntRange(min=1), default=50, show_default=True, help="Spark: local steps per round.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None, help="Run folder [default: runs/MODEL-DATA].")
@click.option("--checkpoint-every", default="epoch", show_default=True, callback=_checkpoint_every,
              help="Write a checkpoint into RUN/checkpoints every N steps, or at the end of every epoch (local engine).")
@click.option("--resume", "resume_dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Go on with the run in this folder from its newest good checkpoint, with the options it was "
                   "started with (only --epochs, to train longer, --quiet and --json may be given too).")
@click.option("--quiet", is_flag=True, help="No progress bar or per-epoch lines.")
@click.option("--json", "as_json", is_flag=True, help="Print each epoch's metrics as a JSON line.")
@click.pass_context
def train(context: click.Context, resume_dir: str | None, quiet: bool, as_json: bool, **options: Any) -> None:
    """Train a model, validate each epoch, test once at the end; write the model and metrics to a run folder.

    The run folder gets run.json (the options), checkpoints/ (local engine),
    model.dsc, metrics.jsonl and curves.png. Convolutional models (cnn,
    lenet) also get their first-layer filters and one image's feature maps
    drawn as PNGs; character models get a sample of generated text and their
    vocabulary (vocab.json) for `descend generate`. A run that was killed
    goes on with `descend train --resume RUN` and ends with the same model,
    bit for bit, as if it had never stopped.

    Example: descend train --model mlp --data mnist --epochs 5
    """
    if resume_dir is not None:
        options = _resumed_options(context, Path(resume_dir), options)
    _check_train_options(**options)
    run = Path(resume_dir) if resume_dir is not None else _run_folder(options)
    run.mkdir(parents=True, exist_ok=True)
    if resume_dir is None:  # a new run in an old run's folder replaces it, its checkpoints too
        for old in (run / "checkpoints").glob("checkpoint-*.dsc"):
            old.unlink()
    record = {"command": "train", "options": options}
    write_atomically(run / "run.json", lambda stream: stream.write((json.dumps(record, indent=1) + "\n").encode()))
    summary = _train(run, resume_dir is not None, quiet, as_json, **options)
    if as_json:
        click.echo(json.dumps({key: value for key, value in summary.items() if key != "lines"}))
    else:
        for line in summary["lines"]:
            click.echo(line)


def _run_folder(options: dict[str, Any]) -> Path:
    """--out, else runs/MODEL-DATA."""
    if options["out_dir"]:
        return Path(options["out_dir"])
    default_data = "shakespeare" if options["model_name"] in CHAR_MODELS else "mnist"
    source = "text" if options["text_path"] else options["data_name"] or default_data
    return Path(f"runs/{options['model_name']}-{source}")


#: what `descend train --resume RUN` lets the command line change: everything else comes from RUN/run.json
_RESUMABLE_OPTIONS = ("epochs",)


def _resumed_options(context: click.Context, run: Path, given: dict[str, Any]) -> dict[str, Any]:
    """The options a run was started with (its run.json), with --epochs from the command line if given."""
    from click.core import ParameterSource

    try:
        record = json.loads((run / "run.json").read_text())
        saved = record["options"]
    except (OSError, ValueError, KeyError, TypeError):
        raise click.UsageError(
            f"--resume {run}: no readable run.json there; it is not the folder of a descend train run"
        ) from None
    if not isinstance(saved, dict) or set(saved) != set(given):
        raise click.UsageError(f"--resume {run}: its run.json was written by another version of descend train")
    clashing = [name for name in given if name not in _RESUMABLE_OPTIONS
                and context.get_parameter_source(name) is ParameterSource.COMMANDLINE]
    if clashing:
        flags = ", ".join(next(p.opts[0] for p in context.command.params if p.name == name) for name in clashing)
        raise click.UsageError(f"--resume takes the run's own options from {run / 'run.json'}; "
                               f"{flags} cannot change them (only --epochs, --quiet and --json can be given)")
    if saved["engine"] != "local":
        raise click.UsageError(f"--resume {run}: that run used --engine {saved['engine']}; only local runs can resume")
    if context.get_parameter_source("epochs") is ParameterSource.COMMANDLINE:
        return {**saved, "epochs": given["epochs"]}
    return saved


def _check_train_options(model_name: str, data_name: str | None, text_path: str | None, engine: str,
                         workers: int | None, **others: Any) -> None:
    """Refuse options that do not go together, naming both."""
    character_model = model_name in CHAR_MODELS
    data_name = data_name or ("shakespeare" if character_model else "mnist")
    if character_model != (data_name in TEXTS or text_path is not None):
        raise click.UsageError(f"--model {model_name} does not go with --data {data_name}: "
                               "char models learn from text (shakespeare or --text), the others from mnist or digits")
    if workers is not None and engine != "hogwild":
        raise click.UsageError("--workers is for --engine hogwild")
    if character_model and engine != "local":
        raise click.UsageError("char models carry their state from batch to batch; train them with --engine local")
    if engine == "spark" and model_name in IMAGE_MODELS:
        raise click.UsageError("--engine spark trains models of flat features: --model mlp or logistic")
    if engine != "local" and others["checkpoint_every"] != "epoch":
        raise click.UsageError("--checkpoint-every is for --engine local: HOGWILD! and Spark runs cannot be resumed")


def _train(run: Path, resume: bool, quiet: bool, as_json: bool, model_name: str, data_name: str | None,
           text_path: str | None, epochs: int, batch_size: int | None, lr: float | None, momentum: float,
           hidden: list[int] | None, layers: int, embed: int, seq_length: int, limit: int | None, dropout: float,
           weight_decay: float, decay: float, seed: int, engine: str, workers: int | None, master: str, sync: str,
           sync_every: int, out_dir: str | None, checkpoint_every: int | str) -> dict[str, Any]:
    """Train as `descend train` was asked to, into the folder `run`; the summary to print."""
    report = _Report(run, epochs, quiet, as_json)
    checkpoints = {"checkpoint": run / "checkpoints", "checkpoint_every": checkpoint_every, "resume": resume}
    if model_name in CHAR_MODELS:
        return _train_char_model(model_name, text_path or data_name or "shakespeare", epochs, batch_size or 64,
                                 lr or 2e-3, (hidden or [256])[0], layers, embed, seq_length, limit, dropout, seed,
                                 run, report, progress=not (quiet or as_json), checkpoints=checkpoints)
    return _train_classifier(model_name, data_name or "mnist", epochs, batch_size or 128, lr, momentum, hidden,
                             limit, dropout, weight_decay, decay, seed, run, report, progress=not (quiet or as_json),
                             engine=engine, workers=workers,
                             spark={"master": master, "sync": sync, "sync_every": sync_every},
                             checkpoints=checkpoints if engine == "local" else {})


def _plot_run(history: Any, run: Path, title: str) -> Path:
    """curves.png in the run folder: loss, accuracy and learning rate by epoch."""
    from descend import viz

    return viz.plot_history(history, run / "curves.png", title)


def _train_classifier(model_name, data_name, epochs, batch_size, lr, momentum, hidden, limit, dropout,
                      weight_decay, decay, seed, run, report, progress, engine, workers, spark,
                      checkpoints) -> dict[str, Any]:
    train_set, validation_set, test_set = _load_data(data_name, images=model_name in IMAGE_MODELS)
    train_set = train_set[:limit] if limit else train_set
    model = _build_model(model_name, train_set, hidden, dropout, seed)
    optimizer, loss_fn = _optimizer_for(model, lr, momentum, weight_decay, decay), _loss_for(model)
    if engine == "spark":
        from descend.spark import fit_spark, spark_session, to_dataframe

        session = spark_session(spark["master"])
        history = fit_spark(model, nn.CrossEntropyLoss(), optimizer, to_dataframe(session, train_set), epochs=epochs,
                            batch_size=batch_size, sync=spark["sync"], sync_every=spark["sync_every"], seed=seed,
                            validation=to_dataframe(session, validation_set), callbacks=[report])
    else:
        history = dc.fit(model, loss_fn, optimizer, train_set, epochs=epochs, batch_size=batch_size,
                         validation=validation_set, seed=seed, callbacks=[report], progress=progress, engine=engine,
                         workers=workers, **checkpoints)
    model_path = dc.save(model, run / "model.dsc", optimizer=optimizer)
    _plot_run(history, run, f"{model_name} on {data_name} ({engine} engine)")
    test = {f"test_{name}": value for name, value in dc.evaluate(model, loss_fn, test_set).items()}
    (run / "test.json").write_text(json.dumps(test) + "\n")
    pictures = []
    if model_name == "capsnet":
        pictures = _capsule_pictures(model, test_set, run)
    elif model_name in IMAGE_MODELS:
        from descend import viz

        pictures = [viz.plot_filters(model.layers[0], run / "filters.png"),
                    viz.plot_feature_maps(model, test_set.x[0], run / "feature_maps.png")]
    return {**test, "lines": [f"test loss {test['test_loss']:.4f}  test acc {test['test_accuracy']:.4f}",
                              f"model written to {model_path}; metrics.jsonl; curves.png"
                              + "".join(f"; {p.name}" for p in pictures)]}


def _capsule_pictures(model: nn.CapsNet, test_set: Any, run: Path) -> list[Path]:
    """reconstructions.png (ten test digits over their decoder images) and perturbations.png (the paper's figure 4)."""
    from descend import viz

    predicted, pictures = model.reconstructions(test_set.x[:10])
    labels = [f"{truth} as {guess}" for truth, guess in zip(test_set.y[:10], predicted)]
    digit, nudged = model.perturbations(test_set.x[0])
    return [viz.plot_reconstructions(test_set.x[:10], pictures, run / "reconstructions.png", labels,
                                     "Test digits (top) and what their longest capsule decodes to (bottom)"),
            viz.plot_capsule_perturbations(nudged, nn.capsules.PERTURBATION_STEPS, run / "perturbations.png", digit)]


def _train_char_model(model_name, source, epochs, batch_size, lr, hidden, layers, embed, seq_length, limit,
                      dropout, seed, run, report, progress, checkpoints) -> dict[str, Any]:
    text = dc.data.load_text(source)
    train_set = text.sequences(seq_length)
    train_set = train_set[:limit] if limit else train_set
    validation_set = text.sequences(seq_length, split="validation")
    validation_set = validation_set[: max(1, limit // 10)] if limit else validation_set
    model = nn.CharRNN(text.vocab_size, embed=embed, hidden=hidden, layers=layers, cell=model_name.split("-")[1],
                       dropout=dropout if layers > 1 else 0.0, rng=seed)
    optimizer = optim.Adam(model.parameters(), lr=lr)
    history = dc.fit(model, nn.CrossEntropyLoss(), optimizer, train_set, epochs=epochs, batch_size=batch_size,
                     validation=validation_set, seed=seed, callbacks=[report], progress=progress, clip_grad_norm=5.0,
                     **checkpoints)
    model_path = dc.save(model, run / "model.dsc", optimizer=optimizer)
    _plot_run(history, run, f"{model_name} on {source}")
    (run / "vocab.json").write_text(json.dumps({"source": str(source), "vocab": text.vocab}) + "\n")
    prompt = next((p for p in ("ROMEO:", "\n") if all(ch in text.vocab for ch in p)), text.vocab[0])
    sample = model.generate(text, prompt=prompt, length=200, temperature=0.8, seed=seed)
    (run / "sample.txt").write_text(sample + "\n")
    written = f"model written to {model_path}; metrics.jsonl; curves.png; vocab.json; sample.txt"
    return {"sample": sample, "lines": ["sample:", sample, written]}


def _digit_list(context: click.Context, parameter: click.Parameter, value: str) -> list[int]:
    try:
        digits = sorted({int(part) for part in value.split(",") if part.strip()})
    except ValueError:
        raise click.BadParameter(f"expected comma-separated digits such as 0,1,2; got {value!r}") from None
    if not digits or digits[0] < 0 or digits[-1] > 9:
        raise click.BadParameter(f"digits must lie in 0..9; got {value!r}")
    return digits


@main.command()
@click.option("--data", "data_name", type=click.Choice(("mnist",)), default="mnist", show_default=True)
@click.option("--normal", default="0,1,2,3,4,5,6,7,8", show_default=True, callback=_digit_list,
              help="Digits the autoencoder learns as normal.")
@click.option("--anomalous", default="9", show_default=True, callback=_digit_list, help="Digits held out as anomalies.")
@click.option("--code", "code_size", type=click.IntRange(min=1), default=64, show_default=True, help="Code size.")
@click.option("--epochs", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--contamination", type=_FiniteRange(0, 0.5, min_open=True), default=0.01, show_default=True,
              help="Fraction of normal training rows the threshold flags.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Train on the first N normal images only.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="runs/anomaly-mnist", show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def anomaly(data_name: str, normal: list[int], anomalous: list[int], code_size: int, epochs: int, contamination: float,
            limit: int | None, seed: int, out_dir: str, quiet: bool, as_json: bool) -> None:
    """Train an autoencoder on normal digits and score held-out digits as anomalies.

    Prints ROC AUC and average precision on the test set, and saves a
    histogram of the scores and a grid of the worst reconstructions.

    Example: descend anomaly --data mnist --normal 0,1,2,3,4,5,6,7,8 --anomalous 9
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    from descend import anomaly as detection
    from descend import viz

    if set(normal) & set(anomalous):
        raise click.UsageError(f"digits {sorted(set(normal) & set(anomalous))} are both normal and anomalous")
    train_set, test_set = dc.data.load_mnist()
    normal_train = train_set[np.isin(train_set.y, normal)]
    normal_train = normal_train[:limit] if limit else normal_train
    test_set = test_set[np.isin(test_set.y, normal + anomalous)]
    model = nn.Autoencoder([784, 256, code_size], activation="relu", output="sigmoid", rng=seed)
    run = Path(out_dir)
    run.mkdir(parents=True, exist_ok=True)
    history = dc.fit(model, nn.MSELoss(), optim.Adam(model.parameters(), lr=1e-3), normal_train, epochs=epochs,
                     batch_size=128, seed=seed, progress=not (quiet or as_json),
                     callbacks=[_Report(run, epochs, quiet=True, as_json=False)])
    _plot_run(history, run, f"Autoencoder on digits {','.join(map(str, normal))}")
    detector = detection.AnomalyDetector(model, contamination=contamination).fit(normal_train)
    scores = detection.reconstruction_error(model, test_set)
    is_anomaly = np.isin(test_set.y, anomalous)
    flagged = detector.predict(test_set) == -1
    metrics = {
        "roc_auc": float(roc_auc_score(is_anomaly, scores)),
        "average_precision": float(average_precision_score(is_anomaly, scores)),
        "threshold": detector.threshold_,
        "recall_at_threshold": float(flagged[is_anomaly].mean()),
        "false_alarm_rate": float(flagged[~is_anomaly].mean()),
    }
    dc.save(model, run / "model.dsc")
    (run / "metrics.json").write_text(json.dumps(metrics) + "\n")
    viz.plot_score_histogram(scores[~is_anomaly], scores[is_anomaly], run / "scores.png", detector.threshold_,
                             f"Digits {','.join(map(str, normal))} normal, {','.join(map(str, anomalous))} anomalous")
    worst = np.argsort(-scores)[:10]
    viz.plot_reconstructions(test_set.x[worst], dc.predict(model, test_set.x[worst]), run / "worst.png",
                             [f"digit {test_set.y[i]}, {scores[i]:.3f}" for i in worst],
                             "The ten worst-reconstructed test digits (top) and their reconstructions")
    if as_json:
        click.echo(json.dumps(metrics))
    else:
        click.echo("  ".join(f"{name} {value:.4f}" for name, value in metrics.items()))
        click.echo(f"written to {run}: model.dsc, metrics.jsonl, curves.png, metrics.json, scores.png, worst.png")


def _count_list(context: click.Context, parameter: click.Parameter, value: str) -> list[int]:
    try:
        counts = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated worker counts such as 1,2,4; got {value!r}") from None
    if not counts or min(counts) < 1:
        raise click.BadParameter(f"worker counts must be positive; got {value!r}")
    return counts


def _lock_list(context: click.Context, parameter: click.Parameter, value: str) -> list[str]:
    from descend.hogwild import LOCKS

    locks = [part.strip() for part in value.split(",") if part.strip()]
    unknown = [lock for lock in locks if lock not in LOCKS]
    if not locks or unknown:
        raise click.BadParameter(f"lock modes are {', '.join(LOCKS)}; got {value!r}")
    return locks


@main.command()
@click.option("--data", "data_name", type=click.Choice(("sparse", "ratings")), default="sparse", show_default=True,
              help="sparse: logistic regression on sparse rows; ratings: matrix completion.")
@click.option("--workers", "worker_counts", default="1,2", show_default=True, callback=_count_list,
              help="Worker counts to compare.")
@click.option("--lock", "locks", default="none,mutex", show_default=True, callback=_lock_list,
              help="Lock modes to compare: none (HOGWILD!), mutex, round-robin.")
@click.option("--rows", type=click.IntRange(min=100), default=1_000_000, show_default=True,
              help="Training rows (sparse) or observed entries (ratings).")
@click.option("--features", type=click.IntRange(min=10), default=100_000, show_default=True, help="Sparse features.")
@click.option("--nnz", type=click.IntRange(min=1), default=20, show_default=True, help="Active features per row.")
@click.option("--epochs", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="runs/hogwild", show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
def hogwild(data_name: str, worker_counts: list[int], locks: list[str], rows: int, features: int, nnz: int,
            epochs: int, seed: int, out_dir: str, quiet: bool, as_json: bool) -> None:
    """Train one problem with each (workers, lock) pair: throughput, speed-up and final loss, and a speed-up plot.

    Example: descend hogwild --data sparse --workers 1,2 --lock none,mutex
    """
    from tqdm import tqdm

    from descend import viz
    from descend.hogwild.compare import compare_ratings, compare_sparse, configurations, format_table

    bar = tqdm(total=len(configurations(worker_counts, locks)), unit="run", disable=quiet or as_json)

    def finished(run: Any) -> None:
        bar.set_postfix_str(f"{run.workers} workers, lock={run.lock}")
        bar.update()

    if data_name == "sparse":
        X, y = dc.data.make_sparse_classification(n_rows=rows + rows // 10, n_features=features, nnz_per_row=nnz,
                                                  seed=seed)
        runs = compare_sparse((X[:rows], y[:rows]), (X[rows:], y[rows:]), worker_counts, locks, on_run=finished,
                              epochs=epochs, seed=seed)
        quality = "test accuracy"
    else:
        side = max(100, int(np.sqrt(rows / 0.02 / 2)))  # a 2:1 matrix with 2% of its entries observed
        train_set, test_set = dc.data.make_low_rank_matrix(n_rows=2 * side, n_cols=side, rank=10,
                                                           density=min(1.0, rows / (2 * side * side) / 0.8),
                                                           seed=seed)
        runs = compare_ratings(train_set, test_set, worker_counts, locks, on_run=finished, epochs=epochs, seed=seed)
        quality = "test RMSE"
    bar.close()
    run = Path(out_dir)
    run.mkdir(parents=True, exist_ok=True)
    (run / "runs.json").write_text(json.dumps([r.as_dict() for r in runs], indent=1) + "\n")
    plot = viz.plot_speedup(runs, run / "speedup.png", f"HOGWILD! on {data_name} data: speed-up over serial SGD")
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in runs]))
    else:
        click.echo(format_table(runs, quality))
        click.echo(f"written to {run}: runs.json, {plot.name}")


@main.command()
@click.option("--run", "run_dir", type=click.Path(exists=True, file_okay=False), default="runs/char-lstm-shakespeare",
              show_default=True, help="A run folder of a character model (model.dsc and vocab.json).")
@click.option("--prompt", default="ROMEO:", show_default=True, help="Text to continue.")
@click.option("--length", type=click.IntRange(min=0), default=300, show_default=True, help="Characters to add.")
@click.option("--temperature", type=_FiniteRange(min=0, min_open=True), default=0.8, show_default=True,
              help="Below 1 plays safe, above 1 takes risks.")
@click.option("--top-k", type=click.IntRange(min=1), default=None, help="Sample only among the k likeliest characters.")
@click.option("--seed", type=int, default=None, help="For a repeatable sample.")
def generate(run_dir: str, prompt: str, length: int, temperature: float, top_k: int | None, seed: int | None) -> None:
    """Write text with a trained character model, one sampled character at a time.

    Example: descend generate --prompt "ROMEO:" --length 300 --temperature 0.8
    """
    run = Path(run_dir)
    vocabulary_file = run / "vocab.json"
    if not vocabulary_file.is_file():
        raise click.UsageError(f"{run} has no vocab.json: train a char model there first (descend train --model char-lstm)")
    model = dc.load(run / "model.dsc")
    if not isinstance(model, nn.CharRNN):
        raise click.UsageError(f"{run / 'model.dsc'} is a {type(model).__name__}, not a character model")
    text = dc.data.Text("".join(json.loads(vocabulary_file.read_text())["vocab"]))
    click.echo(model.generate(text, prompt=prompt, length=length, temperature=temperature, top_k=top_k, seed=seed))


@main.command()
@click.argument("model_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--data", "data_name", type=click.Choice(DATASETS), default="mnist", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def evaluate(model_path: str, data_name: str, as_json: bool) -> None:
    """Loss and accuracy of a saved model on a data set's test split.

    Example: descend evaluate runs/mlp-mnist/model.dsc --data mnist
    """
    model = dc.load(model_path)
    test_set = _load_data(data_name, images=isinstance(model, (nn.SimpleCNN, nn.LeNet5, nn.CapsNet)))[-1]
    metrics = dc.evaluate(model, _loss_for(model), test_set)
    if as_json:
        click.echo(json.dumps(metrics))
    else:
        click.echo("  ".join(f"{name} {value:.4f}" for name, value in metrics.items()))


def _section_numbers(context: click.Context, parameter: click.Parameter, value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        return [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated section numbers such as 1,5,13; got {value!r}") from None


@main.command()
@click.option("--full", is_flag=True, help="Run each section on its full data (minutes to hours) instead of quickly.")
@click.option("--sections", "numbers", default=None, callback=_section_numbers,
              help="Only these sections, e.g. 1,5,13 (default: all).")
@click.option("--examples", "examples_dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="The folder of the course's NN_*.py scripts (default: examples/ of this checkout).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="runs/tour", show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print each section's result as a JSON line.")
def tour(full: bool, numbers: list[int] | None, examples_dir: str | None, out_dir: str, quiet: bool,
         as_json: bool) -> None:
    """Run every section of the crash course and write one HTML report of its figures and pictures.

    Example: descend tour --out runs/tour && open runs/tour/report.html
    """
    from tqdm import tqdm

    from descend.tour import EXAMPLES, find_sections, run_tour

    examples = Path(examples_dir) if examples_dir else EXAMPLES
    try:
        count = len(find_sections(examples, numbers))
    except DescendError as error:
        raise click.UsageError(str(error)) from None
    with tqdm(total=count, unit="section", disable=quiet or as_json) as bar:
        def done(section: Any) -> None:
            bar.set_postfix_str(f"{section.number:02d} {'ran' if section.ok else 'FAILED'}")
            bar.update()
            if as_json:
                click.echo(json.dumps({"section": section.number, "title": section.title, "ok": section.ok,
                                       "seconds": round(section.seconds, 2),
                                       "pictures": [str(picture) for picture in section.pictures]}))

        sections, report = run_tour(Path(out_dir), quick=not full, numbers=numbers, examples=examples,
                                    on_section=done)
    failed = [section for section in sections if not section.ok]
    if not as_json:
        click.echo(f"{len(sections) - len(failed)} of {len(sections)} sections ran; report: {report}")
    if failed:
        raise DescendError(f"section {', '.join(str(s.number) for s in failed)} failed; the report shows the errors")


@main.command("lr-find")
@click.option("--model", "model_name", type=click.Choice(MODELS), default="mlp", show_default=True)
@click.option("--data", "data_name", type=click.Choice(DATASETS), default="digits", show_default=True)
@click.option("--hidden", callback=_hidden_sizes, default=None, help="Hidden layer widths, e.g. 512,256.")
@click.option("--momentum", type=_FiniteRange(0, 1, max_open=True), default=0.9, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--steps", type=click.IntRange(min=8), default=100, show_default=True,
              help="Minibatch steps of the ramp.")
@click.option("--start-lr", type=_FiniteRange(min=0, min_open=True), default=1e-6, show_default=True)
@click.option("--end-lr", type=_FiniteRange(min=0, min_open=True), default=10.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="runs/lr-find", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the readings as JSON.")
def lr_find(model_name: str, data_name: str, hidden: list[int] | None, momentum: float, batch_size: int, steps: int,
            start_lr: float, end_lr: float, seed: int, out_dir: str, as_json: bool) -> None:
    """The learning-rate range test: the loss as the rate grows from --start-lr to --end-lr, and a suggestion.

    Writes lr_find.png (loss against rate, readings marked) and lr_find.json to --out.

    Example: descend lr-find --model mlp --data mnist --steps 200
    """
    from descend import viz

    train_set = _load_data(data_name, images=model_name in IMAGE_MODELS)[0]
    model = _build_model(model_name, train_set, hidden, 0.0, seed)
    optimizer = optim.SGD(model.parameters(), lr=start_lr, momentum=momentum)
    found = dc.lr_find(model, _loss_for(model), optimizer, train_set, start_lr=start_lr, end_lr=end_lr,
                       steps=steps, batch_size=batch_size, seed=seed)
    run = Path(out_dir)
    readings = {"suggestion": found.suggestion, "steepest": found.steepest, "tenth_of_lowest": found.tenth_of_lowest,
                "learning_rates": found.learning_rates.tolist(), "losses": found.losses.tolist()}
    run.mkdir(parents=True, exist_ok=True)
    (run / "lr_find.json").write_text(json.dumps(readings) + "\n")
    plot = viz.plot_lr_find(found, run / "lr_find.png", f"Learning-rate range test: {model_name} on {data_name}")
    if as_json:
        click.echo(json.dumps({name: readings[name] for name in ("suggestion", "steepest", "tenth_of_lowest")}))
    else:
        click.echo(f"{found}\nwritten to {run}: lr_find.json, {plot.name}")



def _read_rows(path: Path) -> np.ndarray:
    """Feature rows from a .npy file or a CSV of numbers (a header line is skipped), checked for NaN."""
    if path.suffix == ".npy":
        rows = np.load(path, allow_pickle=False)
    elif path.suffix == ".csv":
        with open(path) as stream:
            first = stream.readline()
        try:
            [float(cell) for cell in first.split(",")]
            header = 0
        except ValueError:
            header = 1
        try:
            rows = np.loadtxt(path, delimiter=",", skiprows=header, dtype=np.float32, ndmin=2)
        except ValueError as error:
            raise click.UsageError(f"{path} must hold numbers only, one row per line: {error}") from None
    else:
        raise click.UsageError(f"INPUT must be a .npy or .csv file of feature rows; got {path.name}")
    if rows.dtype.kind not in "fiu":
        raise click.UsageError(f"{path} holds {rows.dtype} values; expected numbers")
    bad = np.flatnonzero(~np.isfinite(rows.reshape(len(rows), -1)).all(axis=1)) if rows.dtype.kind == "f" else []
    if len(bad):
        raise click.UsageError(f"{path}: row {bad[0] + (1 if path.suffix == '.csv' else 0)} holds NaN or infinity "
                               f"({len(bad)} such rows); clean them first")
    return rows


@main.command()
@click.argument("model_path", type=click.Path(exists=True, dir_okay=False))
@click.argument("input_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None,
              help="Where to write the CSV [default: print it].")
@click.option("--probabilities", is_flag=True, help="Classifiers: add a column per class probability.")
@click.option("--batch-size", type=click.IntRange(min=1), default=1024, show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per row instead of CSV.")
def predict(model_path: str, input_path: str, out_path: str | None, probabilities: bool, batch_size: int,
            quiet: bool, as_json: bool) -> None:
    """Predictions of a saved model for the rows of a .npy or .csv file: a class, values, or an anomaly score.

    Classifiers give `prediction` (and `p0`, `p1`, ... with --probabilities); autoencoders give
    `score`, the reconstruction error (higher is more anomalous); other models their outputs.

    Example: descend predict runs/mlp-mnist/model.dsc images.npy --out predictions.csv --probabilities
    """
    from tqdm import tqdm


    model = dc.load(model_path)
    rows = _read_rows(Path(input_path))
    if isinstance(model, (nn.SimpleCNN, nn.LeNet5)) and rows.ndim == 2:
        side = int(round(np.sqrt(rows.shape[1])))
        rows = rows.reshape(len(rows), 1, side, side)
    outputs = []
    quiet = quiet or as_json or len(rows) < 10 * batch_size  # a bar only where the wait is long enough to watch
    for start in tqdm(range(0, len(rows), batch_size), unit="batch", disable=quiet):
        outputs.append(dc.predict(model, rows[start : start + batch_size], batch_size=batch_size))
    output = np.concatenate(outputs) if outputs else np.zeros((0, 1), dtype=np.float32)
    if model.target_is_input:
        columns = {"score": np.mean((output.reshape(len(rows), -1) - rows.reshape(len(rows), -1)) ** 2, axis=1)}
    elif output.ndim == 2 and output.shape[1] > 1 and not isinstance(model, nn.LinearRegression):
        columns = {"prediction": output.argmax(axis=1)}
        if probabilities:
            chances = dc.softmax(dc.tensor(output.astype(np.float64))).data
            columns.update({f"p{k}": chances[:, k] for k in range(chances.shape[1])})
    else:
        flat = output.reshape(len(rows), -1)
        columns = {f"output{k}" if flat.shape[1] > 1 else "output": flat[:, k] for k in range(flat.shape[1])}
    if as_json:
        for index in range(len(rows)):
            click.echo(json.dumps({name: values[index].item() for name, values in columns.items()}))
        return
    lines = [",".join(columns)] + [",".join(f"{values[index]:.6g}" for values in columns.values())
                                   for index in range(len(rows))]
    text = "\n".join(lines) + "\n"
    if out_path is None:
        click.echo(text, nl=False)
    else:
        write_atomically(out_path, lambda stream: stream.write(text.encode()))
        click.echo(f"{len(rows)} predictions written to {out_path}", err=True)


def _named_values(context: click.Context, parameter: click.Parameter, values: tuple[str, ...]) -> dict[str, float]:
    inputs = {}
    for item in values:
        name, equals, number = item.partition("=")
        try:
            if not equals or not name.strip():
                raise ValueError
            inputs[name.strip()] = float(number)
        except ValueError:
            raise click.BadParameter(f"expected NAME=NUMBER such as x1=2; got {item!r}") from None
    return inputs


@main.command()
@click.argument("formula")
@click.argument("values", nargs=-1, callback=_named_values)
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
        Path(html_path).write_text(f"<!doctype html><meta charset='utf-8'>{explanation._repr_html_()}\n")
    if as_json:
        click.echo(json.dumps({"forward": explanation.forward_rows, "reverse": explanation.reverse_rows,
                               "summary": explanation.summary_lines()}))
    else:
        click.echo(str(explanation))


BENCHMARKS = {"mlp": "mlp_mnist.py", "cnn": "cnn_mnist.py", "rnn": "char_rnn.py", "anomaly": "anomaly_mnist.py",
              "hogwild": "hogwild.py", "spark": "spark_mnist.py"}


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
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
    import subprocess

    folder = Path(benchmarks_dir) if benchmarks_dir else Path(__file__).resolve().parent.parent / "benchmarks"
    script = folder / BENCHMARKS[name]
    if not script.is_file():
        raise click.UsageError(f"no {script}; pass --benchmarks with the folder of descend's benchmark scripts")
    done = subprocess.run([sys.executable, str(script), *arguments])
    if done.returncode:
        raise DescendError(f"the {name} benchmark stopped with exit code {done.returncode}")


if __name__ == "__main__":
    sys.exit(main())

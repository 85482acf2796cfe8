"""`descend train`: train a preset model on a data set or a text into a run folder, or resume a run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from descend.cli.datasets import DATASETS, TEXTS, load_splits, preprocessing, prompt_for
from descend.cli.options import (
    ENGINE, FEATURES, LABEL, MODEL_CHOICE, SEED, SYNC, DataChoice, FiniteRange, checkpoint_every, hidden_sizes,
    within_memory,
)
from descend.cli.report import Report, plot_run
from descend.cli.run_folder import RunFolder, locked
from descend.cli.train_options import TrainOptions, resumed
from descend.data import Dataset, ParquetDataset, load_text
from descend.files import write_text
from descend.io import save
from descend.nn import presets
from descend.nn.capsules import PERTURBATION_STEPS, CapsNet
from descend.preprocessing import Preprocessing
from descend.training import Callback, TrainingState, evaluate, fit


@click.command()
@click.option("--model", "model_name", type=MODEL_CHOICE, default="mlp", show_default=True, help="What to train.")
@click.option("--data", "data_name", type=DataChoice(DATASETS + TEXTS), default=None,
              help="Data set [mnist; shakespeare for char models], or a .parquet file (or a folder of them, as "
                   "Spark writes) of your own (mlp, logistic), read a window at a time.")
@FEATURES
@LABEL
@click.option("--text", "text_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A .txt file to train a char model on instead of --data.")
@click.option("--epochs", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="[128; 32 for digits; 64 for char models]")
@click.option("--lr", type=FiniteRange(min=0, min_open=True), default=None,
              help="Learning rate [SGD 0.05; Adam 1e-3 for capsnet, 2e-3 for char models].")
@click.option("--momentum", type=FiniteRange(0, 1, max_open=True), default=0.9, show_default=True)
@click.option("--hidden", default=None, callback=hidden_sizes,
              help="Hidden layer widths [mlp: 512,256; cnn: its dense width, 128; char models: 256; "
                   "capsnet: convolution channels and primary capsule types, 64,8 (the paper's: 256,32)].")
@click.option("--layers", type=click.IntRange(min=1), default=1, show_default=True, help="Recurrent layers.")
@click.option("--embed", type=click.IntRange(min=1), default=64, show_default=True, help="Character embedding size.")
@click.option("--seq-length", type=click.IntRange(min=1), default=64, show_default=True,
              help="Characters per training sequence.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Train on the first N examples only.")
@click.option("--dropout", type=FiniteRange(0, 1, max_open=True), default=0.2, show_default=True)
@click.option("--weight-decay", type=FiniteRange(min=0), default=1e-4, show_default=True, help="L2 penalty.")
@click.option("--decay", type=FiniteRange(min=0), default=1e-4, show_default=True,
              help="Inverse-time learning-rate decay per step.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--engine", type=ENGINE, default="local", show_default=True,
              help="local: this process; hogwild: lock-free worker processes on one shared buffer; "
                   "spark: data-parallel on a Spark cluster (mlp, logistic).")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="HOGWILD! worker processes [one per core].")
@click.option("--master", default="local[*]", show_default=True,
              help="Spark master for --engine spark (local[2], yarn, spark://host:7077).")
@click.option("--sync", type=SYNC, default="average", show_default=True,
              help="Spark: average models every --sync-every steps, or sum gradients every step.")
@click.option("--sync-every", type=click.IntRange(min=1), default=50, show_default=True,
              help="Spark: local steps per round.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Run folder [default: runs/MODEL-DATA].")
@click.option("--checkpoint-every", default="epoch", show_default=True, callback=checkpoint_every,
              help="Write a checkpoint into RUN/checkpoints every N steps, or at the end of every epoch.")
@click.option("--resume", "resume_dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Go on with the run in this folder from its newest good checkpoint, with the options it was "
                   "started with (only --epochs, to train longer, --quiet and --json may be given too).")
@click.option("--overwrite", is_flag=True,
              help="Replace the run already in the run folder (its checkpoints, model and metrics); without it, "
                   "a folder that holds another run is refused.")
@click.option("--quiet", is_flag=True, help="No progress bar or per-epoch lines.")
@click.option("--json", "as_json", is_flag=True, help="Print each epoch's metrics as a JSON line.")
@click.pass_context
def train(context: click.Context, resume_dir: str | None, overwrite: bool, quiet: bool, as_json: bool,
          **given: Any) -> None:
    """Train a model, validate each epoch, test once at the end; write the model and metrics to a run folder.

    The run folder gets run.json (the options), checkpoints/,
    model.dsc (which records how the data set's pixels were scaled, and the
    shape and range of the training inputs, for `descend predict`),
    metrics.jsonl and curves.png. Convolutional models (cnn, lenet) also get
    their first-layer filters and one image's feature maps drawn as PNGs;
    character models get a sample of generated text and their vocabulary
    (vocab.json): `descend generate RUN` writes more. A run that was killed
    goes on with `descend train --resume RUN` and ends with the same model,
    bit for bit, as if it had never stopped. A folder that holds another
    run is refused unless --overwrite is given, and one run at a time holds
    a folder (RUN/.lock): a second is refused before it touches anything.

    Example: descend train --model mlp --data mnist --epochs 5
    """
    options = TrainOptions(**given)
    if resume_dir is not None and overwrite:
        raise click.UsageError("--resume goes on with the run in its folder and --overwrite replaces it: give one")
    if resume_dir is None:
        options.check()  # before the folder is made
    with locked(Path(resume_dir) if resume_dir is not None else options.folder()) as folder:
        if resume_dir is not None:  # read under the lock: the run.json no other run is writing
            options = resumed(context, folder.path, options)
            options.check()
        else:
            folder.make_way(overwrite)
        callbacks = [RunRecord(folder, options), Report(folder.path, options.epochs, quiet, as_json)]
        settings: dict[str, Any] = {"callbacks": callbacks, "progress": not (quiet or as_json)}
        settings.update(checkpoint=folder.path / "checkpoints", checkpoint_every=options.checkpoint_every,
                        resume=resume_dir is not None)
        trainer = train_char_model if options.char_model else train_classifier
        summary = trainer(options, folder.path, settings)
    if as_json:
        click.echo(json.dumps({key: value for key, value in summary.items() if key != "lines"}))
    else:
        for line in summary["lines"]:
            click.echo(line)


class RunRecord(Callback):
    """Writes RUN/run.json, the options `--resume` reads back, once training begins: only a run that passed
    every check (the command line's, the folder's and fit's) leaves a record, and a refused one never
    rewrites another run's. The folder is the run's to keep from then on."""

    def __init__(self, folder: RunFolder, options: TrainOptions):
        self.folder, self.options = folder, options

    def on_train_begin(self, state: TrainingState) -> None:
        text = json.dumps({"command": "train", "options": self.options.record()}, indent=1) + "\n"
        write_text(self.folder.path / "run.json", text)
        self.folder.started = True


def train_classifier(options: TrainOptions, run: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """Train a classifier preset with `settings` for fit, test it, and draw its pictures; the summary to print."""
    if options.table:
        return train_on_table(options, run, settings)
    train_set, validation_set, test_set = load_splits(options.source, images=options.model_name in presets.IMAGE_MODELS)
    train_set = train_set[: options.limit] if options.limit else train_set
    model = within_memory(lambda: presets.model(options.model_name, train_set, hidden=options.hidden,
                                                dropout=options.dropout, seed=options.seed), "--hidden")
    loss_fn = presets.loss_for(model)
    optimizer = presets.optimizer_for(model, options.lr, options.momentum, options.weight_decay, options.decay)
    if options.engine == "spark":
        from descend.spark import fit_spark, spark_session, to_dataframe

        session = spark_session(options.master)
        history = fit_spark(model, loss_fn, optimizer, to_dataframe(session, train_set), epochs=options.epochs,
                            batch_size=options.batch, sync=options.sync, sync_every=options.sync_every,
                            seed=options.seed, validation=to_dataframe(session, validation_set),
                            callbacks=settings["callbacks"], checkpoint=settings["checkpoint"],
                            checkpoint_every=settings["checkpoint_every"], resume=settings["resume"])
    else:
        history = fit(model, loss_fn, optimizer, train_set, epochs=options.epochs, batch_size=options.batch,
                      validation=validation_set, seed=options.seed, engine=options.engine, workers=options.workers,
                      **settings)
    model_path = save(model, run / "model.dsc", optimizer=optimizer,
                      preprocessing=preprocessing(options.source, train_set))
    plot_run(history, run, f"{options.model_name} on {options.source} ({options.engine} engine)")
    test = {f"test_{name}": value for name, value in evaluate(model, loss_fn, test_set).items()}
    write_text(run / "test.json", json.dumps(test) + "\n")
    pictures = []
    if options.model_name == "capsnet":
        pictures = capsule_pictures(model, test_set, run)
    elif options.model_name in presets.IMAGE_MODELS:
        from descend.viz import plot_feature_maps, plot_filters

        pictures = [plot_filters(model.layers[0], run / "filters.png"),
                    plot_feature_maps(model, test_set.x[0], run / "feature_maps.png")]
    return {**test, "lines": [f"test loss {test['test_loss']:.4f}  test acc {test['test_accuracy']:.4f}",
                              f"model written to {model_path}; metrics.jsonl; curves.png"
                              + "".join(f"; {p.name}" for p in pictures)]}


def train_on_table(options: TrainOptions, run: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """Train an mlp or logistic preset on a user's Parquet table, read a window at a time; the summary to print.

    The table has no held-out split of ours: the summary reports the last epoch's training metrics, and the
    model file records the range of the inputs (one more pass over the table, in order)."""
    table = ParquetDataset(options.source, features=options.features, label=options.label)
    model = within_memory(lambda: presets.model(options.model_name, table, hidden=options.hidden,
                                                dropout=options.dropout, seed=options.seed), "--hidden")
    optimizer = presets.optimizer_for(model, options.lr, options.momentum, options.weight_decay, options.decay)
    history = fit(model, presets.loss_for(model), optimizer, table, epochs=options.epochs, batch_size=options.batch,
                  seed=options.seed, **settings)
    record = Preprocessing(Path(options.source).name, table.row_shape, *table.value_range())
    model_path = save(model, run / "model.dsc", optimizer=optimizer, preprocessing=record)
    plot_run(history, run, f"{options.model_name} on {Path(options.source).name}")
    last = history.last()
    return {"lines": [f"train loss {last['loss']:.4f}  train acc {last['accuracy']:.4f} (last epoch, "
                      f"{len(table)} rows of {Path(options.source).name})",
                      f"model written to {model_path}; metrics.jsonl; curves.png"]}


def capsule_pictures(model: CapsNet, test_set: Dataset, run: Path) -> list[Path]:
    """reconstructions.png (ten test digits over their decoder images) and perturbations.png (the paper's figure 4)."""
    from descend.viz import plot_capsule_perturbations, plot_reconstructions

    predicted, pictures = model.reconstructions(test_set.x[:10])
    labels = [f"{truth} as {guess}" for truth, guess in zip(test_set.y[:10], predicted)]
    digit, nudged = model.perturbations(test_set.x[0])
    return [plot_reconstructions(test_set.x[:10], pictures, run / "reconstructions.png", labels,
                                 "Test digits (top) and what their longest capsule decodes to (bottom)"),
            plot_capsule_perturbations(nudged, PERTURBATION_STEPS, run / "perturbations.png", digit)]


def train_char_model(options: TrainOptions, run: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """Train a char model preset with `settings` for fit, then write its vocabulary and a sample; the summary."""
    text = load_text(options.source)
    limit = options.limit
    train_set = text.sequences(options.seq_length)
    train_set = train_set[:limit] if limit else train_set
    validation_set = text.sequences(options.seq_length, split="validation")
    validation_set = validation_set[: max(1, limit // 10)] if limit else validation_set
    model = within_memory(lambda: presets.model(options.model_name, text, hidden=options.hidden,
                                                dropout=options.dropout, layers=options.layers, embed=options.embed,
                                                seed=options.seed), "--hidden, --embed and --layers")
    optimizer = presets.optimizer_for(model, options.lr)
    history = fit(model, presets.loss_for(model), optimizer, train_set, epochs=options.epochs,
                  batch_size=options.batch, validation=validation_set, seed=options.seed, clip_grad_norm=5.0,
                  **settings)
    model_path = save(model, run / "model.dsc", optimizer=optimizer)
    plot_run(history, run, f"{options.model_name} on {options.source}")
    write_text(run / "vocab.json", json.dumps({"source": str(options.source), "vocab": text.vocab}) + "\n")
    sample = model.generate(text, prompt=prompt_for(text.vocab), length=200, temperature=0.8, seed=options.seed)
    write_text(run / "sample.txt", sample + "\n")
    written = f"model written to {model_path}; metrics.jsonl; curves.png; vocab.json; sample.txt"
    return {"sample": sample, "lines": ["sample:", sample, written, f"write more with: descend generate {run}"]}

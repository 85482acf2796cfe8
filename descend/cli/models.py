"""The commands that use a saved model: `descend evaluate`, `descend predict` and `descend generate`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click
import numpy as np

from descend.cli.datasets import DATASETS, load_splits
from descend.cli.options import SEED, FiniteRange
from descend.data import Text
from descend.errors import ModelFileError
from descend.files import write_text
from descend.io import load
from descend.nn import losses, presets
from descend.nn.autoencoders import ConvAutoencoder
from descend.nn.capsules import CapsNet
from descend.nn.layers import Softmax
from descend.nn.models import CharRNN, LeNet5, LinearRegression, SimpleCNN
from descend.nn.module import Module
from descend.ops import softmax
from descend.tensor import tensor
from descend.training import evaluate as evaluate_model
from descend.training import predict as predict_outputs


#: the models that take one-channel images (N, 1, side, side)
IMAGE_MODEL_CLASSES = (SimpleCNN, LeNet5, CapsNet, ConvAutoencoder)


@click.command()
@click.argument("model_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--data", "data_name", type=click.Choice(DATASETS), default="mnist", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def evaluate(model_path: str, data_name: str, as_json: bool) -> None:
    """Loss and accuracy of a saved model on a data set's test split.

    Example: descend evaluate runs/mlp-mnist/model.dsc --data mnist
    """
    model = load_model(model_path)
    if model.target_is_input or isinstance(model, CharRNN):
        other = "descend generate" if isinstance(model, CharRNN) else "descend predict (a score per row)"
        raise click.UsageError(f"descend evaluate measures a classifier's loss and accuracy; {model_path} holds a "
                               f"{type(model).__name__}, which is not one: use {other}")
    test_set = load_splits(data_name, images=isinstance(model, IMAGE_MODEL_CLASSES))[-1]
    metrics = evaluate_model(model, presets.loss_for(model), test_set)
    if as_json:
        click.echo(json.dumps(metrics))
    else:
        click.echo("  ".join(f"{name} {value:.4f}" for name, value in metrics.items()))


def load_model(path: str | Path) -> Module:
    """The model saved at `path`; a file that holds a loss, or a part descend builds models from, is refused."""
    model = load(path)
    kind = type(model)
    if kind.__module__ == losses.__name__:
        raise ModelFileError(f"{path}: the file holds a loss ({kind.__name__}), not a model; give the model.dsc "
                             "that dc.save(model, ...) or descend train wrote")
    if kind.__name__.startswith("_"):
        raise ModelFileError(f"{path}: the file holds {kind.__name__}, a part descend builds models from, not a model")
    return model


def read_rows(path: Path) -> np.ndarray:
    """Feature rows from a .npy file or a UTF-8 CSV of numbers (a header line is skipped): at least one row, no NaN."""
    if path.suffix == ".npy":
        try:
            rows = np.load(path, allow_pickle=False)
        except (ValueError, EOFError) as error:  # numpy's words: "Object arrays cannot be loaded...", "pickled data"
            raise click.UsageError(f"{path} is not a .npy file of numbers: {error}") from None
        if not isinstance(rows, np.ndarray):
            raise click.UsageError(f"{path} is a .npz archive of several arrays; save the rows alone with np.save")
    elif path.suffix == ".csv":
        rows = read_csv(path)
    else:
        raise click.UsageError(f"INPUT must be a .npy or .csv file of feature rows; got {path.name}")
    if rows.dtype.kind not in "fiu":
        raise click.UsageError(f"{path} holds {rows.dtype} values; expected numbers")
    if rows.ndim == 0:
        raise click.UsageError(f"{path} holds a single number (a 0-d array); expected rows (N, features), "
                               "e.g. np.save(path, x.reshape(1, -1)) for one example")
    if rows.size == 0:
        raise click.UsageError(f"{path} holds no values (shape {rows.shape}); expected at least one row to predict")
    bad = np.flatnonzero(~np.isfinite(rows.reshape(len(rows), -1)).all(axis=1)) if rows.dtype.kind == "f" else []
    if len(bad):
        raise click.UsageError(f"{path}: row {bad[0] + (1 if path.suffix == '.csv' else 0)} holds NaN or infinity "
                               f"({len(bad)} such rows); clean them first")
    return rows


def read_csv(path: Path) -> np.ndarray:
    """The rows of a UTF-8 CSV of numbers as float32 (N, columns); a first line that is not numbers is a header."""
    try:
        lines = [line for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    except UnicodeDecodeError as error:
        raise click.UsageError(f"{path} is not UTF-8 text (byte {error.object[error.start]:#04x} at offset "
                               f"{error.start}); save it as UTF-8 CSV") from None
    if not lines:
        raise click.UsageError(f"{path} is empty; expected a CSV of numbers, one row per line")
    try:
        [float(cell) for cell in lines[0].split(",")]
        header = 0
    except ValueError:
        header = 1
    if len(lines) == header:
        raise click.UsageError(f"{path} holds a header line and no rows; expected a CSV of numbers, one row per line")
    try:
        return np.loadtxt(lines[header:], delimiter=",", dtype=np.float32, ndmin=2)
    except ValueError as error:
        raise click.UsageError(f"{path} must hold numbers only, one row per line: {error}") from None


def model_input(model: Module, rows: np.ndarray, path: Path) -> np.ndarray:
    """`rows` as `model` takes them: images (N, 1, side, side), from rows of side*side pixels too; else rows
    (N, features). Any other shape is refused, saying what was found and what is expected."""
    name = type(model).__name__
    if isinstance(model, CharRNN):
        raise click.UsageError(f"the model is a {name}, which scores the next character of a text; write text with it "
                               "with descend generate --run RUN")
    if isinstance(model, IMAGE_MODEL_CLASSES):
        side = math.isqrt(rows.shape[1]) if rows.ndim == 2 else 0
        if rows.ndim == 2 and side * side == rows.shape[1]:
            return rows.reshape(len(rows), 1, side, side)
        if rows.ndim != 4:
            raise click.UsageError(f"{path} holds an array of shape {rows.shape}; {name} takes one-channel images, "
                                   f"as (N, 1, side, side) or as rows of side*side pixels (N, 784 for 28x28 images)")
        return rows
    if rows.ndim != 2:
        fix = (f"; for one example save x[None] (shape (1, {rows.size})), for {rows.size} examples of one feature "
               f"x[:, None]" if rows.ndim == 1 else "; flatten each example first, e.g. x.reshape(len(x), -1)")
        raise click.UsageError(f"{path} holds an array of shape {rows.shape}; {name} takes rows of features "
                               f"(N, features), one example per row{fix}")
    return rows


def class_probabilities(model: Module, output: np.ndarray) -> np.ndarray:
    """Each class's probability from a classifier's outputs (N, classes): the softmax of its logits, except where
    the outputs are probabilities already (a last Softmax layer; a CapsNet's capsule lengths, which say how
    likely each class is present, as in Sabour et al. 2017)."""
    if isinstance(model, CapsNet) or isinstance(list(model.modules())[-1], Softmax):
        return output.astype(np.float64)
    return softmax(tensor(output.astype(np.float64))).data


@click.command()
@click.argument("model_path", type=click.Path(exists=True, dir_okay=False))
@click.argument("input_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out_path", type=click.Path(dir_okay=False, allow_dash=True), default=None,
              help="Where to write the CSV [default, or -: print it].")
@click.option("--probabilities", is_flag=True, help="Classifiers: add a column per class probability.")
@click.option("--batch-size", type=click.IntRange(min=1), default=1024, show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per row instead of CSV.")
def predict(model_path: str, input_path: str, out_path: str | None, probabilities: bool, batch_size: int,
            quiet: bool, as_json: bool) -> None:
    """Predictions of a saved model for the rows of a .npy or .csv file: a class, values, or an anomaly score.

    INPUT holds rows (N, features); models of images also take (N, 1, side, side), or rows of
    side*side pixels. Classifiers give `prediction`, the class (and with --probabilities `p0`, `p1`,
    ..., each class's probability: the softmax of the logits); autoencoders give `score`, the
    reconstruction error (higher is more anomalous); other models their outputs, `output0`, ...

    Example: descend predict runs/mlp-mnist/model.dsc images.npy --out predictions.csv --probabilities
    """
    from tqdm import tqdm

    model = load_model(model_path)
    rows = model_input(model, read_rows(Path(input_path)), Path(input_path))
    outputs = []
    quiet = quiet or as_json or len(rows) < 10 * batch_size  # a bar only where the wait is long enough to watch
    for start in tqdm(range(0, len(rows), batch_size), unit="batch", disable=quiet):
        outputs.append(predict_outputs(model, rows[start : start + batch_size], batch_size=batch_size))
    output = np.concatenate(outputs)
    classifier = output.ndim == 2 and output.shape[1] > 1 and not isinstance(model, LinearRegression)
    if probabilities and (model.target_is_input or not classifier):
        raise click.UsageError(f"--probabilities is for classifiers; {type(model).__name__} gives "
                               f"{'a reconstruction' if model.target_is_input else 'values'}, not classes")
    if model.target_is_input:
        columns = {"score": np.mean((output.reshape(len(rows), -1) - rows.reshape(len(rows), -1)) ** 2, axis=1)}
    elif classifier:
        columns = {"prediction": output.argmax(axis=1)}
        if probabilities:
            chances = class_probabilities(model, output)
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
    if out_path is None or out_path == "-":
        click.echo(text, nl=False)
    else:
        write_text(out_path, text, name="--out")
        click.echo(f"{len(rows)} predictions written to {out_path}", err=True)


@click.command()
@click.option("--run", "run_dir", type=click.Path(exists=True, file_okay=False), default="runs/char-lstm-shakespeare",
              show_default=True, help="A run folder of a character model (model.dsc and vocab.json).")
@click.option("--prompt", default="ROMEO:", show_default=True, help="Text to continue.")
@click.option("--length", type=click.IntRange(min=0), default=300, show_default=True, help="Characters to add.")
@click.option("--temperature", type=FiniteRange(min=0, min_open=True), default=0.8, show_default=True,
              help="Below 1 plays safe, above 1 takes risks.")
@click.option("--top-k", type=click.IntRange(min=1), default=None, help="Sample only among the k likeliest characters.")
@click.option("--seed", type=SEED, default=None, help="For a repeatable sample.")
def generate(run_dir: str, prompt: str, length: int, temperature: float, top_k: int | None, seed: int | None) -> None:
    """Write text with a trained character model, one sampled character at a time.

    Example: descend generate --prompt "ROMEO:" --length 300 --temperature 0.8
    """
    run = Path(run_dir)
    vocabulary_file = run / "vocab.json"
    if not vocabulary_file.is_file():
        raise click.UsageError(f"{run} has no vocab.json: train a char model there first (descend train --model char-lstm)")
    model = load(run / "model.dsc")
    if not isinstance(model, CharRNN):
        raise click.UsageError(f"{run / 'model.dsc'} is a {type(model).__name__}, not a character model")
    try:
        vocabulary = json.loads(vocabulary_file.read_text(encoding="utf-8"))["vocab"]
        text = Text("".join(vocabulary))
    except (ValueError, KeyError, TypeError):  # not UTF-8 or JSON, no "vocab", not a list of characters
        raise click.UsageError(f"{vocabulary_file} is not the vocabulary descend train wrote for a char model "
                               "(a JSON object with a list of characters under \"vocab\")") from None
    click.echo(model.generate(text, prompt=prompt, length=length, temperature=temperature, top_k=top_k, seed=seed))

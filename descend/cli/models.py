"""The commands that use a saved model: `descend evaluate`, `descend predict` and `descend generate`."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from descend.cli.datasets import DATASETS, load_splits
from descend.cli.options import FiniteRange
from descend.data import Text
from descend.files import write_atomically
from descend.io import load
from descend.nn import presets
from descend.nn.capsules import CapsNet
from descend.nn.models import CharRNN, LeNet5, LinearRegression, SimpleCNN
from descend.ops import softmax
from descend.tensor import tensor
from descend.training import evaluate as evaluate_model
from descend.training import predict as predict_outputs


@click.command()
@click.argument("model_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--data", "data_name", type=click.Choice(DATASETS), default="mnist", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def evaluate(model_path: str, data_name: str, as_json: bool) -> None:
    """Loss and accuracy of a saved model on a data set's test split.

    Example: descend evaluate runs/mlp-mnist/model.dsc --data mnist
    """
    model = load(model_path)
    test_set = load_splits(data_name, images=isinstance(model, (SimpleCNN, LeNet5, CapsNet)))[-1]
    metrics = evaluate_model(model, presets.loss_for(model), test_set)
    if as_json:
        click.echo(json.dumps(metrics))
    else:
        click.echo("  ".join(f"{name} {value:.4f}" for name, value in metrics.items()))


def read_rows(path: Path) -> np.ndarray:
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


@click.command()
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

    model = load(model_path)
    rows = read_rows(Path(input_path))
    if isinstance(model, (SimpleCNN, LeNet5)) and rows.ndim == 2:
        side = int(round(np.sqrt(rows.shape[1])))
        rows = rows.reshape(len(rows), 1, side, side)
    outputs = []
    quiet = quiet or as_json or len(rows) < 10 * batch_size  # a bar only where the wait is long enough to watch
    for start in tqdm(range(0, len(rows), batch_size), unit="batch", disable=quiet):
        outputs.append(predict_outputs(model, rows[start : start + batch_size], batch_size=batch_size))
    output = np.concatenate(outputs) if outputs else np.zeros((0, 1), dtype=np.float32)
    if model.target_is_input:
        columns = {"score": np.mean((output.reshape(len(rows), -1) - rows.reshape(len(rows), -1)) ** 2, axis=1)}
    elif output.ndim == 2 and output.shape[1] > 1 and not isinstance(model, LinearRegression):
        columns = {"prediction": output.argmax(axis=1)}
        if probabilities:
            chances = softmax(tensor(output.astype(np.float64))).data
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


@click.command()
@click.option("--run", "run_dir", type=click.Path(exists=True, file_okay=False), default="runs/char-lstm-shakespeare",
              show_default=True, help="A run folder of a character model (model.dsc and vocab.json).")
@click.option("--prompt", default="ROMEO:", show_default=True, help="Text to continue.")
@click.option("--length", type=click.IntRange(min=0), default=300, show_default=True, help="Characters to add.")
@click.option("--temperature", type=FiniteRange(min=0, min_open=True), default=0.8, show_default=True,
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
    model = load(run / "model.dsc")
    if not isinstance(model, CharRNN):
        raise click.UsageError(f"{run / 'model.dsc'} is a {type(model).__name__}, not a character model")
    text = Text("".join(json.loads(vocabulary_file.read_text())["vocab"]))
    click.echo(model.generate(text, prompt=prompt, length=length, temperature=temperature, top_k=top_k, seed=seed))

"""The commands that use a saved model: `descend evaluate`, `descend predict` and `descend generate`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click
import numpy as np

from descend.cli.datasets import DATASETS, load_splits, prompt_for
from descend.cli.options import FEATURES, LABEL, SEED, DataChoice, FiniteRange, check_columns, is_table
from descend.data import ParquetDataset, Text
from descend.errors import DataError, DescendValueError, ModelFileError, ShapeError
from descend.files import regular_file, write_text
from descend.io import WEIGHTS, build_model, read_architecture, read_header, read_preprocessing
from descend.nn import losses, presets
from descend.nn.autoencoders import ConvAutoencoder
from descend.nn.capsules import CapsNet
from descend.nn.layers import Softmax
from descend.nn.models import CharRNN, LeNet5, LinearRegression, SimpleCNN
from descend.nn.module import Module
from descend.ops import softmax
from descend.preprocessing import Preprocessing
from descend.tensor import tensor
from descend.training import evaluate as evaluate_model
from descend.training import predict as predict_outputs


#: the models that take one-channel images (N, 1, side, side)
IMAGE_MODEL_CLASSES = (SimpleCNN, LeNet5, CapsNet, ConvAutoencoder)


@click.command()
@click.argument("model_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--data", "data_name", type=DataChoice(DATASETS), default="mnist", show_default=True,
              help="A data set's test split, or a .parquet file (or a folder of them, as Spark writes) of your own "
                   "labelled rows, read a window at a time.")
@FEATURES
@LABEL
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def evaluate(model_path: str, data_name: str, features: str, label: str, as_json: bool) -> None:
    """Loss and accuracy of a saved model on a data set's test split, or on a labelled table of your own.

    A .parquet --data holds a --features column of rows of numbers, as many
    per row as the model takes, and a --label column of class labels.
    A model that descend train wrote records the range of its training
    inputs, and the table's values are held to it as descend predict holds
    its INPUT: values in neither range get a warning; values in the range
    the data had before training scaled it are refused, for the table is
    read as it is (scale the column as training did).

    Example: descend evaluate runs/mlp-mnist/model.dsc --data mnist (or --data test.parquet --label digit)
    """
    model = load_model(model_path)
    if model.target_is_input or isinstance(model, CharRNN):
        other = "descend generate" if isinstance(model, CharRNN) else "descend predict (a score per row)"
        raise click.UsageError(f"descend evaluate measures a classifier's loss and accuracy; {model_path} holds a "
                               f"{type(model).__name__}, which is not one: use {other}")
    if is_table(data_name):
        test_set = labelled_table(model, read_preprocessing(model_path), data_name, features, label)
    else:
        check_columns(data_name, features, label)
        test_set = load_splits(data_name, images=isinstance(model, IMAGE_MODEL_CLASSES))[-1]
    metrics = evaluate_model(model, presets.loss_for(model), test_set)
    if as_json:
        click.echo(json.dumps(metrics))
    else:
        click.echo("  ".join(f"{name} {value:.4f}" for name, value in metrics.items()))


def labelled_table(model: Module, record: Preprocessing | None, path: str, features: str,
                   label: str) -> ParquetDataset:
    """The user's table at `path`, once its rows are known to suit `model`: flat features (no model of images),
    as many per row as the training inputs had, on the training inputs' scale (`record`, where the model file
    keeps one; one pass over the features); bad usage naming what differs, else."""
    if isinstance(model, IMAGE_MODEL_CLASSES):
        raise click.UsageError(f"a .parquet --data holds rows of flat features; {type(model).__name__} takes "
                               "images: evaluate it on --data mnist or digits")
    table = ParquetDataset(path, features=features, label=label)
    if record is None:
        return table
    try:
        record.check_features((len(table), *table.row_shape), path)
    except ShapeError as error:
        raise click.UsageError(str(error)) from None
    low, high = table.value_range()
    scale, note = record.reading(low, high, path)
    if scale:
        raw_low, raw_high = record.raw_range
        raise click.UsageError(f"{path} holds values in [{low:.4g}, {high:.4g}], within [{raw_low:.4g}, "
                               f"{raw_high:.4g}], the range of {record.source} before training scaled it; a table is "
                               f"read as it is: scale its {features!r} column as training did, {record.formula}, and "
                               "evaluate again")
    if note is not None:
        click.echo(f"warning: {note}", err=True)
    return table


def load_model(path: str | Path) -> Module:
    """The model saved at `path`; a file that holds a loss, or a part descend builds models from, is refused.

    The command runs descend's own models: a file of weights only, or of a class of the user's own, needs that
    class's code, and the error says how to load it in Python instead.
    """
    header, raw = read_header(path)
    metadata = header["__metadata__"]
    if metadata.get("contents") == WEIGHTS:
        raise ModelFileError(f"{path} holds only weights (dc.save_weights), which need the model's code: in Python, "
                             "model = YourNet(...); dc.load_weights(model, path); dc.predict(model, x)")
    spec = read_architecture(path, metadata)
    recorded = spec.get("class") if isinstance(spec, dict) else None
    if isinstance(recorded, str) and not recorded.startswith("descend."):
        short = recorded.rsplit(".", 1)[-1]
        raise ModelFileError(
            f"{path} holds a model of your own class {recorded!r:.80}, whose code a command cannot run: in Python, "
            f"model = dc.load(path, custom_objects={{'{short:.40}': {short:.40}}}); dc.predict(model, x)"
        )
    model = build_model(path, header, raw)
    kind = type(model)
    if kind.__module__ == losses.__name__:
        raise ModelFileError(f"{path}: the file holds a loss ({kind.__name__}), not a model; give the model.dsc "
                             "that dc.save(model, ...) or descend train wrote")
    if kind.__name__.startswith("_"):
        raise ModelFileError(f"{path}: the file holds {kind.__name__}, a part descend builds models from, not a model")
    return model


def read_rows(path: Path, features: str = "features") -> np.ndarray:
    """Feature rows from a .npy file, a UTF-8 CSV of numbers (a header line is skipped), or the `features` column
    of a .parquet table (a file, or a folder of them as Spark writes one): at least one row, no NaN."""
    if is_table(str(path)):
        table = ParquetDataset(path, features=features, label=None)
        return np.concatenate([rows for rows, _ in table.batches(65536, shuffle=False)])
    if features != "features":
        raise click.UsageError(f"--features names a column of a .parquet INPUT; {path.name} holds rows of its own")
    try:
        regular_file("INPUT", path, "a .npy or .csv file of feature rows, or a .parquet table")
    except DataError as error:
        raise click.UsageError(str(error)) from None
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
        raise click.UsageError(f"INPUT must be a .npy or .csv file of feature rows, or a .parquet table; got "
                               f"{path.name}")
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
                               "with descend generate RUN")
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


def as_trained(preprocessing: Preprocessing | None, rows: np.ndarray, path: Path) -> np.ndarray:
    """`rows` as the model's training inputs were, by the rule `descend predict --help` gives: the recorded
    scaling applied to raw rows (with a note), a warning for rows in neither range, bad usage for rows of
    another number of features. A model file saved without the record takes the rows as they are."""
    if preprocessing is None or rows.ndim < 2:  # model_input explains what a 1-D array should have been
        return rows
    try:
        prepared = preprocessing.prepare(rows, str(path))
    except ShapeError as error:
        raise click.UsageError(str(error)) from None
    if prepared.note is not None:
        click.echo(f"{'note' if prepared.scaled else 'warning'}: {prepared.note}", err=True)
    return prepared.x


def class_probabilities(model: Module, output: np.ndarray) -> np.ndarray:
    """Each class's probability from a classifier's outputs (N, classes): the softmax of its logits, except where
    the outputs are probabilities already (a last Softmax layer; a CapsNet's capsule lengths, which say how
    likely each class is present, as in Sabour et al. 2017)."""
    if isinstance(model, CapsNet) or isinstance(list(model.modules())[-1], Softmax):
        return output.astype(np.float64)
    return softmax(tensor(output.astype(np.float64))).data


@click.command()
@click.argument("model_path", type=click.Path(exists=True, dir_okay=False))
@click.argument("input_path", type=click.Path(exists=True))
@click.option("--out", "out_path", type=click.Path(dir_okay=False, allow_dash=True), default=None,
              help="Where to write the CSV [default, or -: print it].")
@click.option("--probabilities", is_flag=True, help="Classifiers: add a column per class probability.")
@click.option("--batch-size", type=click.IntRange(min=1), default=1024, show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per row instead of CSV.")
@FEATURES
def predict(model_path: str, input_path: str, out_path: str | None, probabilities: bool, batch_size: int,
            quiet: bool, as_json: bool, features: str) -> None:
    """Predictions of a saved model for the rows of a .npy, .csv or .parquet file: a class, values, or an anomaly
    score.

    INPUT holds rows (N, features); models of images also take (N, 1, side, side), or rows of
    side*side pixels. A .parquet INPUT (a file, or a folder of them as Spark writes one) gives
    its --features column, in the table's order. Classifiers give `prediction`, the class (and
    with --probabilities `p0`, `p1`, ..., each class's probability: the softmax of the logits);
    autoencoders give `score`, the reconstruction error (higher is more anomalous); other models
    their outputs, `output0`, ...

    A model that descend train (or anomaly) wrote records how its training data was
    scaled and the range of its inputs: INPUT must have as many features
    per example; values within the training inputs' range are used as they
    are; values within the range the data had before scaling (digits'
    pixel counts 0..16, MNIST's pixel values 0..255), and spread over more
    of it than scaled data would be (wider than 4 for digits, 16 for
    MNIST), are scaled as training did, with a note; any other values get
    a warning naming the range seen and the range expected, and are used
    as they are. A model saved without that record takes INPUT as it is.

    Example: descend predict runs/mlp-mnist/model.dsc images.npy --out predictions.csv --probabilities
    """
    from tqdm import tqdm

    model = load_model(model_path)
    rows = as_trained(read_preprocessing(model_path), read_rows(Path(input_path), features), Path(input_path))
    rows = model_input(model, rows, Path(input_path))
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


#: where `descend train` puts runs when --out is not given: `descend generate` without RUN looks there
RUNS = Path("runs")


@click.command()
@click.argument("run_dir", metavar="[RUN]", required=False, type=click.Path(exists=True, file_okay=False))
@click.option("--run", "run_option", type=click.Path(exists=True, file_okay=False), default=None,
              help="The run folder, as an option: the same as RUN.")
@click.option("--prompt", default=None,
              help="Text to continue [ROMEO: where the model knows those letters, else a new line].")
@click.option("--length", type=click.IntRange(min=0), default=300, show_default=True, help="Characters to add.")
@click.option("--temperature", type=FiniteRange(min=0, min_open=True), default=0.8, show_default=True,
              help="Below 1 plays safe, above 1 takes risks.")
@click.option("--top-k", type=click.IntRange(min=1), default=None, help="Sample only among the k likeliest characters.")
@click.option("--seed", type=SEED, default=None, help="For a repeatable sample.")
def generate(run_dir: str | None, run_option: str | None, prompt: str | None, length: int, temperature: float,
             top_k: int | None, seed: int | None) -> None:
    """Write text with a character model, one sampled character at a time.

    RUN is the folder a character model was trained into (the --out of
    descend train --model char-lstm --text FILE --out RUN): its model.dsc
    and vocab.json. Without RUN, the newest such run in runs/ (where
    descend train puts runs without --out) is used, and named.

    Example: descend generate runs/char-lstm-text --prompt "ROMEO:" --length 300 --temperature 0.8
    """
    if run_dir is not None and run_option is not None and Path(run_dir) != Path(run_option):
        raise click.UsageError(f"RUN is {run_dir} and --run is {run_option}: give the run folder once")
    given = run_dir or run_option
    run = Path(given) if given is not None else newest_text_run()
    model, text = text_model(run)
    if prompt is None:
        prompt = prompt_for(text.vocab)
    try:
        text.encode(prompt)
    except DescendValueError as error:  # characters the model never read
        raise click.BadParameter(str(error), param_hint="--prompt") from None
    click.echo(model.generate(text, prompt=prompt, length=length, temperature=temperature, top_k=top_k, seed=seed))


def newest_text_run(folder: Path = RUNS) -> Path:
    """The run folder in `folder` whose character model was written last; bad usage when there is none."""
    runs = [vocabulary.parent for vocabulary in folder.glob("*/vocab.json")
            if (vocabulary.parent / "model.dsc").is_file()]
    if not runs:
        raise click.UsageError(f"no RUN given, and {folder}/ holds no run of a character model; give the folder "
                               "one was trained into: descend train --model char-lstm --text FILE --out RUN, then "
                               "descend generate RUN")
    run = max(runs, key=lambda run: (run / "model.dsc").stat().st_mtime)
    click.echo(f"generating with {run}, the newest character model's run in {folder}/", err=True)
    return run


def text_model(run: Path) -> tuple[CharRNN, Text]:
    """The character model trained into the run folder `run`, and its vocabulary; bad usage for any other folder."""
    train = f"descend train --model char-lstm --text FILE --out {run}"
    if not (run / "model.dsc").is_file():
        raise click.UsageError(f"{run} holds no model.dsc: it is not the folder of a descend train run; train a "
                               f"character model into it first: {train}")
    model = load_model(run / "model.dsc")
    if not isinstance(model, CharRNN):
        raise click.UsageError(f"{run / 'model.dsc'} holds a model of class {type(model).__name__}, not a text "
                               "model: descend generate needs the folder a character model was trained into "
                               "(descend train --model char-lstm --text FILE --out RUN)")
    vocabulary_file = run / "vocab.json"
    if not vocabulary_file.is_file():
        raise click.UsageError(f"{run} holds a character model but no vocab.json, the vocabulary descend train "
                               f"writes beside it; train it again: {train} --overwrite")
    try:
        vocabulary = json.loads(vocabulary_file.read_text(encoding="utf-8"))["vocab"]
        text = Text("".join(vocabulary))
    except (ValueError, KeyError, TypeError):  # not UTF-8 or JSON, no "vocab", not a list of characters
        raise click.UsageError(f"{vocabulary_file} is not the vocabulary descend train wrote for a char model "
                               "(a JSON object with a list of characters under \"vocab\")") from None
    if text.vocab != vocabulary or text.vocab_size != model.vocab_size:
        raise click.UsageError(f"{vocabulary_file} does not fit the model beside it: it lists {len(vocabulary)} "
                               f"characters; expected the {model.vocab_size} distinct characters the model reads, "
                               "sorted, as descend train wrote them")
    return model, text

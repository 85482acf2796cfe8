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

import descend as dc
from descend import nn, optim
from descend.errors import DescendError

MODELS = ("mlp", "logistic", "cnn", "lenet")
IMAGE_MODELS = ("cnn", "lenet")
DATASETS = ("mnist", "digits")


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
    if name == "lenet":
        if train_set.x.shape[-1] != 28:
            raise click.UsageError("lenet is built for 28x28 images; use --data mnist")
        return nn.LeNet5(n_classes, rng=seed)
    sizes = hidden if hidden else [512, 256]
    return nn.MLP([train_set.n_features, *sizes, n_classes], activation="relu", dropout=dropout, rng=seed)


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


class _Group(click.Group):
    """Turns descend's own errors into a one-line message and exit code 1."""

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


@main.command()
@click.option("--model", "model_name", type=click.Choice(MODELS), default="mlp", show_default=True, help="What to train.")
@click.option("--data", "data_name", type=click.Choice(DATASETS), default="mnist", show_default=True, help="Data set.")
@click.option("--epochs", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=0.05, show_default=True, help="Learning rate.")
@click.option("--momentum", type=click.FloatRange(0, 1, max_open=True), default=0.9, show_default=True)
@click.option("--hidden", default=None, callback=_hidden_sizes,
              help="Hidden layer widths [mlp: 512,256; cnn: its dense width, 128].")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.2, show_default=True)
@click.option("--weight-decay", type=click.FloatRange(min=0), default=1e-4, show_default=True, help="L2 penalty.")
@click.option("--decay", type=click.FloatRange(min=0), default=1e-4, show_default=True, help="Inverse-time learning-rate decay per step.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None, help="Run folder [default: runs/MODEL-DATA].")
@click.option("--quiet", is_flag=True, help="No progress bar or per-epoch lines.")
@click.option("--json", "as_json", is_flag=True, help="Print each epoch's metrics as a JSON line.")
def train(
    model_name: str, data_name: str, epochs: int, batch_size: int, lr: float, momentum: float, hidden: list[int] | None,
    dropout: float, weight_decay: float, decay: float, seed: int, out_dir: str | None, quiet: bool, as_json: bool,
) -> None:
    """Train a model, validate each epoch, test once at the end; write the model and metrics to a run folder.

    Convolutional models (cnn, lenet) also get their first-layer filters and
    one image's feature maps drawn as PNGs.

    Example: descend train --model mlp --data mnist --epochs 5
    """
    train_set, validation_set, test_set = _load_data(data_name, images=model_name in IMAGE_MODELS)
    model = _build_model(model_name, train_set, hidden, dropout, seed)
    optimizer = optim.SGD(
        model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay,
        schedule=optim.InverseTimeDecay(decay=decay) if decay > 0 else None,
    )
    run = Path(out_dir or f"runs/{model_name}-{data_name}")
    run.mkdir(parents=True, exist_ok=True)

    class Report(dc.Callback):
        def on_epoch_end(self, state: dc.TrainingState, record: dict[str, float]) -> None:
            with open(run / "metrics.jsonl", "a" if record["epoch"] > 1 else "w") as stream:
                stream.write(json.dumps(record) + "\n")
            if as_json:
                click.echo(json.dumps(record))
            elif not quiet:
                click.echo(
                    f"epoch {record['epoch']}/{epochs}  loss {record['loss']:.4f}  acc {record['accuracy']:.4f}  "
                    f"val_loss {record['val_loss']:.4f}  val_acc {record['val_accuracy']:.4f}  "
                    f"lr {record['lr']:.4g}  {record['seconds']:.1f}s"
                )

    dc.fit(
        model, nn.CrossEntropyLoss(), optimizer, train_set, epochs=epochs, batch_size=batch_size,
        validation=validation_set, seed=seed, callbacks=[Report()], progress=not (quiet or as_json),
    )
    model_path = dc.save(model, run / "model.dsc", optimizer=optimizer)
    test = {f"test_{name}": value for name, value in dc.evaluate(model, nn.CrossEntropyLoss(), test_set).items()}
    (run / "test.json").write_text(json.dumps(test) + "\n")
    pictures = []
    if model_name in IMAGE_MODELS:
        from descend import viz

        pictures = [viz.plot_filters(model.layers[0], run / "filters.png"),
                    viz.plot_feature_maps(model, test_set.x[0], run / "feature_maps.png")]
    if as_json:
        click.echo(json.dumps(test))
    else:
        click.echo(f"test loss {test['test_loss']:.4f}  test acc {test['test_accuracy']:.4f}")
        click.echo(f"model written to {model_path}" + "".join(f"; {picture.name}" for picture in pictures))


@main.command()
@click.argument("model_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--data", "data_name", type=click.Choice(DATASETS), default="mnist", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def evaluate(model_path: str, data_name: str, as_json: bool) -> None:
    """Loss and accuracy of a saved model on a data set's test split.

    Example: descend evaluate runs/mlp-mnist/model.dsc --data mnist
    """
    model = dc.load(model_path)
    test_set = _load_data(data_name, images=isinstance(model, (nn.SimpleCNN, nn.LeNet5)))[-1]
    metrics = dc.evaluate(model, nn.CrossEntropyLoss(), test_set)
    if as_json:
        click.echo(json.dumps(metrics))
    else:
        click.echo("  ".join(f"{name} {value:.4f}" for name, value in metrics.items()))


if __name__ == "__main__":
    sys.exit(main())

"""`descend lr-find`: the learning-rate range test on a preset model, with its plot and a suggested rate."""

from __future__ import annotations

import json
from pathlib import Path

import click

from descend.cli.datasets import DATASETS, check_fits, load_splits
from descend.cli.options import CLASSIFIER_CHOICE, SEED, FiniteRange, hidden_sizes, within_memory
from descend.files import write_text
from descend.nn import presets
from descend.optim import SGD


@click.command("lr-find")
@click.option("--model", "model_name", type=CLASSIFIER_CHOICE, default="mlp", show_default=True)
@click.option("--data", "data_name", type=click.Choice(DATASETS), default="digits", show_default=True)
@click.option("--hidden", callback=hidden_sizes, default=None, help="Hidden layer widths, e.g. 512,256.")
@click.option("--momentum", type=FiniteRange(0, 1, max_open=True), default=0.9, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--steps", type=click.IntRange(min=8), default=100, show_default=True,
              help="Minibatch steps of the ramp.")
@click.option("--start-lr", type=FiniteRange(min=0, min_open=True), default=1e-6, show_default=True)
@click.option("--end-lr", type=FiniteRange(min=0, min_open=True), default=10.0, show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="runs/lr-find", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the readings as JSON.")
def lr_find(model_name: str, data_name: str, hidden: tuple[int, ...] | None, momentum: float, batch_size: int,
            steps: int, start_lr: float, end_lr: float, seed: int, out_dir: str, as_json: bool) -> None:
    """The learning-rate range test: the loss as the rate grows from --start-lr to --end-lr, and a suggestion.

    Writes lr_find.png (loss against rate, readings marked) and lr_find.json to --out.

    Example: descend lr-find --model mlp --data mnist --steps 200
    """
    from descend.lr_find import lr_find as range_test
    from descend.viz import plot_lr_find

    check_fits(model_name, data_name)
    train_set = load_splits(data_name, images=model_name in presets.IMAGE_MODELS)[0]
    model = within_memory(lambda: presets.model(model_name, train_set, hidden=hidden, dropout=0.0, seed=seed),
                          "--hidden")
    optimizer = SGD(model.parameters(), lr=start_lr, momentum=momentum)  # no schedule: the test sets each rate
    found = range_test(model, presets.loss_for(model), optimizer, train_set, start_lr=start_lr, end_lr=end_lr,
                       steps=steps, batch_size=batch_size, seed=seed)
    run = Path(out_dir)
    readings = {"suggestion": found.suggestion, "steepest": found.steepest, "tenth_of_lowest": found.tenth_of_lowest,
                "learning_rates": found.learning_rates.tolist(), "losses": found.losses.tolist()}
    run.mkdir(parents=True, exist_ok=True)
    write_text(run / "lr_find.json", json.dumps(readings) + "\n")
    plot = plot_lr_find(found, run / "lr_find.png", f"Learning-rate range test: {model_name} on {data_name}")
    if as_json:
        click.echo(json.dumps({name: readings[name] for name in ("suggestion", "steepest", "tenth_of_lowest")}))
    else:
        click.echo(f"{found}\nwritten to {run}: lr_find.json, {plot.name}")

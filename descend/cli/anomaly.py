"""`descend anomaly`: an autoencoder learns normal digits and scores held-out digits as anomalies."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from descend.cli.datasets import preprocessing
from descend.cli.options import SEED, FiniteRange, digit_list, within_memory
from descend.cli.report import Report, plot_run
from descend.data import load_mnist
from descend.files import write_text
from descend.io import save
from descend.nn import Autoencoder, MSELoss
from descend.optim import Adam
from descend.training import fit, predict


@click.command()
@click.option("--data", "data_name", type=click.Choice(("mnist",)), default="mnist", show_default=True)
@click.option("--normal", default="0,1,2,3,4,5,6,7,8", show_default=True, callback=digit_list,
              help="Digits the autoencoder learns as normal.")
@click.option("--anomalous", default="9", show_default=True, callback=digit_list, help="Digits held out as anomalies.")
@click.option("--code", "code_size", type=click.IntRange(min=1), default=64, show_default=True, help="Code size.")
@click.option("--epochs", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--contamination", type=FiniteRange(0, 0.5, min_open=True), default=0.01, show_default=True,
              help="Fraction of normal training rows the threshold flags.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Train on the first N normal images only.")
@click.option("--seed", type=SEED, default=0, show_default=True)
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

    from descend.anomaly import AnomalyDetector, reconstruction_error
    from descend.viz import plot_reconstructions, plot_score_histogram

    if set(normal) & set(anomalous):
        raise click.UsageError(f"digits {sorted(set(normal) & set(anomalous))} are both normal and anomalous")
    model = within_memory(lambda: Autoencoder([784, 256, code_size], activation="relu", output="sigmoid", rng=seed),
                          "--code")
    train_set, test_set = load_mnist()
    normal_train = train_set[np.isin(train_set.y, normal)]
    normal_train = normal_train[:limit] if limit else normal_train
    test_set = test_set[np.isin(test_set.y, normal + anomalous)]
    run = Path(out_dir)
    run.mkdir(parents=True, exist_ok=True)
    history = fit(model, MSELoss(), Adam(model.parameters(), lr=1e-3), normal_train, epochs=epochs,
                  batch_size=128, seed=seed, progress=not (quiet or as_json),
                  callbacks=[Report(run, epochs, quiet=True, as_json=False)])
    plot_run(history, run, f"Autoencoder on digits {','.join(map(str, normal))}")
    detector = AnomalyDetector(model, contamination=contamination).fit(normal_train)
    scores = reconstruction_error(model, test_set)
    is_anomaly = np.isin(test_set.y, anomalous)
    flagged = detector.predict(test_set) == -1
    metrics = {
        "roc_auc": float(roc_auc_score(is_anomaly, scores)),
        "average_precision": float(average_precision_score(is_anomaly, scores)),
        "threshold": detector.threshold_,
        "recall_at_threshold": float(flagged[is_anomaly].mean()),
        "false_alarm_rate": float(flagged[~is_anomaly].mean()),
    }
    save(model, run / "model.dsc", preprocessing=preprocessing(data_name, normal_train))
    write_text(run / "metrics.json", json.dumps(metrics) + "\n")
    plot_score_histogram(scores[~is_anomaly], scores[is_anomaly], run / "scores.png", detector.threshold_,
                         f"Digits {','.join(map(str, normal))} normal, {','.join(map(str, anomalous))} anomalous")
    worst = np.argsort(-scores)[:10]
    plot_reconstructions(test_set.x[worst], predict(model, test_set.x[worst]), run / "worst.png",
                         [f"digit {test_set.y[i]}, {scores[i]:.3f}" for i in worst],
                         "The ten worst-reconstructed test digits (top) and their reconstructions")
    if as_json:
        click.echo(json.dumps(metrics))
    else:
        click.echo("  ".join(f"{name} {value:.4f}" for name, value in metrics.items()))
        click.echo(f"written to {run}: model.dsc, metrics.jsonl, curves.png, metrics.json, scores.png, worst.png")

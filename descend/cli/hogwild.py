"""`descend hogwild`: one problem trained with each (workers, lock) pair, compared against serial SGD."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import numpy as np

from descend.cli.options import SEED, count_list, lock_list
from descend.data import make_low_rank_matrix, make_sparse_classification
from descend.files import write_text


@click.command()
@click.option("--data", "data_name", type=click.Choice(("sparse", "ratings")), default="sparse", show_default=True,
              help="sparse: logistic regression on sparse rows; ratings: matrix completion.")
@click.option("--workers", "worker_counts", default="1,2", show_default=True, callback=count_list,
              help="Worker counts to compare.")
@click.option("--lock", "locks", default="none,mutex", show_default=True, callback=lock_list,
              help="Lock modes to compare: none (HOGWILD!), mutex, round-robin.")
@click.option("--rows", type=click.IntRange(min=100), default=1_000_000, show_default=True,
              help="Training rows (sparse) or observed entries (ratings).")
@click.option("--features", type=click.IntRange(min=10), default=100_000, show_default=True, help="Sparse features.")
@click.option("--nnz", type=click.IntRange(min=1), default=20, show_default=True, help="Active features per row.")
@click.option("--epochs", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="runs/hogwild", show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
def hogwild(data_name: str, worker_counts: list[int], locks: list[str], rows: int, features: int, nnz: int,
            epochs: int, seed: int, out_dir: str, quiet: bool, as_json: bool) -> None:
    """Train one problem with each (workers, lock) pair: throughput, speed-up and final loss, and a speed-up plot.

    Example: descend hogwild --data sparse --workers 1,2 --lock none,mutex
    """
    from tqdm import tqdm

    from descend.hogwild.compare import compare_ratings, compare_sparse, configurations, format_table
    from descend.viz import plot_speedup

    bar = tqdm(total=len(configurations(worker_counts, locks)), unit="run", disable=quiet or as_json)

    def finished(run: Any) -> None:
        bar.set_postfix_str(f"{run.workers} workers, lock={run.lock}")
        bar.update()

    if data_name == "sparse":
        X, y = make_sparse_classification(n_rows=rows + rows // 10, n_features=features, nnz_per_row=nnz, seed=seed)
        runs = compare_sparse((X[:rows], y[:rows]), (X[rows:], y[rows:]), worker_counts, locks, on_run=finished,
                              epochs=epochs, seed=seed)
        quality = "test accuracy"
    else:
        side = max(100, int(np.sqrt(rows / 0.02 / 2)))  # a 2:1 matrix with 2% of its entries observed
        train_set, test_set = make_low_rank_matrix(n_rows=2 * side, n_cols=side, rank=10,
                                                   density=min(1.0, rows / (2 * side * side) / 0.8), seed=seed)
        runs = compare_ratings(train_set, test_set, worker_counts, locks, on_run=finished, epochs=epochs, seed=seed)
        quality = "test RMSE"
    bar.close()
    run = Path(out_dir)
    run.mkdir(parents=True, exist_ok=True)
    write_text(run / "runs.json", json.dumps([r.as_dict() for r in runs], indent=1) + "\n")
    plot = plot_speedup(runs, run / "speedup.png", f"HOGWILD! on {data_name} data: speed-up over serial SGD")
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in runs]))
    else:
        click.echo(format_table(runs, quality))
        click.echo(f"written to {run}: runs.json, {plot.name}")

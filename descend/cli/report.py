"""What a training command shows and keeps of each epoch: a line or a JSON record, metrics.jsonl, curves.png."""

from __future__ import annotations

import json
from pathlib import Path

import click

from descend.files import write_text
from descend.training import Callback, History, TrainingState


class Report(Callback):
    """Writes each epoch's record to RUN/metrics.jsonl and prints it as a line, or as JSON with `as_json`."""

    def __init__(self, run: Path, epochs: int, quiet: bool, as_json: bool):
        self.run, self.epochs, self.quiet, self.as_json = run, epochs, quiet, as_json

    def on_epoch_end(self, state: TrainingState, record: dict[str, float]) -> None:
        # the whole History each time, atomically: a resumed run's file never repeats or loses a line
        lines = "".join(json.dumps(epoch) + "\n" for epoch in state.history.epochs)
        write_text(self.run / "metrics.jsonl", lines)
        if self.as_json:
            click.echo(json.dumps(record))
        elif not self.quiet:
            shown = "  ".join(f"{name} {value:.4f}" for name, value in record.items()
                              if name not in ("epoch", "lr", "seconds"))
            click.echo(f"epoch {record['epoch']}/{self.epochs}  {shown}  lr {record['lr']:.4g}  {record['seconds']:.1f}s")


def plot_run(history: History, run: Path, title: str) -> Path:
    """RUN/curves.png: loss, accuracy and learning rate by epoch."""
    from descend.viz import plot_history  # matplotlib loads with it: only once there is a run to draw

    return plot_history(history, run / "curves.png", title)

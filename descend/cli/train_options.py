"""`descend train`'s options as one typed record, TrainOptions, and the record a run folder keeps of them."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from descend.cli.datasets import BATCH_SIZES, TEXTS, check_fits
from descend.cli.options import check_columns, is_table, most_workers
from descend.nn import presets


@dataclass(frozen=True)
class TrainOptions:
    """The options of one `descend train` run, as the command line gave them and RUN/run.json keeps them.

    The fields are the command's options by their click names (the keys of run.json), so a
    resumed run reads its record back into the same type. None means "the model's default"
    (batch_size, lr, hidden), "all of it" (limit), or "not given" (data_name, text_path, workers, out_dir).
    """

    model_name: str
    data_name: str | None
    text_path: str | None
    epochs: int
    batch_size: int | None
    lr: float | None
    momentum: float
    hidden: tuple[int, ...] | None
    layers: int
    embed: int
    seq_length: int
    limit: int | None
    dropout: float
    weight_decay: float
    decay: float
    seed: int
    engine: str
    workers: int | None
    master: str
    sync: str
    sync_every: int
    out_dir: str | None
    checkpoint_every: int | str
    features: str = "features"
    label: str = "label"

    @classmethod
    def from_record(cls, saved: dict[str, Any]) -> TrainOptions:
        """The options a run.json holds (JSON gives the widths back as a list)."""
        return cls(**{**saved, "hidden": tuple(saved["hidden"] or ()) or None})

    def record(self) -> dict[str, Any]:
        """What run.json keeps: every option by name."""
        return asdict(self)

    @property
    def char_model(self) -> bool:
        return self.model_name in presets.CHAR_MODELS

    @property
    def table(self) -> bool:
        """Whether --data is a user's .parquet file (or a folder of them)."""
        return is_table(self.data_name)

    @property
    def source(self) -> str:
        """What the model learns from: a text file, else the named data set (mnist, or shakespeare for char models)."""
        return self.text_path or self.data_name or ("shakespeare" if self.char_model else "mnist")

    @property
    def batch(self) -> int:
        """The batch size: as given, else 64 sequences for a char model, and for the others the data set's
        (BATCH_SIZES: 128 examples of mnist, 32 of digits)."""
        return self.batch_size or (64 if self.char_model else 128 if self.table else BATCH_SIZES[self.source])

    def folder(self) -> Path:
        """--out, else runs/MODEL-DATA (runs/MODEL-text for a --text file)."""
        if self.out_dir:
            return Path(self.out_dir)
        return Path(f"runs/{self.model_name}-{'text' if self.text_path else Path(self.source).stem}")

    def check(self) -> None:
        """Refuse options that do not go together, naming both, before any data is read."""
        data_name = self.data_name or ("shakespeare" if self.char_model else "mnist")
        if self.workers is not None and self.engine != "hogwild":
            raise click.UsageError("--workers is for --engine hogwild")
        if self.workers is not None and self.workers > most_workers():
            raise click.UsageError(f"--workers {self.workers} is too many: at most {most_workers()} "
                                   f"(8 per core on this {os.cpu_count()}-core machine)")
        if self.table:
            self.check_table()
            return
        check_columns(data_name, self.features, self.label)
        if self.char_model != (data_name in TEXTS or self.text_path is not None):
            raise click.UsageError(f"--model {self.model_name} does not go with --data {data_name}: char models "
                                   "learn from text (shakespeare or --text), the others from mnist or digits")
        if self.char_model and self.engine != "local":
            raise click.UsageError("char models carry their state from batch to batch; train them with --engine local")
        if self.engine == "spark" and self.model_name in presets.IMAGE_MODELS:
            raise click.UsageError("--engine spark trains models of flat features: --model mlp or logistic")
        if not self.char_model:
            check_fits(self.model_name, data_name)

    def check_table(self) -> None:
        """Refuse what a .parquet --data cannot go with: it holds rows of features, read a window at a time."""
        if self.model_name not in ("mlp", "logistic"):
            raise click.UsageError(f"--model {self.model_name} does not go with a .parquet --data: a table's rows are "
                                   "flat features, for --model mlp or logistic")
        if self.engine != "local":
            raise click.UsageError(f"--engine {self.engine} does not go with a .parquet --data: a table is read a "
                                   "window at a time by --engine local")
        if self.limit is not None or self.text_path is not None:
            raise click.UsageError(f"{'--limit' if self.limit is not None else '--text'} does not go with a "
                                   ".parquet --data")


#: what `descend train --resume RUN` lets the command line change: everything else comes from RUN/run.json
RESUMABLE_OPTIONS = ("epochs",)


def resumed(context: click.Context, run: Path, given: TrainOptions) -> TrainOptions:
    """The options a run was started with (RUN/run.json), with --epochs from the command line if given."""
    try:
        saved = json.loads((run / "run.json").read_text())["options"]
    except (OSError, ValueError, KeyError, TypeError):
        raise click.UsageError(
            f"--resume {run}: no readable run.json there; it is not the folder of a descend train run"
        ) from None
    names = [field.name for field in fields(TrainOptions)]
    if isinstance(saved, dict):  # a run of before --features and --label: their defaults
        saved = {"features": "features", "label": "label", **saved}
    if not isinstance(saved, dict) or set(saved) != set(names):
        raise click.UsageError(f"--resume {run}: its run.json was written by another version of descend train")
    clashing = [name for name in names if name not in RESUMABLE_OPTIONS
                and context.get_parameter_source(name) is ParameterSource.COMMANDLINE]
    if clashing:
        flags = ", ".join(next(p.opts[0] for p in context.command.params if p.name == name) for name in clashing)
        raise click.UsageError(f"--resume takes the run's own options from {run / 'run.json'}; "
                               f"{flags} cannot change them (only --epochs, --quiet and --json can be given)")
    options = TrainOptions.from_record(saved)
    if context.get_parameter_source("epochs") is ParameterSource.COMMANDLINE:
        return replace(options, epochs=given.epochs)
    return options

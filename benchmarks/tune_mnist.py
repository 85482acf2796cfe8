"""Hyperparameter search on the MNIST MLP: descend.tune's samplers, pruning, parallel backends and resume,
side by side with Hyperopt on the same objective and budget.

The space is issue 20's: lr loguniform(1e-3, 1), momentum uniform(0, 0.99), hidden int(64, 1024, log),
dropout uniform(0, 0.5), weight_decay loguniform(1e-6, 1e-2); the model MLP [784, hidden, 10] with dropout,
SGD with momentum and weight decay, batch 128, trained on MNIST's first 50,000 training images and scored
on the last 10,000 (validation accuracy). Every side runs in its own process, one after another:

1. random search without pruning against TPE + ASHA (one process each): best validation accuracy, the
   epochs trained by all trials, seconds;
2. TPE + ASHA with 1 and 2 local worker processes, and as Spark tasks on local[2]: seconds and speed-up;
3. Hyperopt's fmin with TPE, in one process and with SparkTrials(parallelism=2) on local[2], with the same
   objective, trials and epochs (no pruning: Hyperopt has none): best accuracy and seconds against descend's;
4. a search killed by SIGKILL half-way through its trials and resumed: the finished trials it kept.

    python benchmarks/tune_mnist.py [--trials 40] [--epochs 3] [--rows 50000] [--skip pruning,parallel,hyperopt,resume]

Nothing is asserted: the figures are printed, with the issue's targets beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BATCH_SIZE = 128
SIDES = ("random", "tpe-asha", "tpe-asha-2", "spark-2", "hyperopt", "hyperopt-spark-2")


def data(rows: int):
    """(train, validation): the first `rows` of MNIST's first 50,000 training images, and its last 10,000."""
    import descend as dc

    train, validation, _ = dc.data.load_mnist(validation_split=True)
    return train[:rows], validation


def space():
    from descend import tune

    return {"lr": tune.loguniform(1e-3, 1.0), "momentum": tune.uniform(0.0, 0.99),
            "hidden": tune.int(64, 1024, log=True), "dropout": tune.uniform(0.0, 0.5),
            "weight_decay": tune.loguniform(1e-6, 1e-2)}


def build(params):
    """The MLP, its loss and its optimizer from one trial's parameters (weights from the trial's seed)."""
    import descend as dc

    model = dc.nn.MLP([784, params["hidden"], 10], dropout=params["dropout"])
    optimizer = dc.optim.SGD(model.parameters(), lr=params["lr"], momentum=params["momentum"],
                             weight_decay=params["weight_decay"])
    return model, dc.nn.CrossEntropyLoss(), optimizer


def descend_side(side: str, trials: int, epochs: int, rows: int, run: str) -> dict:
    """One descend search: its best validation accuracy, epochs trained and seconds."""
    from descend import tune

    train, validation = data(rows)
    sampler, pruner = ("random", "none") if side == "random" else ("tpe", "asha")
    parallel = 2 if side.endswith("-2") else 1
    backend, spark = "local", None
    if side.startswith("spark"):
        from descend.spark.session import spark_session

        backend, spark = "spark", spark_session("local[2]")
    started = time.perf_counter()
    study = tune.search(build, space(), train, validation=validation, trials=trials, epochs=epochs,
                        batch_size=BATCH_SIZE, sampler=sampler, pruner=pruner, parallel=parallel, backend=backend,
                        spark=spark, run=run, seed=0, progress=False)
    seconds = time.perf_counter() - started
    epochs_trained = sum(row["epochs"] or 0 for row in study.trials)
    return {"best": study.best_value, "epochs": epochs_trained, "seconds": seconds,
            "pruned": sum(row["state"] == "PRUNED" for row in study.trials)}


#: each process's data, loaded once (a Spark executor's Python worker keeps it across the trials it runs)
LOADED: dict = {}


def hyperopt_objective(params: dict, epochs: int, rows: int) -> dict:
    """Hyperopt's objective: train the trial's model `epochs` epochs, its loss minus the validation accuracy."""
    import math

    import descend as dc
    from hyperopt import STATUS_OK

    if rows not in LOADED:
        LOADED[rows] = data(rows)
    train, validation = LOADED[rows]
    model, loss, optimizer = build({**params, "hidden": int(params["hidden"])})
    history = dc.fit(model, loss, optimizer, train, epochs=epochs, batch_size=BATCH_SIZE, validation=validation,
                     seed=0, progress=False)
    accuracy = history["val_accuracy"][-1]
    return {"loss": -accuracy if math.isfinite(accuracy) else 0.0, "status": STATUS_OK}


def hyperopt_side(side: str, trials: int, epochs: int, rows: int) -> dict:
    """Hyperopt's fmin with TPE over the same space and objective: no pruning, every trial trains `epochs` epochs.

    The objective is this module's function, imported by name on the executors (PYTHONPATH names this folder),
    so each executor's Python worker loads MNIST once, as descend's broadcast does.
    """
    import functools

    import numpy as np
    from hyperopt import Trials, fmin, hp, tpe

    hyperopt_space = {"lr": hp.loguniform("lr", np.log(1e-3), np.log(1.0)),
                      "momentum": hp.uniform("momentum", 0.0, 0.99),
                      "hidden": hp.qloguniform("hidden", np.log(64), np.log(1024), 1),
                      "dropout": hp.uniform("dropout", 0.0, 0.5),
                      "weight_decay": hp.loguniform("weight_decay", np.log(1e-6), np.log(1e-2))}
    if side == "hyperopt-spark-2":
        from hyperopt import SparkTrials

        from descend.spark.session import spark_session

        spark_session("local[2]")
        record = SparkTrials(parallelism=2)
    else:
        record = Trials()
    started = time.perf_counter()
    fmin(functools.partial(hyperopt_objective, epochs=epochs, rows=rows), hyperopt_space, algo=tpe.suggest,
         max_evals=trials, trials=record, rstate=np.random.default_rng(0), show_progressbar=False)
    seconds = time.perf_counter() - started
    losses = [loss for loss in record.losses() if loss is not None]
    return {"best": -min(losses), "epochs": trials * epochs, "seconds": seconds, "pruned": 0}


def run_side(side: str, trials: int, epochs: int, rows: int) -> dict:
    """`side` in a process of its own (its own BLAS and OpenMP pools); its figures."""
    with tempfile.TemporaryDirectory(prefix="tune-bench-") as folder:
        done = subprocess.run([sys.executable, __file__, "--side", side, "--trials", str(trials), "--epochs",
                               str(epochs), "--rows", str(rows), "--run", str(Path(folder) / "run")],
                              capture_output=True, text=True)
    if done.returncode:
        return {"error": (done.stderr.strip().splitlines() or ["exit code %d" % done.returncode])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def line(name: str, figures: dict) -> str:
    if "error" in figures:
        return f"{name:<28} failed: {figures['error']}"
    return (f"{name:<28} best val accuracy {figures['best']:.4f}  epochs {figures['epochs']:>4}  "
            f"pruned {figures['pruned']:>3}  {figures['seconds']:7.1f} s")


def resume_section(trials: int, epochs: int, rows: int) -> None:
    """Kill a serial search by SIGKILL once half its trials have finished, resume it, count what it kept."""
    import optuna

    with tempfile.TemporaryDirectory(prefix="tune-bench-") as folder:
        run = Path(folder) / "run"
        command = [sys.executable, __file__, "--side", "tpe-asha", "--trials", str(trials), "--epochs", str(epochs),
                   "--rows", str(rows), "--run", str(run)]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        finished_before: list = []
        while process.poll() is None:
            time.sleep(0.5)
            if not (run / "study.db").exists():
                continue
            try:
                study = optuna.load_study(study_name="descend-tune", storage=f"sqlite:///{run / 'study.db'}")
                finished_before = [(trial.number, trial.state.name, trial.value) for trial in study.get_trials()
                                   if trial.state.name in ("COMPLETE", "PRUNED")]
            except Exception:  # the study is being created: look again
                continue
            if len(finished_before) >= trials // 2:
                process.send_signal(signal.SIGKILL)
                break
        process.wait()
        resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True)
        study = optuna.load_study(study_name="descend-tune", storage=f"sqlite:///{run / 'study.db'}")
        after = {trial.number: (trial.number, trial.state.name, trial.value) for trial in study.get_trials()}
        kept = sum(after.get(number) == entry for number, entry, in ((entry[0], entry) for entry in finished_before))
        lost_and_rerun = [trial for trial in study.get_trials() if trial.user_attrs.get("lost")]
        print(f"\n4. killed by SIGKILL after {len(finished_before)} finished trials (exit {process.returncode}); "
              f"resumed (exit {resumed.returncode}): {kept} of {len(finished_before)} finished trials kept as they "
              f"were, {len(lost_and_rerun)} trial(s) in flight marked lost and run again, "
              f"{sum(t.state.name in ('COMPLETE', 'PRUNED') for t in study.get_trials())} finished in all "
              f"(target: every finished trial kept)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=50_000, help="training rows (the first of MNIST's 50,000)")
    parser.add_argument("--skip", default="", help="comma-separated sections to leave out: pruning, parallel, "
                                                   "hyperopt, resume")
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--resume", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side is not None:  # one side, in this process: its figures as one JSON line
        if args.side.startswith("hyperopt"):
            # by this module's name, not __main__'s, so Spark's executors import the objective instead of a copy
            here = str(Path(__file__).resolve().parent)
            sys.path.insert(0, here)
            os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, (here, os.environ.get("PYTHONPATH"))))
            import tune_mnist

            figures = tune_mnist.hyperopt_side(args.side, args.trials, args.epochs, args.rows)
        elif args.resume:
            from descend import tune

            train, validation = data(args.rows)
            tune.search(build, space(), train, validation=validation, trials=args.trials, epochs=args.epochs,
                        batch_size=BATCH_SIZE, run=args.run, resume=True, seed=0, progress=False)
            figures = {}
        else:
            figures = descend_side(args.side, args.trials, args.epochs, args.rows, args.run)
        print(json.dumps(figures))
        return
    skip = set(filter(None, args.skip.split(",")))
    print(f"MNIST MLP search: {args.trials} trials of at most {args.epochs} epochs, {args.rows:,} training rows, "
          f"batch {BATCH_SIZE}, seed 0, {os.cpu_count()} cores")
    figures = {}
    if "pruning" not in skip:
        print("\n1. random search (no pruning) against TPE + ASHA, one process each")
        for side in ("random", "tpe-asha"):
            figures[side] = run_side(side, args.trials, args.epochs, args.rows)
            print(line(side, figures[side]))
        if "error" not in figures["random"] and "error" not in figures["tpe-asha"]:
            random_search, pruned = figures["random"], figures["tpe-asha"]
            print(f"TPE + ASHA: best {pruned['best'] - random_search['best']:+.4f} against random search, "
                  f"{pruned['epochs'] / random_search['epochs']:.0%} of its epochs "
                  f"(target: at least its accuracy, at most 60% of its epochs)")
    if "parallel" not in skip:
        print("\n2. TPE + ASHA in parallel: 2 local worker processes, and 2 Spark tasks on local[2]")
        if "tpe-asha" not in figures:
            figures["tpe-asha"] = run_side("tpe-asha", args.trials, args.epochs, args.rows)
            print(line("tpe-asha", figures["tpe-asha"]))
        for side in ("tpe-asha-2", "spark-2"):
            figures[side] = run_side(side, args.trials, args.epochs, args.rows)
            print(line(side, figures[side]))
        serial, local, spark = figures["tpe-asha"], figures["tpe-asha-2"], figures["spark-2"]
        if not any("error" in one for one in (serial, local, spark)):
            print(f"2 workers: {serial['seconds'] / local['seconds']:.2f}x faster than 1 (target >= 1.7x); "
                  f"Spark local[2]: {spark['seconds'] / local['seconds']:.2f}x the 2 workers' time (target <= 1.3x)")
    if "hyperopt" not in skip:
        print("\n3. Hyperopt: fmin with TPE on the same objective and budget (no pruning)")
        for side in ("hyperopt", "hyperopt-spark-2"):
            figures[side] = run_side(side, args.trials, args.epochs, args.rows)
            print(line(side, figures[side]))
        pairs = (("tpe-asha", "hyperopt"), ("tpe-asha-2", "hyperopt-spark-2"))
        for ours, theirs in pairs:
            if ours in figures and not any("error" in figures[name] for name in (ours, theirs)):
                print(f"{ours} against {theirs}: best {figures[ours]['best'] - figures[theirs]['best']:+.4f}, "
                      f"{figures[ours]['seconds'] / figures[theirs]['seconds']:.2f}x its seconds "
                      f"(target: at least its accuracy in less time)")
    if "resume" not in skip:
        resume_section(args.trials, args.epochs, args.rows)


if __name__ == "__main__":
    main()

"""descend.tune: spaces, the search (pruning, the best model, reproducibility), worker processes, lost trials,
resuming after SIGKILL, bad input, the Spark backend and `descend tune`. Small: the digits, tiny MLPs, 1-3 epochs."""

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("optuna")

import descend as dc
from descend import tune
from descend.errors import DescendTypeError, DescendValueError

TRAIN, VALIDATION = dc.data.load_digits(seed=0)
SPACE = {"lr": tune.loguniform(0.003, 0.5), "hidden": tune.int(8, 32, log=True)}


def build(params):
    """A one-hidden-layer MLP for the digits from a trial's lr and hidden width (weights from the trial's seed)."""
    model = dc.nn.MLP([64, params["hidden"], 10])
    return model, dc.nn.CrossEntropyLoss(), dc.optim.SGD(model.parameters(), lr=params["lr"], momentum=0.9)


def build_and_record(params):
    """build, after writing this process's id and BLAS threads into the folder $TUNE_TEST_FOLDER."""
    from threadpoolctl import threadpool_info

    threads = max(pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas")
    folder = Path(os.environ["TUNE_TEST_FOLDER"])
    (folder / f"{os.getpid()}-{time.monotonic_ns()}").write_text(json.dumps({"pid": os.getpid(), "threads": threads}))
    return build(params)


class DyingBuild:
    """build, except that the first `deaths` calls of all (marked by files in `folder`) kill their process."""

    def __init__(self, folder, deaths=1):
        self.folder, self.deaths = str(folder), deaths

    def __call__(self, params):
        for death in range(self.deaths):
            try:
                os.close(os.open(Path(self.folder) / f"died-{death}", os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                continue
            os._exit(3)
        return build(params)


class SlowFirstBuild:
    """build, except that the first call of all (marked by a file in `folder`) first sleeps `seconds`."""

    def __init__(self, folder, seconds=4.0):
        self.folder, self.seconds = str(folder), seconds

    def __call__(self, params):
        try:
            os.close(os.open(Path(self.folder) / "slow", os.O_CREAT | os.O_EXCL))
            time.sleep(self.seconds)
        except FileExistsError:
            pass
        return build(params)


def started_while_the_slow_one_ran(run):
    """How many trials started before the slow trial (the longest) finished, by the study's own clock."""
    import optuna

    trials = optuna.load_study(study_name="descend-tune", storage=f"sqlite:///{Path(run) / 'study.db'}").get_trials()
    slow = max(trials, key=lambda trial: trial.datetime_complete - trial.datetime_start)
    return sum(trial is not slow and trial.datetime_start < slow.datetime_complete for trial in trials)


def rows_of(run):
    with open(Path(run) / "trials.csv") as stream:
        return list(csv.DictReader(stream))


def search(run, **options):
    settings = dict(validation=VALIDATION, trials=6, epochs=3, batch_size=64, run=run, progress=False)
    return tune.search(options.pop("build", build), options.pop("space", SPACE), TRAIN, **{**settings, **options})


# spaces


@pytest.mark.parametrize("make, error, words", [
    (lambda: tune.uniform(1.0, 0.5), DescendValueError, "[1.0, 0.5] is reversed"),
    (lambda: tune.uniform(0.5, 0.5), DescendValueError, "[0.5, 0.5] is empty"),
    (lambda: tune.loguniform(0.0, 1.0), DescendValueError, "log range must be above 0; got low=0.0"),
    (lambda: tune.int(0, 64, log=True), DescendValueError, "log range must be above 0; got low=0"),
    (lambda: tune.int(8, 2), DescendValueError, "[8, 2] is reversed"),
    (lambda: tune.int(1.5, 4), DescendTypeError, "low must be an integer; got float 1.5"),
    (lambda: tune.uniform(0.0, float("inf")), DescendValueError, "high must be finite"),
    (lambda: tune.choice([]), DescendValueError, "non-empty list"),
    (lambda: tune.choice(["sgd", "sgd"]), DescendValueError, "repeat one"),
    (lambda: tune.choice([[1, 2]]), DescendTypeError, "got list [1, 2]"),
])
def test_bad_distributions_are_refused_naming_what_came(make, error, words):
    with pytest.raises(error) as raised:
        make()
    assert words in str(raised.value)


def test_a_toml_space_gives_each_kind_of_distribution(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text('[space]\nlr = { loguniform = [1e-3, 1.0] }\nmomentum = { uniform = [0.0, 0.99] }\n'
                    'hidden = { int = [64, 1024], log = true }\noptimizer = { choice = ["sgd", "adam"] }\n')
    assert tune.read_space(path) == {"lr": tune.loguniform(1e-3, 1.0), "momentum": tune.uniform(0.0, 0.99),
                                     "hidden": tune.int(64, 1024, log=True), "optimizer": tune.choice(["sgd", "adam"])}


@pytest.mark.parametrize("text, words", [
    ("lr = { loguniform = [1e-3, 1.0] }", "has no [space] table"),
    ("[space]\nlr = { logunif = [1e-3, 1.0] }", "expected a table with one of uniform, loguniform, int, choice"),
    ("[space]\nlr = { loguniform = [1.0] }", "loguniform takes [low, high]; got [1.0]"),
    ("[space]\nlr = { loguniform = [0.0, 1.0] }", "log range must be above 0"),
    ("[space]\nlr = { uniform = [0.1, 1.0], log = true }", "unknown keys ['log'] beside uniform"),
    ("[space]\nlr = [", "is not valid TOML"),
])
def test_bad_toml_spaces_are_refused_naming_the_entry(tmp_path, text, words):
    path = tmp_path / "space.toml"
    path.write_text(text)
    with pytest.raises(DescendValueError) as raised:
        tune.read_space(path)
    assert words in str(raised.value)


# the search


def test_the_best_trial_is_the_best_complete_row_and_its_model_scores_its_value(tmp_path):
    study = search(tmp_path / "run", trials=8)
    rows = rows_of(tmp_path / "run")
    assert len(rows) == 8 and all(row["state"] in ("COMPLETE", "PRUNED") for row in rows)
    complete = [row for row in rows if row["state"] == "COMPLETE"]
    pruned = [row for row in rows if row["state"] == "PRUNED"]
    assert pruned and all(int(row["epochs"]) < 3 for row in pruned)  # pruned trials stopped before the last epoch
    assert all(int(row["epochs"]) == 3 for row in complete)
    assert study.best_value == max(float(row["value"]) for row in complete)
    best_row = next(row for row in complete if int(row["number"]) == study.best_number)
    assert study.best_params == {"lr": float(best_row["lr"]), "hidden": int(best_row["hidden"])}
    scores = dc.evaluate(study.best_model, dc.nn.CrossEntropyLoss(), VALIDATION)
    assert scores["accuracy"] == study.best_value  # best.dsc is that trial's model, as it ended
    assert sorted(path.name for path in (tmp_path / "run").glob("*.png")) == [
        "history.png", "importances.png", "parameters.png"]


def test_two_seeded_serial_searches_give_the_same_trials_values_and_best_model_bits(tmp_path):
    first, second = search(tmp_path / "a", trials=5), search(tmp_path / "b", trials=5)
    columns = ("number", "state", "value", "epochs", "lr", "hidden", "seed")
    assert [[row[c] for c in columns] for row in rows_of(tmp_path / "a")] == \
           [[row[c] for c in columns] for row in rows_of(tmp_path / "b")]
    weights = [dc.load(path / "best.dsc").flat_buffer().data for path in (tmp_path / "a", tmp_path / "b")]
    assert weights[0].tobytes() == weights[1].tobytes()
    assert first.best_number == second.best_number


def test_parallel_trials_run_in_worker_processes_of_one_blas_thread(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNE_TEST_FOLDER", str(tmp_path))
    study = search(tmp_path / "run", build=build_and_record, trials=4, epochs=2, parallel=2)
    seen = [json.loads(path.read_text()) for path in tmp_path.glob("*-*")]
    assert len(seen) == 4 and len({one["pid"] for one in seen}) == 2 and os.getpid() not in {one["pid"] for one in seen}
    assert {one["threads"] for one in seen} == {1}
    rows = rows_of(tmp_path / "run")
    assert len(rows) == 4 and {row["state"] for row in rows} <= {"COMPLETE", "PRUNED"}
    assert study.best_value == max(float(row["value"]) for row in rows if row["state"] == "COMPLETE")


def test_a_free_worker_gets_a_new_trial_at_once_not_after_the_slow_one_ends(tmp_path):
    search(tmp_path / "run", build=SlowFirstBuild(tmp_path), space={"lr": tune.loguniform(0.01, 0.5),
           "hidden": tune.int(8, 9)}, trials=4, epochs=1, parallel=2, pruner="none")
    assert started_while_the_slow_one_ran(tmp_path / "run") == 3  # in waves of two, only 1 would


def test_a_trial_whose_worker_dies_is_marked_failed_and_run_again(tmp_path):
    search(tmp_path / "run", build=DyingBuild(tmp_path), trials=3, epochs=1, parallel=2)
    rows = rows_of(tmp_path / "run")
    failed = [row for row in rows if row["state"] == "FAIL"]
    assert len(failed) == 1 and "exit code 3" in failed[0]["lost"]
    retry = next(row for row in rows if row["retry_of"] == failed[0]["number"])
    assert retry["state"] in ("COMPLETE", "PRUNED") and (retry["lr"], retry["hidden"], retry["seed"]) == \
        (failed[0]["lr"], failed[0]["hidden"], failed[0]["seed"])
    assert sum(row["state"] != "FAIL" for row in rows) == 3  # the lost trial did not use up the budget


SCRIPT = """
import sys, time
import descend as dc
from descend import tune
train, validation = dc.data.load_digits(seed=0)
def build(params):
    time.sleep(0.4)  # a wide window in which a trial is in flight
    model = dc.nn.MLP([64, params["hidden"], 10])
    return model, dc.nn.CrossEntropyLoss(), dc.optim.SGD(model.parameters(), lr=params["lr"])
tune.search(build, {"lr": tune.loguniform(0.003, 0.5), "hidden": tune.int(8, 32)}, train, validation=validation,
            trials=int(sys.argv[2]), epochs=1, run=sys.argv[1], progress=False, resume=sys.argv[3] == "resume")
"""


def test_a_study_killed_by_sigkill_resumes_keeping_finished_trials_and_rerunning_the_one_in_flight(tmp_path):
    import optuna

    script, run = tmp_path / "study.py", tmp_path / "run"
    script.write_text(textwrap.dedent(SCRIPT))
    process = subprocess.Popen([sys.executable, str(script), str(run), "6", "new"])
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            time.sleep(0.05)
            if not (run / "study.json").exists():
                continue
            study = optuna.load_study(study_name="descend-tune", storage=f"sqlite:///{run / 'study.db'}")
            states = [trial.state.name for trial in study.get_trials()]
            if states.count("COMPLETE") + states.count("PRUNED") >= 2 and states[-1] == "RUNNING":
                break
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL
    before = [(trial.number, trial.state.name, trial.value, trial.params) for trial in study.get_trials()
              if trial.state.name in ("COMPLETE", "PRUNED")]
    in_flight = study.get_trials()[-1]
    assert len(before) >= 2 and in_flight.state.name == "RUNNING"
    refused = subprocess.run([sys.executable, str(script), str(run), "6", "new"], capture_output=True, text=True)
    assert refused.returncode == 1 and "holds another study" in refused.stderr  # without resume: nothing touched
    resumed = subprocess.run([sys.executable, str(script), str(run), "6", "resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    rows = rows_of(run)
    for number, state, value, params in before:  # every finished trial kept as it was
        row = rows[number]
        assert (row["state"], float(row["value"]), float(row["lr"]), int(row["hidden"])) == \
               (state, value, params["lr"], params["hidden"])
    lost = rows[in_flight.number]
    assert lost["state"] == "FAIL" and "ended while this trial ran" in lost["lost"]
    retry = next(row for row in rows if row["retry_of"] == str(in_flight.number))
    assert retry["state"] in ("COMPLETE", "PRUNED") and float(retry["lr"]) == in_flight.params["lr"]
    assert sum(row["state"] != "FAIL" for row in rows) == 6


# bad input: a descend error naming the argument, and nothing of an existing study lost


def test_a_misspelt_parameter_reports_the_build_functions_error_with_the_trials_parameters(tmp_path):
    with pytest.raises(DescendValueError) as raised:
        search(tmp_path / "run", space={"lrr": tune.loguniform(0.01, 0.5), "hidden": tune.int(8, 16)})
    message = str(raised.value)
    assert "build failed for trial 0 with parameters {'lrr': " in message and "KeyError: 'lr'" in message
    assert not (tmp_path / "run").exists()  # refused at its first trial: no study left to refuse the next call


def test_a_metric_fit_does_not_record_is_refused_naming_the_keys_it_does(tmp_path):
    with pytest.raises(DescendValueError) as raised:
        search(tmp_path / "run", metric="val_acc", trials=2)
    assert "metric='val_acc' is not in what fit records each epoch; it records epoch, loss, accuracy, val_loss, " \
           "val_accuracy, lr, seconds" in str(raised.value)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("options, error, words", [
    ({"trials": 0}, DescendValueError, "trials must be an integer >= 1; got 0"),
    ({"trials": -3}, DescendValueError, "trials must be an integer >= 1; got -3"),
    ({"epochs": 0}, DescendValueError, "epochs must be an integer >= 1; got 0"),
    ({"pruner": "halving"}, DescendValueError, "pruner must be one of asha, hyperband, median, none; got 'halving'"),
    ({"direction": "up"}, DescendValueError, "direction must be one of maximize, minimize; got 'up'"),
    ({"validation": None}, DescendValueError, "metric='val_accuracy' is measured on validation data"),
    ({"space": {}}, DescendTypeError, "space must be a non-empty dict"),
    ({"space": {"lr": 0.1}}, DescendTypeError, "space['lr'] must be a distribution"),
])
def test_bad_search_arguments_are_refused_before_anything_is_written(tmp_path, options, error, words):
    with pytest.raises(error) as raised:
        search(tmp_path / "run", **options)
    assert words in str(raised.value)
    assert not (tmp_path / "run").exists()


def test_an_unreachable_storage_fails_fast_and_leaves_no_run_folder(tmp_path):
    started = time.monotonic()
    with pytest.raises(DescendValueError) as raised:
        search(tmp_path / "run", storage="sqlite:////no/such/folder/study.db")
    assert "storage='sqlite:////no/such/folder/study.db' cannot be reached" in str(raised.value)
    assert time.monotonic() - started < 10 and not (tmp_path / "run").exists()


def test_the_run_folders_sqlite_file_is_refused_for_a_spark_cluster_before_anything_is_written(tmp_path):
    from types import SimpleNamespace

    cluster = SimpleNamespace(sparkContext=SimpleNamespace(master="yarn"))  # what search reads of a session
    with pytest.raises(DescendValueError) as raised:
        search(tmp_path / "run", backend="spark", spark=cluster)
    assert f"the SQLite file {tmp_path / 'run' / 'study.db'}, which Spark's executors on other machines cannot " \
           "share (master 'yarn'); pass storage= a database server" in str(raised.value)
    assert not (tmp_path / "run").exists()


def test_a_folder_holding_another_study_is_refused_unless_resumed_and_keeps_its_study(tmp_path):
    run = tmp_path / "run"
    search(run, trials=2, epochs=1)
    kept = {path.name: path.read_bytes() for path in run.iterdir() if path.is_file()}
    with pytest.raises(DescendValueError, match="holds another study .* pass resume=True"):
        search(run, trials=2, epochs=1)
    with pytest.raises(DescendValueError, match="metric was 'val_accuracy', now 'val_loss'"):
        search(run, trials=3, epochs=1, metric="val_loss", direction="minimize", resume=True)
    with pytest.raises(DescendValueError, match="holds no study"):
        search(tmp_path / "empty", resume=True)
    assert {path.name: path.read_bytes() for path in run.iterdir() if path.is_file()} == kept
    before = rows_of(run)
    study = search(run, trials=3, epochs=1, resume=True)  # goes on: the two trials kept, one more run
    assert len(study.trials) == 3 and rows_of(run)[:2] == before


# Spark and the command


def test_the_spark_backend_runs_each_trial_as_a_task_reporting_every_epoch_to_the_storage(spark, tmp_path):
    import optuna

    study = search(tmp_path / "run", trials=2, epochs=2, backend="spark", spark=spark, parallel=2)
    rows = rows_of(tmp_path / "run")
    assert len(rows) == 2 and {row["state"] for row in rows} <= {"COMPLETE", "PRUNED"}
    stored = optuna.load_study(study_name="descend-tune", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}")
    for trial, row in zip(stored.get_trials(), rows):  # the executors reported each epoch they ran
        assert sorted(trial.intermediate_values) == list(range(1, int(row["epochs"]) + 1))
    scores = dc.evaluate(study.best_model, dc.nn.CrossEntropyLoss(), VALIDATION)
    assert scores["accuracy"] == study.best_value == max(float(row["value"]) for row in rows
                                                         if row["state"] == "COMPLETE")


def test_a_free_spark_slot_gets_a_new_trial_at_once_not_after_the_slow_one_ends(spark, tmp_path):
    search(tmp_path / "run", build=SlowFirstBuild(tmp_path), space={"lr": tune.loguniform(0.01, 0.5),
           "hidden": tune.int(8, 9)}, trials=4, epochs=1, parallel=2, pruner="none", backend="spark", spark=spark)
    assert started_while_the_slow_one_ran(tmp_path / "run") == 3


def test_a_spark_task_lost_beyond_sparks_own_retries_fails_its_trial_which_is_run_again(spark, tmp_path):
    # the session tries a task twice: both attempts die
    search(tmp_path / "run", build=DyingBuild(tmp_path, deaths=2), trials=1, epochs=1, backend="spark", spark=spark, parallel=1)
    rows = rows_of(tmp_path / "run")
    assert [row["state"] for row in rows] == ["FAIL", "COMPLETE"] and "its Spark task failed" in rows[0]["lost"]
    assert rows[1]["retry_of"] == "0" and (rows[1]["lr"], rows[1]["hidden"]) == (rows[0]["lr"], rows[0]["hidden"])


def test_descend_tune_searches_a_preset_and_prints_the_table(tmp_path):
    from click.testing import CliRunner

    from descend.cli import main

    space = tmp_path / "space.toml"
    space.write_text('[space]\nlr = { loguniform = [0.01, 0.5] }\nhidden = { int = [8, 32] }\n'
                     'optimizer = { choice = ["sgd", "adam"] }\n')
    run = tmp_path / "run"
    arguments = ["tune", "--model", "mlp", "--data", "digits", "--space", str(space), "--epochs", "1", "--out", str(run),
                 "--quiet"]
    result = CliRunner().invoke(main, [*arguments, "--trials", "3"])
    assert result.exit_code == 0, result.output
    rows = rows_of(run)
    best = max((row for row in rows if row["state"] == "COMPLETE"), key=lambda row: float(row["value"]))
    assert f"best: trial {best['number']}, val_accuracy {float(best['value']):.4f}" in result.output
    assert result.output.splitlines()[1].startswith(f"* {best['number']} ")  # the table lists the best first
    again = CliRunner().invoke(main, ["tune", "--resume", str(run), "--trials", "4", "--quiet", "--json"])
    assert again.exit_code == 0, again.output
    assert len(rows_of(run)) == 4 and rows_of(run)[:3] == rows


def test_descend_tune_refuses_an_unknown_parameter_naming_the_known_ones(tmp_path):
    from click.testing import CliRunner

    from descend.cli import main

    space = tmp_path / "space.toml"
    space.write_text('[space]\nlearning_rate = { loguniform = [0.01, 0.5] }\n')
    result = CliRunner().invoke(main, ["tune", "--data", "digits", "--space", str(space), "--out", str(tmp_path / "r")])
    assert result.exit_code == 1 and not (tmp_path / "r").exists()
    assert ("unknown parameter 'learning_rate' for --model mlp; the known parameters are lr, momentum, hidden, "
            "dropout, weight_decay, optimizer, activation, batch_size") in result.output
    zero = CliRunner().invoke(main, ["tune", "--data", "digits", "--space", str(space), "--trials", "0"])
    assert zero.exit_code == 2 and "--trials" in zero.output


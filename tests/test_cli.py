"""The `descend` command: train and evaluate end to end, usage errors, exit codes."""

import json
import subprocess
import sys
import time

import click
import numpy as np
import pytest
from click.testing import CliRunner

import descend as dc
from descend.cli import main


def test_train_then_evaluate_on_digits(tmp_path):
    runner = CliRunner()
    out = tmp_path / "run"
    result = runner.invoke(main, ["train", "--model", "mlp", "--data", "digits", "--epochs", "2", "--batch-size", "16", "--hidden", "32",
                                  "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert (out / "model.dsc").is_file()
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2] and records[-1]["val_accuracy"] > 0.8

    result = runner.invoke(main, ["evaluate", str(out / "model.dsc"), "--data", "digits", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["accuracy"] > 0.8


def test_evaluate_and_predict_take_a_users_parquet_table_of_the_data_set_and_give_its_figures(tmp_path):
    from descend.cli.datasets import load_splits
    from descend.data import save_parquet

    runner = CliRunner()
    model = str(tmp_path / "run" / "model.dsc")
    assert runner.invoke(main, ["train", "--model", "logistic", "--data", "digits", "--epochs", "1", "--quiet",
                                "--out", str(tmp_path / "run")]).exit_code == 0
    test = load_splits("digits", images=False)[-1]  # scaled as training scaled it
    table = save_parquet(tmp_path / "test.parquet", test.x, test.y, row_group_size=100, features="pixels",
                         label="digit")
    named = runner.invoke(main, ["evaluate", model, "--data", "digits", "--json"])
    own = runner.invoke(main, ["evaluate", model, "--data", str(table), "--features", "pixels", "--label", "digit",
                               "--json"])
    assert own.exit_code == 0, own.output
    assert own.stdout == named.stdout and json.loads(own.stdout)["accuracy"] > 0.8  # the same rows, the same bits
    folder = tmp_path / "rows.parquet"  # as Spark writes a table: a folder of part files
    folder.mkdir()
    save_parquet(folder / "part-00000.parquet", test.x[:300])
    save_parquet(folder / "part-00001.parquet", test.x[300:])
    np.save(tmp_path / "rows.npy", test.x)
    from_table = runner.invoke(main, ["predict", model, str(folder), "--probabilities"])
    assert from_table.exit_code == 0, from_table.output
    assert from_table.stdout == runner.invoke(main, ["predict", model, str(tmp_path / "rows.npy"),
                                                     "--probabilities"]).stdout
    assert len(from_table.stdout.splitlines()) == len(test.x) + 1
    raw = runner.invoke(main, ["evaluate", model, "--data", str(save_parquet(tmp_path / "raw.parquet", test.x * 16,
                                                                               test.y))])
    assert raw.exit_code == 2 and "raw.parquet holds values in [0, 16], within [0, 16], the range of digits before " \
                                  "training scaled it" in raw.output and "x / 16" in raw.output
    negated = runner.invoke(main, ["evaluate", model, "--data", str(save_parquet(tmp_path / "negated.parquet",
                                                                                   -test.x, test.y))])
    assert negated.exit_code == 0 and "warning: " in negated.stderr and "outside [0, 1]" in negated.stderr
    assert float(negated.stdout.split()[3]) < 0.5  # evaluated as it is: the model sees nothing it knows


def test_train_prints_one_line_per_epoch_and_json_mode_prints_records(tmp_path):
    result = CliRunner().invoke(main, ["train", "--model", "logistic", "--data", "digits", "--epochs", "2",
                                       "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["epoch"] for line in lines[:-1]] == [1, 2]
    assert 0.5 < lines[-1]["test_accuracy"] <= 1.0
    assert json.loads((tmp_path / "test.json").read_text()) == lines[-1]


def test_bad_usage_exits_2_and_failures_exit_1_with_one_line(tmp_path):
    runner = CliRunner()
    assert runner.invoke(main, ["train", "--epochs", "0"]).exit_code == 2
    assert runner.invoke(main, ["train", "--hidden", "12,x"]).exit_code == 2
    assert runner.invoke(main, ["train", "--model", "transformer"]).exit_code == 2
    bad = tmp_path / "bad.dsc"
    bad.write_bytes(b"not a model")
    result = runner.invoke(main, ["evaluate", str(bad), "--data", "digits"])
    assert result.exit_code == 1
    assert result.output.strip().startswith("error:") and len(result.output.strip().splitlines()) == 1


def test_help_explains_each_command_with_an_example():
    commands = [[]] + [[name] for name in main.commands]
    assert {"train", "evaluate", "predict", "generate", "anomaly", "explain", "lr-find", "tour", "bench"} <= set(
        main.commands)
    for command in commands:
        result = CliRunner().invoke(main, [*command, "--help"])
        assert result.exit_code == 0 and "Example:" in result.output, command


def test_console_script_is_installed():
    result = subprocess.run([sys.executable, "-m", "descend.cli", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and "descend" in result.stdout


def test_train_a_cnn_writes_its_filters_and_feature_maps(tmp_path):
    result = CliRunner().invoke(main, ["train", "--model", "cnn", "--data", "digits", "--epochs", "1",
                                       "--batch-size", "32", "--out", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    for name in ("model.dsc", "filters.png", "feature_maps.png"):
        assert (tmp_path / name).stat().st_size > 1000
    result = CliRunner().invoke(main, ["evaluate", str(tmp_path / "model.dsc"), "--data", "digits", "--json"])
    assert result.exit_code == 0, result.output


def test_train_a_capsnet_writes_its_reconstructions_and_perturbations(tmp_path):
    result = CliRunner().invoke(main, ["train", "--model", "capsnet", "--data", "mnist", "--hidden", "8,2",
                                       "--limit", "256", "--epochs", "1", "--out", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    for name in ("model.dsc", "reconstructions.png", "perturbations.png", "curves.png"):
        assert (tmp_path / name).stat().st_size > 1000
    assert isinstance(dc.load(tmp_path / "model.dsc"), dc.nn.CapsNet)
    result = CliRunner().invoke(main, ["evaluate", str(tmp_path / "model.dsc"), "--data", "mnist", "--json"])
    assert result.exit_code == 0, result.output
    assert 0.0 <= json.loads(result.output)["accuracy"] <= 1.0


def test_train_a_char_model_on_a_text_file_then_generate(tmp_path):
    text = tmp_path / "play.txt"
    text.write_text("ROMEO:\nBut soft, what light through yonder window breaks?\n" * 30)
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--model", "char-gru", "--text", str(text), "--epochs", "2",
                                       "--seq-length", "16", "--hidden", "24", "--embed", "8", "--batch-size", "8",
                                       "--out", str(run), "--quiet"])
    assert result.exit_code == 0, result.output
    assert {"model.dsc", "vocab.json", "sample.txt", "metrics.jsonl"} <= {p.name for p in run.iterdir()}
    result = CliRunner().invoke(main, ["generate", "--run", str(run), "--prompt", "ROMEO:", "--length", "40",
                                       "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ROMEO:") and len(result.output.rstrip("\n")) >= 40


def test_models_and_data_must_go_together(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["train", "--model", "char-lstm", "--data", "mnist", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "char models learn from text" in result.output
    result = runner.invoke(main, ["generate", "--run", str(tmp_path)])
    assert result.exit_code == 2 and f"{tmp_path} holds no model.dsc" in result.output


def test_anomaly_command_scores_a_held_out_digit(tmp_path):
    result = CliRunner().invoke(main, ["anomaly", "--normal", "0,1", "--anomalous", "7", "--epochs", "1",
                                       "--limit", "2000", "--code", "16", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output.strip().splitlines()[-1])
    assert 0.5 < metrics["roc_auc"] <= 1.0 and 0.0 < metrics["average_precision"] <= 1.0
    for name in ("scores.png", "worst.png", "model.dsc", "metrics.json", "metrics.jsonl", "curves.png"):
        assert (tmp_path / name).stat().st_size > 50
    bad = CliRunner().invoke(main, ["anomaly", "--normal", "1,2", "--anomalous", "2"])
    assert bad.exit_code == 2 and "both normal and anomalous" in bad.output


def test_hogwild_prints_a_table_per_configuration_and_saves_the_speedup_plot(tmp_path):
    result = CliRunner().invoke(main, ["hogwild", "--data", "sparse", "--rows", "20000", "--features", "5000",
                                       "--workers", "1,2", "--lock", "none,mutex", "--epochs", "2", "--out", str(tmp_path),
                                       "--quiet"])
    assert result.exit_code == 0, result.output
    table = result.output.splitlines()
    assert table[0].split()[:4] == ["workers", "lock", "updates/s", "speed-up"]
    assert [line.split()[:2] for line in table[1:5]] == [["1", "none"], ["2", "none"], ["1", "mutex"], ["2", "mutex"]]
    runs = json.loads((tmp_path / "runs.json").read_text())
    assert runs[0]["speedup"] == 1.0 and all(run["updates_per_second"] > 0 for run in runs)
    assert (tmp_path / "speedup.png").stat().st_size > 0
    ratings = CliRunner().invoke(main, ["hogwild", "--data", "ratings", "--rows", "5000", "--workers", "2",
                                        "--lock", "none", "--epochs", "2", "--out", str(tmp_path), "--json"])
    assert ratings.exit_code == 0, ratings.output
    assert [run["workers"] for run in json.loads(ratings.output)] == [1, 2]  # serial is always the baseline
    assert CliRunner().invoke(main, ["hogwild", "--lock", "spin"]).exit_code == 2
    assert CliRunner().invoke(main, ["hogwild", "--workers", "0"]).exit_code == 2


def test_train_with_the_hogwild_engine_and_resume_it(tmp_path):
    result = CliRunner().invoke(main, ["train", "--model", "mlp", "--data", "digits", "--epochs", "1", "--hidden", "32",
                                       "--batch-size", "16", "--engine", "hogwild", "--workers", "2", "--out", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    assert [path.name for path in (tmp_path / "checkpoints").iterdir()] == ["checkpoint-000000068.dsc"]
    resumed = CliRunner().invoke(main, ["train", "--resume", str(tmp_path), "--epochs", "2", "--quiet"])
    assert resumed.exit_code == 0, resumed.output
    assert [json.loads(line)["epoch"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    assert json.loads((tmp_path / "test.json").read_text())["test_accuracy"] > 0.8
    assert CliRunner().invoke(main, ["train", "--workers", "2"]).exit_code == 2


def test_options_come_from_a_toml_file_and_flags_win(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('[train]\nmodel = "mlp"\ndata = "digits"\nepochs = 3\nhidden = [16]\nbatch-size = 64\n'
                      '[evaluate]\ndata = "mnist"\n')
    result = CliRunner().invoke(main, ["train", "--config", str(config), "--epochs", "2", "--out", str(tmp_path / "run"),
                                       "--json"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 2  # the flag, not the file's 3
    assert (tmp_path / "run" / "curves.png").stat().st_size > 0
    from descend import load

    assert load(tmp_path / "run" / "model.dsc").sizes == [64, 16, 10]  # the file's hidden = [16]
    config.write_text("epoch = 3\n")
    result = CliRunner().invoke(main, ["train", "--config", str(config)])
    assert result.exit_code == 2 and "'epoch'" in result.output and "epochs" in result.output


def test_predict_writes_classes_and_probabilities_for_npy_and_csv_rows(tmp_path):
    import numpy as np

    import descend as dc

    runner = CliRunner()
    run = tmp_path / "run"
    assert runner.invoke(main, ["train", "--model", "mlp", "--data", "digits", "--epochs", "2", "--hidden", "32",
                                "--out", str(run), "--quiet"]).exit_code == 0
    _, test = dc.data.load_digits()
    np.save(tmp_path / "rows.npy", test.x[:20])
    np.savetxt(tmp_path / "rows.csv", test.x[:20], delimiter=",", header=",".join(f"p{i}" for i in range(64)),
               comments="")
    expected = dc.predict(dc.load(run / "model.dsc"), test.x[:20]).argmax(axis=1)
    result = runner.invoke(main, ["predict", str(run / "model.dsc"), str(tmp_path / "rows.npy"), "--probabilities",
                                  "--out", str(tmp_path / "predictions.csv")])
    assert result.exit_code == 0, result.output
    table = np.loadtxt(tmp_path / "predictions.csv", delimiter=",", skiprows=1)
    np.testing.assert_array_equal(table[:, 0], expected)
    np.testing.assert_allclose(table[:, 1:].sum(axis=1), 1.0, atol=1e-4)
    result = runner.invoke(main, ["predict", str(run / "model.dsc"), str(tmp_path / "rows.csv"), "--json"])
    assert [json.loads(line)["prediction"] for line in result.output.splitlines()] == expected.tolist()
    rows = test.x[:3].copy()
    rows[1, 5] = np.nan
    np.save(tmp_path / "nan.npy", rows)
    result = runner.invoke(main, ["predict", str(run / "model.dsc"), str(tmp_path / "nan.npy")])
    assert result.exit_code == 2 and "row 1 holds NaN" in result.output


def test_explain_prints_the_textbook_tables_and_refuses_what_is_not_a_formula():
    result = CliRunner().invoke(main, ["explain", "ln(x1) + x1*x2 - sin(x2)", "x1=2", "x2=5"])
    assert result.exit_code == 0 and "Reverse sweep" in result.output and "∂f/∂x1 = 5.500" in result.output
    result = CliRunner().invoke(main, ["explain", "__import__('os').getcwd()", "x=1"])
    assert result.exit_code == 2 and "a formula may use" in result.output
    assert CliRunner().invoke(main, ["explain", "x*y", "x=1"]).exit_code == 2
    assert CliRunner().invoke(main, ["explain", "x*y", "x=1", "y"]).exit_code == 2


def test_bench_runs_a_benchmark_script_with_its_arguments(tmp_path):
    (tmp_path / "mlp_mnist.py").write_text("import sys\nprint('benchmark got', sys.argv[1:])\n")
    result = subprocess.run([sys.executable, "-m", "descend.cli", "bench", "mlp", "--benchmarks", str(tmp_path),
                             "--epochs", "1"], capture_output=True, text=True)
    assert result.returncode == 0 and "benchmark got ['--epochs', '1']" in result.stdout
    assert CliRunner().invoke(main, ["bench", "transformer"]).exit_code == 2


def test_train_options_are_the_train_command_s_options_and_round_trip_through_run_json(tmp_path):
    from dataclasses import fields

    from descend.cli.train_options import TrainOptions

    shown = {"resume_dir", "overwrite", "quiet", "as_json"}  # how this run is shown, where it goes, not what it trains
    names = {parameter.name for parameter in main.commands["train"].params} - shown - {"config"}
    assert {field.name for field in fields(TrainOptions)} == names
    run = tmp_path / "run"
    assert CliRunner().invoke(main, ["train", "--data", "digits", "--epochs", "1", "--hidden", "8,4", "--limit", "50",
                                     "--quiet", "--out", str(run)]).exit_code == 0
    saved = TrainOptions.from_record(json.loads((run / "run.json").read_text())["options"])
    assert (saved.model_name, saved.data_name, saved.hidden, saved.epochs, saved.limit) == ("mlp", "digits", (8, 4), 1, 50)


def test_train_help_loads_neither_spark_nor_hogwild():
    code = ("import sys; from descend.cli import main; main(['train', '--help'], standalone_mode=False); "
            "print(sorted(m for m in sys.modules if m.startswith(('descend.hogwild', 'pyspark'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"


def _files(folder):
    """Every file under `folder`, by relative path, with its bytes."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_a_second_train_into_the_folder_of_a_live_run_is_refused_and_the_first_run_still_resumes(tmp_path):
    run = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "descend.cli", "train", "--data", "digits", "--hidden", "8",
                              "--limit", "64", "--batch-size", "1", "--epochs", "100000", "--quiet", "--out", str(run)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list((run / "checkpoints").glob("checkpoint-*.dsc")) and first.poll() is None:
            assert time.monotonic() < deadline, "the first run wrote no checkpoint in 2 minutes"
            time.sleep(0.05)
        assert first.poll() is None, first.stderr.read()
        record = (run / "run.json").read_bytes()
        for extra in (["--out", str(run)], ["--out", str(run), "--overwrite"], ["--resume", str(run)]):
            second = CliRunner().invoke(main, ["train", "--data", "digits", "--epochs", "1", *extra])
            assert second.exit_code == 2, second.output
            assert f"{run} is in use: another descend train run holds it" in second.output
            assert (run / "run.json").read_bytes() == record
        assert first.poll() is None  # the refusals did not disturb it
    finally:
        first.kill()
        first.wait()
    done = len((run / "metrics.jsonl").read_text().splitlines())
    resumed = CliRunner().invoke(main, ["train", "--resume", str(run), "--epochs", str(done + 1), "--quiet"])
    assert resumed.exit_code == 0, resumed.output  # the lock died with the killed run
    assert len((run / "metrics.jsonl").read_text().splitlines()) == done + 1
    assert json.loads((run / "run.json").read_text())["options"]["limit"] == 64
    assert not (run / ".lock").exists()


def test_one_process_cannot_take_a_run_folder_twice_and_the_lock_goes_with_the_run(tmp_path):
    from descend.cli.run_folder import locked

    run = tmp_path / "run"
    with locked(run) as folder:
        with pytest.raises(click.UsageError, match="is in use: another descend train run holds it"):
            with locked(run):
                pass
        assert (run / ".lock").is_file()  # the refused one took nothing away
        folder.started = True
    assert list(run.iterdir()) == []  # the lock file went with the run; the folder is the run's
    with locked(run):  # free again
        pass
    assert run.is_dir()  # not made by that one: not its to take away
    with locked(tmp_path / "never" / "started"):
        pass
    assert list(tmp_path.iterdir()) == [run]  # made, never started: taken away


def test_train_refuses_a_folder_that_holds_another_run_and_overwrite_replaces_it(tmp_path):
    run = tmp_path / "run"
    tiny = ["train", "--data", "digits", "--limit", "50", "--quiet", "--out", str(run)]
    assert CliRunner().invoke(main, [*tiny, "--hidden", "8", "--epochs", "2"]).exit_code == 0
    old = _files(run)
    assert len([name for name in old if name.startswith("checkpoints/")]) == 2 and ".lock" not in old
    refused = CliRunner().invoke(main, [*tiny, "--hidden", "4", "--epochs", "1"])
    assert refused.exit_code == 2
    assert f"{run} holds another run (run.json, metrics.jsonl, model.dsc, 2 checkpoints" in refused.output
    assert f"--resume {run}" in refused.output and "--overwrite" in refused.output
    assert _files(run) == old
    shorter = CliRunner().invoke(main, ["train", "--resume", str(run), "--epochs", "1"])  # fit refuses: at epoch 2
    assert shorter.exit_code == 1 and "already at epoch 2" in shorter.output
    assert _files(run) == old  # run.json is written only once every check has passed
    for name in ("run.json", "metrics.jsonl", "model.dsc"):  # a run killed before its first epoch ended
        (run / name).unlink()
    refused = CliRunner().invoke(main, [*tiny, "--hidden", "4", "--epochs", "1"])
    assert refused.exit_code == 2 and "holds another run (2 checkpoints" in refused.output
    replaced = CliRunner().invoke(main, [*tiny, "--hidden", "4", "--epochs", "1", "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert json.loads((run / "run.json").read_text())["options"]["hidden"] == [4]
    assert dc.load(run / "model.dsc").sizes == [64, 4, 10]
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1
    new = _files(run)
    assert len([name for name in new if name.startswith("checkpoints/")]) == 1 and ".lock" not in new


def test_a_run_refused_by_its_checks_leaves_no_folder_or_file_behind(tmp_path):
    fresh = tmp_path / "new" / "run"
    refused = CliRunner().invoke(main, ["train", "--workers", "2", "--out", str(fresh)])
    assert refused.exit_code == 2 and "--workers is for --engine hogwild" in refused.output
    refused = CliRunner().invoke(main, ["train", "--data", "digits", "--hidden", "1000000000", "--out", str(fresh)])
    assert refused.exit_code == 2 and "too big" in refused.output  # refused once the folder was made and locked
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "empty").mkdir()
    refused = CliRunner().invoke(main, ["train", "--data", "digits", "--hidden", "1000000000",
                                        "--out", str(tmp_path / "empty")])
    assert refused.exit_code == 2 and list((tmp_path / "empty").iterdir()) == []  # not ours to take away


def test_predict_prints_probabilities_not_logits_and_out_dash_means_standard_output(tmp_path):
    from descend import nn

    rows = np.random.default_rng(0).normal(size=(5, 2)).astype(np.float32)
    np.save(tmp_path / "rows.npy", rows)
    for model, softmax_of_logits in ((nn.MLP([2, 4, 3], rng=0), True),
                                     (nn.Sequential(nn.Linear(2, 3, rng=0), nn.Softmax()), False)):
        path = dc.save(model, tmp_path / "model.dsc")
        outputs = dc.predict(model, rows).astype(np.float64)
        plain = CliRunner().invoke(main, ["predict", str(path), str(tmp_path / "rows.npy")])
        assert plain.exit_code == 0, plain.output
        assert plain.output.splitlines()[0] == "prediction"
        np.testing.assert_array_equal(np.loadtxt(plain.output.splitlines()[1:]), outputs.argmax(axis=1))
        shown = CliRunner().invoke(main, ["predict", str(path), str(tmp_path / "rows.npy"), "--probabilities",
                                          "--out", "-"])
        assert shown.exit_code == 0, shown.output
        assert shown.output.splitlines()[0] == "prediction,p0,p1,p2"
        expected = np.exp(outputs) / np.exp(outputs).sum(axis=1, keepdims=True) if softmax_of_logits else outputs
        np.testing.assert_allclose(np.loadtxt(shown.output.splitlines()[1:], delimiter=",")[:, 1:], expected,
                                   rtol=1e-5)
    assert not (tmp_path / "-").exists()


def test_an_error_that_is_not_descend_s_is_still_one_line_and_debug_shows_the_traceback(tmp_path, monkeypatch):
    from descend.cli import models

    def broken(path):
        raise TypeError("an unforeseen case")

    monkeypatch.setattr(models, "read_header", broken)
    np.save(tmp_path / "rows.npy", np.ones((2, 2)))
    arguments = ["predict", str(tmp_path / "model.dsc"), str(tmp_path / "rows.npy")]
    (tmp_path / "model.dsc").write_bytes(b"")
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert result.output.startswith("error: TypeError: an unforeseen case (a bug in descend: run again with --debug")
    result = CliRunner().invoke(main, ["--debug", *arguments])
    assert isinstance(result.exception, TypeError)


def test_the_threads_and_kernels_options_set_descend_s_kernels_for_the_command(monkeypatch):
    import numba

    from descend import kernels

    chosen = []
    monkeypatch.setattr(kernels, "set_threads", lambda threads: chosen.append(threads))
    before = kernels.backend_name()
    try:
        result = CliRunner().invoke(main, ["--kernels", "numpy", "--threads", "1", "explain", "x*y", "x=2", "y=3"])
        assert result.exit_code == 0, result.output
        assert kernels.backend_name() == "numpy" and chosen == [1]
    finally:
        kernels.use(before)
    assert numba.config.NUMBA_NUM_THREADS >= 1


def test_train_reads_a_users_parquet_table_a_window_at_a_time_and_resumes(tmp_path):
    from descend.data import save_parquet

    digits, _ = dc.data.load_digits()
    table = save_parquet(tmp_path / "digits.parquet", digits.x, digits.y, row_group_size=200, features="pixels",
                         label="digit")
    run = tmp_path / "run"
    options = ["train", "--data", str(table), "--features", "pixels", "--label", "digit", "--batch-size", "32",
               "--out", str(run), "--quiet"]
    result = CliRunner().invoke(main, [*options, "--epochs", "3"])
    assert result.exit_code == 0, result.output
    assert "rows of digits.parquet" in result.output
    resumed = CliRunner().invoke(main, ["train", "--resume", str(run), "--epochs", "5", "--quiet"])
    assert resumed.exit_code == 0, resumed.output
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [record["epoch"] for record in records] == [1, 2, 3, 4, 5] and records[-1]["accuracy"] > 0.9
    model = dc.load(run / "model.dsc")
    assert dc.evaluate(model, dc.nn.CrossEntropyLoss(), digits)["accuracy"] > 0.9
    straight = CliRunner().invoke(main, [*options, "--epochs", "5", "--out", str(tmp_path / "straight")])
    assert straight.exit_code == 0, straight.output
    np.testing.assert_array_equal(model.flat_buffer().data, dc.load(tmp_path / "straight" / "model.dsc").flat_buffer().data)

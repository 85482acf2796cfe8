"""The `descend` command: train and evaluate end to end, usage errors, exit codes."""

import json
import subprocess
import sys

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
    assert result.exit_code == 2 and "vocab.json" in result.output


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


def test_train_with_the_hogwild_engine(tmp_path):
    result = CliRunner().invoke(main, ["train", "--model", "mlp", "--data", "digits", "--epochs", "2", "--hidden", "32",
                                       "--batch-size", "16", "--engine", "hogwild", "--workers", "2", "--out", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
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

    shown = {"resume_dir", "quiet", "as_json"}  # how this run is shown or where it resumes, not what it trains
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

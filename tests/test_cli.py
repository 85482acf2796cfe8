"""The `descend` command: train and evaluate end to end, usage errors, exit codes."""

import json
import subprocess
import sys

from click.testing import CliRunner

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
    for command in ([], ["train"], ["evaluate"]):
        result = CliRunner().invoke(main, [*command, "--help"])
        assert result.exit_code == 0 and "Example:" in result.output


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
    for name in ("scores.png", "worst.png", "model.dsc", "metrics.json"):
        assert (tmp_path / name).stat().st_size > 100
    bad = CliRunner().invoke(main, ["anomaly", "--normal", "1,2", "--anomalous", "2"])
    assert bad.exit_code == 2 and "both normal and anomalous" in bad.output


def test_hogwild_prints_a_table_per_configuration_and_saves_the_speedup_plot(tmp_path):
    result = CliRunner().invoke(main, ["hogwild", "--data", "sparse", "--rows", "20000", "--features", "5000",
                                       "--workers", "1,2", "--lock", "none,mutex", "--epochs", "2", "--out", str(tmp_path)])
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

"""The benchmark suite (benchmarks/suite.py), its page (benchmarks/report.py) and `descend bench`: no real training.

The driver is run with a fake runner in place of the side processes, so the order of the sides, the
medians, the ratios and the table are checked on figures chosen here.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import imported

from descend.cli import main

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # the suite imports its neighbours (blas_kernel, cnn_mnist, char_rnn, ...)

import report  # noqa: E402
import suite  # noqa: E402

#: per workload and side, the figures of rounds 1, 2, 3 (medians: descend 0.2 s, torch 0.4 s; chars/s 2000, 2500)
SECONDS = {"descend": [0.3, 0.1, 0.2], "torch": [0.4, 0.1, 0.5]}
CHARS = {"descend": [1000.0, 3000.0, 2000.0], "torch": [2500.0, 2400.0, 2600.0]}
CAPSNET_SECONDS = {"capsnet": [0.25, 0.2, 0.1], "capsnet_slow": [0.25, 0.3, 0.21]}


class FakeRunner:
    """Stands in for the side processes: records each command and environment, answers with chosen figures."""

    def __init__(self, capsnet_seconds=CAPSNET_SECONDS["capsnet"], fail=None):
        self.calls = []
        self.capsnet_seconds = capsnet_seconds
        self.fail = fail  # (workload, side) whose process fails

    def __call__(self, command, environment):
        side, workload = side_and_workload(command)
        if (workload, side) == self.fail:
            raise suite.SideFailed(f"{workload} {side} stopped with exit code 1")
        round_index = sum(side_and_workload(called) == (side, workload) for called, _ in self.calls)
        self.calls.append((list(command), dict(environment)))
        seconds = self.capsnet_seconds[round_index] if workload == "capsnet" else SECONDS[side][round_index]
        figures = {"workload": workload, "side": side, "steps": 10, "seconds_per_step": seconds,
                   "seconds_per_epoch": seconds * 469, "loss": 0.1234 if side == "descend" else 0.125,
                   "threads": 2, "kernels": "numba" if side == "descend" else None, "pools": []}
        if workload in ("lstm", "gru", "rnn"):
            figures["chars_per_second"] = CHARS[side][round_index]
        if "--accuracy" in command and workload == "mlp128":
            figures["accuracy"] = 0.9712 if side == "descend" else 0.9735
        if "--profile" in command:
            figures["profile"] = {"Linear.forward": 0.012, suite.OUTSIDE_PRIMITIVES: 0.003, "Relu.backward": 0.001}
        return figures

    def sides(self, workload):
        """The sides of `workload`'s processes, in the order they ran."""
        return [side for side, name in map(side_and_workload, (command for command, _ in self.calls)) if name == workload]


def side_and_workload(command):
    """(side, workload) of a side process's command."""
    return command[command.index("--side") + 1], command[command.index("--workload") + 1]


def run(options, runner=None):
    """run_suite with a fake runner; (results, what it printed)."""
    printed = []
    results = suite.run_suite(options, ["--test"], runner=runner or FakeRunner(), echo=printed.append)
    return results, "\n".join(printed)


def test_the_driver_alternates_the_sides_descend_torch_torch_descend():
    runner = FakeRunner()
    run(suite.SuiteOptions(rounds=3, workloads=("mlp128", "capsnet"), kernels="numpy"), runner)
    assert runner.sides("mlp128") == ["descend", "torch", "torch", "descend", "descend", "torch"]
    assert runner.sides("capsnet") == ["descend"] * 3  # no torch twin: no torch process
    for command, environment in runner.calls:
        side, _ = side_and_workload(command)
        assert command[:2] == [sys.executable, str(BENCHMARKS / "suite.py")]
        assert command[command.index("--threads") + 1] == "2" and "--quick" in command
        # --kernels is descend's side's alone; torch's side gets the environment as it is
        assert environment.get("DESCEND_KERNELS") == ("numpy" if side == "descend" else os.environ.get("DESCEND_KERNELS"))


def test_full_runs_the_accuracy_and_the_profile_in_the_first_round_only():
    runner = FakeRunner()
    run(suite.SuiteOptions(mode="full", rounds=3, workloads=("mlp128",)), runner)
    flags = [(side_and_workload(command)[0], "--accuracy" in command, "--profile" in command)
             for command, _ in runner.calls]
    assert flags == [("descend", True, True), ("torch", True, False), ("torch", False, False),
                     ("descend", False, False), ("descend", False, False), ("torch", False, False)]
    assert all("--full" in command for command, _ in runner.calls)


def test_medians_and_ratios_count_time_down_and_characters_per_second_up():
    results, _ = run(suite.SuiteOptions(rounds=3, workloads=("mlp128", "lstm", "gru", "capsnet")))
    workloads = results["workloads"]
    assert workloads["mlp128"]["median"]["descend"]["seconds_per_step"] == pytest.approx(0.2)
    assert workloads["mlp128"]["median"]["torch"]["seconds_per_step"] == pytest.approx(0.4)
    assert workloads["mlp128"]["ratio"] == pytest.approx(0.5) and workloads["mlp128"]["met"] is True
    # recurrent workloads: descend's chars/s over torch's, 2000 / 2500, judged at least the bound
    assert workloads["lstm"]["ratio"] == pytest.approx(0.8) and workloads["lstm"]["higher_is_better"]
    assert (workloads["lstm"]["met"], workloads["gru"]["met"]) == (True, False)  # at least 0.8, at least 1.0
    assert workloads["capsnet"]["ratio"] is None
    assert workloads["capsnet"]["median"]["descend"]["seconds_per_step"] == pytest.approx(0.2)
    assert workloads["capsnet"]["met"] is True  # 0.2 s <= 0.31 / 1.5 s
    slow, _ = run(suite.SuiteOptions(rounds=3, workloads=("capsnet",)), FakeRunner(CAPSNET_SECONDS["capsnet_slow"]))
    assert slow["workloads"]["capsnet"]["met"] is False  # 0.25 s


def test_the_table_has_every_column_and_a_row_per_workload():
    _, printed = run(suite.SuiteOptions(rounds=3, workloads=("mlp128", "lstm", "gru", "capsnet"), profile=True))
    table = printed[printed.index("workload"):]
    header = table.splitlines()[0]
    assert all(column in header for column in suite.HEADERS)
    rows = {line.split()[0]: line for line in table.splitlines()[2:6]}
    assert "200.0 ms/step, 93.8 s/epoch" in rows["mlp128"] and "400.0 ms/step, 187.6 s/epoch" in rows["mlp128"]
    assert "0.50 (time, lower is better)" in rows["mlp128"] and "≤ 1.00" in rows["mlp128"]
    assert "2,000 chars/s" in rows["lstm"] and "2,500 chars/s" in rows["lstm"]
    assert "0.80 (chars/s, higher is better)" in rows["lstm"] and "≥ 0.80" in rows["lstm"]
    assert " NO " in rows["gru"] and " yes " in rows["lstm"]
    assert "loss 0.1234 / 0.1250" in rows["mlp128"] and "numba" in rows["mlp128"]
    assert "—" in rows["capsnet"] and "≤ 0.207 s/step" in rows["capsnet"] and "loss 0.1234 " in rows["capsnet"]
    assert "where descend's step goes in mlp128 (16.0 ms a step" in printed
    assert "Linear.forward" in printed


def test_full_prints_the_accuracy_and_the_profile_of_a_workload_that_misses_its_target():
    _, printed = run(suite.SuiteOptions(mode="full", rounds=3, workloads=("mlp128", "gru")))
    assert "test acc 97.12% / 97.35% (after 1 epoch; Δ -0.23 pt, target ±0.3: yes)" in printed
    assert "where descend's step goes in gru" in printed  # missed its target
    assert "where descend's step goes in mlp128" not in printed  # met it, and --profile was not asked


def test_a_failed_side_is_reported_in_its_row_and_the_others_still_run():
    results, printed = run(suite.SuiteOptions(rounds=2, workloads=("cnn", "mlp128")), FakeRunner(fail=("cnn", "torch")))
    assert "error" in results["workloads"]["cnn"] and "ratio" in results["workloads"]["mlp128"]
    assert "failed: cnn torch stopped with exit code 1" in printed


def test_json_holds_the_raw_figures_the_medians_and_the_machine(tmp_path):
    path = tmp_path / "out" / "bench.json"
    run(suite.SuiteOptions(rounds=3, workloads=("mlp128", "rnn", "capsnet"), json_path=str(path)))
    saved = json.loads(path.read_text())
    assert set(saved) == {"command", "date", "machine", "settings", "workloads"}
    assert saved["command"] == "python benchmarks/suite.py --test"
    assert {"cpu", "cores", "python", "versions", "blas", "pools"} <= set(saved["machine"])
    assert {"numpy", "torch", "numba"} <= set(saved["machine"]["versions"])
    assert saved["settings"]["rounds"] == 3 and saved["settings"]["workloads"] == ["mlp128", "rnn", "capsnet"]
    mlp = saved["workloads"]["mlp128"]
    assert {"runs", "median", "ratio", "target", "met", "kernels"} <= set(mlp)
    assert [run["seconds_per_step"] for run in mlp["runs"]["descend"]] == SECONDS["descend"]
    assert saved["workloads"]["rnn"]["median"]["torch"]["chars_per_second"] == 2500
    assert set(saved["workloads"]["capsnet"]["runs"]) == {"descend"}


@pytest.mark.parametrize("arguments, words", [
    (["--workloads", "mlp128,transformer"], ["transformer", *suite.WORKLOADS]),
    (["--rounds", "0"], ["--rounds", "less than 1"]),
    (["--threads", "0"], ["--threads", "less than 1"]),
])
def test_the_suite_refuses_bad_options_with_exit_code_2(arguments, words):
    result = subprocess.run([sys.executable, str(BENCHMARKS / "suite.py"), *arguments], capture_output=True, text=True)
    assert result.returncode == 2
    assert all(word in result.stderr for word in words), result.stderr


def test_descend_bench_refuses_an_unknown_workload_and_too_few_rounds():
    result = subprocess.run([sys.executable, "-m", "descend.cli", "bench", "--workloads", "transformer"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "transformer" in result.stderr and "capsnet" in result.stderr
    assert CliRunner().invoke(main, ["bench", "--rounds", "0"]).exit_code == 2
    assert CliRunner().invoke(main, ["bench", "--epochs", "2"]).exit_code == 2  # not an option of the suite


def test_descend_bench_passes_its_options_to_the_suite_and_the_ones_given_to_a_script(tmp_path):
    echo = "import sys\nprint('got', sys.argv[1:])\n"
    (tmp_path / "suite.py").write_text(echo)
    (tmp_path / "char_rnn.py").write_text(echo)

    def bench(*arguments):
        result = subprocess.run([sys.executable, "-m", "descend.cli", "bench", "--benchmarks", str(tmp_path), *arguments],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert bench("--full", "--rounds", "3", "--kernels", "numpy", "--workloads", "cnn,lstm", "--profile",
                 "--json", "b.json") == ("got ['--full', '--rounds', '3', '--threads', '2', '--kernels', 'numpy', "
                                         "'--workloads', 'cnn,lstm', '--json', 'b.json', '--profile']")
    assert bench() == "got ['--quick', '--threads', '2']"
    assert bench("rnn", "--steps", "5", "--rounds", "4") == "got ['--steps', '5', '--rounds', '4']"


def test_the_profile_times_each_primitive_and_puts_the_methods_back():
    import descend as dc
    from descend.ops import all_primitives

    before = {(cls, method): cls.__dict__[method] for cls in all_primitives() for method in ("forward", "backward")
              if method in cls.__dict__}

    def step():
        x = dc.Tensor(np.ones((4, 3)), requires_grad=True)
        ((x * 2.0).exp().sum()).backward()

    spent = suite.time_by_op(step)
    assert {"Exp.forward", "Exp.backward", suite.OUTSIDE_PRIMITIVES} <= set(spent)
    assert list(spent.values()) == sorted(spent.values(), reverse=True)
    assert all(cls.__dict__[method] is original for (cls, method), original in before.items())


def test_the_descend_side_builds_every_workload_without_importing_torch():
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import suite\n"
            "for workload in suite.WORKLOADS.values(): workload.descend()\n"
            "print(sorted(name for name in sys.modules if name.split('.')[0] == 'torch'))")
    result = subprocess.run([sys.executable, "-c", code, str(BENCHMARKS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"


@pytest.mark.parametrize("name", ["mlp32", "cnn", "lstm", "autoencoder"])
def test_each_torch_twin_computes_what_descend_s_model_computes(name):
    torch = imported("torch")
    import descend as dc

    ours, theirs = suite.WORKLOADS[name].descend(), suite.WORKLOADS[name].torch()
    ours.model.eval()  # the CNN's dropout off, in both
    theirs.model.eval()
    inputs = theirs.x[:4]  # the torch side's copy of the same data
    expected = ours.model(dc.tensor(inputs.numpy())).data
    with torch.no_grad():
        got = theirs.model(inputs).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_report_writes_the_page_with_every_ratio_and_the_plot(tmp_path):
    path = tmp_path / "bench.json"
    results, _ = run(suite.SuiteOptions(rounds=3, workloads=("mlp128", "lstm", "gru", "capsnet"), json_path=str(path)))
    (tmp_path / "notes.md").write_text("## What the figures owe\n\nhand-written words\n")
    assert report.main([str(path), "--out", str(tmp_path / "docs"), "--notes", str(tmp_path / "notes.md")]) == 0
    page = (tmp_path / "docs" / "benchmarks.md").read_text()
    assert page.rstrip().endswith("## What the figures owe\n\nhand-written words")
    for name, ratio in (("mlp128", "0.50 (time"), ("lstm", "0.80 (chars/s"), ("gru", "0.80 (chars/s")):
        assert any(line.startswith(f"| {name} |") and ratio in line for line in page.splitlines()), name
    assert "| capsnet |" in page and "python benchmarks/suite.py --test" in page and results["date"] in page
    assert results["machine"]["cpu"] in page
    assert (tmp_path / "docs" / "benchmark_ratios.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the plot's bars: descend's time over torch's, characters per second turned over
    assert report.time_ratio(results["workloads"]["lstm"]) == (pytest.approx(1.25), pytest.approx(1.25))
    assert report.time_ratio(results["workloads"]["capsnet"]) is None

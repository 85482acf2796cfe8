"""`descend tour`: the course's sections run and land in one HTML report; a failing section is reported, not hidden."""

import json

from click.testing import CliRunner

from descend.cli import main


def test_the_tour_runs_sections_into_one_report(tmp_path):
    result = CliRunner().invoke(main, ["tour", "--sections", "1,5", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert [(line["section"], line["ok"]) for line in lines] == [(1, True), (5, True)]
    report = (tmp_path / "report.html").read_text()
    assert "1. A line fitted by gradient descent" in report and "5. The chain rule and backpropagation" in report
    assert report.count("data:image/png;base64,") == 2  # each section's picture, inside the page
    assert "∂f/∂x1 = 5.500" in report  # what the section printed


def test_a_failing_section_is_reported_and_the_tour_fails(tmp_path):
    examples = tmp_path / "examples"
    examples.mkdir()
    (examples / "01_fine.py").write_text("# # 1. Fine\nprint('all good')\n")
    (examples / "02_broken.py").write_text("# # 2. Broken\nraise SystemExit('this section is broken')\n")
    result = CliRunner().invoke(main, ["tour", "--examples", str(examples), "--out", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 1 and "section 2 failed" in result.output
    report = (tmp_path / "out" / "report.html").read_text()
    assert "FAILED" in report and "this section is broken" in report and "all good" in report


def test_an_unknown_section_is_bad_usage(tmp_path):
    result = CliRunner().invoke(main, ["tour", "--sections", "99", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "no section 99" in result.output


def test_lr_find_command_writes_its_readings_and_picture(tmp_path):
    result = CliRunner().invoke(main, ["lr-find", "--data", "digits", "--steps", "60", "--out", str(tmp_path),
                                       "--json"])
    assert result.exit_code == 0, result.output
    readings = json.loads(result.output.splitlines()[-1])
    assert 1e-6 < readings["suggestion"] <= readings["steepest"]
    assert (tmp_path / "lr_find.png").stat().st_size > 0 and (tmp_path / "lr_find.json").exists()

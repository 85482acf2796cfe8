"""`descend tour`: the course's sections run as notebooks into one page that reads like the course (explanation,
folded code, output, pictures); a failing section is reported, not hidden; the page opens cleanly in a browser."""

import base64
import json
from pathlib import Path

import jupytext
import nbformat
import pytest
from click.testing import CliRunner
from helpers import EXAMPLES, skip_outside_ci

from descend.cli import main
from descend.tour import Section, run_section

CHROMIUM = Path("/usr/bin/chromium")
#: where the browser test keeps its screenshot of the page (git ignores it); CI can keep it as an artefact
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@pytest.fixture(scope="module")
def toured(tmp_path_factory):
    """Sections 1 and 5 run once by `descend tour --json` for the tests here: (the command's result, the out folder)."""
    out = tmp_path_factory.mktemp("tour")
    result = CliRunner().invoke(main, ["tour", "--sections", "1,5", "--out", str(out), "--json"])
    return result, out


#: the sections the tour runs here, and how many code cells they have between them
SCRIPTS = [EXAMPLES / "01_linear_regression.py", EXAMPLES / "05_backpropagation.py"]
CODE_CELLS = sum(cell.cell_type == "code" for script in SCRIPTS for cell in jupytext.read(script).cells)


def test_the_tour_runs_sections_into_one_report(toured):
    result, out = toured
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert [(line["section"], line["ok"]) for line in lines] == [(1, True), (5, True)]
    report = (out / "report.html").read_text()
    assert "1. A line fitted by gradient descent" in report and "5. The chain rule and backpropagation" in report
    # the explanation, from the sections' markdown cells
    assert "The smallest learning problem" in report and "Reverse-mode automatic differentiation, by the book" in report
    assert report.count('src="data:image/png;base64,') == 2  # each section's picture, inside the page
    assert "∂f/∂x1 = 5.500" in report  # what the section printed
    assert report.count('<details class="descend-code">') == CODE_CELLS  # every cell's code folds
    assert "<script" not in report  # nothing to fetch: the page opens offline


@pytest.mark.parametrize("notebook, picture, drawn_by", [
    ("01/01_linear_regression.ipynb", "01/line_fit.png", "course_figures.plot_line_fit("),
    ("05/05_backpropagation.ipynb", "05/gradient_check.png", "viz.plot_curves("),  # a cell in the middle
])
def test_each_picture_is_an_output_of_the_cell_that_saved_it(toured, notebook, picture, drawn_by):
    _, out = toured
    cells = nbformat.read(out / notebook, as_version=4).cells
    holders = [cell for cell in cells if cell.cell_type == "code"
               and any("image/png" in output.get("data", {}) for output in cell.outputs)]
    assert len(holders) == 1 and drawn_by in holders[0].source
    (shown,) = [output for output in holders[0].outputs if "image/png" in output.get("data", {})]
    assert base64.b64decode(shown.data["image/png"]) == (out / picture).read_bytes()


def test_a_failing_section_is_reported_and_the_tour_fails(tmp_path):
    examples = tmp_path / "examples"
    examples.mkdir()
    (examples / "01_fine.py").write_text("# # 1. Fine\nprint('all good')\n")
    (examples / "02_broken.py").write_text("# # 2. Broken\nraise SystemExit('this section is broken')\n")
    result = CliRunner().invoke(main, ["tour", "--examples", str(examples), "--out", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 1 and "section 2 failed" in result.output
    report = (tmp_path / "out" / "report.html").read_text()
    assert "FAILED" in report and "SystemExit: this section is broken" in report and "all good" in report


def test_a_cell_past_its_time_fails_its_section_and_the_picture_it_saved_is_still_shown(tmp_path):
    script = tmp_path / "01_slow.py"
    script.write_text("# # 1. Slow\nimport os, pathlib, time\n"
                      "pathlib.Path(os.environ['DESCEND_OUT'], 'early.png').write_bytes(b'drawn')\ntime.sleep(60)\n")
    section = run_section(Section(1, script, "1. Slow"), tmp_path / "out", timeout=3)
    assert not section.ok and section.error == "a cell ran past 3 s"
    assert section.pictures == [tmp_path / "out" / "01" / "early.png"]
    (cell,) = nbformat.read(section.notebook, as_version=4).cells
    assert [base64.b64decode(output.data["image/png"]) for output in cell.outputs] == [b"drawn"]


def test_an_unknown_section_is_bad_usage(tmp_path):
    result = CliRunner().invoke(main, ["tour", "--sections", "99", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "no section 99" in result.output


def test_the_report_opens_in_a_browser_with_every_picture_and_no_errors(toured):
    if not CHROMIUM.exists():
        skip_outside_ci(f"no Chromium at {CHROMIUM} (.ci/run installs it: apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_outside_ci("playwright is not installed (make setup-test installs it)")
    result, out = toured
    assert result.exit_code == 0, result.output
    page_url = (out / "report.html").resolve().as_uri()
    errors, fetched = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("request", lambda request: fetched.append(request.url)
                    if request.url != page_url and not request.url.startswith("data:") else None)
            page.goto(page_url, wait_until="load")
            images = page.eval_on_selector_all("img", "all => all.map(i => [i.alt, i.complete, i.naturalWidth])")
            # each entry of the contents leads to its section's status line
            targets = page.eval_on_selector_all("li > a[href^='#']", "all => all.map(a => [a.textContent, "
                                                "document.getElementById(a.hash.slice(1))?.textContent ?? null])")
            folded = page.eval_on_selector_all("details.descend-code", "all => all.filter(d => !d.open).length")
            code = page.locator("details.descend-code").first.locator(".jp-InputArea")
            hidden_before = not code.is_visible()
            page.locator("details.descend-code > summary").first.click()
            shown_after = code.is_visible()
            page.locator("details.descend-code > summary").first.click()
            ARTIFACTS.mkdir(exist_ok=True)
            screenshot = ARTIFACTS / "tour_report.png"
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    print(f"the page as Chromium showed it: {screenshot}")
    assert [alt for alt, _, _ in images] == ["line_fit.png", "gradient_check.png"]
    assert all(complete and width > 0 for _, complete, width in images), images
    assert errors == [] and fetched == []
    assert [(title, target.split(" · ")[0]) for title, target in targets] == [
        ("1. A line fitted by gradient descent", "01_linear_regression.py"),
        ("5. The chain rule and backpropagation", "05_backpropagation.py")]
    assert folded == CODE_CELLS and hidden_before and shown_after  # code starts folded and opens on a click


def test_lr_find_command_writes_its_readings_and_picture(tmp_path):
    result = CliRunner().invoke(main, ["lr-find", "--data", "digits", "--steps", "60", "--out", str(tmp_path),
                                       "--json"])
    assert result.exit_code == 0, result.output
    readings = json.loads(result.output.splitlines()[-1])
    assert 1e-6 < readings["suggestion"] <= readings["steepest"]
    assert (tmp_path / "lr_find.png").stat().st_size > 0 and (tmp_path / "lr_find.json").exists()

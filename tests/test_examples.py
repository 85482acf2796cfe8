"""Each crash-course example runs start to finish in its quick mode and draws its pictures."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import skip_outside_ci

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("[0-9][0-9]_*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=[script.stem for script in EXAMPLES])
def test_example_runs_quickly_and_draws(script, tmp_path):
    environment = {**os.environ, "DESCEND_QUICK": "1", "DESCEND_OUT": str(tmp_path), "MPLBACKEND": "Agg"}
    result = subprocess.run([sys.executable, str(script)], env=environment, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert list(tmp_path.glob("*.png")), "an example ends in a picture"


def test_the_course_has_every_section_and_each_opens_as_a_notebook():
    try:
        import jupytext
    except ImportError:
        skip_outside_ci("jupytext is not installed (make test installs it)")
    assert [int(script.name[:2]) for script in EXAMPLES] == list(range(1, 15))
    for script in EXAMPLES:
        notebook = jupytext.read(script)
        kinds = [cell.cell_type for cell in notebook.cells]
        assert kinds[0] == "markdown" and notebook.cells[0].source.startswith(f"# {int(script.name[:2])}. "), script
        assert "code" in kinds and kinds.count("markdown") >= 2, script

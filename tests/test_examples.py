"""Each crash-course example runs start to finish in its quick mode and draws its pictures."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("[0-9][0-9]_*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=[script.stem for script in EXAMPLES])
def test_example_runs_quickly_and_draws(script, tmp_path):
    environment = {**os.environ, "DESCEND_QUICK": "1", "DESCEND_OUT": str(tmp_path), "MPLBACKEND": "Agg"}
    result = subprocess.run([sys.executable, str(script)], env=environment, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert list(tmp_path.glob("*.png")), "an example ends in a picture"

"""Shared test setup: the op table (tests/op_table.py) imports as `op_table` under any import mode."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import os

import pytest


def skip_outside_ci(reason: str) -> None:
    """Skip for a missing outside resource (PyPI, pip, torch) on a developer's machine; fail in CI.

    .ci/run installs torch and pip and reaches PyPI, so there a missing one is a fault to see, not a skip.
    Callable at a module's top level too, where it skips (or fails) the whole module.
    """
    if os.environ.get("CI") == "true":
        pytest.fail(f"in CI this must not happen: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)

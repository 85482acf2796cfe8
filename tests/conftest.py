"""Shared test setup: the op table (tests/op_table.py) imports as `op_table` under any import mode."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

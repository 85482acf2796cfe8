"""What several test modules share: skipping for a missing outside resource, central differences, the course's folder.

Test modules import from here (`from helpers import ...`), never from one another; conftest.py puts
this folder on the import path under any import mode.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

#: the crash course's sections (NN_name.py) and its figures (course_figures.py)
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def skip_outside_ci(reason: str) -> None:
    """Skip for a missing outside resource (PyPI, pip, torch) on a developer's machine; fail in CI.

    .ci/run installs torch and pip and reaches PyPI, so there a missing one is a fault to see, not a skip.
    Callable at a module's top level too, where it skips (or fails) the whole module.
    """
    if os.environ.get("CI") == "true":
        pytest.fail(f"in CI this must not happen: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def imported(name: str) -> ModuleType:
    """The module `name`, imported; where it is missing, skip_outside_ci (make test installs every one)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        skip_outside_ci(f"{name} is not installed (make test installs it)")


def numeric_gradient(f: Callable[..., float], arrays: Sequence[np.ndarray], index: int,
                     step: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar f(*arrays) with respect to arrays[index]; the shape of arrays[index]."""
    base = [np.array(a, dtype=np.float64) for a in arrays]
    grad = np.zeros_like(base[index])
    for j in range(grad.size):
        plus, minus = [a.copy() for a in base], [a.copy() for a in base]
        plus[index].flat[j] += step
        minus[index].flat[j] -= step
        grad.flat[j] = (f(*plus) - f(*minus)) / (2 * step)
    return grad


def course_figures() -> ModuleType:
    """examples/course_figures.py, imported by its path as `course_figures` (examples/ is not a package)."""
    if "course_figures" not in sys.modules:
        spec = importlib.util.spec_from_file_location("course_figures", EXAMPLES / "course_figures.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["course_figures"] = module
        spec.loader.exec_module(module)
    return sys.modules["course_figures"]


def json_places(value, path=()):
    """Every place in a JSON value, as a path of keys and indices (the root is ())."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from json_places(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from json_places(item, (*path, index))


def json_replaced(value, path, new):
    """A copy of the JSON value with the place at `path` (from json_places) replaced by `new`."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: json_replaced(value[head], rest, new)}
    return [json_replaced(item, rest, new) if index == head else item for index, item in enumerate(value)]

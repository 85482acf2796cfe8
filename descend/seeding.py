"""The global seed: `manual_seed(n)` makes every generator descend draws without an explicit `rng=` follow n.

Layers draw their starting weights, and Dropout its masks, from `generator(rng)`: the generator or seed
given, else the next child of the global seed when `manual_seed` was called, else fresh entropy. Children
come out in a fixed order, so the same script after the same `manual_seed` builds the same layers and
drops the same units, run after run, as torch.manual_seed does for PyTorch scripts.

>>> import descend as dc
>>> dc.manual_seed(0)
>>> first = dc.nn.Linear(3, 2).weight.data.copy()
>>> dc.manual_seed(0)
>>> bool((dc.nn.Linear(3, 2).weight.data == first).all())
True
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from descend.checks import check_seed
from descend.errors import DescendTypeError

_lock = threading.Lock()
_root: np.random.SeedSequence | None = None


def manual_seed(seed: int) -> None:
    """Seed every generator descend makes without an explicit rng (initial weights, dropout masks).

    >>> import descend as dc
    >>> manual_seed(42)
    >>> weights = dc.nn.Linear(4, 2).weight.data.copy()
    >>> manual_seed(42)
    >>> bool((dc.nn.Linear(4, 2).weight.data == weights).all())
    True
    """
    global _root
    seed = check_seed(seed)
    if seed is None:
        raise DescendTypeError("manual_seed needs an integer >= 0; got None")
    with _lock:
        _root = np.random.SeedSequence(seed)


def generator(rng: Any = None) -> np.random.Generator:
    """A NumPy generator from `rng` (a Generator, a seed, or None): None gives the global seed's next child
    when `manual_seed` was called, else fresh entropy."""
    if rng is not None:
        return np.random.default_rng(rng)
    with _lock:
        child = None if _root is None else _root.spawn(1)[0]
    return np.random.default_rng(child)

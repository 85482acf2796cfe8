"""help(descend) names the entry points, and __all__ is the public API (issue 19, item 11, in part)."""

from __future__ import annotations

import inspect
import pydoc

import descend as dc


def test_every_name_in_all_exists_and_says_what_it_is():
    missing = [name for name in dc.__all__ if not hasattr(dc, name)]
    assert not missing, f"__all__ names what descend does not have: {missing}"
    assert len(dc.__all__) == len(set(dc.__all__))
    undocumented = [name for name in dc.__all__ if name != "__version__"
                    and not (inspect.getdoc(getattr(dc, name)) or "").strip()]
    assert not undocumented, f"public names without a docstring: {undocumented}"


def test_every_public_class_and_function_has_an_example():
    """Issue 19, item 11: each docstring shows its use as a doctest. The class's or function's own docstring
    counts, not one inherited from a base class; a name exported from several modules is reported once."""
    missing = {}
    for module in (dc, dc.nn, dc.optim, dc.data, dc.training):
        for name in module.__all__:
            value = getattr(module, name)
            if inspect.ismodule(value) or not callable(value):
                continue
            if ">>>" not in (getattr(value, "__doc__", None) or ""):
                missing.setdefault(id(value), f"{module.__name__}.{name}")
    assert not missing, f"public names whose docstring has no >>> example: {sorted(missing.values())}"


def test_help_names_the_entry_points():
    page = pydoc.render_doc(dc, renderer=pydoc.plaintext)
    for entry in ("dc.tensor", "dc.Function", "dc.gradcheck", "dc.fit", "dc.nn", "dc.manual_seed", "dc.kernels"):
        assert entry in page, entry

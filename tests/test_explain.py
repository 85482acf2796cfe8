"""explain: the textbook table of primals and adjoints."""

import numpy as np
import pytest

import descend as dc
from descend.errors import DescendValueError


def f(x1, x2):
    return dc.log(x1) + x1 * x2 - dc.sin(x2)


def test_explain_gives_the_textbook_values():
    e = dc.explain(f, x1=2.0, x2=5.0)
    assert e.value == pytest.approx(np.log(2) + 10 - np.sin(5))
    assert e.gradients["x1"] == pytest.approx(5.5)
    assert e.gradients["x2"] == pytest.approx(2 - np.cos(5))
    text = str(e)
    for line in ("v-1  =  x1", "ln(v-1)", "v-1 × v0", "sin(v0)", "∂f/∂x1 = 5.500", "∂f/∂x2 = 1.716", "f = 11.652"):
        assert line in text
    assert "Reverse sweep" in text and "seed" in text


def test_explain_positional_inputs_and_html():
    e = dc.explain(f, 2.0, 5.0)
    assert list(e.gradients) == ["x1", "x2"]
    html = e._repr_html_()
    assert html.startswith("<table>") and "Forward trace" in html and "&" not in html.replace("&amp;", "")


def test_explain_rows_show_each_adjoint_as_a_chain_rule_sum():
    e = dc.explain(f, x1=2.0, x2=5.0)
    adjoint_of_x1 = next(row for row in e.reverse_rows if row[0].startswith("v") and row[0].endswith("-1"))
    assert " + " in adjoint_of_x1[1] and adjoint_of_x1[2] == "5.500"


def test_explain_handles_arrays_and_refuses_non_scalar_outputs():
    e = dc.explain(lambda w: (w * w).sum(), w=np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(e.gradients["w"], [2.0, 4.0, 6.0])
    with pytest.raises(DescendValueError, match="one-element"):
        dc.explain(lambda w: w * 2, w=np.array([1.0, 2.0]))
    with pytest.raises(DescendValueError, match="at least one input"):
        dc.explain(lambda: dc.tensor(1.0))

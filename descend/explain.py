"""explain: reverse-mode differentiation shown the way a textbook works it by hand.

The forward trace lists every intermediate value v_i with the op that made
it; the reverse sweep lists every adjoint v̄_i = ∂f/∂v_i as the sum, over
the ops that used v_i, of (their adjoint) × (their local derivative). Inputs
are numbered v_{1−n} … v_0, as in Griewank's and Baydin et al.'s tables.
"""

from __future__ import annotations

import ast
import html
import inspect
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from descend import ops
from descend.errors import DescendValueError
from descend.ops.base import Function
from descend.tensor import Tensor, array_of, reverse_sweep, topological_order

BAR = "\u0304"  # combining macron: v̄ is the adjoint of v


@dataclass
class Explanation:
    """The tape of one evaluation: forward rows, reverse rows, the value and the gradients.

    Prints as a plain-text table and renders as an HTML table in a notebook.
    `gradients` maps each input's name to ∂f/∂input.

    >>> e = explain(lambda x, y: x * y, x=2.0, y=3.0)  # print(e) shows both tables
    >>> e.value, e.gradients
    (6.0, {'x': 3.0, 'y': 2.0})
    >>> e.summary_lines()
    ['∂f/∂x = 3.000', '∂f/∂y = 2.000', 'f = 6.000']
    """

    forward_rows: list[tuple[str, str, str]]
    reverse_rows: list[tuple[str, str, str]]
    value: Any
    gradients: dict[str, Any] = field(default_factory=dict)

    def summary_lines(self) -> list[str]:
        """One line '∂f/∂name = value' per input, then 'f = value'."""
        lines = [f"∂f/∂{name} = {_format(gradient)}" for name, gradient in self.gradients.items()]
        return lines + [f"f = {_format(self.value)}"]

    def __str__(self) -> str:
        parts = ["Forward trace", *_table(("v", "operation", "value"), self.forward_rows)]
        parts += ["", "Reverse sweep (adjoints)", *_table(("adjoint", "chain rule", "value"), self.reverse_rows)]
        return "\n".join(parts + [""] + self.summary_lines())

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        def rows(title: str, body: list[tuple[str, str, str]]) -> str:
            cells = "".join(
                "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in body
            )
            return f"<tr><th colspan='3' style='text-align:left'>{title}</th></tr>{cells}"

        summary = "".join(f"<tr><td colspan='3'><b>{html.escape(line)}</b></td></tr>" for line in self.summary_lines())
        return (
            "<table><tbody>"
            + rows("Forward trace", self.forward_rows)
            + rows("Reverse sweep (adjoints)", self.reverse_rows)
            + summary
            + "</tbody></table>"
        )


def explain(function: Callable[..., Tensor], *args: Any, **inputs: Any) -> Explanation:
    """Evaluate `function` on the named inputs in float64 and tabulate its forward trace and reverse sweep.

    Inputs are given by keyword (`explain(f, x1=2.0, x2=5.0)`) or
    positionally (named after the function's parameters). The function must
    return a one-element tensor.

    >>> import descend as dc
    >>> e = explain(lambda x1, x2: dc.log(x1) + x1 * x2 - dc.sin(x2), x1=2.0, x2=5.0)
    >>> e.summary_lines()
    ['∂f/∂x1 = 5.500', '∂f/∂x2 = 1.716', 'f = 11.652']
    """
    if args:
        names = list(inspect.signature(function).parameters)[: len(args)]
        inputs = {**dict(zip(names, args)), **inputs}
    if not inputs:
        raise DescendValueError("explain needs at least one input, e.g. explain(f, x=2.0)")
    leaves = {
        name: Tensor(np.asarray(array_of(value), dtype=np.float64),
                     requires_grad=True, name=name)
        for name, value in inputs.items()
    }
    output = function(**leaves)
    if not isinstance(output, Tensor) or output.size != 1:
        shape = output.shape if isinstance(output, Tensor) else type(output).__name__
        raise DescendValueError(f"explain: the function must return a one-element tensor; got {shape}")
    if not output.requires_grad:
        raise DescendValueError("explain: the output does not depend on any input")

    labels: dict[int, str] = {}
    for index, leaf in enumerate(leaves.values()):
        labels[id(leaf)] = f"v{index + 1 - len(leaves)}"
    forward_rows = [(labels[id(leaf)], name, _format(leaf.data)) for name, leaf in leaves.items()]
    counter = 0
    for node in topological_order(output):
        if id(node) in labels:
            continue
        if node.creator is None:  # a leaf that was not an input: a parameter, say
            labels[id(node)] = node.name or f"w{len(labels)}"
            forward_rows.append((labels[id(node)], "(parameter)", _format(node.data)))
            continue
        counter += 1
        labels[id(node)] = f"v{counter}"
        operands = [labels.get(id(t), _format(t.data)) for t in node.creator.inputs]
        operation = node.creator.describe(*operands)
        outputs = _outputs(node.creator)
        if len(outputs) > 1:  # one of an op's several outputs: say which
            operation += f"[{next(k for k, out in enumerate(outputs) if out is node)}]"
        forward_rows.append((labels[id(node)], operation, _format(node.data)))

    terms: dict[int, list[tuple[str, Any, Any]]] = {}
    reverse_rows: list[tuple[str, str, str]] = []
    gradients: dict[str, Any] = {}
    adjoints: dict[int, Any] = {}
    for node, adjoint, contributions in reverse_sweep(output, np.ones_like(output.data)):
        label = labels[id(node)]
        adjoints[id(node)] = adjoint
        node_terms = terms.pop(id(node), [])
        if node is output:
            reverse_rows.append((_adjoint(label), "seed: ∂f/∂f", _format(adjoint)))
        elif not node_terms:  # one of an op's several outputs, which no gradient reached
            reverse_rows.append((_adjoint(label), "no gradient reaches it", _format(adjoint)))
        else:
            rule = " + ".join(f"{_adjoint(consumer)}·∂{consumer}/∂{label}" for consumer, _, _ in node_terms)
            if all(local is not None for _, local, _ in node_terms):
                rule += " = " + " + ".join(f"{_format(upstream)}·{_format(local)}" for _, local, upstream in node_terms)
            reverse_rows.append((_adjoint(label), rule, _format(adjoint)))
        if node.name in leaves and node is leaves[node.name]:
            gradients[node.name] = adjoint.item() if adjoint.size == 1 else adjoint
        if node.creator is not None and contributions:
            locals_ = _local_derivatives(node, adjoint)
            # an op reaches its inputs through each of its outputs: one chain-rule term per output
            consumers = [out for out in _outputs(node.creator) if out is not None and id(out) in adjoints]
            for parent, _ in contributions:
                for consumer in consumers:
                    terms.setdefault(id(parent), []).append(
                        (labels[id(consumer)], locals_.get(id(parent)), adjoints[id(consumer)])
                    )
    ordered = {name: gradients[name] for name in leaves if name in gradients}
    return Explanation(forward_rows, reverse_rows, output.data.item(), ordered)


def _outputs(op: Function) -> list[Tensor | None]:
    """The tensors an op on the tape made, in order; None for one no longer alive."""
    return [ref() for ref in op.outputs]


def _local_derivatives(node: Tensor, adjoint: np.ndarray) -> dict[int, Any]:
    """∂node/∂input for each input of a one-element node made by a one-output op (its op's VJP applied to 1)."""
    if node.size != 1 or len(node.creator.outputs) != 1:
        return {}
    local = node.creator.backward(np.ones_like(adjoint))
    return {
        id(parent): np.sum(grad)
        for parent, grad, needed in zip(node.creator.inputs, local, node.creator.needs_input_grad)
        if needed and grad is not None and np.size(parent.data) == 1
    }


def _adjoint(label: str) -> str:
    """v3 -> v̄3: the bar goes on the letter."""
    return label[0] + BAR + label[1:]


def _format(value: Any) -> str:
    array = np.asarray(value)
    if array.size == 1:
        return f"{array.item():.3f}"
    return f"array{array.shape}, mean {array.mean():.3f}"


def _width(text: str) -> int:
    return sum(1 for ch in text if not unicodedata.combining(ch))


def _table(header: tuple[str, str, str], rows: list[tuple[str, str, str]]) -> list[str]:
    widths = [max(_width(row[i]) for row in [header, *rows]) for i in range(3)]

    def padded(row: tuple[str, str, str]) -> list[str]:
        return [cell + " " * (width - _width(cell)) for cell, width in zip(row, widths)]

    title = "  " + "     ".join(padded(header))
    return [title.rstrip(), *("  " + "  =  ".join(padded(row)).rstrip() for row in rows)]


def _formula_functions() -> dict[str, Callable[[Tensor], Tensor]]:
    return {"log": ops.log, "ln": ops.log, "exp": ops.exp, "sin": ops.sin, "cos": ops.cos, "tanh": ops.tanh,
            "sigmoid": ops.sigmoid, "relu": ops.relu, "sqrt": ops.sqrt, "abs": ops.abs, "softplus": ops.softplus}


_OPERATORS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b, ast.Pow: lambda a, b: a ** b,
}


def formula_function(formula: str) -> tuple[Callable[..., Tensor], list[str]]:
    """A typed formula such as "ln(x1) + x1*x2 - sin(x2)" as a function of its variables, and their names.

    Only numbers, variables, + − × / ** and the functions log (ln), exp, sin, cos, tanh, sigmoid,
    relu, sqrt, abs and softplus are allowed: the formula is parsed, never evaluated as Python.
    """
    functions = _formula_functions()
    try:
        tree = ast.parse(formula.replace("^", "**"), mode="eval")
    except SyntaxError as error:
        raise DescendValueError(f"cannot read the formula {formula!r}: {error.msg}") from None
    names: list[str] = []

    def check(node: ast.AST) -> None:
        if isinstance(node, ast.Expression):
            check(node.body)
        elif isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            check(node.left)
            check(node.right)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            check(node.operand)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in functions:
            if len(node.args) != 1 or node.keywords:
                raise DescendValueError(f"{node.func.id}() takes one argument in a formula")
            check(node.args[0])
        elif isinstance(node, ast.Name) and node.id not in functions:
            names.append(node.id)
        elif not (isinstance(node, ast.Constant) and isinstance(node.value, int | float)):
            raise DescendValueError(
                f"the formula {formula!r} holds {ast.unparse(node)!r}; a formula may use numbers, variables, "
                f"+ - * / ** and the functions {', '.join(sorted(functions))}"
            )

    def evaluate(node: ast.AST, values: dict[str, Tensor]) -> Any:
        if isinstance(node, ast.BinOp):
            return _OPERATORS[type(node.op)](evaluate(node.left, values), evaluate(node.right, values))
        if isinstance(node, ast.UnaryOp):
            operand = evaluate(node.operand, values)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.Call):
            return functions[node.func.id](evaluate(node.args[0], values))
        if isinstance(node, ast.Name):
            return values[node.id]
        return node.value

    check(tree)
    if not names:
        raise DescendValueError(f"the formula {formula!r} has no variables to differentiate by")

    def function(**values: Tensor) -> Tensor:
        return evaluate(tree.body, values)

    return function, list(dict.fromkeys(names))


def explain_formula(formula: str, **inputs: float) -> Explanation:
    """explain() for a typed formula: explain_formula("ln(x1) + x1*x2 - sin(x2)", x1=2, x2=5).

    >>> explain_formula("ln(x1) + x1*x2 - sin(x2)", x1=2, x2=5).summary_lines()
    ['∂f/∂x1 = 5.500', '∂f/∂x2 = 1.716', 'f = 11.652']
    """
    function, names = formula_function(formula)
    missing = [name for name in names if name not in inputs]
    extra = [name for name in inputs if name not in names]
    if missing or extra:
        raise DescendValueError(
            f"the formula's variables are {', '.join(names)}; "
            + (f"give a value for {', '.join(missing)}" if missing else f"{', '.join(extra)} is not in it")
        )
    return explain(function, **{name: inputs[name] for name in names})

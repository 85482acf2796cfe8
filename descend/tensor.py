"""Tensor: an array that remembers the op that made it, and the reverse sweep.

A `Tensor` wraps a NumPy array (`data`). When it is the output of an op on
tensors that require gradients, it keeps that op (`creator`), and through the
op's inputs the whole computation that led to it: the tape. `backward()`
walks the tape from the output back to the leaves, asking each op for its
vector-Jacobian product; the ops themselves live in `descend.ops`.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from descend.checks import accepting_torch_names
from descend.errors import DescendTypeError, DescendValueError, ShapeError

if TYPE_CHECKING:
    from descend.ops.base import Function

DEFAULT_DTYPE = np.float32
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

_state = threading.local()


def is_grad_enabled() -> bool:
    """True unless inside a `no_grad()` block (per thread)."""
    return getattr(_state, "grad_enabled", True)


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Run ops without recording them, as for evaluation or a weight update.

    >>> with no_grad():
    ...     y = tensor([1.0, 2.0], requires_grad=True) * 2
    >>> y.requires_grad
    False
    """
    previous = is_grad_enabled()
    _state.grad_enabled = False
    try:
        yield
    finally:
        _state.grad_enabled = previous


def _numeric_dtype(dtype: Any) -> np.dtype:
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        raise DescendTypeError(f"dtype must be a NumPy dtype such as np.float32; got {dtype!r}") from None
    if resolved.kind not in "fiub":
        raise DescendTypeError(f"dtype must be numeric (float, int or bool), e.g. np.float32; got {resolved}")
    return resolved


def _as_array(data: Any, dtype: Any = None) -> np.ndarray:
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        dtype = _numeric_dtype(dtype)
    try:
        array = np.asarray(data, dtype=dtype)
    except (TypeError, ValueError) as error:
        raise DescendTypeError(
            f"tensor data must be numbers or an array of numbers; got {type(data).__name__} ({error})"
        ) from None
    if dtype is None:
        if array.dtype.kind == "f" and array.dtype not in FLOAT_DTYPES:
            array = array.astype(DEFAULT_DTYPE)
        elif array.dtype.kind not in "fiub":
            raise DescendTypeError(
                f"tensor data must be numeric (float, int or bool); got an array of dtype {array.dtype}"
            )
    return array


class Tensor:
    """An n-dimensional array with an optional gradient.

    `data` is the NumPy array; `grad` holds d(output)/d(self) after
    `backward()` for tensors created with `requires_grad=True` (leaves).
    Python numbers and lists become float32 unless `dtype` says otherwise;
    NumPy arrays keep their dtype (float16 becomes float32); integer data
    (labels, indices) stays integer.

    >>> x = tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    array([2., 4., 6.], dtype=float32)
    """

    __array_priority__ = 1000  # ndarray <op> Tensor defers to the Tensor's reflected method

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None, name: str | None = None):
        if dtype is None and not isinstance(data, (np.ndarray, Tensor)):
            probe = _as_array(data)  # raises DescendTypeError for ragged or non-numeric data
            dtype = DEFAULT_DTYPE if probe.dtype.kind == "f" else None
        self.data: np.ndarray = _as_array(data, dtype)
        if requires_grad and self.data.dtype not in FLOAT_DTYPES:
            raise DescendTypeError(
                f"requires_grad=True needs float32 or float64 data; got dtype {self.data.dtype}. "
                "Pass dtype=np.float32 or float values."
            )
        self.requires_grad = bool(requires_grad)
        self.grad: np.ndarray | None = None
        self.creator: Function | None = None  # the op whose output this is; None for a leaf
        self.freed = False  # True once a backward() has released the op that made it
        self.name = name

    # -- array facts -------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """The length of each axis, e.g. (N, C)."""
        return self.data.shape

    @property
    def ndim(self) -> int:
        """The number of axes."""
        return self.data.ndim

    @property
    def size(self) -> int:
        """The number of elements, the product of the shape."""
        return self.data.size

    @property
    def dtype(self) -> np.dtype:
        """The NumPy dtype of `data`."""
        return self.data.dtype

    @property
    def is_leaf(self) -> bool:
        """True when no recorded op made this tensor (`creator` is None), as for inputs and parameters."""
        return self.creator is None

    def __len__(self) -> int:
        return len(self.data)

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise DescendValueError(
                f"the truth value of a tensor of shape {self.shape} is ambiguous; use .any() or .all() on .data"
            )
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """NumPy sees the data (np.asarray(t)); the tape is not followed."""
        return self.data.astype(dtype, copy=bool(copy)) if dtype is not None else (self.data.copy() if copy else self.data)

    def __iter__(self) -> Iterator[Tensor]:
        """The slices along the first axis, each on the tape like t[i]."""
        if self.ndim == 0:
            raise DescendTypeError("iteration over a 0-d tensor")
        return (self[index] for index in range(len(self)))

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied)."""
        return self.data

    def item(self) -> float:
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise DescendValueError(f"item() needs a tensor with one element; got shape {self.shape}")
        return self.data.item()

    def detach(self) -> Tensor:
        """The same data, cut off from the tape (no gradient flows through)."""
        return Tensor(self.data)

    def astype(self, dtype: Any) -> Tensor:
        """A leaf copy with another dtype (the tape is not followed)."""
        return Tensor(self.data.astype(dtype), requires_grad=self.requires_grad)

    def zero_grad(self) -> None:
        """Set the accumulated gradient to zero in place (it may be a view of a flat buffer)."""
        if self.grad is not None:
            self.grad[...] = 0

    def __repr__(self) -> str:
        body = np.array2string(self.data, precision=4, separator=", ", threshold=20)
        extra = ", requires_grad=True" if self.requires_grad else ""
        if self.creator is not None:
            extra = f", op={type(self.creator).__name__}"
        return f"tensor({body}, dtype={self.dtype}{extra})"

    # -- the reverse sweep -------------------------------------------------
    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's `grad`.

        `grad` is the upstream gradient, of self's shape; it may be left out
        for a one-element output (it is then 1). Gradients add up across
        calls until `zero_grad()`, as in PyTorch. The tape is freed after
        the sweep unless `retain_graph=True`.
        """
        if not self.requires_grad:
            raise DescendValueError(
                "backward() called on a tensor that does not require grad. Likely causes: none of its inputs "
                "had requires_grad=True (make leaves with dc.tensor(..., requires_grad=True), or use a model's "
                "parameters); it was computed under no_grad(); or it was built from .data, a plain array off "
                "the tape"
            )
        if grad is None:
            if self.data.size != 1:
                raise DescendValueError(
                    f"backward() without a gradient needs a one-element output; got shape {self.shape}. "
                    "Reduce it first (e.g. .sum() or .mean()) or pass grad=."
                )
            seed = np.ones_like(self.data)
        else:
            seed = _as_array(grad, self.dtype)
            if seed.shape != self.shape:
                raise DescendValueError(f"backward(grad=) has shape {seed.shape}; expected {self.shape}")
        for node, node_grad, _ in reverse_sweep(self, seed, retain_graph=retain_graph):
            if node.creator is None:
                if node.grad is None:
                    node.grad = np.array(node_grad, dtype=node.dtype, copy=True)
                else:
                    node.grad += node_grad

    # -- operators: each defers to one op in descend.ops -------------------
    def __add__(self, other: Any) -> Tensor:
        return ops.add(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return ops.add(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return ops.sub(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return ops.sub(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return ops.mul(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return ops.mul(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return ops.div(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return ops.div(other, self)

    def __pow__(self, other: Any) -> Tensor:
        return ops.power(self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return ops.power(other, self)

    def __neg__(self) -> Tensor:
        return ops.neg(self)

    def __matmul__(self, other: Any) -> Tensor:
        return ops.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return ops.matmul(other, self)

    def __getitem__(self, index: Any) -> Tensor:
        return ops.getitem(self, index)

    # -- in place: PyTorch's update idiom, `w -= lr * w.grad` under no_grad() --------------------------
    def __iadd__(self, other: Any) -> Tensor:
        return self._in_place(np.add, "+=", other)

    def __isub__(self, other: Any) -> Tensor:
        return self._in_place(np.subtract, "-=", other)

    def __imul__(self, other: Any) -> Tensor:
        return self._in_place(np.multiply, "*=", other)

    def __itruediv__(self, other: Any) -> Tensor:
        return self._in_place(np.true_divide, "/=", other)

    def _in_place(self, operation: np.ufunc, symbol: str, other: Any) -> Tensor:
        """Change this tensor's numbers in place and return it (a parameter stays a view of its model's buffer).

        Where the tape would need the old numbers (gradients on, and this tensor or `other` requires grad) or
        may have saved them (a tensor an op computed), it is refused at once with the fix, rather than
        rebinding the name to a new tensor that fails one backward() later.
        """
        other_requires = isinstance(other, Tensor) and other.requires_grad
        if is_grad_enabled() and (self.requires_grad or other_requires):
            raise DescendValueError(
                f"`{symbol}` in place on a tensor that requires grad, with gradients on: the tape needs its "
                f"numbers as they were. For an update write it under `with dc.no_grad():` (as in PyTorch); for a "
                f"new tensor on the tape write `x = x {symbol[0]} ...`"
            )
        if self.creator is not None:
            raise DescendValueError(
                f"`{symbol}` in place on a tensor computed by {type(self.creator).__name__}, which may have saved "
                f"it for its backward; write `x = x {symbol[0]} ...` for a new tensor"
            )
        value = other.data if isinstance(other, Tensor) else np.asarray(other)
        try:
            operation(self.data, value, out=self.data, casting="same_kind")
        except ValueError as error:  # broadcasting
            raise ShapeError(f"`{symbol}` in place: a value of shape {value.shape} does not fit a tensor of shape "
                             f"{self.shape} ({error})") from None
        except TypeError as error:  # casting
            raise DescendTypeError(f"`{symbol}` in place: a value of dtype {value.dtype} cannot go into a tensor of "
                                   f"dtype {self.dtype} ({error})") from None
        return self

    # Comparisons give plain boolean tensors: they have no gradient.
    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return Tensor(self.data == _as_array(other))

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return Tensor(self.data != _as_array(other))

    def __lt__(self, other: Any) -> Tensor:
        return Tensor(self.data < _as_array(other))

    def __le__(self, other: Any) -> Tensor:
        return Tensor(self.data <= _as_array(other))

    def __gt__(self, other: Any) -> Tensor:
        return Tensor(self.data > _as_array(other))

    def __ge__(self, other: Any) -> Tensor:
        return Tensor(self.data >= _as_array(other))

    __hash__ = object.__hash__

    # -- methods: NumPy's names ---------------------------------------------
    @accepting_torch_names
    def argmax(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """The index of the largest value along `axis` (of all, flattened, for None): an integer tensor, off the
        tape (an index has no gradient), e.g. the predicted class of logits (N, C) with axis=1."""
        return ops.argmax(self, axis=axis, keepdims=keepdims)

    @accepting_torch_names
    def flatten(self, start_axis: int = 0) -> Tensor:
        """The axes from `start_axis` on as one: (N, C, H, W).flatten(1) -> (N, C·H·W); see descend.ops.flatten."""
        return ops.flatten(self, start_axis)

    @accepting_torch_names
    def sum(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """Sum over `axis` (an int, a tuple, or None for all); see descend.ops.sum."""
        return ops.sum(self, axis=axis, keepdims=keepdims)

    @accepting_torch_names
    def mean(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """Mean over `axis` (an int, a tuple, or None for all); see descend.ops.mean."""
        return ops.mean(self, axis=axis, keepdims=keepdims)

    @accepting_torch_names
    def max(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """Largest value over `axis`; ties share the gradient; see descend.ops.max."""
        return ops.max(self, axis=axis, keepdims=keepdims)

    @accepting_torch_names
    def min(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """Smallest value over `axis`; ties share the gradient; see descend.ops.min."""
        return ops.min(self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape: Any) -> Tensor:
        """The same elements in a new shape, as reshape(2, 3) or reshape((2, 3)); one size may be -1."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return ops.reshape(self, shape)

    def transpose(self, *axes: Any) -> Tensor:
        """Axes permuted, as transpose(1, 0) or transpose((1, 0)); reversed when none are given."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return ops.transpose(self, axes or None)

    def permute(self, *axes: Any) -> Tensor:
        """PyTorch's name for transpose(*axes)."""
        return self.transpose(*axes)

    @property
    def T(self) -> Tensor:
        """Axes reversed: (m, n) -> (n, m) for a matrix."""
        return ops.transpose(self, None)

    def exp(self) -> Tensor:
        """eˣ elementwise; see descend.ops.exp."""
        return ops.exp(self)

    def log(self) -> Tensor:
        """Natural logarithm ln x elementwise."""
        return ops.log(self)

    def sqrt(self) -> Tensor:
        """√x elementwise."""
        return ops.sqrt(self)

    def sin(self) -> Tensor:
        """sin x elementwise."""
        return ops.sin(self)

    def cos(self) -> Tensor:
        """cos x elementwise."""
        return ops.cos(self)

    def tanh(self) -> Tensor:
        """tanh x elementwise."""
        return ops.tanh(self)

    def sigmoid(self) -> Tensor:
        """σ(x) = 1 / (1 + e^−x) elementwise."""
        return ops.sigmoid(self)

    def relu(self) -> Tensor:
        """max(x, 0) elementwise."""
        return ops.relu(self)

    def abs(self) -> Tensor:
        """|x| elementwise."""
        return ops.abs(self)

    def clip(self, min: float | None = None, max: float | None = None) -> Tensor:
        """Values limited to [min, max]; either bound may be None."""
        return ops.clip(self, min, max)

    @accepting_torch_names
    def softmax(self, axis: int = -1) -> Tensor:
        """Probabilities along `axis` that sum to 1; same shape."""
        return ops.softmax(self, axis=axis)

    @accepting_torch_names
    def log_softmax(self, axis: int = -1) -> Tensor:
        """log(softmax(x)) along `axis`, computed stably; same shape."""
        return ops.log_softmax(self, axis=axis)


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None, name: str | None = None) -> Tensor:
    """Make a tensor, PyTorch style: `tensor(2.0, requires_grad=True)`. The data is copied, as torch.tensor does.

    >>> tensor([[1, 2], [3, 4]]).shape
    (2, 2)
    """
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.ndarray):
        data = data.copy()
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, name=name)


def as_tensor(value: Any, like: np.dtype | None = None) -> Tensor:
    """A Tensor as is; anything else wrapped, Python scalars taking dtype `like`."""
    if isinstance(value, Tensor):
        return value
    if like is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
        return Tensor(np.asarray(value, dtype=like))
    return Tensor(value)


def array_of(value: Any) -> np.ndarray:
    """The array of a tensor (its `data`, shared) or of an array-like (np.asarray: an ndarray as is).

    What a check reads before an op runs, whatever it was given: a tensor,
    an ndarray, a list or a number. The result has the value's shape.

    >>> array_of(tensor([[1.0], [2.0]])).shape, array_of([1, 2]).tolist()
    ((2, 1), [1, 2])
    """
    return value.data if isinstance(value, Tensor) else np.asarray(value)


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum `grad` down to `shape`, undoing NumPy broadcasting: the one place this is done.

    >>> unbroadcast(np.ones((4, 2, 3)), (2, 1)).tolist()
    [[12.0], [12.0]]
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(axis for axis, size in enumerate(shape) if size == 1 and grad.shape[axis] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


def topological_order(root: Tensor) -> list[Tensor]:
    """Every tensor on the tape that leads to `root`, inputs before outputs.

    Iterative, not recursive: an unrolled sequence is thousands of nodes deep.
    """
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:  # marked when expanded, not when pushed: an early push may be reached again deeper
            continue
        visited.add(id(node))
        stack.append((node, True))
        if node.freed:
            raise DescendValueError(
                "backward() through a part of the graph that an earlier backward() already freed; "
                "pass retain_graph=True to the first backward() to go through it twice"
            )
        if node.creator is not None:
            for parent in reversed(node.creator.inputs):  # so the first input's subtree comes first
                if parent.requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
    return order


def reverse_sweep(
    root: Tensor, seed: np.ndarray, retain_graph: bool = False
) -> Iterator[tuple[Tensor, np.ndarray, list[tuple[Tensor, np.ndarray]]]]:
    """Reverse-mode sweep from `root`, yielding each tape node with its adjoint.

    Yields `(node, adjoint, contributions)` in reverse topological order,
    where `adjoint` is d(root)/d(node) contracted with `seed`, and
    `contributions` lists, for each input of the node's op, the part of the
    input's adjoint that flows through this node. `Tensor.backward` and
    `explain` both run on it.

    An op with several outputs runs its backward once, at the last of its
    outputs that the sweep reaches: every output's adjoint is complete by
    then, since the ops that use an output come before it. Its contributions
    come with that output (whose adjoint is zeros if no gradient reached
    it); the outputs met before it come with none.
    """
    order = topological_order(root)
    outputs_ahead = Counter(id(node.creator) for node in order if node.creator is not None)
    adjoints: dict[int, np.ndarray] = {id(root): seed}
    for node in reversed(order):
        creator = node.creator
        adjoint = adjoints.get(id(node))
        contributions: list[tuple[Tensor, np.ndarray]] = []
        last_output = False
        if creator is None:
            adjoints.pop(id(node), None)
        else:
            outputs_ahead[id(creator)] -= 1
            last_output = outputs_ahead[id(creator)] == 0
        if last_output:
            output_grads = _take_output_grads(creator, adjoints)
            # None: every op that uses its outputs declined to give them a gradient (a where() condition)
            if output_grads is not None:
                if adjoint is None:
                    adjoint = np.zeros_like(node.data)
                contributions = _backward(creator, output_grads, adjoints)
        if adjoint is not None:
            yield node, adjoint, contributions
        if last_output and not retain_graph:
            creator.release()


def _take_output_grads(creator: Function, adjoints: dict[int, np.ndarray]) -> list[np.ndarray] | None:
    """One upstream gradient per output of `creator`, taken out of `adjoints`: zeros for an output that none
    reached, None when none reached any."""
    outputs = [ref() for ref in creator.outputs]  # None for an output no longer alive: nothing can have used it
    grads = [None if output is None else adjoints.pop(id(output), None) for output in outputs]
    if all(grad is None for grad in grads):
        return None
    return [np.zeros(shape, dtype) if grad is None else grad for grad, (shape, dtype) in zip(grads, creator.output_layouts)]


def _backward(
    creator: Function, output_grads: list[np.ndarray], adjoints: dict[int, np.ndarray]
) -> list[tuple[Tensor, np.ndarray]]:
    """Run `creator`'s vector-Jacobian product and add each input's share into `adjoints`; the shares, by input."""
    contributions = []
    input_grads = _checked_input_grads(creator, creator.backward(*output_grads))
    for parent, needed, parent_grad in zip(creator.inputs, creator.needs_input_grad, input_grads):
        if not needed or parent_grad is None:
            continue
        parent_grad = unbroadcast(parent_grad, parent.shape)
        contributions.append((parent, parent_grad))
        key = id(parent)
        # never in place: an op may hand the same array to several inputs
        adjoints[key] = adjoints[key] + parent_grad if key in adjoints else parent_grad
    return contributions


def _checked_input_grads(creator: Function, input_grads: Any) -> tuple[np.ndarray | None, ...]:
    """What `creator.backward` returned, checked before it reaches any adjoint: one gradient (or None) per
    input, each a float array of its input's shape or of a shape that shape broadcasts to (the engine sums
    those back). A float of another precision is fine (inputs of mixed precision give one); an integer,
    boolean or object array is not. A user's own op gets an error naming it and the input, not a silently
    wrong gradient."""
    name, inputs = type(creator).__name__, creator.inputs
    if isinstance(input_grads, np.ndarray) or not isinstance(input_grads, (tuple, list)):
        input_grads = (input_grads,) if len(inputs) == 1 and isinstance(input_grads, np.ndarray) else input_grads
    if not isinstance(input_grads, (tuple, list)) or len(input_grads) != len(inputs):
        got = f"{len(input_grads)} values" if isinstance(input_grads, (tuple, list)) else type(input_grads).__name__
        raise DescendTypeError(
            f"{name}.backward returned {got}; it must return a tuple of {len(inputs)} gradient(s), one per input "
            "(None for an input that needs none)"
        )
    checked = []
    for index, (parent, needed, grad) in enumerate(zip(inputs, creator.needs_input_grad, input_grads)):
        if isinstance(grad, np.generic):  # NumPy hands back scalars from 0-d arithmetic
            grad = np.asarray(grad)
        checked.append(grad)
        if not needed or grad is None:
            continue
        if not isinstance(grad, np.ndarray) or grad.dtype.kind != "f":
            raise DescendTypeError(
                f"{name}.backward returned a {type(grad).__name__}"
                f"{f' of dtype {grad.dtype}' if isinstance(grad, np.ndarray) else ''} for input {index}; "
                f"expected a float array (the input's dtype is {parent.dtype})"
            )
        try:
            fits = np.broadcast_shapes(parent.shape, grad.shape) == grad.shape
        except ValueError:
            fits = False
        if not fits:
            raise ShapeError(
                f"{name}.backward returned shape {grad.shape} for input {index}, of shape {parent.shape}; "
                "a gradient has its input's shape (or a shape the input broadcasts to)"
            )
    return tuple(checked)


from descend import ops  # noqa: E402  (last: every op module imports Tensor from this one)

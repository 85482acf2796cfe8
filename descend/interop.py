"""Weights from and to PyTorch: move a trained model either way, arrays in, arrays out.

>>> import numpy as np
>>> from descend import nn
>>> model = nn.Sequential(nn.Linear(3, 2, rng=0), nn.ReLU(), nn.Linear(2, 1, rng=0))
>>> torch_state = {"0.weight": np.ones((2, 3)), "0.bias": np.zeros(2),   # torch's dense weight is (out, in)
...                "2.weight": np.ones((1, 2)), "2.bias": np.zeros(1)}
>>> from_torch(model, torch_state).layers[0].weight.shape
(3, 2)
>>> {key: value.shape for key, value in to_torch(model).items()}
{'0.weight': (2, 3), '0.bias': (2,), '2.weight': (1, 2), '2.bias': (1,)}

`from_torch(model, torch_model.state_dict())` puts a PyTorch model's weights into the matching descend
model; `to_torch(model)` gives the dict that `torch_model.load_state_dict({k: torch.from_numpy(v) for k, v
in ...})` takes. A value may be a torch tensor (read through `.detach().cpu().numpy()`, so descend never
imports torch), a descend tensor, or anything NumPy reads as an array.

Layouts. descend names each layer's parameters as PyTorch does (weight, bias, running_mean, weight_ih_l0,
bias_hh_l1_reverse, ...), orders the gates as it does (LSTM i, f, g, o; GRU r, z, n, with b_hn inside the
reset gate's product) and lays out convolutions as it does: (out, in / groups, k...), and (in, out / groups,
k...) for transposed ones. Two things differ. descend stores dense and recurrent weights (in, out) where
PyTorch stores (out, in), so those are transposed, square ones too. And PyTorch's batch norm counts its
batches (num_batches_tracked, used only when its momentum is None, which descend's never is): a key ignored
on the way in and made on the way out.

Pairing. Both functions walk the descend model's layers that hold weights, depth first (the order of
`named_parameters`), and the torch keys grouped by module prefix ("features.0" for "features.0.weight")
in the state dict's order, and pair them one to one; `names={descend layer: torch prefix}` pairs them by
hand instead. The keys of a pair must be the layer's own. A layer descend has no twin for, a count that
differs, a missing or extra key and a shape that does not fit are errors naming the torch key and the
descend parameter, raised before any weight is written.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from descend.errors import DescendTypeError, DescendValueError, ShapeError
from descend.nn.conv import BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d
from descend.nn.layers import Linear, Sequential
from descend.nn.module import Module
from descend.nn.parameter import Parameter
from descend.nn.recurrent import GRU, LSTM, RNN, Embedding, GRUCell, LSTMCell, RNNCell
from descend.tensor import Tensor, array_of


class Twin(NamedTuple):
    """How a descend layer kind's state differs from its PyTorch twin's."""

    #: names stored (in, out) here and (out, in) in torch; "weight_ih" also covers "weight_ih_l1_reverse"
    transposed: tuple[str, ...] = ()
    #: keys only torch keeps: accepted and ignored on the way in, made on the way out
    torch_only: tuple[str, ...] = ()

    def transposes(self, name: str) -> bool:
        """Whether the parameter `name` is stored transposed relative to torch's.

        >>> _RECURRENT.transposes("weight_hh_l1_reverse"), _RECURRENT.transposes("bias_hh_l1")
        (True, False)
        """
        return any(name == stem or name.startswith(stem + "_") for stem in self.transposed)


_RECURRENT = Twin(transposed=("weight_ih", "weight_hh"))
_BATCH_NORM = Twin(torch_only=("num_batches_tracked",))

#: every descend layer kind that has a PyTorch twin (a subclass maps as the first of its bases listed here)
TWINS: dict[type[Module], Twin] = {
    Linear: Twin(transposed=("weight",)), Embedding: Twin(),
    Conv1d: Twin(), Conv2d: Twin(), ConvTranspose1d: Twin(), ConvTranspose2d: Twin(),
    BatchNorm1d: _BATCH_NORM, BatchNorm2d: _BATCH_NORM,
    RNN: _RECURRENT, GRU: _RECURRENT, LSTM: _RECURRENT, RNNCell: _RECURRENT, GRUCell: _RECURRENT, LSTMCell: _RECURRENT,
}


def from_torch(model: Module, state_dict: Mapping[str, Any], names: Mapping[str, str] | None = None) -> Module:
    """Copy a PyTorch state dict into `model`, in place, transposing where the layouts differ; returns `model`.

    state_dict: torch_model.state_dict(), or any mapping of the same keys to arrays. names: {descend layer:
    torch prefix} for every descend layer with weights (e.g. {"network.layers.0": "fc1"}); without it the
    layers pair with the torch modules in order. Nothing is written unless every key and shape fits.

    >>> import numpy as np
    >>> from descend import nn
    >>> layer = from_torch(nn.Linear(2, 3, rng=0), {"weight": np.arange(6).reshape(3, 2), "bias": np.zeros(3)})
    >>> layer.weight.data
    array([[0., 2., 4.],
           [1., 3., 5.]], dtype=float32)
    """
    layers = _layers_of(model)
    if not isinstance(state_dict, Mapping):
        raise DescendTypeError(
            f"state_dict must be a mapping of torch keys to tensors or arrays (torch_model.state_dict()); "
            f"got {type(state_dict).__name__}"
        )
    groups = _groups(state_dict, "state_dict")
    values: list[tuple[_Layer, str, np.ndarray]] = []
    for layer, prefix in _paired(layers, groups, names, "state_dict"):
        for key, local in _keys(layer, prefix, groups[prefix], "state_dict"):
            values.append((layer, local, _checked(layer, local, key, state_dict[key], "state_dict")))
    for layer, local, value in values:
        target = getattr(layer.module, local)
        if isinstance(target, Parameter):
            target.data[...] = value.T if layer.twin.transposes(local) else value  # in place: a view of the buffer
        else:
            setattr(layer.module, local, value.astype(target.dtype, copy=True))
    return model


def to_torch(model: Module, like: Mapping[str, Any] | None = None,
             names: Mapping[str, str] | None = None) -> dict[str, np.ndarray]:
    """`model`'s weights and running statistics as copies in PyTorch's names and layouts.

    Without `like` the keys are descend's own names, except that a Sequential's children are named by
    index alone, as torch.nn.Sequential names them ("0.weight" for descend's "layers.0.weight"), so a torch
    model built the same way takes the dict. like: the state dict of the torch model to fill
    (torch_model.state_dict()): the layers pair with its modules in order, and the dict has its keys, order
    and shapes; num_batches_tracked keeps its count there (descend does not count batches), else is 0.
    names: {descend layer: torch prefix} for every descend layer with weights, the prefixes to use.

    >>> from descend import nn
    >>> {key: value.shape for key, value in to_torch(nn.LSTM(4, 3, rng=0)).items()}
    {'weight_ih_l0': (12, 4), 'weight_hh_l0': (12, 3), 'bias_ih_l0': (12,), 'bias_hh_l0': (12,)}
    """
    layers = _layers_of(model)
    if like is not None and not isinstance(like, Mapping):
        raise DescendTypeError(
            f"like must be a mapping of torch keys to tensors or arrays (torch_model.state_dict()); "
            f"got {type(like).__name__}"
        )
    groups = None if like is None else _groups(like, "like")
    out = {}
    for layer, prefix in _paired(layers, groups, names, "like"):
        keys = groups[prefix] if groups is not None else [_join(prefix, local) for local in layer.own]
        for key, local in _keys(layer, prefix, keys, "like"):
            value = array_of(getattr(layer.module, local))
            value = value.T if layer.twin.transposes(local) else value
            if like is not None:
                _checked(layer, local, key, like[key], "like")
            out[key] = np.array(value, order="C")  # a copy: never a view of the model's buffer
        for local in layer.twin.torch_only:
            key = _join(prefix, local)
            if like is None:
                out[key] = np.zeros((), dtype=np.int64)
            elif key in like:
                out[key] = np.array(_array(key, like[key], "like"))
    return out if like is None else {key: out[key] for key in like}


# -- the descend side -----------------------------------------------------------------------------------------

class _Layer(NamedTuple):
    """A descend module that holds weights or running statistics, and how it pairs with torch."""

    name: str  # its dotted name in the model ("" for a model that is one layer)
    module: Module
    twin: Twin
    torch_name: str  # its name in a torch model built the same way
    own: tuple[str, ...]  # its parameters, then its state arrays: torch's order

    def describe(self, local: str) -> str:
        """'layers.0.weight' (Linear(4 -> 8)): a parameter by its name in the model, with its layer."""
        return f"{_join(self.name, local)!r} ({self.module!r})"

    def where(self) -> str:
        """Linear(4 -> 8) at 'layers.0': the layer, and its name unless it is the whole model."""
        return f"{self.module!r} at {self.name!r}" if self.name else repr(self.module)


def _layers_of(model: Module) -> list[_Layer]:
    if not isinstance(model, Module):
        raise DescendTypeError(f"model must be a descend Module; got {type(model).__name__}")
    return list(_walk(model, "", ""))


def _walk(module: Module, name: str, torch_name: str) -> Iterator[_Layer]:
    own = tuple(key for key, value in vars(module).items() if isinstance(value, Parameter)) + tuple(module.state)
    if own:
        twin = next((TWINS[cls] for cls in type(module).__mro__ if cls in TWINS), None)
        if twin is None:
            raise DescendTypeError(
                f"descend parameter {_join(name, own[0])!r} belongs to {module!r}, which has no PyTorch twin; "
                f"the layers that map are {', '.join(sorted(cls.__name__ for cls in TWINS))}"
            )
        yield _Layer(name, module, twin, torch_name, own)
    for child_name, child in module.named_children():
        # descend's Sequential keeps its children in a list called layers; torch's names them by index alone
        torch_child = child_name.partition(".")[2] if isinstance(module, Sequential) else child_name
        yield from _walk(child, _join(name, child_name), _join(torch_name, torch_child))


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


# -- the torch side -------------------------------------------------------------------------------------------

def _groups(state: Mapping[str, Any], argument: str) -> dict[str, list[str]]:
    """The keys by module prefix, in the state dict's order: {"0": ["0.weight", "0.bias"], ...}."""
    groups: dict[str, list[str]] = {}
    for key in state:
        if not isinstance(key, str):
            raise DescendTypeError(
                f"{argument} keys must be strings such as '0.weight'; got {type(key).__name__} {key!r}"
            )
        groups.setdefault(key.rpartition(".")[0], []).append(key)
    return groups


def _paired(layers: list[_Layer], groups: dict[str, list[str]] | None, names: Mapping[str, str] | None,
            argument: str) -> list[tuple[_Layer, str]]:
    """Each descend layer with its torch prefix: from `names`, else in order of `groups`, else its own torch name."""
    if names is not None:
        prefixes = _named(layers, names)
        if groups is not None:
            for layer, prefix in zip(layers, prefixes):
                if prefix not in groups:
                    raise DescendValueError(
                        f"names[{layer.name!r}] is {prefix!r}, but {argument} has no keys under that prefix; "
                        f"its prefixes are {list(groups)}"
                    )
            for prefix, keys in groups.items():
                if prefix not in prefixes:
                    raise DescendValueError(
                        f"torch key {keys[0]!r} has no descend layer: names pairs none with {prefix!r}"
                    )
        return list(zip(layers, prefixes))
    if groups is None:
        return [(layer, layer.torch_name) for layer in layers]
    if len(groups) > len(layers):
        key = list(groups.values())[len(layers)][0]
        raise DescendValueError(
            f"torch key {key!r} has no descend layer to go to: {argument} holds {len(groups)} modules with "
            f"weights ({', '.join(map(repr, groups))}), the descend model {len(layers)} "
            f"({', '.join(repr(layer.name) for layer in layers)}); pass names={{descend layer: torch prefix}} "
            f"to pair them by hand"
        )
    if len(layers) > len(groups):
        layer = layers[len(groups)]
        raise DescendValueError(
            f"descend parameter {layer.describe(layer.own[0])} has no torch module to pair with: {argument} "
            f"holds {len(groups)} modules with weights ({', '.join(map(repr, groups))}), the descend model "
            f"{len(layers)} ({', '.join(repr(layer.name) for layer in layers)}); pass names={{descend layer: "
            f"torch prefix}} to pair them by hand"
        )
    return list(zip(layers, groups))


def _named(layers: list[_Layer], names: Mapping[str, str]) -> list[str]:
    """The torch prefix `names` gives each layer; every layer with weights must have one, and only those."""
    if not isinstance(names, Mapping):
        raise DescendTypeError(f"names must be a dict {{descend layer: torch prefix}}; got {type(names).__name__}")
    known = [layer.name for layer in layers]
    for name, prefix in names.items():
        if name not in known:
            raise DescendValueError(f"names: {name!r} is not a descend layer with weights; those are {known}")
        if not isinstance(prefix, str):
            raise DescendTypeError(
                f"names[{name!r}] must be a torch prefix string; got {type(prefix).__name__} {prefix!r}"
            )
    missing = [name for name in known if name not in names]
    if missing:
        raise DescendValueError(
            f"names gives no torch prefix for descend layer {missing[0]!r}; it must name each of {known}"
        )
    prefixes = [names[name] for name in known]
    for name, prefix in zip(known, prefixes):
        if prefixes.count(prefix) > 1:
            raise DescendValueError(
                f"names gives the torch prefix {prefix!r} to more than one descend layer, {name!r} first"
            )
    return prefixes


def _keys(layer: _Layer, prefix: str, keys: list[str], argument: str) -> list[tuple[str, str]]:
    """(torch key, descend local name) for each of the layer's values; an error for a key either side lacks."""
    ours = {_join(prefix, local): local for local in layer.own}
    ignored = {_join(prefix, local) for local in layer.twin.torch_only}
    for key in keys:
        if key not in ours and key not in ignored:
            raise DescendValueError(
                f"torch key {key!r} in {argument} has no place in descend's {layer.where()}, "
                f"which holds {', '.join(layer.own)}"
            )
    for key, local in ours.items():
        if key not in keys:
            raise DescendValueError(
                f"descend parameter {layer.describe(local)} has no value: {argument} has no key {key!r}"
            )
    return list(ours.items())


def _checked(layer: _Layer, local: str, key: str, value: Any, argument: str) -> np.ndarray:
    """The torch value of `key` as an array, when its shape is the one the descend parameter has in torch's layout."""
    array = _array(key, value, argument)
    ours = np.shape(getattr(layer.module, local))
    transposed = layer.twin.transposes(local)
    expected = ours[::-1] if transposed else ours
    if array.shape != expected:
        stored = f", stored here transposed as {ours}" if transposed else ""
        raise ShapeError(
            f"torch key {key!r} in {argument} has shape {array.shape}; descend parameter {layer.describe(local)} "
            f"needs {expected} in PyTorch's layout{stored}"
        )
    return array


def _array(key: str, value: Any, argument: str) -> np.ndarray:
    if not isinstance(value, Tensor) and hasattr(value, "detach"):  # a torch tensor, read without importing torch
        value = value.detach().cpu().numpy()
    array = array_of(value)
    if array.dtype.kind not in "fiu":
        raise DescendTypeError(
            f"torch key {key!r} in {argument} holds {type(value).__name__} of dtype {array.dtype}; "
            f"expected real numbers, as a tensor or an array"
        )
    return array

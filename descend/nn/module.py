"""Module: a layer or a model, walked as plain data.

A module's parameters are found by walking its attributes: a `Parameter`,
another `Module`, or a list or tuple of modules. No registration, no
attribute-assignment tricks. Each subclass records the arguments it was
built with (`config()`), so a model's architecture round-trips through
JSON and a saved file never needs code to rebuild it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from descend.checks import naming_arguments
from descend.errors import DescendTypeError, DescendValueError, ShapeError
from descend.nn.parameter import Parameter, ParameterBuffer
from descend.tensor import Tensor

#: every Module subclass by qualified name (module.Class), for rebuilding a model from its JSON description;
#: qualified, so a user's own class called Linear never stands in for descend's
REGISTRY: dict[str, type[Module]] = {}


def qualified_name(cls: type) -> str:
    """'descend.nn.layers.Linear' for descend's Linear: the name a model file records."""
    return f"{cls.__module__}.{cls.__qualname__}"


class Module:
    """Base of every layer and model: `forward` says what it computes.

    `state` lists names of attributes that are arrays the module keeps but
    does not train (running statistics); they are saved with the weights.
    """

    training: bool = True
    state: ClassVar[tuple[str, ...]] = ()
    #: True for models trained to reproduce their input (autoencoders): fit then uses x as the target
    target_is_input: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        REGISTRY[qualified_name(cls)] = cls
        if "__init__" in cls.__dict__:
            cls.__init__ = naming_arguments(_recording_config(cls.__init__))

    @naming_arguments
    def __init__(self) -> None:
        """A module without arguments of its own (a loss, an activation) takes none; a wrong one is named."""

    def forward(self, *args: Any, **kwargs: Any) -> Tensor:
        """What the module computes; every subclass defines it, and calling the module calls it."""
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def penalty(self) -> Tensor | None:
        """A term fit adds to the loss after each forward pass (a sparse code's L1, a VAE's KL); None by default."""
        return None

    def __call__(self, *args: Any, **kwargs: Any) -> Tensor:
        return self.forward(*args, **kwargs)

    # -- walking the tree ---------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Module]]:
        """Direct sub-modules with their attribute names (list items as name.0, name.1, ...)."""
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for index, item in enumerate(value):
                    if isinstance(item, Module):
                        yield f"{name}.{index}", item

    def modules(self) -> Iterator[Module]:
        """This module and every module below it, depth first."""
        yield self
        for _, child in self.named_children():
            yield from child.modules()

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """Every parameter once (shared ones under their first name), as (dotted name, Parameter)."""
        seen: set[int] = set()
        for name, parameter in self._walk_parameters(prefix):
            if id(parameter) not in seen:
                seen.add(id(parameter))
                yield name, parameter

    def _walk_parameters(self, prefix: str) -> Iterator[tuple[str, Parameter]]:
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
        for name, child in self.named_children():
            yield from child._walk_parameters(f"{prefix}{name}.")

    def parameters(self) -> list[Parameter]:
        """The parameters, all views of the model's one flat buffer (made on first call)."""
        return self.flat_buffer().params

    def flat_buffer(self) -> ParameterBuffer:
        """The flat buffer that holds every parameter and gradient of this model."""
        return ParameterBuffer.of(parameter for _, parameter in self.named_parameters())

    def parameter_count(self) -> int:
        """How many numbers training adjusts."""
        return sum(p.size for _, p in self.named_parameters())

    def zero_grad(self) -> None:
        """Set every gradient to zero."""
        self.flat_buffer().zero_grad()

    def train(self, mode: bool = True) -> Module:
        """Training mode (dropout active, batch statistics) for this module and all below; returns self."""
        for module in self.modules():
            module.training = mode
        return self

    def eval(self) -> Module:
        """Evaluation mode; returns self."""
        return self.train(False)

    def astype(self, dtype: Any) -> Module:
        """Move every parameter and state array to `dtype` (np.float32 or np.float64); returns self.

        The flat buffer is rebound to new arrays of that dtype.
        """
        buffer = self.flat_buffer()
        buffer.rebind(buffer.data.astype(dtype), buffer.grad.astype(dtype))
        for module in self.modules():
            for name in module.state:
                setattr(module, name, getattr(module, name).astype(dtype))
        return self

    # -- state --------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and state array, by dotted name."""
        out = {name: p.data.copy() for name, p in self.named_parameters()}
        for prefix, module in self._named_modules():
            for name in module.state:
                out[prefix + name] = np.array(getattr(module, name), copy=True)
        return out

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy values in place; names and shapes must match this model exactly."""
        expected = {name: p.data for name, p in self.named_parameters()}
        holders = {}
        for prefix, module in self._named_modules():
            for name in module.state:
                expected[prefix + name] = getattr(module, name)
                holders[prefix + name] = (module, name)
        missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        if missing or unexpected:
            raise DescendValueError(
                f"state does not fit {type(self).__name__}: missing {missing or 'nothing'}, "
                f"unexpected {unexpected or 'nothing'}"
            )
        for name, target in expected.items():
            value = np.asarray(state[name])
            if value.shape != target.shape:
                raise ShapeError(f"state '{name}' has shape {value.shape}; the model expects {target.shape}")
            if name in holders:
                module, attribute = holders[name]
                setattr(module, attribute, value.astype(target.dtype, copy=True))
            else:
                target[...] = value

    def training_state(self) -> dict[str, np.ndarray]:
        """Arrays this module carries from one training step to the next besides its weights and `state`.

        A stateful recurrent model's hidden state is one; checkpoints save
        them so a resumed run continues exactly. {} by default.
        """
        return {}

    def load_training_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Take back what `training_state()` gave (a checkpoint's copy); nothing to take by default."""
        if arrays:
            raise DescendValueError(f"{type(self).__name__} carries no training state; got arrays {sorted(arrays)}")

    def _named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, child in self.named_children():
            yield from child._named_modules(f"{prefix}{name}.")

    def config(self) -> dict[str, Any]:
        """The arguments this module was built with (what rebuilds it)."""
        return dict(getattr(self, "_config", {}))

    def __repr__(self) -> str:
        children = list(self.named_children())
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if not _holds_module(v))
        if not children:
            return f"{type(self).__name__}({arguments})"
        lines = [f"{type(self).__name__}({arguments}"]
        for name, child in children:
            lines.append(f"  ({name}): " + repr(child).replace("\n", "\n  "))
        return "\n".join(lines) + "\n)"


def _holds_module(value: Any) -> bool:
    return isinstance(value, Module) or (isinstance(value, (list, tuple)) and any(_holds_module(v) for v in value))


def _recording_config(init: Any) -> Any:
    """Wrap __init__ so the outermost call stores its arguments as the module's config."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapped(self: Module, *args: Any, **kwargs: Any) -> None:
        outermost = "_config" not in vars(self)
        if outermost:
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            arguments = dict(bound.arguments)
            arguments.pop("self")
            for name, parameter in signature.parameters.items():
                if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
                    arguments[name] = list(arguments[name])
            arguments.pop("rng", None)  # randomness is passed in, not part of the architecture
            self._config = arguments
        init(self, *args, **kwargs)

    return wrapped


def is_random(module: Module) -> bool:
    """Whether the module draws random numbers from its own `rng` Generator: dropout, input noise, a VAE's sampling."""
    return isinstance(getattr(module, "rng", None), np.random.Generator)


def random_modules(model: Module) -> Iterator[tuple[int, Module]]:
    """(index in model.modules(), module) for every random module (`is_random`): training seeds, checkpoints and
    replays them by that index."""
    for index, module in enumerate(model.modules()):
        if is_random(module):
            yield index, module


def module_spec(module: Module) -> dict[str, Any]:
    """A JSON-ready description: {"class": name, "config": arguments}, nested for sub-modules."""
    config = {}
    for name, value in module.config().items():
        try:
            config[name] = _encode(value)
        except DescendTypeError as error:
            raise DescendTypeError(f"{type(module).__name__}'s argument {name}: {error}") from None
    return {"class": qualified_name(type(module)), "config": config}


def _encode(value: Any) -> Any:
    if isinstance(value, Module):
        return module_spec(value)
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, type) and issubclass(value, np.generic):
        return np.dtype(value).name
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise DescendTypeError(
        f"cannot describe {value!r:.80} of type {type(value).__name__} in JSON; expected numbers, strings, "
        "lists, None or modules, which a model file can hold"
    )


def build_module(spec: dict[str, Any]) -> Module:
    """Rebuild a module (with fresh weights) from `module_spec` output."""
    if not isinstance(spec, dict) or "class" not in spec or "config" not in spec:
        raise DescendValueError(f"a module description needs 'class' and 'config'; got {spec!r:.200}")
    cls = REGISTRY.get(spec["class"])
    if cls is None:
        raise DescendValueError(
            f"unknown module class '{spec['class']}'; import the module that defines it before loading "
            f"(descend knows {', '.join(sorted(name.rsplit('.', 1)[-1] for name in REGISTRY))})"
        )
    signature = inspect.signature(cls.__init__)
    positional, keywords = [], {}
    for name, value in spec["config"].items():
        value = _decode(value)
        parameter = signature.parameters.get(name)
        if parameter is not None and parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            positional.extend(value)
        else:
            keywords[name] = value
    return cls(*positional, **keywords)


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and "class" in value and "config" in value:
        return build_module(value)
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def check_last_dim(x: Tensor, expected: int, layer: Module) -> None:
    """Raise a ShapeError naming the layer when x's last axis is not `expected` long (a DescendTypeError if x is no Tensor)."""
    if not isinstance(x, Tensor):
        raise DescendTypeError(
            f"{layer!r} takes a Tensor of shape (N, {expected}); got {type(x).__name__}. Wrap arrays: dc.tensor(x)"
        )
    if x.ndim == 0 or x.shape[-1] != expected:
        hint = " Flatten the images first, e.g. nn.Flatten() before this layer." if x.ndim > 2 else ""
        raise ShapeError(f"{layer!r} got input of shape {x.shape}; expected (N, {expected}).{hint}")


def check_finite(array: np.ndarray, argument: str) -> None:
    """Raise when an input array holds NaN or infinity, saying where the first one is."""
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        first = np.argwhere(~np.isfinite(array))[0]
        raise DescendValueError(
            f"{argument} holds NaN or infinite values (first at index {tuple(int(i) for i in first)}); "
            "clean or impute them before training"
        )

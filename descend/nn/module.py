"""Module: a layer or a model, walked as plain data.

A module's parameters are found by walking its attributes: a `Parameter`,
another `Module`, or a list or tuple of modules. No registration, no
attribute-assignment tricks. Each subclass records the arguments it was
built with (`config()`), so a model's architecture round-trips through
JSON and a saved file never needs code to rebuild it.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

import numpy as np

from descend import ops
from descend.checks import accepting_torch_names, naming_arguments
from descend.errors import DescendTypeError, DescendValueError, ShapeError
from descend.nn.parameter import Parameter, ParameterBuffer
from descend.tensor import Tensor

#: every Module subclass by qualified name (module.Class), for rebuilding a model from its JSON description;
#: qualified, so a user's own class called Linear never stands in for descend's
REGISTRY: dict[str, type[Module]] = {}


#: the functions a module's constructor may take, by the name a model file records: descend's own ops as
#: "descend.relu" (how users write them, dc.relu), and those registered with `register_function`
FUNCTIONS: dict[str, Callable[..., Any]] = {
    f"descend.{name}": getattr(ops, name) for name in ops.__all__ if inspect.isfunction(getattr(ops, name))
}


def qualified_name(cls: type) -> str:
    """'descend.nn.layers.Linear' for descend's Linear: the name a model file records."""
    return f"{cls.__module__}.{cls.__qualname__}"


def register_function(function: Callable[..., Any] | None = None, *, name: str | None = None) -> Any:
    """Let modules take `function` as a constructor argument and model files name it; returns the function.

    A model file holds no code, so it records a function by name and loading
    looks the name up here: register the function (under its own name unless
    `name` says another) in every program that saves or loads such a model.
    descend's own functions (dc.relu, dc.tanh, ...) are registered already.

    >>> @register_function
    ... def swish(x):
    ...     return x * ops.sigmoid(x)
    >>> FUNCTIONS["swish"] is swish
    True
    """
    if function is None:
        return functools.partial(register_function, name=name)
    if not callable(function) or isinstance(function, type):
        raise DescendTypeError(f"register_function takes a function; got {type(function).__name__} {function!r:.80}")
    name = function.__qualname__ if name is None else name
    if not isinstance(name, str) or not name or "<" in name:
        raise DescendValueError(
            f"name must be a non-empty string a file can record; got {name!r:.80}. A lambda or a nested function "
            "has no such name: define it with def at the top of a module, or pass name='...'"
        )
    if FUNCTIONS.get(name, function) is not function:
        raise DescendValueError(f"another function is registered as '{name}' already; pass name='...' to tell them apart")
    FUNCTIONS[name] = function
    return function


def function_name(function: Callable[..., Any]) -> str | None:
    """The name `function` is registered under, or None."""
    return next((name for name, known in FUNCTIONS.items() if known is function), None)


class Module:
    """Base of every layer and model: `forward` says what it computes.

    `state` lists names of attributes that are arrays the module keeps but
    does not train (running statistics); they are saved with the weights.

    >>> import descend as dc
    >>> class TwoLayers(Module):
    ...     def __init__(self, rng=None):
    ...         self.hidden, self.out = dc.nn.Linear(3, 4, rng=rng), dc.nn.Linear(4, 1, rng=rng)
    ...     def forward(self, x):
    ...         return self.out(dc.relu(self.hidden(x)))
    >>> model = TwoLayers(rng=0)
    >>> model(dc.tensor(np.ones((2, 3)))).shape, model.parameter_count(), [name for name, _ in model.named_parameters()]
    ((2, 1), 21, ['hidden.weight', 'hidden.bias', 'out.weight', 'out.bias'])
    """

    training: bool = True
    state: ClassVar[tuple[str, ...]] = ()
    #: True for models trained to reproduce their input (autoencoders): fit then uses x as the target
    target_is_input: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        REGISTRY[qualified_name(cls)] = cls
        if "__init__" in cls.__dict__:
            cls.__init__ = accepting_torch_names(naming_arguments(_recording_config(cls.__init__)))

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
        """Every parameter once (shared ones under their first name), as (dotted name, Parameter).

        On a model whose parameters are in no buffer yet, its flat buffer is
        laid out first, as `parameters()` does, so parameter groups picked by
        name (no weight decay on biases) are parts of the buffer it trains.
        """
        found = list(self._distinct_parameters(prefix))
        if found and all(parameter.buffer is None for _, parameter in found):
            self.flat_buffer()
        yield from found

    def _distinct_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
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
        return ParameterBuffer.of(parameter for _, parameter in self._distinct_parameters())

    def parameter_count(self) -> int:
        """How many numbers training adjusts."""
        return sum(p.size for _, p in self._distinct_parameters())

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
    def state_dict(self, layout: str = "descend") -> dict[str, np.ndarray]:
        """Copies of every parameter and state array, by dotted name.

        layout="torch" gives them with PyTorch's names and layouts, for a torch
        model built the same way (descend.interop.to_torch).
        """
        if _check_layout(layout) == "torch":
            return importlib.import_module("descend.interop").to_torch(self)
        out = {name: p.data.copy() for name, p in self.named_parameters()}
        for prefix, module in self._named_modules():
            for name in module.state:
                out[prefix + name] = np.array(getattr(module, name), copy=True)
        return out

    def load_state_dict(self, state: dict[str, np.ndarray], layout: str = "descend") -> None:
        """Copy values in place; names and shapes must match this model exactly.

        layout="torch" takes a PyTorch model's state_dict (tensors or arrays),
        transposing what PyTorch lays out otherwise (descend.interop.from_torch).
        """
        if _check_layout(layout) == "torch":
            importlib.import_module("descend.interop").from_torch(self, state)
            return
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


def _check_layout(layout: Any) -> str:
    # descend.interop builds on the layers, which build on this module: it is imported when asked for
    if layout not in ("descend", "torch"):
        raise DescendValueError(f"layout must be 'descend' or 'torch'; got {layout!r:.80}")
    return layout


def _holds_module(value: Any) -> bool:
    return isinstance(value, Module) or (isinstance(value, (list, tuple)) and any(_holds_module(v) for v in value))


def _recording_config(init: Any) -> Any:
    """Wrap __init__ so the outermost call stores its arguments as the module's config."""
    signature = inspect.signature(init)
    instance = next(iter(signature.parameters))

    @functools.wraps(init)
    def wrapped(self: Module, *args: Any, **kwargs: Any) -> None:
        outermost = "_config" not in vars(self)
        if outermost:
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            arguments = dict(bound.arguments)
            del arguments[instance]  # whatever the subclass calls it: self, s, module
            for name, parameter in signature.parameters.items():
                if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
                    arguments[name] = list(arguments[name])
            arguments.pop("rng", None)  # randomness is passed in, not part of the architecture
            for name, value in arguments.items():
                _check_recordable(type(self), name, value)
            self._config = arguments
        init(self, *args, **kwargs)

    return wrapped


def _check_recordable(cls: type, argument: str, value: Any) -> None:
    """Refuse, at construction, a function argument a model file could not name: the fix comes now, not at save."""
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_recordable(cls, argument, item)
    elif callable(value) and not isinstance(value, (Module, type)) and function_name(value) is None:
        raise DescendTypeError(
            f"{cls.__name__}'s argument {argument} is the function "
            f"'{getattr(value, '__qualname__', getattr(value, '__name__', type(value).__name__))}', "
            "which a model file cannot name: register it first (@dc.nn.register_function above its def, or "
            "dc.nn.register_function(fn, name='...')), or pass one of descend's own (dc.relu, dc.tanh, ...)"
        )


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
    """A JSON-ready description: {"class": name, "config": arguments}, nested for sub-modules.

    >>> import descend as dc
    >>> module_spec(dc.nn.Linear(3, 2))
    {'class': 'descend.nn.layers.Linear', 'config': {'in_features': 3, 'out_features': 2, 'bias': True}}
    >>> module_spec(dc.nn.Sequential(dc.nn.ReLU()))["config"]
    {'layers': [{'class': 'descend.nn.layers.ReLU', 'config': {}}]}
    """
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
    if callable(value) and not isinstance(value, type) and function_name(value) is not None:
        return {"function": function_name(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise DescendTypeError(
        f"cannot describe {value!r:.80} of type {type(value).__name__} in JSON; expected numbers, strings, "
        "lists, None or modules, which a model file can hold"
    )


def build_module(spec: dict[str, Any], custom_objects: Mapping[str, Any] | None = None) -> Module:
    """Rebuild a module (with fresh weights) from `module_spec` output.

    A class is found, in order: in `custom_objects` under its recorded name
    ('__main__.Net') or its own ('Net'); among the classes imported so far
    under its recorded name; or, when that name is a script's ('__main__.Net')
    or a module not imported, as the one imported class of that name. Functions
    are found in `custom_objects` or among those registered. Nothing is
    imported: a file never chooses which code runs.

    >>> import descend as dc
    >>> build_module(module_spec(dc.nn.Linear(3, 2)))
    Linear(3 -> 2)
    >>> build_module({"class": "descend.nn.layers.Linear", "config": {"in_features": 4, "out_features": 1}})
    Linear(4 -> 1)
    """
    custom_objects = check_custom_objects(custom_objects)
    if not isinstance(spec, dict) or "class" not in spec or "config" not in spec:
        raise DescendValueError(f"a module description needs 'class' and 'config'; got {spec!r:.200}")
    cls = _module_class(spec["class"], custom_objects)
    if not isinstance(spec["config"], dict):
        raise DescendValueError(f"the config of '{spec['class']}' must be a dict of arguments; got {spec['config']!r:.200}")
    signature = inspect.signature(cls.__init__)
    positional, keywords = [], {}
    for name, value in spec["config"].items():
        value = _decode(value, custom_objects)
        parameter = signature.parameters.get(name)
        if parameter is not None and parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            positional.extend(value)
        else:
            keywords[name] = value
    return cls(*positional, **keywords)


def check_custom_objects(custom_objects: Any) -> dict[str, Any]:
    """`custom_objects` (names to Module subclasses or functions, or None) as a dict; else an error naming it."""
    if custom_objects is None:
        return {}
    if not isinstance(custom_objects, Mapping):
        raise DescendTypeError(
            f"custom_objects must map names to classes or functions, e.g. {{'Net': Net}}; got {type(custom_objects).__name__}"
        )
    for name, value in custom_objects.items():
        if not isinstance(name, str):
            raise DescendTypeError(f"custom_objects' names must be strings; got {name!r:.80}")
        is_module_class = isinstance(value, type) and issubclass(value, Module)
        if not is_module_class and (isinstance(value, type) or not callable(value)):
            raise DescendTypeError(
                f"custom_objects['{name}'] must be a Module subclass or a function; got {type(value).__name__} {value!r:.80}"
            )
    return dict(custom_objects)


def _module_class(recorded: Any, custom_objects: dict[str, Any]) -> type[Module]:
    """The Module subclass a file's recorded class name stands for (see build_module), or an error with the fix."""
    if not isinstance(recorded, str):
        raise DescendValueError(f"a module's class must be named by a string; got {recorded!r:.80}")
    short = recorded.rsplit(".", 1)[-1]
    for name in (recorded, short):
        if isinstance(custom_objects.get(name), type):
            return custom_objects[name]
    if recorded in REGISTRY:
        return REGISTRY[recorded]
    # saved from a script ('__main__.Net') and loaded where its module is imported ('mymodel.Net')
    namesakes = [cls for name, cls in REGISTRY.items()
                 if cls.__name__ == short and not name.startswith("descend.")]
    if len(namesakes) == 1:
        return namesakes[0]
    if recorded.startswith("descend."):
        known = ", ".join(sorted(cls.__qualname__ for name, cls in REGISTRY.items()
                                 if name.startswith("descend.") and not cls.__qualname__.startswith("_")))
        raise DescendValueError(f"unknown module class '{recorded}': this descend has no such class (a file from "
                                f"a newer descend?); its classes are {known}")
    several = f"; several imported classes are called {short}: {', '.join(map(qualified_name, namesakes))}"
    raise DescendValueError(
        f"unknown module class '{recorded}'{several if namesakes else ''}. It is your own class: pass it when "
        f"loading, dc.load(path, custom_objects={{'{short}': {short}}}), or build the model in code and read only "
        "the weights, dc.load_weights(model, path)"
    )


def _decode(value: Any, custom_objects: dict[str, Any]) -> Any:
    if isinstance(value, dict) and "class" in value and "config" in value:
        return build_module(value, custom_objects)
    if isinstance(value, dict) and set(value) == {"function"}:
        return _function(value["function"], custom_objects)
    if isinstance(value, list):
        return [_decode(v, custom_objects) for v in value]
    return value


def _function(name: Any, custom_objects: dict[str, Any]) -> Callable[..., Any]:
    """The function a file names: from custom_objects (then registered under that name, so the model saves
    again), else the registered ones."""
    if isinstance(name, str) and callable(custom_objects.get(name)) and not isinstance(custom_objects[name], type):
        return register_function(custom_objects[name], name=name)
    if isinstance(name, str) and name in FUNCTIONS:
        return FUNCTIONS[name]
    raise DescendValueError(
        f"unknown function {name!r:.80}: pass it when loading, dc.load(path, custom_objects={{{name!r:.80}: fn}}), "
        "or register it first with dc.nn.register_function"
    )


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

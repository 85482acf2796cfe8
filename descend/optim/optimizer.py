"""Optimizer: the base of every update rule, working on the one flat parameter buffer.

An optimizer takes its parameters as a list, or as PyTorch's parameter groups: a list of dicts, each with
its "params" and the hyperparameters its parameters use instead of the constructor's
(`SGD([{"params": weights, "weight_decay": 1e-4}, {"params": biases}], lr=0.1)`). Every parameter keeps
its place in the one flat buffer; a group is the runs of the buffer its parameters fill, and a step runs
the update (one compiled pass, or the NumPy reference) on each run with that group's numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import Any

import numpy as np

from descend import kernels
from descend.errors import DescendTypeError, DescendValueError, ShapeError
from descend.nn.parameter import Parameter, ParameterBuffer
from descend.checks import check_integer, check_real, naming_arguments
from descend.optim.constraints import MaxNorm
from descend.optim.schedules import Described, MomentumRamp, Schedule, build_schedule
from descend.tensor import Tensor


#: weights per chunk of an update: with a few state arrays, a chunk stays in a core's L2 cache
CHUNK = 1 << 16

#: every optimizer class by name, for rebuilding one from its description in another process
OPTIMIZERS: dict[str, type[Optimizer]] = {}

Check = Callable[[dict[str, Any], str], dict[str, Any]]


class ParamGroup(MutableMapping):
    """One parameter group, an entry of `optimizer.param_groups` as in torch: its "params" and hyperparameters.

    A hyperparameter set here is checked as the constructor checks it and
    used from the next step on (`group["lr"] *= 0.1`, as PyTorch users write
    it); "params" is fixed, since a group's place in the flat buffer is laid
    out once.

    >>> w, b = Parameter([1.0]), Parameter([0.0])
    >>> from descend.optim import SGD
    >>> optimizer = SGD([{"params": [w]}, {"params": [b], "lr": 0.01}], lr=0.1)
    >>> optimizer.param_groups[1]["lr"], optimizer.param_groups[0]["lr"]
    (0.01, 0.1)
    """

    def __init__(self, params: list[Parameter], hyperparameters: dict[str, Any], check: Check, where: str):
        self._params, self._values, self._check, self._where = params, hyperparameters, check, where

    def __getitem__(self, key: str) -> Any:
        return self._params if key == "params" else self._values[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if key not in self._values:
            raise DescendValueError(
                f"{self._where}[{key!r}] cannot be set: a group's parameters are fixed when the optimizer is made, "
                f"and its hyperparameters are {', '.join(self._values)}"
            )
        self._values[key] = self._check({**self._values, key: value}, self._where)[key]

    def __delitem__(self, key: str) -> None:
        raise DescendTypeError(f"{self._where}[{key!r}] cannot be removed; set another value instead")

    def __iter__(self) -> Iterator[str]:
        return iter(["params", *self._values])

    def __len__(self) -> int:
        return 1 + len(self._values)

    def hyperparameters(self) -> dict[str, Any]:
        """The group's hyperparameters (a copy), without its parameters."""
        return dict(self._values)

    def __repr__(self) -> str:
        values = ", ".join(f"{name!r}: {value!r}" for name, value in self._values.items())
        return f"{{'params': [{len(self._params)} parameters], {values}}}"


class Optimizer:
    """Base of the optimizers: one step updates every parameter in a few vector operations.

    The parameters are gathered into one flat buffer, `self.buffer` (the
    model's own when they are all of a model's parameters, in order, or
    when parameter groups list parameters of one model). A subclass's
    `_update(settings, weights, grad, state)` changes `weights` in place
    from `grad`; all are views of one chunk of the flat buffer, `state`
    holds the same chunk of its per-weight arrays (momentum, moment
    estimates), kept whole in `self.state`, and `settings` are the chunk's
    group's hyperparameters with "lr" the rate of this step.

    One `step()`, on each group's part of the buffer:
        lr = schedule(group lr, t)      (group lr when there is no schedule; t counts steps, or epochs for
                                         a schedule with per="epoch", which `end_epoch()` moves on)
        g  = grad + weight_decay · w + l1 · sign(w)   (l1 is SGD's)
        the subclass's update of w from g
    then the max-norm constraint, when max_norm is set, and iterations += 1.

    A subclass passes its constructor's hyperparameters by name in
    `defaults` and checks them in `_checked`, as torch's optimizers pass
    theirs. Parameter groups (PyTorch's list-of-dicts form) give some
    parameters their own hyperparameters; a group that leaves one out takes
    the constructor's. Parameters of the buffer in no group are left alone,
    as torch leaves them: they are not updated, decayed or constrained.
    Groups can only be taken from parameters already in one buffer (a
    model's, laid out by `model.parameters()`), or from loose parameters,
    which the groups' order then lays out.

    >>> weight, bias = Parameter([[1.0]], dtype="float64"), Parameter([1.0], dtype="float64")
    >>> from descend.optim import SGD
    >>> optimizer = SGD([{"params": [weight], "weight_decay": 0.5}, {"params": [bias]}], lr=0.1)
    >>> weight.grad[...], bias.grad[...] = 0.0, 0.0
    >>> optimizer.step()                    # only the weight decays: 1 − 0.1 · 0.5
    >>> float(weight.data[0, 0]), float(bias.data[0])
    (0.95, 1.0)
    """

    #: torch.optim's defaults for the arguments this optimizer shares with torch, for `with_torch_defaults`
    TORCH_DEFAULTS: dict[str, Any] = {}

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        OPTIMIZERS[cls.__name__] = cls
        if "__init__" in cls.__dict__:
            cls.__init__ = naming_arguments(cls.__init__)

    def __init__(
        self,
        params: Iterable[Parameter] | Iterable[Mapping[str, Any]],
        defaults: dict[str, Any],
        schedule: Schedule | None = None,
        max_norm: float | None = None,
    ):
        self.defaults = self._checked(defaults, "")
        self.schedule = _check_schedule(schedule)
        if isinstance(params, Iterator):  # a generator is read once, whichever form it turns out to be
            params = list(params)
        groups = parameter_groups(params, set(self.defaults))
        self.grouped = groups is not None
        if groups is None:
            self.buffer = ParameterBuffer.of(params)
            if not self.buffer.params:
                raise DescendValueError("params is empty: the optimizer would have nothing to update")
            groups = [(self.buffer.params, {})]
        else:
            self.buffer = _buffer_holding([p for members, _ in groups for p in members])
        # without groups the one group's settings are the constructor's, one dict: what describe() saves
        self.param_groups = [
            ParamGroup(members, self._checked({**self.defaults, **own}, f"params[{index}]" if own else "")
                       if self.grouped else self.defaults, self._checked, f"param_groups[{index}]")
            for index, (members, own) in enumerate(groups)
        ]
        self._segments = _segments(self.buffer, [group["params"] for group in self.param_groups])
        self.buffer.pinned = True
        updated = [p for group in self.param_groups for p in group["params"]]
        self.constraint = None if max_norm is None else MaxNorm(updated, max_norm)
        self.max_norm = None if self.constraint is None else self.constraint.max_norm
        self.iterations = 0
        self.epochs = 0
        self.state: dict[str, np.ndarray] = {}
        self._ensure_state()

    @classmethod
    def with_torch_defaults(cls, params: Iterable[Parameter] | Iterable[Mapping[str, Any]],
                            **arguments: Any) -> Optimizer:
        """This optimizer with torch.optim's defaults (`TORCH_DEFAULTS`) where descend's differ; `arguments`
        set any argument as the constructor takes it.

        >>> from descend.optim import Adadelta
        >>> optimizer = Adadelta.with_torch_defaults([Parameter([1.0])])
        >>> optimizer.rho, optimizer.eps          # descend's own defaults are H2O's 0.99 and 1e-8
        (0.9, 1e-06)
        """
        return cls(params, **{**cls.TORCH_DEFAULTS, **arguments})

    @classmethod
    def _checked(cls, values: dict[str, Any], where: str) -> dict[str, Any]:
        """`values` (every hyperparameter a group holds) checked as the constructor checks its arguments.

        Each error names the value as the user gave it: `lr` for the
        constructor's (`where` ""), `params[1]['lr']` for a group's.
        """
        name = naming(where)
        return {"lr": check_real(name("lr"), values["lr"], low=0.0, low_open=True),
                "weight_decay": check_real(name("weight_decay"), values["weight_decay"], low=0.0)}

    def _ensure_state(self) -> None:
        """Start the flat state arrays this optimizer's groups need (at construction, and when a group's change
        needs one, e.g. momentum set on a group that had none)."""

    @property
    def lr(self) -> float:
        """The learning rate the next step uses: the schedule applied to the base rate.

        With parameter groups it is the first group's, as torch users read
        `optimizer.param_groups[0]["lr"]`; setting it sets every group's.
        """
        return self.lr_at(self.iterations)

    @lr.setter
    def lr(self, value: float) -> None:
        """Set the rate from the next step on, as PyTorch users set a group's "lr": it becomes the base rate of
        every group, which a schedule, if there is one, goes on scaling."""
        value = check_real("lr", value, low=0.0, low_open=True)
        self.defaults["lr"] = value
        for group in self.param_groups:
            group["lr"] = value

    @property
    def base_lr(self) -> float:
        """The first group's rate before the schedule (the constructor's lr unless it was set since)."""
        return self.param_groups[0]["lr"]

    @base_lr.setter
    def base_lr(self, value: float) -> None:
        """As setting `lr`: every group's base rate."""
        self.lr = value

    @property
    def weight_decay(self) -> float:
        """The constructor's weight_decay: every group's unless the group sets its own."""
        return self.defaults["weight_decay"]

    def lr_at(self, iterations: int) -> float:
        """The first group's learning rate for the step taken after `iterations` steps, in the current epoch."""
        return self._rate(self.param_groups[0]["lr"], iterations)

    def _rate(self, base: float, iterations: int) -> float:
        """The rate of a group with base rate `base` after `iterations` steps, in epoch number `self.epochs`."""
        if self.schedule is None:
            return base
        return float(self.schedule(base, self.epochs if self.schedule.per == "epoch" else iterations))

    def end_epoch(self) -> None:
        """Count an epoch as ended: a schedule with per="epoch" gives the next epoch's rate from now on.

        PyTorch's `scheduler.step()` at the end of each epoch; `fit` calls it
        after every epoch, so write it only in a loop of your own:

        >>> from descend.optim import SGD, StepDecay
        >>> optimizer = SGD([Parameter([1.0])], lr=1.0, schedule=StepDecay(step_size=2, gamma=0.5, per="epoch"))
        >>> rates = []
        >>> for epoch in range(5):
        ...     rates.append(optimizer.lr)     # ... the epoch's minibatches: zero_grad, backward, step ...
        ...     optimizer.end_epoch()
        >>> rates
        [1.0, 1.0, 0.5, 0.5, 0.25]
        """
        self.epochs += 1

    def zero_grad(self) -> None:
        """Set every gradient to zero (one write to the flat gradient buffer)."""
        self._check_current()
        self.buffer.zero_grad()

    def _check_current(self) -> None:
        if self.buffer.retired:
            raise DescendValueError(
                f"{type(self).__name__}'s parameters moved to a new flat buffer after it was made (a submodule of the "
                "model was replaced, or model.parameters() regrouped them): stepping would update arrays the model "
                "no longer uses. Make the optimizer again from model.parameters()."
            )

    def step(self) -> None:
        """Update every parameter in a group from its gradient, then apply the max-norm constraint.

        With the compiled kernels (descend.kernels) the rule runs in one
        fused pass over each group's part of the buffer (all of it, without
        groups). The NumPy reference, `_update`, runs the rule's several
        passes on chunks small enough to stay in cache (a third faster than
        whole-buffer passes on MNIST's MLP). Every rule is elementwise: the
        result does not depend on the cut.
        """
        self._check_current()
        self._ensure_state()
        data, grad = self.buffer.data, self.buffer.grad
        compiled = kernels.for_arrays(data, grad, *self.state.values())
        for index, part in self._segments:
            group = self.param_groups[index]
            settings = {**group.hyperparameters(), "lr": self._rate(group["lr"], self.iterations)}
            weights, grads = data[part], grad[part]
            state = {name: array[part] for name, array in self.state.items()}
            if compiled is not None and self._update_compiled(compiled, settings, weights, grads, state):
                continue
            for start in range(0, weights.size, CHUNK):
                chunk = slice(start, start + CHUNK)
                self._update(settings, weights[chunk], grads[chunk],
                             {name: array[chunk] for name, array in state.items()})
        if self.constraint is not None:
            self.constraint.apply()
        self.iterations += 1

    def _update(self, settings: dict[str, Any], weights: np.ndarray, grad: np.ndarray,
                state: dict[str, np.ndarray]) -> None:
        """Change `weights` in place from `grad` and the state arrays: all views of one chunk of the buffer."""
        raise NotImplementedError(f"{type(self).__name__} must define _update")

    def _update_compiled(self, compiled: kernels.Kernels, settings: dict[str, Any], weights: np.ndarray,
                         grad: np.ndarray, state: dict[str, np.ndarray]) -> bool:
        """One group's part of the buffer updated in one compiled pass, the same numbers as `_update`'s; False
        where this optimizer has no kernel (its `_update` then runs)."""
        return False

    @staticmethod
    def _gradient(settings: dict[str, Any], weights: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """grad + weight_decay·w + l1·sign(w).

        A new array when a term is added: `buffer.grad` stays what backward() made it.
        """
        if settings["weight_decay"]:
            grad = grad + settings["weight_decay"] * weights
        if settings.get("l1"):
            grad = grad + settings["l1"] * np.sign(weights)
        return grad

    def _new_state(self, *names: str) -> None:
        """Start flat state arrays of zeros, one weight each."""
        for name in names:
            self.state[name] = np.zeros_like(self.buffer.data)

    # -- saving and resuming -----------------------------------------------
    def describe(self) -> dict[str, Any]:
        """JSON-ready: {"class", "hyperparameters", "schedule", "groups"}, all `build_optimizer` needs besides the
        parameters ("groups": None, or each group's parameters by their place in the buffer and its hyperparameters)."""
        return {
            "class": type(self).__name__,
            "hyperparameters": self.hyperparameters(),
            "schedule": None if self.schedule is None else self.schedule.describe(),
            "groups": self._groups_description(),
        }

    def hyperparameters(self) -> dict[str, Any]:
        """The constructor arguments other than params and schedule, JSON-ready."""
        return {**_json_ready(self.defaults), "max_norm": self.max_norm}

    def _groups_description(self) -> list[dict[str, Any]] | None:
        """Each group as {"params": places in buffer.params, its hyperparameters}, JSON-ready; None without groups."""
        if not self.grouped:
            return None
        place = {id(p): index for index, p in enumerate(self.buffer.params)}
        return [{"params": [place[id(p)] for p in group["params"]], **_json_ready(group.hyperparameters())}
                for group in self.param_groups]

    def state_dict(self) -> dict[str, dict[str, Any]]:
        """What resumes training exactly: flat state arrays, and JSON-ready scalars.

        {"arrays": {name: copy of a flat array}, "scalars": {"class", "iterations", "epochs",
        "hyperparameters", "schedule", "groups"}}. The weights themselves are the model's to save.
        """
        self._ensure_state()
        return {
            "arrays": {name: array.copy() for name, array in self.state.items()},
            "scalars": {"iterations": self.iterations, "epochs": self.epochs, **self.describe()},
        }

    def load_state_dict(self, state: dict[str, dict[str, Any]]) -> None:
        """Restore what `state_dict()` saved: hyperparameters, groups, schedule, step and epoch counts, state arrays.

        Everything is checked before anything changes.
        """
        parts = state if isinstance(state, dict) else {}
        if not (isinstance(parts.get("arrays"), dict) and isinstance(parts.get("scalars"), dict)):
            raise DescendTypeError(
                "state must be a dict holding dicts 'arrays' and 'scalars' (from state_dict()); "
                f"got {type(state).__name__} {state!r:.200}"
            )
        arrays, scalars = state["arrays"], state["scalars"]
        if scalars.get("class") != type(self).__name__:
            raise DescendValueError(
                f"state was saved by {scalars.get('class')!r}; it cannot be loaded into {type(self).__name__}"
            )
        iterations = check_integer("iterations", scalars.get("iterations"), low=0)
        epochs = check_integer("epochs", scalars.get("epochs", 0), low=0)  # states saved before epochs were counted: 0
        schedule = None if scalars.get("schedule") is None else build_schedule(scalars["schedule"])
        saved = scalars.get("hyperparameters")
        if not isinstance(saved, dict):
            raise DescendTypeError(f"state's hyperparameters must be a dict of arguments; got {saved!r:.200}")
        hyperparameters = {name: _decode(value) for name, value in saved.items()}
        params = groups_of_places(scalars.get("groups"), self.buffer.params)
        try:
            # the constructor checks the saved hyperparameters exactly as it checks new ones
            restored = type(self)(params, schedule=schedule, **hyperparameters)
        except TypeError as error:
            if isinstance(error, DescendTypeError):
                raise
            raise DescendValueError(
                f"saved hyperparameters {hyperparameters} do not fit {type(self).__name__}: {error}"
            ) from None
        if restored.buffer is not self.buffer:
            raise DescendValueError(f"state's groups {scalars.get('groups')!r:.200} do not lay out this optimizer's "
                                    "parameters in their buffer")
        missing, unexpected = sorted(set(restored.state) - set(arrays)), sorted(set(arrays) - set(restored.state))
        if missing or unexpected:
            raise DescendValueError(
                f"state arrays do not fit {restored!r}: missing {missing or 'nothing'}, "
                f"unexpected {unexpected or 'nothing'}"
            )
        for name, target in restored.state.items():
            value = np.asarray(arrays[name])
            if value.shape != target.shape:
                raise ShapeError(
                    f"state array '{name}' has shape {value.shape}; these parameters need {target.shape}"
                )
        for name, target in restored.state.items():
            target[...] = arrays[name]
        restored.iterations, restored.epochs = iterations, epochs
        vars(self).update(vars(restored))

    def __repr__(self) -> str:
        arguments = ", ".join(f"{name}={_decode(value)!r}" for name, value in self.hyperparameters().items())
        if self.schedule is not None:
            arguments += f", schedule={self.schedule!r}"
        if self.grouped:
            arguments += f", groups={len(self.param_groups)}"
        return f"{type(self).__name__}({arguments})"


def hyperparameter(name: str) -> property:
    """A read-only attribute for the constructor's hyperparameter `name` (each group's own is in param_groups)."""
    return property(lambda self: self.defaults[name],
                    doc=f"The constructor's {name}: every group's unless the group sets its own.")


def build_optimizer(description: dict[str, Any], params: Iterable[Parameter]) -> Optimizer:
    """A fresh optimizer of `params` from `Optimizer.describe()` output (its state starts at zero).

    `params` are all the parameters of the buffer, in its order (a model's `parameters()`); a description
    with groups picks each group's out of them by place.

    >>> from descend.optim import SGD
    >>> w, b = Parameter([1.0]), Parameter([2.0])
    >>> original = SGD([{"params": [w], "lr": 0.5}, {"params": [b]}], lr=0.1)
    >>> rebuilt = build_optimizer(original.describe(), [w, b])
    >>> [group["lr"] for group in rebuilt.param_groups]
    [0.5, 0.1]
    """
    cls = OPTIMIZERS.get(description.get("class")) if isinstance(description, dict) else None
    if cls is None:
        raise DescendValueError(
            f"an optimizer description needs a known 'class' ({', '.join(sorted(OPTIMIZERS))}); got {description!r:.200}"
        )
    schedule = None if description.get("schedule") is None else build_schedule(description["schedule"])
    hyperparameters = {name: _decode(value) for name, value in description.get("hyperparameters", {}).items()}
    return cls(groups_of_places(description.get("groups"), params), schedule=schedule, **hyperparameters)


def parameter_groups(params: Any, settable: set[str]) -> list[tuple[list[Parameter], dict[str, Any]]] | None:
    """torch's list-of-dicts form as (parameters, the group's own hyperparameters) per group; None for anything else,
    which the caller takes as a plain iterable of parameters.

    A group's "params" may be one Parameter or an iterable of them; each parameter may be in one group only,
    and a group may set only the hyperparameters in `settable`.
    """
    if isinstance(params, Mapping):
        raise DescendTypeError("params is one parameter group, a dict: give a list of groups, [{'params': ...}]")
    if isinstance(params, (Tensor, str, bytes)) or not isinstance(params, (list, tuple)):
        return None
    if not any(isinstance(item, Mapping) for item in params):
        return None
    groups, owner = [], {}
    for index, item in enumerate(params):
        where = f"params[{index}]"
        if not isinstance(item, Mapping) or "params" not in item:
            raise DescendTypeError(
                f"{where} must be a dict with 'params', like the other parameter groups (torch's form: "
                f"[{{'params': model.weights(), 'weight_decay': 1e-4}}, ...]); got {type(item).__name__} {item!r:.80}"
            )
        unknown = sorted(set(item) - settable - {"params"}, key=str)
        if unknown:
            raise DescendValueError(
                f"{where} sets {', '.join(map(repr, unknown))}, which a group cannot set; a group may set "
                f"{', '.join(sorted(settable))} (max_norm and schedule are the optimizer's)"
            )
        members = item["params"]
        members = [members] if isinstance(members, Tensor) else members
        if isinstance(members, (str, bytes, Mapping)) or not isinstance(members, Iterable):
            raise DescendTypeError(f"{where}['params'] must be Parameters, e.g. model.parameters(); "
                                   f"got {type(members).__name__} {members!r:.80}")
        members = list(members)
        if not members:
            raise DescendValueError(f"{where}['params'] is empty: the group would have nothing to update")
        for place, p in enumerate(members):
            if not isinstance(p, Parameter):
                raise DescendTypeError(f"{where}['params'][{place}] must be a Parameter (e.g. from "
                                       f"model.parameters()); got {type(p).__name__}")
            if id(p) in owner:
                raise DescendValueError(f"{where}['params'][{place}] is {p!r}, already in params[{owner[id(p)]}]; "
                                        "give each parameter to one group")
            owner[id(p)] = index
        groups.append((members, {name: value for name, value in item.items() if name != "params"}))
    return groups


def groups_of_places(groups: Any, params: Iterable[Parameter]) -> list[Parameter] | list[dict[str, Any]]:
    """The params argument that a description's "groups" (None, or lists of places in the buffer) stand for."""
    params = list(params)
    if groups is None:
        return params
    if not isinstance(groups, list) or not groups:
        raise DescendValueError(
            f"the groups of an optimizer's description must be null or a list of groups; got {groups!r:.200}"
        )
    rebuilt = []
    for index, group in enumerate(groups):
        places = group.get("params") if isinstance(group, dict) else None
        if not (isinstance(places, list) and places
                and all(type(place) is int and 0 <= place < len(params) for place in places)):
            raise DescendValueError(
                f"group {index} of an optimizer's description must be a dict whose 'params' lists places among "
                f"the {len(params)} parameters; got {group!r:.200}"
            )
        rebuilt.append({**{name: _decode(value) for name, value in group.items()},
                        "params": [params[place] for place in places]})
    return rebuilt


def _buffer_holding(params: list[Parameter]) -> ParameterBuffer:
    """The flat buffer that parameter groups update: the one all of them already share (a model's; parameters of it
    in no group stay as they are), else one made of them in the groups' order."""
    shared = params[0].buffer
    if shared is not None and all(p.buffer is shared for p in params):
        return shared
    return ParameterBuffer.of(params)


def _segments(buffer: ParameterBuffer, groups: list[list[Parameter]]) -> list[tuple[int, slice]]:
    """The buffer cut into runs of neighbouring parameters of one group: (group index, slice), in buffer order.

    Runs of parameters in no group are left out. Without groups: one run, the whole buffer.
    """
    owner = {id(p): index for index, members in enumerate(groups) for p in members}
    runs: list[tuple[int, slice]] = []
    for p, start, stop in zip(buffer.params, buffer.offsets[:-1], buffer.offsets[1:]):
        index = owner.get(id(p))
        if index is None or start == stop:
            continue
        if runs and runs[-1][0] == index and runs[-1][1].stop == start:
            runs[-1] = (index, slice(runs[-1][1].start, int(stop)))
        else:
            runs.append((index, slice(int(start), int(stop))))
    return runs


def naming(where: str) -> Callable[[str], str]:
    """How errors name a hyperparameter: plainly for the constructor's (`where` ""), else as `params[1]['lr']`."""
    return lambda name: f"{where}[{name!r}]" if where else name


def _json_ready(values: dict[str, Any]) -> dict[str, Any]:
    """Hyperparameters as JSON takes them: a MomentumRamp as its description, a pair (betas) as a list."""
    return {name: value.describe() if isinstance(value, Described) else list(value) if isinstance(value, tuple)
            else value for name, value in values.items()}


def _check_schedule(schedule: Any) -> Schedule | None:
    if schedule is None or isinstance(schedule, Schedule):
        return schedule
    hint = "; a MomentumRamp goes to SGD(momentum=...)" if isinstance(schedule, MomentumRamp) else ""
    raise DescendTypeError(
        "schedule must be None or a learning-rate schedule (StepDecay, ExponentialDecay, InverseTimeDecay, "
        f"CosineDecay); got {type(schedule).__name__} {schedule!r}{hint}"
    )


def _decode(value: Any) -> Any:
    """A saved hyperparameter as the constructor takes it (a MomentumRamp from its description)."""
    if isinstance(value, dict):
        return build_schedule(value)
    return value

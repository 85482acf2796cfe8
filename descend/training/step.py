"""The training step, and what every engine does around it: clipping, the finite check, snapshots.

The step is a plain function on arrays, `loss, grads, scores = step(params, x, y)`
(DESIGN.md), so the same step runs in the local loop, in a HOGWILD! worker and
in a Spark task. `train_on_batch` is the one sequence every engine runs per
minibatch: step, finite check, clipping, optimizer step.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from descend.checks import check_integer, check_real, check_seed
from descend.data import Dataset, StreamingDataset, as_dataset
from descend.errors import DescendTypeError, DescendValueError, NonFiniteError
from descend.memory import reuse_freed_memory
from descend.nn.losses import CLASS_LABEL_LOSSES
from descend.nn.module import Module, check_finite, is_random, random_modules
from descend.nonfinite import Origin, locate
from descend.optim.optimizer import Optimizer
from descend.tensor import Tensor
from descend.training.loop import Callback, TrainingState
from descend.training.metrics import resolve_metrics, score_batch

StepFunction = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[float, np.ndarray, dict[str, float] | None]]


def as_model_input(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Float features in the model's dtype; integer token ids as they are."""
    return x.astype(dtype, copy=False) if x.dtype.kind == "f" else x


def inputs_and_targets(dataset: Dataset, model: Module, loss_fn: Module, argument: str) -> tuple[np.ndarray, np.ndarray]:
    """Checked x in the model's dtype, and what the model should output: y, or x itself for an autoencoder.

    x (N, ...) -> x (N, ...) in the model's dtype; y (N, ...) as given for
    integer labels, in the model's dtype for float targets. `argument` names
    the caller's argument in every error.
    """
    x = checked_cast(dataset.x, model.flat_buffer().dtype, f"{argument}.x")
    if model.target_is_input:
        return x, x
    if dataset.y is None:
        raise DescendValueError(f"{argument} has no targets (y); fit needs (x, y) unless the model reconstructs x")
    if isinstance(loss_fn, CLASS_LABEL_LOSSES) and dataset.y.dtype.kind not in "iu":
        raise DescendValueError(
            f"{argument}.y must hold integer class labels for {type(loss_fn).__name__}; got dtype {dataset.y.dtype}"
        )
    if dataset.y.dtype.kind != "f":
        return x, dataset.y
    return x, checked_cast(dataset.y, model.flat_buffer().dtype, f"{argument}.y")


def checked_cast(array: np.ndarray, dtype: np.dtype, argument: str) -> np.ndarray:
    """Float data in the model's dtype (integer token ids as they are), checked finite after the cast.

    A float64 value beyond float32's range becomes infinity in the cast; it is
    refused here as data, by its place, not met later as an overflowing step.
    """
    with np.errstate(over="ignore"):
        cast = as_model_input(array, dtype)
    if cast.dtype.kind != "f" or np.isfinite(cast).all():  # one pass over the data when all is well
        return cast
    check_finite(array, argument)  # NaN or infinity already in the data: say so first
    first = tuple(int(i) for i in np.argwhere(~np.isfinite(cast))[0])
    raise DescendValueError(
        f"{argument} holds {array[first].item()!r} at index {first} (row {first[0]}), beyond the range of the model's "
        f"{cast.dtype} (±{np.finfo(cast.dtype).max:.3g}); scale the data, or train the model in float64 "
        "(model.astype(np.float64))"
    )


def with_penalties(model: Module, loss: Tensor) -> Tensor:
    """The loss plus every term the model's modules ask for (`penalty()`: a sparse code, a VAE's KL)."""
    for module in model.modules():
        term = module.penalty()
        if term is not None:
            loss = loss + term
    return loss


def check_mean_loss(loss_fn: Any, caller: str) -> None:
    """A loss that gives the batch's mean, as training and evaluation weigh batches by their rows themselves."""
    reduction = getattr(loss_fn, "reduction", "mean")
    if reduction != "mean":
        raise DescendValueError(
            f"{caller} weighs each batch's mean loss by its rows itself: give loss_fn with reduction='mean' "
            f"(the default); got reduction={reduction!r}"
        )


def make_step(model: Module, loss_fn: Module, metrics: Sequence[Any] | None = None) -> StepFunction:
    """The training step as a function of arrays: (params, x, y) -> (loss, grads, scores).

    `params` is a flat parameter array of the model's layout (the model's
    own buffer, or a copy from elsewhere, which is then loaded first);
    `grads` is the model's flat gradient buffer, overwritten by the next call;
    `scores` holds each metric's sum over the minibatch's rows, by name
    (descend.training.metrics: `metrics` names them; None gives accuracy for
    classification losses), or is None when there is no metric.

    >>> import descend as dc
    >>> model = dc.nn.Linear(2, 2, rng=0)
    >>> step = make_step(model, dc.nn.CrossEntropyLoss())
    >>> loss, grads, scores = step(model.flat_buffer().data, np.eye(2, dtype=np.float32), np.array([0, 1]))
    >>> grads.shape, sorted(scores)  # 2·2 weights and 2 biases, one flat gradient
    ((6,), ['accuracy'])
    """
    buffer = model.flat_buffer()
    metrics = resolve_metrics(metrics, loss_fn)

    def step(params: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray, dict[str, float] | None]:
        if params is not buffer.data:
            np.copyto(buffer.data, params)
        buffer.zero_grad()
        output = model(Tensor(x))
        loss = with_penalties(model, loss_fn(output, y))
        loss.backward()
        return float(loss.data), buffer.grad, score_batch(output.data, y, metrics)

    return step


def check_optimizer_holds(model: Module, optimizer: Any, caller: str) -> None:
    """Refuse an optimizer that was made for another model's parameters (it would train nothing)."""
    if getattr(optimizer, "buffer", None) is not model.flat_buffer():
        raise DescendValueError(
            f"{caller}: the optimizer does not hold this model's parameters; "
            "make it with optimizer(model.parameters(), ...)"
        )


def clip_grad_norm(grads: Any, max_norm: float) -> float:
    """Scale the gradients in place so their global L2 norm is at most `max_norm`; returns the norm before.

    `grads`: a flat gradient buffer (`model.flat_buffer().grad`), or parameters as PyTorch takes them
    (`model.parameters()`: each one's `.grad`, a view of that buffer, is scaled).

    >>> grads = np.array([3.0, 4.0])
    >>> clip_grad_norm(grads, max_norm=1.0), grads.round(3).tolist()
    (5.0, [0.6, 0.8])
    """
    arrays = _gradient_arrays(grads, "clip_grad_norm")
    max_norm = check_real("max_norm", max_norm, low=0.0, low_open=True)
    norm = float(np.sqrt(sum(np.dot(array.reshape(-1), array.reshape(-1)) for array in arrays)))
    if norm > max_norm:
        for array in arrays:
            array *= max_norm / (norm + 1e-12)
    return norm


def clip_grad_value(grads: Any, max_value: float) -> None:
    """Limit every gradient to [-max_value, max_value], in place.

    `grads`: a flat gradient buffer (`model.flat_buffer().grad`), or parameters (`model.parameters()`).

    >>> grads = np.array([-3.0, 0.5, 2.0])
    >>> clip_grad_value(grads, max_value=1.0)
    >>> grads.tolist()
    [-1.0, 0.5, 1.0]
    """
    arrays = _gradient_arrays(grads, "clip_grad_value")
    max_value = check_real("max_value", max_value, low=0.0, low_open=True)
    for array in arrays:
        np.clip(array, -max_value, max_value, out=array)


def _gradient_arrays(grads: Any, caller: str) -> list[np.ndarray]:
    """The float gradient arrays to clip: the flat buffer itself, or each tensor's `.grad` (None: skipped)."""
    if isinstance(grads, np.ndarray):
        items: list[Any] = [grads]
    elif isinstance(grads, Tensor):
        items = [grads]
    else:
        try:
            items = list(grads)
        except TypeError:
            items = None
        if items is None or isinstance(grads, (str, bytes)):
            raise DescendTypeError(f"{caller} takes a flat gradient buffer or parameters (tensors); got "
                                   f"{type(grads).__name__} {grads!r:.80}")
    arrays = []
    for item in items:
        array = item.grad if isinstance(item, Tensor) else item
        if array is None:
            continue
        if not isinstance(array, np.ndarray) or array.dtype.kind != "f":
            raise DescendTypeError(f"{caller} takes a flat gradient buffer or parameters (tensors); got "
                                   f"{type(item).__name__} {item!r:.80}")
        arrays.append(array)
    return arrays


@dataclass(frozen=True)
class Clipping:
    """fit's clip_grad_value= and clip_grad_norm= (None: not that one), applied in that order."""

    max_norm: float | None = None
    max_value: float | None = None

    def __post_init__(self) -> None:
        if self.max_norm is not None:
            check_real("clip_grad_norm", self.max_norm, low=0.0, low_open=True)
        if self.max_value is not None:
            check_real("clip_grad_value", self.max_value, low=0.0, low_open=True)

    def apply(self, grads: np.ndarray) -> None:
        """Clip the flat gradient buffer `grads` in place."""
        if self.max_value is not None:
            clip_grad_value(grads, self.max_value)
        if self.max_norm is not None:
            clip_grad_norm(grads, self.max_norm)


def run_seed(seed: int | None, iterations: int) -> int:
    """One integer seed for a run that begins after `iterations` optimizer steps, for the engines that key their
    workers' and tasks' randomness by an integer: the same seed and step count give the same run, another step
    count another (a second fit goes on, it does not replay the first); None draws a fresh one."""
    if seed is None:
        return int(np.random.default_rng().integers(2**62))
    return int(np.random.SeedSequence([seed, iterations]).generate_state(1, np.uint64)[0] >> 2)


def seed_module_generators(model: Module, key: list[int]) -> None:
    """Give every random module (dropout, input noise, a VAE's sampling) a generator keyed by `key` and its index.

    Module `index` (its place in model.modules()) gets np.random.default_rng([*key, index]).
    """
    for index, module in random_modules(model):
        module.rng = np.random.default_rng([*key, index])


@dataclass
class ModelSnapshot:
    """What a model holds besides its optimizer, copied so it can be put back exactly.

    `weights` is a copy of the flat parameter buffer (None when taken without);
    `statistics` the running statistics (batch norm) by "index.name", index
    being the module's place in model.modules(); `generators` each random
    module's bit-generator state by index; `carried` what each stateful
    module carries from one step to the next (a CharRNN's hidden state) by index.
    lr_find puts the model back with one, the NaN replay undoes a failed
    step with one, checkpoints save and restore the generators and carried states
    through one, and HOGWILD! sends the running statistics home in one.

    >>> import descend as dc
    >>> model = dc.nn.Linear(2, 1, rng=0)
    >>> snapshot = ModelSnapshot.take(model)
    >>> model.weight.data[...] = 0.0
    >>> snapshot.restore(model)
    >>> bool((model.flat_buffer().data == snapshot.weights).all())
    True
    """

    weights: np.ndarray | None = None
    statistics: dict[str, np.ndarray] = field(default_factory=dict)
    generators: dict[int, dict[str, Any]] = field(default_factory=dict)
    carried: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)

    @classmethod
    def take(cls, model: Module, weights: bool = True, modules: list[Module] | None = None) -> ModelSnapshot:
        """A copy of the model's state as it is now (the weights too, with `weights`).

        `modules` is `list(model.modules())` when the caller already has it: a loop that takes a
        snapshot before every step walks the model once, not once a step.
        """
        modules = list(model.modules()) if modules is None else modules
        return cls(
            weights=model.flat_buffer().data.copy() if weights else None,
            statistics={f"{index}.{name}": np.array(getattr(module, name), copy=True)
                        for index, module in enumerate(modules) for name in module.state},
            generators={index: module.rng.bit_generator.state for index, module in enumerate(modules)
                        if is_random(module)},
            carried={index: module.training_state() for index, module in enumerate(modules)
                     if type(module).training_state is not Module.training_state},
        )

    def restore(self, model: Module) -> None:
        """Put back into `model` what this snapshot holds (copies: the snapshot can be restored again)."""
        modules = list(model.modules())
        if self.weights is not None:
            model.flat_buffer().data[...] = self.weights
        for key, values in self.statistics.items():
            index, name = key.split(".", 1)
            setattr(modules[int(index)], name, values.copy())
        for index, state in self.generators.items():
            modules[index].rng.bit_generator.state = state
        for index, arrays in self.carried.items():
            modules[index].load_training_state(arrays)


def locate_nonfinite(model: Module, loss_fn: Module, before: ModelSnapshot, x: np.ndarray, y: np.ndarray) -> Origin | None:
    """Replay the step that began at `before` on (x, y), checked value by value: where its first bad value came from.

    The model is left as `before` found it.
    """
    before.restore(model)
    try:
        return locate(model, loss_fn, x, y, with_penalties)
    finally:
        before.restore(model)


def check_finite_step(state: TrainingState, loss: float, grads: np.ndarray, step: int, checkpoint: Path | None = None,
                      locate_origin: Callable[[], Origin | None] | None = None) -> None:
    """Raise a NonFiniteError when a step's loss or gradient is NaN or infinite.

    `step` is the failed step's number in the run. The message names it,
    where the first bad value came from (from `locate_origin`, which replays
    the step; without it, the first parameter with a bad gradient) and the
    last good checkpoint.
    """
    loss_bad = not np.isfinite(loss)
    if not loss_bad and np.isfinite(np.dot(grads, grads)):
        return
    model = state.model
    if not loss_bad and all(np.isfinite(parameter.grad).all() for parameter in model.parameters()):
        what = "the gradient norm overflowed"  # every gradient is finite, only their sum of squares is not
        origin = None
    else:
        what = f"the loss became {loss}" if loss_bad else "a gradient became NaN or infinite"
        origin = locate_origin() if locate_origin is not None else None
        if origin is None:
            bad = [name for name, parameter in model.named_parameters() if not np.isfinite(parameter.grad).all()]
            origin = Origin("backward", parameters=bad) if bad else None
    parts = [f"{what} at epoch {state.epoch}, step {step} (learning rate {state.optimizer.lr:g})"]
    if origin is not None and (origin.op is not None or origin.phase == "weights"):
        parts.append(origin.describe())
    elif origin is not None and origin.parameters:
        parts.append(f"the first parameter with a bad gradient is '{origin.parameters[0]}'")
    if checkpoint is not None:
        parts.append(f"the last good checkpoint is {checkpoint} (fit(..., resume=True) goes on from it)")
    parts.append("lower the learning rate, clip gradients (clip_grad_norm= or clip_grad_value=) "
                 "or check the data for extreme values")
    raise NonFiniteError(
        "; ".join(parts), step=step, epoch=state.epoch,
        layer=None if origin is None else origin.layer,
        parameter=origin.parameters[0] if origin is not None and origin.parameters else None,
        checkpoint=checkpoint,
    )


@dataclass(frozen=True)
class BatchResult:
    """One optimizer step's minibatch: its mean loss, its metrics' sums over its rows (None: no metric), the rate used."""

    loss: float
    scores: dict[str, float] | None
    lr: float


def train_on_batch(state: TrainingState, step: StepFunction, params: np.ndarray, x: np.ndarray, y: np.ndarray,
                   clipping: Clipping, checkpoint: Path | None = None,
                   locate_origin: Callable[[], Origin | None] | None = None) -> BatchResult:
    """One optimizer step on the minibatch (x, y), as every engine takes it.

    The step's gradients (`step(params, x, y)`, make_step's function or an
    engine's distributed one; `params` is the model's flat buffer, `buffer.data`)
    are checked for NaN and infinity (a NonFiniteError leaves the weights as
    they were), clipped, and applied by `state.optimizer`. The caller counts
    the step (Run.step_done).

    >>> import descend as dc
    >>> model, loss_fn = dc.nn.Linear(2, 2, rng=0), dc.nn.CrossEntropyLoss()
    >>> state = TrainingState(model, loss_fn, dc.optim.SGD(model.parameters(), lr=0.1), dc.History())
    >>> result = train_on_batch(state, make_step(model, loss_fn), model.flat_buffer().data,
    ...                         np.eye(2, dtype=np.float32), np.array([0, 1]), Clipping(max_norm=1.0))
    >>> result.lr, result.scores, state.optimizer.iterations  # scores are sums over the minibatch's rows
    (0.1, {'accuracy': 2.0}, 1)
    """
    optimizer: Optimizer = state.optimizer
    loss, grads, scores = step(params, x, y)
    check_finite_step(state, loss, grads, state.step + 1, checkpoint, locate_origin)
    clipping.apply(grads)
    lr = optimizer.lr
    optimizer.step()
    return BatchResult(loss, scores, lr)


def check_every(value: Any) -> int | str:
    """`checkpoint_every` as given when it is "epoch" or a positive number of steps; else raise."""
    if value == "epoch" or (isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1):
        return value if value == "epoch" else int(value)
    if isinstance(value, str) or isinstance(value, (int, np.integer)):
        raise DescendValueError(f"checkpoint_every must be 'epoch' or a number of steps >= 1; got {value!r}")
    raise DescendTypeError(
        f"checkpoint_every must be 'epoch' or a number of steps >= 1; got {type(value).__name__} {value!r}"
    )


def checked_checkpoint(checkpoint: Any, checkpoint_every: Any, resume: bool,
                       caller: str) -> tuple[Path | None, int | str]:
    """fit's and fit_spark's `checkpoint` as a Path (None without) and `checkpoint_every` checked when there is a
    folder; a resume without a folder, or a folder that is no path, is refused naming `caller`."""
    if resume and checkpoint is None:
        raise DescendValueError(f"{caller}: resume=True needs checkpoint=, the folder of the run to go on with")
    if checkpoint is None:
        return None, checkpoint_every
    if not isinstance(checkpoint, (str, os.PathLike)):
        raise DescendTypeError(f"checkpoint must be a folder path; got {type(checkpoint).__name__} {checkpoint!r}")
    return Path(checkpoint), check_every(checkpoint_every)


@dataclass
class TrainingJob:
    """What fit hands an engine: the model, loss and optimizer, the data, and the run's checked settings.

    `train` and `validation` are what the engine takes: Datasets or (x, y)
    pairs for the local and HOGWILD! engines, DataFrames for Spark.
    `seed` None draws a fresh seed; with a seed, the same seed, data and
    step count repeat a run (HOGWILD!'s races aside). `options` holds the engine's own
    settings (HOGWILD!'s workers; Spark's columns, sync mode, task hook).
    """

    model: Module
    loss_fn: Module
    optimizer: Optimizer
    train: Any
    validation: Any = None
    epochs: int = 1
    batch_size: int = 32
    shuffle: bool = True
    seed: int | None = 0
    callbacks: list[Callback] = field(default_factory=list)
    progress: bool | str = "auto"
    clipping: Clipping = field(default_factory=Clipping)
    checkpoint: Path | None = None
    checkpoint_every: int | str = "epoch"
    resume: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    metrics: Any = None

    def __post_init__(self) -> None:
        if not isinstance(self.model, Module):
            raise DescendTypeError(f"model must be a descend Module (a layer or a model from descend.nn); got "
                                   f"{type(self.model).__name__} {self.model!r:.80}")
        if not callable(self.loss_fn):
            raise DescendTypeError(f"loss_fn must be a loss (nn.CrossEntropyLoss(), nn.MSELoss(), ...); got "
                                   f"{type(self.loss_fn).__name__} {self.loss_fn!r:.80}")
        check_mean_loss(self.loss_fn, "fit")
        self.epochs = check_integer("epochs", self.epochs, low=1)
        self.batch_size = check_integer("batch_size", self.batch_size, low=1)
        self.seed = check_seed(self.seed)
        for name in ("shuffle", "resume"):
            flag = getattr(self, name)
            if not isinstance(flag, (bool, np.bool_)):
                raise DescendTypeError(f"{name} must be True or False; got {type(flag).__name__} {flag!r}")
        if not (isinstance(self.progress, (bool, np.bool_)) or self.progress == "auto"):
            raise DescendValueError(f"progress must be True, False or 'auto'; got {self.progress!r}")
        self.callbacks = checked_callbacks(self.callbacks)
        self.metrics = resolve_metrics(self.metrics, self.loss_fn)


def checked_callbacks(callbacks: Any) -> list[Callback]:
    """fit's `callbacks` as a list, each a Callback (a subclass's instance); else an error naming the entry."""
    if isinstance(callbacks, Callback):
        raise DescendTypeError(f"callbacks must be a list of callbacks; got one {type(callbacks).__name__}: "
                               "wrap it in a list, callbacks=[...]")
    if isinstance(callbacks, (str, bytes)) or not isinstance(callbacks, Iterable):
        raise DescendTypeError(f"callbacks must be a list of callbacks; got {type(callbacks).__name__} {callbacks!r:.80}")
    callbacks = list(callbacks)
    for index, callback in enumerate(callbacks):
        if not isinstance(callback, Callback):
            hint = f" (pass an instance: {callback.__name__}(), not {callback.__name__})" if isinstance(callback, type) else ""
            raise DescendTypeError(f"callbacks[{index}] must be a descend Callback; got {type(callback).__name__} "
                                   f"{callback!r:.80}{hint}")
    return callbacks


def checking_chunks(model: Module, loss_fn: Module, argument: str) -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """What a StreamingDataset calls on each chunk it reads (`prepare`): inputs_and_targets for `model`, the error
    naming `argument` and the chunk's file and rows."""

    def prepare(x: np.ndarray, y: np.ndarray | None, where: str) -> tuple[np.ndarray, np.ndarray]:
        return inputs_and_targets(Dataset(x, y, name=where), model, loss_fn, f"{argument} ({where})")

    return prepare


def job_validation(job: TrainingJob) -> Dataset | StreamingDataset | None:
    """The job's validation data checked against its model (a StreamingDataset is checked as it is read)."""
    if job.validation is None or isinstance(job.validation, StreamingDataset):
        return job.validation
    validation = as_dataset(job.validation, "validation")
    inputs_and_targets(validation, job.model, job.loss_fn, "validation")
    return validation


def job_arrays(job: TrainingJob) -> tuple[np.ndarray, np.ndarray, Dataset | StreamingDataset | None]:
    """The checked training arrays (x, y) of a job on local data, and its validation Dataset (None without).

    The engines that train on arrays (local, HOGWILD!) start here; the
    optimizer must hold the model's parameters.
    """
    if isinstance(job.train, StreamingDataset):  # read a window at a time, by this process only
        raise DescendValueError(f"train is {type(job.train).__name__} {job.train.name!r}, read from disk a window at "
                                "a time; it trains with engine='local' (the other engines share the data in memory)")
    x, y = inputs_and_targets(as_dataset(job.train, "train"), job.model, job.loss_fn, "train")
    validation = job_validation(job)
    reuse_freed_memory()
    check_optimizer_holds(job.model, job.optimizer, "fit")
    return x, y, validation

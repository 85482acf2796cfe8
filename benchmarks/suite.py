"""Every workload, descend against PyTorch, each side in its own process, alternating; one table at the end.

    python benchmarks/suite.py [--quick | --full] [--rounds N] [--threads 2] [--kernels numba|numpy]
                               [--workloads mlp128,cnn] [--json PATH] [--profile]

Each round runs one process per side and workload, in the order descend, torch, then torch, descend in
the next round, and so on: two libraries' BLAS and OpenMP thread pools in one process slow each other,
and a busy moment of the machine hits both sides alike. A side process builds its model and data (the
torch side builds descend's model from the same seed and copies its weights into the twin), warms up a
few steps, times a fixed number of training steps on the same minibatches in the same order
(`dc.data.batches` keyed as descend's `fit(seed=0)`), and prints one JSON line. The medians of the
rounds count. The descend side never imports torch.

--quick (the default) takes a few minutes on two cores; --full times longer and adds the accuracy runs:
the MLP trained one epoch per side (test accuracy within 0.3 points), the CNN five epochs descend-only
(test accuracy at least 99%), the LSTM a fixed number of steps per side (validation cross-entropy).
--profile prints where descend's time goes, op by op; --full does so for every workload that misses
its target. `python benchmarks/report.py PATH.json` turns --json's file into docs/benchmarks.md.

One side alone, in this process (what the driver spawns):

    python benchmarks/suite.py --side descend --workload mlp128 [--quick | --full] [--threads 2] [--accuracy] [--profile]
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import datetime
import functools
import importlib.metadata
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from blas_kernel import describe_blas
from char_rnn import BATCH as CHAR_BATCH
from char_rnn import LENGTH as CHAR_LENGTH

import descend as dc

SIDES = ("descend", "torch")
MODES = ("quick", "full")
#: the mean of this many last timed steps' losses is the loss each side reports
LAST_STEPS = 5
#: the op-by-op profile prints this many primitives' methods, the costliest first
PROFILE_LINES = 12
#: the profile's line for the time no primitive's forward or backward accounts for
OUTSIDE_PRIMITIVES = "(outside the primitives: engine, optimizer, data)"


# ----------------------------------------------------------------------------------------------------------
# What a workload is


@dataclasses.dataclass(frozen=True)
class Steps:
    """Steps of one side process: warm-up steps (not timed), then timed steps."""

    warm_up: int
    timed: int


@dataclasses.dataclass(frozen=True)
class Target:
    """A workload's speed target.

    `figure` "seconds_per_step": descend's time / torch's at most `bound`; "chars_per_second":
    descend's characters per second / torch's at least `bound`; "fixed_seconds": descend's seconds per
    step at most `bound` (no torch twin to compare with).
    """

    figure: str
    bound: float

    @property
    def higher_is_better(self) -> bool:
        """Whether the ratio counts characters per second (higher is better) rather than time."""
        return self.figure == "chars_per_second"

    def met(self, ratio: float | None, descend_seconds: float) -> bool | None:
        """Whether the target is met; None when the ratio it needs is missing."""
        if self.figure == "fixed_seconds":
            return descend_seconds <= self.bound
        if ratio is None:
            return None
        return ratio >= self.bound if self.higher_is_better else ratio <= self.bound

    def text(self) -> str:
        """The target as the table shows it: "≤ 1.00", "≥ 0.80", "≤ 0.207 s/step"."""
        if self.figure == "fixed_seconds":
            return f"≤ {self.bound:.3f} s/step"
        return f"{'≥' if self.higher_is_better else '≤'} {self.bound:.2f}"


@dataclasses.dataclass(frozen=True)
class DescendJob:
    """What the descend side trains: a model, its loss, a fresh optimizer for its parameters, the data."""

    model: dc.nn.Module
    loss_fn: dc.nn.Module
    optimizer: Callable[[list], Any]
    train: Any  # what fit takes: a Dataset, or an array for an autoencoder
    batch_size: int
    clip_grad_norm: float | None = None


@dataclasses.dataclass(frozen=True)
class TorchJob:
    """What the torch side trains: the twin, its loss(output, target), a fresh optimizer, the data as tensors."""

    model: Any
    loss_fn: Callable[[Any, Any], Any]
    optimizer: Callable[[Any], Any]
    x: Any
    y: Any
    batch_size: int
    clip_grad_norm: float | None = None


@dataclasses.dataclass(frozen=True)
class Accuracy:
    """A workload's --full accuracy run: one figure from each side (torch None: descend-only) and its target.

    `metric` "test_accuracy" (a fraction) or "validation_loss" (nats per character); `within`: the sides'
    difference at most this; `at_least`: descend's figure at least this.
    """

    metric: str
    label: str
    descend: Callable[[], float]
    torch: Callable[[], float] | None = None
    within: float | None = None
    at_least: float | None = None

    def met(self, ours: float, theirs: float | None) -> bool | None:
        """Whether the accuracy target is met; None for a workload without one."""
        if self.within is not None and theirs is not None:
            return abs(ours - theirs) <= self.within
        if self.at_least is not None:
            return ours >= self.at_least
        return None


@dataclasses.dataclass(frozen=True)
class Workload:
    """One line of the table: how each side builds its training job, the steps it times, the targets."""

    name: str
    summary: str
    target: Target
    steps: Mapping[str, Steps]  # by mode
    descend: Callable[[], DescendJob]
    torch: Callable[[], TorchJob] | None = None
    chars_per_step: int | None = None  # the recurrent workloads: characters one step trains on
    accuracy: Accuracy | None = None


# ----------------------------------------------------------------------------------------------------------
# The workloads: each side's job, built as the scripts of benchmarks/ build it

MLP_SIZES = [784, 512, 256, 10]
HIDDEN_AE = 256


def copy_weights(model: dc.nn.Module, twin: Any) -> Any:
    """`twin` with descend's weights copied in, parameter by parameter in order (dense weights transposed)."""
    import torch

    with torch.no_grad():
        for parameter, target in zip(model.parameters(), twin.parameters(), strict=True):
            values = parameter.data.T if parameter.ndim == 2 else parameter.data
            target.copy_(torch.from_numpy(np.ascontiguousarray(values)))
    return twin


def mlp_descend(batch_size: int) -> DescendJob:
    """mlp_mnist.py's MLP 784-512-256-10, SGD lr 0.05 momentum 0.9."""
    model = dc.nn.MLP(MLP_SIZES, rng=0)
    return DescendJob(model, dc.nn.CrossEntropyLoss(), lambda parameters: dc.optim.SGD(parameters, lr=0.05, momentum=0.9),
                      dc.data.load_mnist()[0], batch_size)


def mlp_torch(batch_size: int) -> TorchJob:
    """The MLP's twin with the weights of mlp_descend's model."""
    import torch

    layers = [torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 256), torch.nn.ReLU(),
              torch.nn.Linear(256, 10)]
    twin = copy_weights(dc.nn.MLP(MLP_SIZES, rng=0), torch.nn.Sequential(*layers))
    train = dc.data.load_mnist()[0]
    return TorchJob(twin, torch.nn.functional.cross_entropy,
                    lambda parameters: torch.optim.SGD(parameters, lr=0.05, momentum=0.9),
                    torch.from_numpy(train.x), torch.from_numpy(train.y), batch_size)


def cnn_descend() -> DescendJob:
    """cnn_mnist.py's SimpleCNN(channels=(32, 64), hidden=128, dropout=0.3), SGD lr 0.05 momentum 0.9, batch 128."""
    from cnn_mnist import descend_model

    return DescendJob(descend_model(), dc.nn.CrossEntropyLoss(),
                      lambda parameters: dc.optim.SGD(parameters, lr=0.05, momentum=0.9),
                      dc.data.load_mnist(shape="images")[0], 128)


def cnn_torch() -> TorchJob:
    """cnn_mnist.py's torch twin of the CNN."""
    import torch
    from cnn_mnist import descend_model, torch_twin

    train = dc.data.load_mnist(shape="images")[0]
    return TorchJob(torch_twin(descend_model()), torch.nn.functional.cross_entropy,
                    lambda parameters: torch.optim.SGD(parameters, lr=0.05, momentum=0.9),
                    torch.from_numpy(train.x), torch.from_numpy(train.y), 128)


def shakespeare() -> Any:
    """char_rnn.py's text."""
    return dc.data.load_text("shakespeare")


def char_descend(cell: str) -> DescendJob:
    """char_rnn.py's character model (embedding 64, hidden 256), sequences of 64, batch 64, Adam 2e-3, clip 5."""
    from char_rnn import descend_model

    text = shakespeare()
    return DescendJob(descend_model(text.vocab_size, cell), dc.nn.CrossEntropyLoss(),
                      lambda parameters: dc.optim.Adam(parameters, lr=2e-3), text.sequences(CHAR_LENGTH), CHAR_BATCH,
                      clip_grad_norm=5.0)


def char_torch(cell: str) -> TorchJob:
    """char_rnn.py's torch twin of the character model."""
    import torch
    from char_rnn import descend_model, torch_twin

    def cross_entropy(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids.reshape(-1))

    text = shakespeare()
    train = text.sequences(CHAR_LENGTH)
    return TorchJob(torch_twin(descend_model(text.vocab_size, cell), cell), cross_entropy,
                    lambda parameters: torch.optim.Adam(parameters, lr=2e-3),
                    torch.from_numpy(train.x), torch.from_numpy(train.y), CHAR_BATCH, clip_grad_norm=5.0)


def normal_digits() -> np.ndarray:
    """anomaly_mnist.py's timing data: the training images of every digit but the held-out 9."""
    train = dc.data.load_mnist()[0]
    return train.x[train.y != 9]


def autoencoder_descend() -> DescendJob:
    """anomaly_mnist.py's dense autoencoder 784-256-64-256-784, MSE, Adam 1e-3, batch 128."""
    return DescendJob(dc.nn.Autoencoder([784, HIDDEN_AE, 64], rng=0), dc.nn.MSELoss(),
                      lambda parameters: dc.optim.Adam(parameters, lr=1e-3), normal_digits(), 128)


def autoencoder_torch() -> TorchJob:
    """The autoencoder's twin with the weights of autoencoder_descend's model."""
    import torch

    layers = [torch.nn.Linear(784, HIDDEN_AE), torch.nn.ReLU(), torch.nn.Linear(HIDDEN_AE, 64),
              torch.nn.Linear(64, HIDDEN_AE), torch.nn.ReLU(), torch.nn.Linear(HIDDEN_AE, 784), torch.nn.Sigmoid()]
    twin = copy_weights(dc.nn.Autoencoder([784, HIDDEN_AE, 64], rng=0), torch.nn.Sequential(*layers))
    images = torch.from_numpy(normal_digits())
    return TorchJob(twin, torch.nn.functional.mse_loss, lambda parameters: torch.optim.Adam(parameters, lr=1e-3),
                    images, images, 128)


def capsnet_descend() -> DescendJob:
    """capsnet_mnist.py's timed step of the reduced CapsNet: margin loss with reconstruction 0.0005, Adam 1e-3."""
    from capsnet_mnist import reduced

    return DescendJob(reduced(3), dc.nn.MarginLoss(reconstruction_weight=0.0005),
                      lambda parameters: dc.optim.Adam(parameters, lr=1e-3), dc.data.load_mnist(shape="images")[0], 128)


def mlp_accuracy_descend() -> float:
    """Test accuracy of the MLP after one epoch at batch 128."""
    job = mlp_descend(128)
    descend_train(job, epoch_steps(len(job.train), job.batch_size))
    return dc.evaluate(job.model, job.loss_fn, dc.data.load_mnist()[1])["accuracy"]


def mlp_accuracy_torch() -> float:
    """Test accuracy of the MLP's twin after one epoch at batch 128, from the same weights and minibatches."""
    import torch

    job = mlp_torch(128)
    torch_train(job, epoch_steps(len(job.x), job.batch_size))
    test = dc.data.load_mnist()[1]
    job.model.eval()
    with torch.no_grad():
        return (job.model(torch.from_numpy(test.x)).argmax(1) == torch.from_numpy(test.y)).float().mean().item()


def cnn_accuracy_descend() -> float:
    """Test accuracy of the CNN after 5 epochs, as cnn_mnist.py --long trains it (seed 1)."""
    from cnn_mnist import descend_model, descend_train

    train, test = dc.data.load_mnist(shape="images")
    return descend_train(descend_model(seed=1), train, 5, validation=test)["val_accuracy"][-1]


#: steps of the LSTM's --full comparison (char_rnn.py's --steps)
LSTM_ACCURACY_STEPS = 1000


def lstm_validation() -> Any:
    """char_rnn.py's validation sequences."""
    return shakespeare().sequences(CHAR_LENGTH, split="validation")[:4000]


def lstm_accuracy_descend() -> float:
    """Validation cross-entropy (nats per character) of the LSTM after LSTM_ACCURACY_STEPS steps."""
    job = char_descend("lstm")
    descend_train(job, LSTM_ACCURACY_STEPS)
    return dc.evaluate(job.model, job.loss_fn, lstm_validation())["loss"]


def lstm_accuracy_torch() -> float:
    """The same for the LSTM's twin, from the same weights and minibatches."""
    from char_rnn import torch_loss

    job = char_torch("lstm")
    torch_train(job, LSTM_ACCURACY_STEPS)
    job.model.eval()
    return torch_loss(job.model, lstm_validation())


def char_workload(cell: str, bound: float) -> Workload:
    """The workload of one of char_rnn.py's cells; the LSTM's has the --full accuracy run."""
    return Workload(
        cell, f"char {cell.upper()} (embedding 64, hidden 256, seq 64, batch 64, Adam 2e-3, clip 5)",
        Target("chars_per_second", bound), {"quick": Steps(3, 20), "full": Steps(5, 60)},
        functools.partial(char_descend, cell), functools.partial(char_torch, cell), chars_per_step=CHAR_BATCH * CHAR_LENGTH,
        accuracy=Accuracy("validation_loss", f"after {LSTM_ACCURACY_STEPS} steps", lstm_accuracy_descend,
                          lstm_accuracy_torch) if cell == "lstm" else None)


WORKLOADS: dict[str, Workload] = {workload.name: workload for workload in (
    Workload("mlp128", "MLP 784-512-256-10, SGD momentum, batch 128", Target("seconds_per_step", 1.0),
             {"quick": Steps(5, 100), "full": Steps(10, 400)},
             functools.partial(mlp_descend, 128), functools.partial(mlp_torch, 128),
             accuracy=Accuracy("test_accuracy", "after 1 epoch", mlp_accuracy_descend, mlp_accuracy_torch,
                               within=0.003)),
    Workload("mlp32", "MLP 784-512-256-10, SGD momentum, batch 32", Target("seconds_per_step", 1.15),
             {"quick": Steps(10, 200), "full": Steps(20, 800)},
             functools.partial(mlp_descend, 32), functools.partial(mlp_torch, 32)),
    Workload("cnn", "SimpleCNN(32, 64; dense 128; dropout 0.3), SGD momentum, batch 128", Target("seconds_per_step", 1.3),
             {"quick": Steps(2, 10), "full": Steps(3, 50)}, cnn_descend, cnn_torch,
             accuracy=Accuracy("test_accuracy", "after 5 epochs, descend only", cnn_accuracy_descend, at_least=0.99)),
    char_workload("lstm", 0.8),
    char_workload("gru", 1.0),
    char_workload("rnn", 1.0),
    Workload("autoencoder", "dense autoencoder 784-256-64-256-784, Adam, batch 128", Target("seconds_per_step", 1.0),
             {"quick": Steps(5, 100), "full": Steps(10, 400)},
             autoencoder_descend, autoencoder_torch),
    # capsnet_mnist.py measured 0.31 s a step; the target is 1.5x faster. It has no torch twin.
    Workload("capsnet", "reduced CapsNet (64 channels, 8 capsule types, 3 routings), Adam, batch 128",
             Target("fixed_seconds", 0.31 / 1.5), {"quick": Steps(1, 4), "full": Steps(2, 20)},
             capsnet_descend),
)}


# ----------------------------------------------------------------------------------------------------------
# One side, in this process


def descend_train(job: DescendJob, steps: int) -> tuple[float, list[float]]:
    """Train `job.model` `steps` steps with a fresh optimizer; (seconds of the steps, each step's loss)."""
    losses: list[float] = []

    class Losses(dc.Callback):
        def on_batch_end(self, state: dc.TrainingState, loss: float) -> None:
            losses.append(loss)

    history = dc.fit(job.model, job.loss_fn, job.optimizer(job.model.parameters()), job.train[: steps * job.batch_size],
                     batch_size=job.batch_size, seed=0, clip_grad_norm=job.clip_grad_norm, callbacks=[Losses()],
                     progress=False)
    return sum(history["seconds"]), losses


def torch_train(job: TorchJob, steps: int) -> tuple[float, list[float]]:
    """The same for the twin: a fresh optimizer, the minibatches of descend's fit(seed=0), in the same order."""
    import torch

    optimizer = job.optimizer(job.model.parameters())
    job.model.train()
    rows_total = min(steps * job.batch_size, len(job.x))
    losses = []
    started = time.perf_counter()
    for rows in dc.data.batches(rows_total, job.batch_size, rng=np.random.default_rng([0, 0])):
        rows = torch.from_numpy(rows)
        optimizer.zero_grad()
        loss = job.loss_fn(job.model(job.x[rows]), job.y[rows])
        loss.backward()
        if job.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(job.model.parameters(), job.clip_grad_norm)
        optimizer.step()
        losses.append(loss.item())
    return time.perf_counter() - started, losses


def epoch_steps(rows: int, batch_size: int) -> int:
    """Steps of one epoch over `rows` rows; the last batch holds the rest."""
    return -(-rows // batch_size)


def time_by_op(run: Callable[[], object]) -> dict[str, float]:
    """Seconds spent in each primitive's forward and backward while `run()` runs, the costliest first.

    Every primitive's methods are wrapped with a timer for the run and restored after it. The key
    OUTSIDE_PRIMITIVES holds the rest of the run's time (the engine, the optimizer, data handling).
    """
    from descend.ops import all_primitives

    spent: dict[str, float] = collections.defaultdict(float)
    originals = []
    for cls in all_primitives():
        for method in ("forward", "backward"):
            if method in cls.__dict__:
                original = cls.__dict__[method]

                def timed(self: Any, *args: Any, _original: Callable = original, _key: str = f"{cls.__name__}.{method}") -> Any:
                    started = time.perf_counter()
                    result = _original(self, *args)
                    spent[_key] += time.perf_counter() - started
                    return result

                originals.append((cls, method, original))
                setattr(cls, method, timed)
    started = time.perf_counter()
    try:
        run()
    finally:
        for cls, method, original in originals:
            setattr(cls, method, original)
    spent[OUTSIDE_PRIMITIVES] = time.perf_counter() - started - sum(spent.values())
    return dict(sorted(spent.items(), key=lambda item: -item[1]))


def thread_pools() -> list[dict[str, Any]]:
    """This process's BLAS and OpenMP pools, as threadpoolctl sees them."""
    from threadpoolctl import threadpool_info

    keys = ("user_api", "internal_api", "version", "architecture", "num_threads")
    return [{key: pool.get(key) for key in keys} for pool in threadpool_info()]


def run_side(side: str, workload: Workload, mode: str, threads: int, accuracy: bool, profile: bool) -> dict[str, Any]:
    """Time `workload` on one side in this process; the figures as a JSON-ready dict.

    Figures: steps, seconds_per_step, seconds_per_epoch, chars_per_second (recurrent workloads), loss
    (the mean of the last LAST_STEPS steps' losses), threads, kernels, pools; with `accuracy` the
    workload's accuracy figure; with `profile` (descend only) seconds per step in each primitive.
    """
    steps = workload.steps[mode]
    if side == "descend":
        from descend import kernels as descend_kernels

        descend_kernels.set_threads(threads)  # the kernels' pool and BLAS's
        kernels = descend_kernels.backend_name()  # as DESCEND_KERNELS chose
        job = workload.descend()
        descend_train(job, steps.warm_up)  # the first steps pay for page faults and set-up, on both sides
        seconds, losses = descend_train(job, steps.timed)
        rows = len(job.train)
    else:
        import torch

        torch.set_num_threads(threads)
        torch.manual_seed(0)  # the twin's dropout masks
        kernels = None
        job = workload.torch()
        torch_train(job, steps.warm_up)
        seconds, losses = torch_train(job, steps.timed)
        rows = len(job.x)
    per_step = seconds / steps.timed
    figures: dict[str, Any] = {
        "workload": workload.name, "side": side, "steps": steps.timed, "seconds_per_step": per_step,
        "seconds_per_epoch": per_step * epoch_steps(rows, job.batch_size), "loss": float(np.mean(losses[-LAST_STEPS:])),
        "threads": threads, "kernels": kernels, "pools": thread_pools(),
    }
    if workload.chars_per_step:
        figures["chars_per_second"] = workload.chars_per_step / per_step
    if side == "descend" and profile:
        spent = time_by_op(functools.partial(descend_train, job, steps.timed))
        figures["profile"] = {key: value / steps.timed for key, value in spent.items()}
    if accuracy and workload.accuracy is not None:
        run = workload.accuracy.descend if side == "descend" else workload.accuracy.torch
        if run is not None:
            figures["accuracy"] = run()
    if side == "descend" and "torch" in sys.modules:
        raise RuntimeError("the descend side imported torch: its thread pools would share the process; "
                           "find the import (python -X importtime) and keep torch out of descend's side")
    return figures


# ----------------------------------------------------------------------------------------------------------
# The driver: spawns the sides, alternating, and collects the medians


@dataclasses.dataclass(frozen=True)
class SuiteOptions:
    """How the driver runs the suite (the command line's options)."""

    mode: str = "quick"
    rounds: int = 2
    threads: int = 2
    kernels: str | None = None  # None: descend's own choice
    workloads: tuple[str, ...] = tuple(WORKLOADS)
    json_path: str | None = None
    profile: bool = False


class SideFailed(RuntimeError):
    """A side process ended without its line of figures."""


#: runs one side process: (command, environment) -> its figures
Runner = Callable[[Sequence[str], Mapping[str, str]], dict[str, Any]]


def run_process(command: Sequence[str], environment: Mapping[str, str]) -> dict[str, Any]:
    """Run a side process; its figures, from the last line it prints. Its stderr goes to ours as it comes."""
    done = subprocess.run(command, env=dict(environment), stdout=subprocess.PIPE, text=True)
    lines = done.stdout.strip().splitlines()
    if done.returncode or not lines:
        raise SideFailed(f"{shlex.join(command)} stopped with exit code {done.returncode} (its error is above)")
    return json.loads(lines[-1])


def side_command(side: str, workload: str, options: SuiteOptions, first_round: bool) -> list[str]:
    """The command of one side process. The first round also runs the accuracy runs (--full) and the profile."""
    command = [sys.executable, str(Path(__file__).resolve()), "--side", side, "--workload", workload,
               f"--{options.mode}", "--threads", str(options.threads)]
    if first_round and options.mode == "full":
        command.append("--accuracy")
    # --full profiles every workload, so that the ones that miss their target can show where the time goes
    if first_round and side == "descend" and (options.profile or options.mode == "full"):
        command.append("--profile")
    return command


def side_environment(side: str, options: SuiteOptions) -> dict[str, str]:
    """The environment of one side process: ours, with DESCEND_KERNELS for descend's side when --kernels is given."""
    environment = dict(os.environ)
    if side == "descend" and options.kernels is not None:
        environment["DESCEND_KERNELS"] = options.kernels
    return environment


def round_sides(workload: Workload, round_index: int) -> tuple[str, ...]:
    """The sides of one round, in order: descend first in even rounds, torch first in odd ones (ABBA)."""
    sides = SIDES if workload.torch is not None else ("descend",)
    return sides if round_index % 2 == 0 else sides[::-1]


def run_workload(workload: Workload, options: SuiteOptions, runner: Runner,
                 echo: Callable[[str], None]) -> dict[str, Any]:
    """Every round of one workload, each side in its own process; its summary (see summarize)."""
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in round_sides(workload, 0)}
    try:
        for round_index in range(options.rounds):
            for side in round_sides(workload, round_index):
                figures = runner(side_command(side, workload.name, options, round_index == 0),
                                 side_environment(side, options))
                runs[side].append(figures)
                echo(f"  {workload.name} round {round_index + 1}/{options.rounds} {side:7s} {cell_figure(figures)}")
    except SideFailed as error:
        return {"runs": runs, "error": str(error)}
    return summarize(workload, runs, options)


#: the figures every round measures, whose medians count (the accuracy runs and the profile run once)
ROUND_FIGURES = ("seconds_per_step", "seconds_per_epoch", "chars_per_second", "loss")


def medians(runs: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """The median over the rounds of each of ROUND_FIGURES that the runs hold."""
    return {key: statistics.median(run[key] for run in runs) for key in ROUND_FIGURES if key in runs[0]}


def summarize(workload: Workload, runs: Mapping[str, Sequence[Mapping[str, Any]]], options: SuiteOptions) -> dict[str, Any]:
    """Medians per side, the ratio descend/torch of the target's figure, whether the targets are met.

    The ratio is descend's time / torch's for time workloads (lower is better) and descend's characters
    per second / torch's for the recurrent ones (higher is better); None without a torch side.
    """
    median = {side: medians(side_runs) for side, side_runs in runs.items()}
    figure = "seconds_per_step" if workload.target.figure == "fixed_seconds" else workload.target.figure
    ratio = median["descend"][figure] / median["torch"][figure] if "torch" in median else None
    first = {side: side_runs[0] for side, side_runs in runs.items()}
    summary: dict[str, Any] = {
        "summary": workload.summary, "runs": runs, "median": median, "ratio": ratio,
        "ratio_of": figure, "higher_is_better": workload.target.higher_is_better,
        "target": {"figure": workload.target.figure, "bound": workload.target.bound, "text": workload.target.text()},
        "met": workload.target.met(ratio, median["descend"]["seconds_per_step"]),
        "kernels": first["descend"]["kernels"], "kernels_asked": options.kernels,
    }
    if "profile" in first["descend"]:
        summary["profile"] = first["descend"]["profile"]
    if workload.accuracy is not None and "accuracy" in first["descend"]:
        ours, theirs = first["descend"]["accuracy"], first.get("torch", {}).get("accuracy")
        summary["accuracy"] = {"metric": workload.accuracy.metric, "label": workload.accuracy.label,
                               "descend": ours, "torch": theirs, "within": workload.accuracy.within,
                               "at_least": workload.accuracy.at_least, "met": workload.accuracy.met(ours, theirs)}
    return summary


def cell_figure(figures: Mapping[str, float]) -> str:
    """A side's speed as the table shows it: seconds per step and per epoch; characters per second first where counted."""
    speed = f"{figures['seconds_per_step'] * 1000:.1f} ms/step, {figures['seconds_per_epoch']:.1f} s/epoch"
    if "chars_per_second" in figures:
        return f"{figures['chars_per_second']:,.0f} chars/s, {speed}"
    return speed


def accuracy_cell(summary: Mapping[str, Any]) -> str:
    """The loss or accuracy column: the accuracy run's figures (--full) or the last timed steps' losses, descend / torch."""
    accuracy = summary.get("accuracy")
    if accuracy is None:
        losses = [summary["median"][side]["loss"] for side in SIDES if side in summary["median"]]
        return "loss " + " / ".join(f"{loss:.4f}" for loss in losses)
    values = [value for value in (accuracy["descend"], accuracy["torch"]) if value is not None]
    if accuracy["metric"] == "test_accuracy":
        text = "test acc " + " / ".join(f"{value:.2%}" for value in values)
    else:
        text = "val CE " + " / ".join(f"{value:.4f}" for value in values) + " nats/char"
    notes = [accuracy["label"]]
    if accuracy["within"] is not None and len(values) == 2:
        notes.append(f"Δ {100 * (values[0] - values[1]):+.2f} pt, target ±{100 * accuracy['within']:.1f}: "
                     f"{yes_no(accuracy['met'])}")
    elif accuracy["at_least"] is not None:
        notes.append(f"target ≥ {accuracy['at_least']:.0%}: {yes_no(accuracy['met'])}")
    return f"{text} ({'; '.join(notes)})"


def yes_no(met: bool | None) -> str:
    """A target's mark: yes, NO (loud, to be seen), or — where there is none to judge."""
    return "—" if met is None else "yes" if met else "NO"


HEADERS = ("workload", "descend", "torch", "ratio descend/torch", "target", "met?",
           "loss or accuracy (descend / torch)", "kernels")


def table_rows(results: Mapping[str, Any]) -> list[list[str]]:
    """One row per workload of a suite's results (run_suite's or its JSON), the cells of HEADERS."""
    rows = []
    for name, summary in results["workloads"].items():
        if "error" in summary:
            rows.append([name, f"failed: {summary['error']}", "", "", "", "NO", "", ""])
            continue
        median, ratio = summary["median"], summary["ratio"]
        kernels = summary["kernels"] or "?"
        if summary["kernels_asked"] and summary["kernels_asked"] != kernels:
            kernels += f" (asked {summary['kernels_asked']})"
        direction = "chars/s, higher is better" if summary["higher_is_better"] else "time, lower is better"
        rows.append([
            name, cell_figure(median["descend"]), cell_figure(median["torch"]) if "torch" in median else "—",
            "—" if ratio is None else f"{ratio:.2f} ({direction})", summary["target"]["text"], yes_no(summary["met"]),
            accuracy_cell(summary), kernels,
        ])
    return rows


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table, each column as wide as its widest cell."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)).rstrip() for line in [headers, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def format_profile(name: str, profile: Mapping[str, float]) -> str:
    """Where descend's step goes, op by op: milliseconds per step and the share of the step, costliest first."""
    total = sum(profile.values())
    lines = [f"where descend's step goes in {name} ({total * 1000:.1f} ms a step, timers included):"]
    for key, seconds in list(profile.items())[:PROFILE_LINES]:
        lines.append(f"  {key:48s} {seconds * 1000:8.2f} ms {seconds / total:6.1%}")
    return "\n".join(lines)


def package_version(name: str) -> str | None:
    """The installed version of the distribution `name`, without importing it; None where it is missing."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    """The processor's name: /proc/cpuinfo's model name on Linux, else what platform says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """What the figures were measured on: processor, cores, library versions, NumPy's BLAS."""
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
            "versions": {name: package_version(name) for name in ("descend", "numpy", "torch", "numba", "threadpoolctl")},
            "blas": describe_blas(), "pools": thread_pools()}


def run_suite(options: SuiteOptions, arguments: Sequence[str], runner: Runner = run_process,
              echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every chosen workload; the results: command, date, machine, settings and each workload's summary.

    `arguments` are this command's (they go into the results as the command that made them); `runner`
    runs one side process (tests pass a fake one); `echo` prints the progress and the table.
    """
    results: dict[str, Any] = {
        "command": shlex.join(["python", "benchmarks/suite.py", *arguments]),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine(), "settings": dataclasses.asdict(options), "workloads": {},
    }
    echo(results["machine"]["blas"])
    echo(f"{results['machine']['cpu']}, {results['machine']['cores']} cores; {options.threads} threads a side, "
         f"--{options.mode}, {options.rounds} round(s), kernels {options.kernels or 'as descend chooses'}")
    for name in options.workloads:
        results["workloads"][name] = run_workload(WORKLOADS[name], options, runner, echo)
    echo("")
    echo(format_table(HEADERS, table_rows(results)))
    for name, summary in results["workloads"].items():
        if "profile" in summary and (options.profile or summary["met"] is False):
            echo("")
            echo(format_profile(name, summary["profile"]))
    if options.json_path is not None:
        path = Path(options.json_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=1) + "\n")
        echo(f"\nfigures: {path}")
    return results


# ----------------------------------------------------------------------------------------------------------
# The command line


def workload_names(value: str) -> tuple[str, ...]:
    """Comma-separated workload names, each checked against WORKLOADS."""
    names = tuple(dict.fromkeys(name.strip() for name in value.split(",") if name.strip()))
    unknown = [name for name in names if name not in WORKLOADS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown workload(s) {', '.join(unknown) or repr(value)}; "
                                         f"the suite has {', '.join(WORKLOADS)}")
    return names


def positive(value: str) -> int:
    """An integer of at least 1."""
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} is less than 1; give at least 1")
    return number


def parser() -> argparse.ArgumentParser:
    """The suite's options, the driver's and a side process's."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="mode", action="store_const", const="quick", help="short timings (the default)")
    mode.add_argument("--full", dest="mode", action="store_const", const="full",
                      help="longer timings and the accuracy runs (about 30-40 minutes on two cores)")
    parser.set_defaults(mode="quick")
    parser.add_argument("--rounds", type=positive, default=None,
                        help="alternating rounds per workload; the medians count [default: 2, 3 with --full]")
    parser.add_argument("--threads", type=positive, default=2, help="threads of each side's process")
    parser.add_argument("--kernels", choices=("numba", "numpy"), default=None,
                        help="descend's kernels (DESCEND_KERNELS of its side) [default: descend's choice]")
    parser.add_argument("--workloads", type=workload_names, default=tuple(WORKLOADS),
                        help=f"comma-separated, of {', '.join(WORKLOADS)} [default: all]")
    parser.add_argument("--json", dest="json_path", default=None, help="write every figure and the machine here")
    parser.add_argument("--profile", action="store_true", help="also print where descend's time goes, op by op")
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--workload", choices=tuple(WORKLOADS), help=argparse.SUPPRESS)
    parser.add_argument("--accuracy", action="store_true", help=argparse.SUPPRESS)
    return parser


def main(arguments: Sequence[str] | None = None) -> int:
    """Run the suite, or one side of one workload (--side, --workload); the exit code."""
    arguments = sys.argv[1:] if arguments is None else list(arguments)
    args = parser().parse_args(arguments)
    if args.side is not None:
        if args.workload is None:
            parser().error("--side needs --workload NAME")
        figures = run_side(args.side, WORKLOADS[args.workload], args.mode, args.threads, args.accuracy, args.profile)
        print(json.dumps(figures), flush=True)
        return 0
    options = SuiteOptions(args.mode, args.rounds or (3 if args.mode == "full" else 2), args.threads, args.kernels,
                           args.workloads, args.json_path, args.profile)
    results = run_suite(options, arguments, echo=functools.partial(print, flush=True))
    return 1 if any("error" in summary for summary in results["workloads"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())

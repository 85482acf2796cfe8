"""CapsNet on MNIST: a reduced network to 99% test accuracy on two cores, routing 1 vs 3, and the full size's cost.

In one run:
1. The reduced CapsNet (conv_channels=64, primary_caps=8: the paper's shape at a quarter of its
   width) trained with 3 routing iterations and, from the same initial weights and batches, with 1
   iteration: test accuracy after each epoch, seconds per epoch, parameters.
2. The paper's full-size CapsNet (8.2M parameters) and the CNN of the CNN benchmark (SimpleCNN,
   channels 32, 64, dense 128), each timed over --time-batches training steps of 128 images; their
   time per epoch is that step time × 469.

Training follows the paper: Adam at 1e-3 decayed by 0.96 an epoch, the margin loss with the
reconstruction at 0.0005, batches of 128; test accuracy on the 10,000 test images.

    python benchmarks/capsnet_mnist.py                     # about 30 minutes here
    python benchmarks/capsnet_mnist.py --epochs 1 --time-batches 2 --limit 512   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from blas_kernel import describe_blas

import descend as dc
from descend import nn, optim

STEPS_PER_EPOCH = 469  # 60,000 training images in batches of 128


def reduced(routing_iters: int) -> nn.CapsNet:
    return nn.CapsNet(conv_channels=64, primary_caps=8, routing_iters=routing_iters, rng=0)


class Report(dc.Callback):
    """Prints each epoch's record as it ends; the runs are long."""

    def __init__(self, label: str):
        self.label = label

    def on_epoch_end(self, state: dc.TrainingState, record: dict[str, float]) -> None:
        print(f"  {self.label} epoch {record['epoch']}: test accuracy {record['val_accuracy']:.4f}, "
              f"loss {record['loss']:.4f}, {record['seconds']:.0f} s", flush=True)


def train_reduced(routing_iters: int, train: dc.data.Dataset, test: dc.data.Dataset, epochs: int) -> dict:
    model = reduced(routing_iters)
    schedule = optim.ExponentialDecay(gamma=0.96 ** (1 / STEPS_PER_EPOCH))
    history = dc.fit(model, nn.MarginLoss(reconstruction_weight=0.0005),
                     optim.Adam(model.parameters(), lr=1e-3, schedule=schedule), train, epochs=epochs,
                     batch_size=128, validation=test, callbacks=[Report(f"{routing_iters} iteration(s)")],
                     progress=False, seed=0)
    return {"routing_iters": routing_iters, "parameters": model.parameter_count(),
            "test_accuracy": history["val_accuracy"], "seconds_per_epoch": history["seconds"],
            "reached_99": next((epoch for epoch, accuracy in enumerate(history["val_accuracy"], 1)
                                if accuracy >= 0.99), None)}


def step_seconds(model: nn.Module, loss_fn: nn.Module, train: dc.data.Dataset, batches: int) -> float:
    """The median time of one training step (forward, backward, Adam) on batches of 128 images."""
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    step = dc.make_step(model, loss_fn)
    buffer = model.flat_buffer()
    times = []
    for index in range(batches + 1):  # the first step warms the allocator up and is not counted
        rows = slice(128 * index, 128 * (index + 1))
        started = time.perf_counter()
        step(buffer.data, train.x[rows], train.y[rows])
        optimizer.step()
        times.append(time.perf_counter() - started)
    return float(np.median(times[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5, help="Epochs of each reduced network.")
    parser.add_argument("--time-batches", type=int, default=10, help="Steps timed for the full-size and the CNN.")
    parser.add_argument("--limit", type=int, default=None, help="Train on the first N images only (a smoke run).")
    parser.add_argument("--out", default="runs/bench-capsnet", help="Folder for results.json.")
    arguments = parser.parse_args()
    print(describe_blas())
    train, test = dc.data.load_mnist(shape="images")
    train = train[: arguments.limit] if arguments.limit else train
    results = {"reduced": [], "per_epoch_seconds": {}}
    for routing_iters in (3, 1):
        print(f"reduced CapsNet, {routing_iters} routing iteration(s):", flush=True)
        results["reduced"].append(train_reduced(routing_iters, train, test, arguments.epochs))
    contenders = {
        "CapsNet, paper's size (8.2M parameters)": (nn.CapsNet(rng=0), nn.MarginLoss(reconstruction_weight=0.0005)),
        "CapsNet, reduced (64 channels, 8 capsule types)": (reduced(3), nn.MarginLoss(reconstruction_weight=0.0005)),
        "CNN of the CNN benchmark": (nn.SimpleCNN(channels=(32, 64), hidden=128, dropout=0.3, rng=0),
                                     nn.CrossEntropyLoss()),
    }
    for name, (model, loss_fn) in contenders.items():
        seconds = step_seconds(model, loss_fn, train, arguments.time_batches)
        results["per_epoch_seconds"][name] = {"parameters": model.parameter_count(), "step": seconds,
                                               "epoch": seconds * STEPS_PER_EPOCH}
        print(f"{name}: {model.parameter_count():,} parameters, {seconds * 1000:.0f} ms a step, "
              f"{seconds * STEPS_PER_EPOCH / 60:.1f} min an epoch", flush=True)
    print("\nreduced CapsNet, test accuracy by epoch:")
    for run in results["reduced"]:
        accuracies = " ".join(f"{accuracy:.4f}" for accuracy in run["test_accuracy"])
        print(f"  {run['routing_iters']} iteration(s) ({run['parameters']:,} parameters, "
              f"{np.mean(run['seconds_per_epoch']):.0f} s an epoch): {accuracies}; 99% at epoch {run['reached_99']}")
    folder = Path(arguments.out)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()

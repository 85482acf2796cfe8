"""The MNIST CNN of the convolution issue: descend against PyTorch (CPU, 2 threads), same data, same run.

Model: Conv 32@3x3 (padding 1), ReLU, MaxPool 2, Conv 64@3x3, ReLU, MaxPool 2,
Flatten, Linear 3136 -> 128, ReLU, Dropout 0.3, Linear 128 -> 10; SGD
lr 0.05, momentum 0.9, batch 128.

Prints seconds per epoch for each (measured on --batches batches and
extrapolated to the epoch's 469, as it says), their ratio, where descend's
time goes (im2col, the products, col2im, pooling, ...), test accuracy after
2 epochs for both from the same initial weights and the same minibatches,
the peak memory of descend's run, and, with --long, the test accuracy per
epoch of a 5-epoch descend run.

    python benchmarks/cnn_mnist.py [--batches 100] [--long]
"""

from __future__ import annotations

import argparse
import collections
import resource
import time

import numpy as np


def descend_model(seed: int = 0):
    from descend import nn

    return nn.SimpleCNN(channels=(32, 64), hidden=128, dropout=0.3, rng=seed)


def torch_twin(model):
    """The same network in PyTorch, with descend's initial weights copied in (dense weights transposed)."""
    import torch

    twin = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(64 * 7 * 7, 128), torch.nn.ReLU(), torch.nn.Dropout(0.3),
        torch.nn.Linear(128, 10),
    )
    with torch.no_grad():
        for (name, parameter), target in zip(model.named_parameters(), twin.parameters()):
            values = parameter.data.T if parameter.ndim == 2 else parameter.data
            target.copy_(torch.from_numpy(np.ascontiguousarray(values)))
    return twin


def descend_train(model, train, epochs: int, batches: int | None = None, validation=None):
    import descend as dc
    from descend import nn, optim

    data = train if batches is None else train[: batches * 128]
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    return dc.fit(model, nn.CrossEntropyLoss(), opt, data, epochs=epochs, batch_size=128, seed=0,
                  validation=validation, progress=False)


def torch_train(twin, train, epochs: int, batches: int | None = None) -> float:
    """Seconds for the run; the same minibatches in the same order as descend's fit(seed=0)."""
    import torch

    import descend as dc

    x, y = torch.from_numpy(train.x), torch.from_numpy(train.y)
    n = len(x) if batches is None else batches * 128
    optimizer = torch.optim.SGD(twin.parameters(), lr=0.05, momentum=0.9)
    twin.train()
    started = time.perf_counter()
    rng = np.random.default_rng([0, 0])  # as fit(seed=0) keys its generator for a fresh optimizer
    for _ in range(epochs):
        for rows in dc.data.batches(n, 128, rng=rng):
            rows = torch.from_numpy(rows)
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(twin(x[rows]), y[rows]).backward()
            optimizer.step()
    return time.perf_counter() - started


def torch_accuracy(twin, test) -> float:
    import torch

    twin.eval()
    with torch.no_grad():
        return (twin(torch.from_numpy(test.x)).argmax(1) == torch.from_numpy(test.y)).float().mean().item()


def time_by_op(model, train, batches: int) -> dict[str, float]:
    """Seconds per epoch in each primitive's forward and backward (a profile of one short run)."""
    from descend.ops import all_primitives

    spent: dict[str, float] = collections.defaultdict(float)
    originals = []
    for cls in all_primitives():
        for method in ("forward", "backward"):
            if method in cls.__dict__:
                original = cls.__dict__[method]

                def timed(self, *args, _original=original, _key=f"{cls.__name__}.{method}"):
                    started = time.perf_counter()
                    result = _original(self, *args)
                    spent[_key] += time.perf_counter() - started
                    return result

                originals.append((cls, method, original))
                setattr(cls, method, timed)
    try:
        descend_train(model, train, 1, batches)
    finally:
        for cls, method, original in originals:
            setattr(cls, method, original)
    return {key: value * 469 / batches for key, value in sorted(spent.items(), key=lambda item: -item[1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=100, help="batches timed per framework (469 is a full epoch)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--long", action="store_true", help="also train descend for 5 epochs, reporting each")
    args = parser.parse_args()

    import torch

    import descend as dc

    torch.set_num_threads(args.threads)
    train, test = dc.data.load_mnist(shape="images")

    model = descend_model()
    twin = torch_twin(model)
    descend_seconds = sum(descend_train(model, train, 1, args.batches)["seconds"])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    torch_seconds = torch_train(twin, train, 1, args.batches)
    scale = 469 / args.batches
    print(f"seconds per epoch, extrapolated from {args.batches} batches of 128 ({args.threads} threads):")
    print(f"  descend {descend_seconds * scale:.1f}   torch {torch_seconds * scale:.1f}   "
          f"ratio {descend_seconds / torch_seconds:.2f}")
    print("where descend's epoch goes (seconds):")
    for key, value in list(time_by_op(descend_model(), train, min(args.batches, 40)).items())[:8]:
        print(f"  {key:28s} {value:6.1f}")

    model = descend_model()
    twin = torch_twin(model)
    descend_train(model, train, 2)
    torch_train(twin, train, 2)
    accuracy = dc.evaluate(model, dc.nn.CrossEntropyLoss(), test)["accuracy"]
    print(f"test accuracy after 2 epochs, same initial weights and minibatches: descend {accuracy:.4f}   "
          f"torch {torch_accuracy(twin, test):.4f}")

    if args.long:
        history = descend_train(descend_model(seed=1), train, 5, validation=test)
        print("descend, 5 epochs: test accuracy by epoch " + " ".join(f"{a:.4f}" for a in history["val_accuracy"]))
    print(f"peak resident memory after descend's timed run at batch 128: {peak:.2f} GiB "
          "(the whole process: interpreter, MNIST, torch's import)")


if __name__ == "__main__":
    main()

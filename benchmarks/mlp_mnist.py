"""MNIST MLP [784, 512, 256, 10]: descend against PyTorch (CPU, 2 threads), same data, same run.

Prints seconds per epoch at batch sizes 128 and 32 for each, their ratio,
the fraction of the machine's measured float32 matmul peak that each
reaches, and test accuracy after --epochs epochs with the same
configuration (SGD + momentum, no dropout, no decay, same initial weights,
the same minibatches in the same order).
With --regularized it also trains descend with dropout and learning-rate
decay for up to 10 epochs and reports when it reaches 98%.

    python benchmarks/mlp_mnist.py [--epochs 5] [--regularized]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

SIZES = [784, 512, 256, 10]


def matmul_peak_gflops(threads: int) -> float:
    """The best float32 GEMM rate of NumPy and torch on 1024x1024 matrices, in GFLOP/s."""
    import torch

    torch.set_num_threads(threads)
    a = np.random.default_rng(0).random((1024, 1024), dtype=np.float32)
    best = 0.0
    for multiply in (np.matmul, lambda x, y: torch.from_numpy(x) @ torch.from_numpy(y)):
        multiply(a, a)
        started = time.perf_counter()
        for _ in range(20):
            multiply(a, a)
        best = max(best, 20 * 2 * 1024**3 / (time.perf_counter() - started) / 1e9)
    return best


def epoch_gflop(n_rows: int) -> float:
    """Matmul work of one training epoch: forward, weight gradients, and input gradients past layer one."""
    products = [fan_in * fan_out for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:])]
    return 2 * n_rows * (3 * sum(products) - products[0]) / 1e9


def descend_run(train, test, epochs: int, batch_size: int, initial: np.ndarray):
    import descend as dc
    from descend import nn, optim

    model = nn.MLP(SIZES, rng=0)
    model.flat_buffer().data[...] = initial
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    history = dc.fit(model, nn.CrossEntropyLoss(), opt, train, epochs=epochs, batch_size=batch_size, seed=0,
                     progress=False)
    return history["seconds"], dc.evaluate(model, nn.CrossEntropyLoss(), test)["accuracy"]


def torch_run(train, test, epochs: int, batch_size: int, initial_state: dict[str, np.ndarray]):
    import torch

    import descend as dc

    model = torch.nn.Sequential(
        torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10)
    )
    with torch.no_grad():
        for index, layer in enumerate(model[::2]):
            layer.weight.copy_(torch.from_numpy(initial_state[f"network.layers.{2 * index}.weight"].T.copy()))
            layer.bias.copy_(torch.from_numpy(initial_state[f"network.layers.{2 * index}.bias"]))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    x, y = torch.from_numpy(train.x), torch.from_numpy(train.y)
    rng = np.random.default_rng(0)  # the same minibatches, in the same order, as descend's fit(seed=0)
    seconds = []
    for _ in range(epochs):
        started = time.perf_counter()
        for rows in dc.data.batches(len(x), batch_size, rng=rng):
            rows = torch.from_numpy(rows)
            opt.zero_grad()
            loss = loss_fn(model(x[rows]), y[rows])
            loss.backward()
            opt.step()
        seconds.append(time.perf_counter() - started)
    with torch.no_grad():
        accuracy = (model(torch.from_numpy(test.x)).argmax(1) == torch.from_numpy(test.y)).float().mean().item()
    return seconds, accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5, help="epochs for the accuracy comparison")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--regularized", action="store_true", help="also train with dropout and decay for 10 epochs")
    args = parser.parse_args()

    import torch

    import descend as dc
    from descend import nn, optim

    torch.set_num_threads(args.threads)
    train, test = dc.data.load_mnist()
    initial_model = nn.MLP(SIZES, rng=0)
    initial = initial_model.flat_buffer().data.copy()
    initial_state = initial_model.state_dict()
    peak = matmul_peak_gflops(args.threads)
    work = epoch_gflop(len(train))
    print(f"float32 matmul peak ({args.threads} threads): {peak:.0f} GFLOP/s; one epoch is {work:.0f} GFLOP "
          f"(the peak allows {work / peak:.2f} s)")
    print(f"BLAS threads: OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, torch={torch.get_num_threads()}")

    print("\nseconds per epoch (one epoch each)")
    print(f"{'batch':>6} {'descend':>9} {'torch':>9} {'ratio':>7} {'descend %peak':>14} {'torch %peak':>12}")
    for batch_size in (128, 32):
        descend_seconds = descend_run(train, test, 1, batch_size, initial)[0][0]
        torch_seconds = torch_run(train, test, 1, batch_size, initial_state)[0][0]
        print(f"{batch_size:>6} {descend_seconds:>9.2f} {torch_seconds:>9.2f} {descend_seconds / torch_seconds:>7.2f} "
              f"{work / descend_seconds / peak:>14.0%} {work / torch_seconds / peak:>12.0%}")

    print(f"\ntest accuracy after {args.epochs} epochs, batch 128, SGD lr 0.05 momentum 0.9, same initial weights")
    descend_seconds, descend_accuracy = descend_run(train, test, args.epochs, 128, initial)
    torch_seconds, torch_accuracy = torch_run(train, test, args.epochs, 128, initial_state)
    print(f"descend {descend_accuracy:.4f} ({np.mean(descend_seconds):.2f} s/epoch)   "
          f"torch {torch_accuracy:.4f} ({np.mean(torch_seconds):.2f} s/epoch)   "
          f"difference {100 * (descend_accuracy - torch_accuracy):+.2f} points")

    if args.regularized:
        model = nn.MLP(SIZES, dropout=0.2, rng=0)
        opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, schedule=optim.InverseTimeDecay(decay=1e-4))
        history = dc.fit(model, nn.CrossEntropyLoss(), opt, train, epochs=10, batch_size=128, validation=test,
                         seed=0, progress=False)
        accuracies = history["val_accuracy"]
        reached = next((epoch + 1 for epoch, value in enumerate(accuracies) if value >= 0.98), None)
        print("\ndescend with dropout 0.2 and inverse-time decay 1e-4: test accuracy by epoch "
              + " ".join(f"{a:.4f}" for a in accuracies)
              + (f"; 98% reached at epoch {reached}" if reached else "; 98% not reached in 10 epochs"))


if __name__ == "__main__":
    main()

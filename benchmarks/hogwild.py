"""HOGWILD! on this machine: lock-free against locked and against serial, and scikit-learn as the single-core peer.

1. Sparse logistic regression on make_sparse_classification (--rows rows, 100,000 features, 20 per row,
   a tenth more rows held out): updates per second, speed-up and final loss for 1, 2, ... workers (up to
   the core count) with lock="none" and lock="mutex" (and "round-robin" on a tenth of the rows); test
   accuracy after --epochs epochs; scikit-learn's SGDClassifier(loss="log_loss"): one epoch's rows per
   second, and its test accuracy after the same number of epochs.
2. Matrix completion (make_low_rank_matrix, rank 10, 20 epochs): throughput and test RMSE per worker count.
3. The MNIST MLP [784, 512, 256, 10] with fit(engine="hogwild"): 1 worker against 2 workers (one BLAS
   thread each, --dense-epochs epochs, SGD + momentum): seconds per epoch, speed-up, test accuracy, and
   the local engine on one thread as the reference; PyTorch's Hogwild (torch.multiprocessing workers on
   share_memory() parameters, one thread each) as the peer.

    python benchmarks/hogwild.py [--rows 1000000] [--epochs 5] [--dense-epochs 5] [--skip sparse,ratings,dense]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

MLP_SIZES = [784, 512, 256, 10]


def worker_counts() -> list[int]:
    """1, 2, 4, ... up to the cores of this machine (and the core count itself)."""
    cores = os.cpu_count() or 1
    counts = [1]
    while counts[-1] * 2 <= cores:
        counts.append(counts[-1] * 2)
    return sorted(set(counts + [cores]))


def sparse_section(rows: int, epochs: int) -> None:
    from sklearn.linear_model import SGDClassifier as ScikitSGD

    import descend as dc
    from descend.hogwild.compare import compare_sparse, format_table

    X, y = dc.data.make_sparse_classification(n_rows=rows + rows // 10, n_features=100_000, nnz_per_row=20, seed=0)
    train, test = (X[:rows], y[:rows]), (X[rows:], y[rows:])
    print(f"\n1. sparse logistic regression: {rows:,} rows x 100,000 features, 20 per row, {epochs} epochs")
    runs = compare_sparse(train, test, worker_counts(), ["none", "mutex"], epochs=epochs)
    print(format_table(runs))
    small = rows // 10
    turns = compare_sparse((X[:small], y[:small]), test, [2], ["round-robin"], epochs=1)
    print(f"round-robin on {small:,} rows, 1 epoch:\n{format_table(turns)}")

    scikit = ScikitSGD(loss="log_loss", max_iter=1, tol=None, random_state=0)
    started = time.perf_counter()
    scikit.fit(*train)
    scikit_rate = rows / (time.perf_counter() - started)
    scikit_accuracy = ScikitSGD(loss="log_loss", max_iter=epochs, tol=None, random_state=0).fit(*train).score(*test)
    serial = next(run for run in runs if run.workers == 1 and run.lock == "none")
    print(f"scikit-learn SGDClassifier: {scikit_rate:,.0f} rows/s over one epoch; test accuracy after {epochs} "
          f"epochs {scikit_accuracy:.4f}")
    for run in runs:
        if run.workers > 1:
            mutex = next(r for r in runs if r.workers == run.workers and r.lock == "mutex")
            if run.lock == "none":
                print(f"  {run.workers} workers lock-free: {run.speedup:.2f}x serial, {run.updates_per_second / mutex.updates_per_second:.2f}x "
                      f"mutex, accuracy {100 * (run.quality - serial.quality):+.2f} points against serial")
    print(f"  1 worker against scikit-learn: {serial.updates_per_second / scikit_rate:.2f}x its throughput; accuracy "
          f"{serial.quality:.4f} against its {scikit_accuracy:.4f} ({100 * (serial.quality - scikit_accuracy):+.2f} points)")


def ratings_section(epochs: int = 20) -> None:
    import descend as dc
    from descend.hogwild.compare import compare_ratings, format_table

    train, test = dc.data.make_low_rank_matrix(n_rows=20_000, n_cols=10_000, rank=10, density=0.02, noise=0.1, seed=0)
    print(f"\n2. matrix completion: {train.shape[0]:,} x {train.shape[1]:,}, rank 10, {len(train):,} observed "
          f"training entries, noise 0.1, {epochs} epochs")
    runs = compare_ratings(train, test, worker_counts(), ["none", "mutex"], rank=10, epochs=epochs)
    print(format_table(runs, "test RMSE"))


def dense_section(epochs: int) -> None:
    import descend as dc
    from descend import nn, optim

    train, test = dc.data.load_mnist()
    print(f"\n3. MNIST MLP {MLP_SIZES}, batch 128, SGD lr 0.05 momentum 0.9, {epochs} epochs, one BLAS thread per worker")
    results = {}
    for label, engine, workers in (("local engine, 1 thread", "local", None), ("hogwild, 1 worker", "hogwild", 1),
                                   ("hogwild, 2 workers", "hogwild", 2)):
        model = nn.MLP(MLP_SIZES, rng=0)
        optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        if engine == "local":
            from threadpoolctl import threadpool_limits

            with threadpool_limits(limits=1, user_api="blas"):
                history = dc.fit(model, nn.CrossEntropyLoss(), optimizer, train, epochs=epochs, batch_size=128,
                                 progress=False)
        else:
            history = dc.fit(model, nn.CrossEntropyLoss(), optimizer, train, epochs=epochs, batch_size=128,
                             engine="hogwild", workers=workers, progress=False)
        seconds = float(np.median(history["seconds"]))
        accuracy = dc.evaluate(model, nn.CrossEntropyLoss(), test)["accuracy"]
        results[label] = (seconds, accuracy)
        print(f"  {label:24s} {seconds:6.2f} s per epoch   test accuracy {accuracy:.4f}", flush=True)
    one, two = results["hogwild, 1 worker"], results["hogwild, 2 workers"]
    print(f"  descend speed-up, 2 workers against 1: {one[0] / two[0]:.2f}x; accuracy {100 * (two[1] - one[1]):+.2f} "
          f"points (local engine: {100 * (two[1] - results['local engine, 1 thread'][1]):+.2f})")
    torch_one, torch_two = (torch_hogwild(train, test, epochs, processes) for processes in (1, 2))
    print(f"  PyTorch Hogwild, 1 process {torch_one[0]:.2f} s per epoch, 2 processes {torch_two[0]:.2f} s: "
          f"{torch_one[0] / torch_two[0]:.2f}x; test accuracy {torch_two[1]:.4f}")


def _torch_worker(model, x, y, epochs: int, rank: int, processes: int, seconds) -> None:
    import torch

    torch.set_num_threads(1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for epoch in range(epochs):
        started = time.perf_counter()
        order = torch.from_numpy(np.random.default_rng([0, epoch]).permutation(len(x)))
        share = order[rank * len(x) // processes : (rank + 1) * len(x) // processes]
        for begin in range(0, len(share), 128):
            rows = share[begin : begin + 128]
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x[rows]), y[rows]).backward()
            optimizer.step()
        seconds[rank * epochs + epoch] = time.perf_counter() - started


def torch_hogwild(train, test, epochs: int, processes: int) -> tuple[float, float]:
    """PyTorch's Hogwild recipe: parameters in shared memory, one process per worker; (seconds per epoch, accuracy)."""
    import torch
    import torch.multiprocessing as mp

    layers = []
    for fan_in, fan_out in zip(MLP_SIZES[:-1], MLP_SIZES[1:]):
        layers += [torch.nn.Linear(fan_in, fan_out), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    model.share_memory()
    x, y = torch.from_numpy(train.x).share_memory_(), torch.from_numpy(train.y).share_memory_()
    context = mp.get_context("spawn")
    seconds = context.Array("d", processes * epochs)
    workers = [context.Process(target=_torch_worker, args=(model, x, y, epochs, rank, processes, seconds))
               for rank in range(processes)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    per_epoch = np.array(seconds[:]).reshape(processes, epochs).max(axis=0)
    with torch.no_grad():
        accuracy = (model(torch.from_numpy(test.x)).argmax(1).numpy() == test.y).mean()
    return float(np.median(per_epoch)), float(accuracy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--dense-epochs", type=int, default=5)
    parser.add_argument("--skip", default="", help="comma-separated sections to leave out: sparse, ratings, dense")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    print(f"{os.cpu_count()} cores; worker counts {worker_counts()}")
    if "sparse" not in skip:
        sparse_section(args.rows, args.epochs)
    if "ratings" not in skip:
        ratings_section()
    if "dense" not in skip:
        dense_section(args.dense_epochs)


if __name__ == "__main__":
    main()

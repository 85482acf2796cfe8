"""MNIST novelty detection, one digit held out at a time: descend's autoencoder against IsolationForest and PCA.

For each held-out digit d: train on the training images of the other nine
digits, score the whole test set, and measure how well the score ranks the
d's (the anomalies) above the rest, as ROC AUC. Three scores:

- descend: the reconstruction error of an autoencoder 784-256-64-256-784
  (ReLU, sigmoid output, MSE, Adam, batch 128), `--model dense` or
  `--model denoising` (Gaussian input noise of std --noise in training);
- IsolationForest (scikit-learn, default settings, random_state=0) on the pixels;
- PCA with the same code size: the mean squared error of the reconstruction
  from the first `--code` principal components.

Then seconds per training epoch over the normal digits of the dense
autoencoder, descend against PyTorch (CPU, 2 threads, the same layers, the
same initial weights, the same minibatches in the same order), and their ratio.

--threads sets the BLAS threads of NumPy (through threadpoolctl) and of torch alike.

    python benchmarks/anomaly_mnist.py [--epochs 5] [--digits 0,1,...,9] [--model dense] [--code 64] [--threads 2] [--quick]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

HIDDEN = 256


def descend_model(args: argparse.Namespace, seed: int = 0):
    from descend import nn

    sizes = [784, HIDDEN, args.code]
    if args.model == "denoising":
        return nn.DenoisingAutoencoder(sizes, noise=args.noise, rng=seed)
    return nn.Autoencoder(sizes, rng=seed)


def descend_scores(normal: np.ndarray, test_x: np.ndarray, args: argparse.Namespace) -> tuple[np.ndarray, float]:
    """The reconstruction error of every test image after args.epochs epochs on the normal images; and seconds."""
    import descend as dc
    from descend import nn, optim
    from descend.anomaly import reconstruction_error

    model = descend_model(args)
    started = time.perf_counter()
    dc.fit(model, nn.MSELoss(), optim.Adam(model.parameters(), lr=args.lr), normal, epochs=args.epochs,
           batch_size=args.batch_size, seed=0, progress=False)
    return reconstruction_error(model, test_x), time.perf_counter() - started


def isolation_forest_scores(normal: np.ndarray, test_x: np.ndarray) -> np.ndarray:
    """Minus IsolationForest's score_samples (higher = more anomalous)."""
    from sklearn.ensemble import IsolationForest

    return -IsolationForest(random_state=0).fit(normal).score_samples(test_x)


def pca_scores(normal: np.ndarray, test_x: np.ndarray, code: int) -> np.ndarray:
    """The mean squared error of each test image rebuilt from `code` principal components of the normal images."""
    from sklearn.decomposition import PCA

    pca = PCA(code, random_state=0).fit(normal)
    return ((pca.inverse_transform(pca.transform(test_x)) - test_x) ** 2).mean(axis=1)


def descend_epoch_seconds(normal: np.ndarray, batch_size: int, initial: np.ndarray) -> float:
    import descend as dc
    from descend import nn, optim

    model = nn.Autoencoder([784, HIDDEN, 64], rng=0)
    model.flat_buffer().data[...] = initial
    history = dc.fit(model, nn.MSELoss(), optim.Adam(model.parameters(), lr=1e-3), normal, epochs=1,
                     batch_size=batch_size, seed=0, progress=False)
    return history["seconds"][0]


def torch_epoch_seconds(normal: np.ndarray, batch_size: int, initial_state: dict[str, np.ndarray]) -> float:
    import torch

    import descend as dc

    encoder = [torch.nn.Linear(784, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, 64)]
    decoder = [torch.nn.Linear(64, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, 784), torch.nn.Sigmoid()]
    model = torch.nn.Sequential(*encoder, *decoder)
    with torch.no_grad():
        for part, layers in (("encoder", encoder), ("decoder", decoder)):
            for index in (0, 2):
                layers[index].weight.copy_(torch.from_numpy(initial_state[f"{part}.layers.{index}.weight"].T.copy()))
                layers[index].bias.copy_(torch.from_numpy(initial_state[f"{part}.layers.{index}.bias"]))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.MSELoss()
    x = torch.from_numpy(normal)
    rng = np.random.default_rng([0, 0])  # the minibatches of descend's first epoch with fit(seed=0)
    started = time.perf_counter()
    for rows in dc.data.batches(len(x), batch_size, rng=rng):
        batch = x[torch.from_numpy(rows)]
        opt.zero_grad()
        loss = loss_fn(model(batch), batch)
        loss.backward()
        opt.step()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5, help="training epochs of descend's autoencoder per digit")
    parser.add_argument("--digits", default="0,1,2,3,4,5,6,7,8,9", help="held-out digits, comma-separated")
    parser.add_argument("--model", choices=("dense", "denoising"), default="dense")
    parser.add_argument("--code", type=int, default=64, help="code size of the autoencoder and of PCA")
    parser.add_argument("--noise", type=float, default=0.2, help="input noise std of --model denoising")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2, help="BLAS threads of NumPy (descend) and of torch")
    parser.add_argument("--repeats", type=int, default=2, help="timed epochs per library (the fastest is kept)")
    parser.add_argument("--quick", action="store_true", help="small slices of the data, one epoch: a smoke run")
    args = parser.parse_args()

    import sklearn.decomposition  # noqa: F401  (loads SciPy's BLAS, so that the limit below covers it too)
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    with threadpool_limits(limits=args.threads, user_api="blas"):  # NumPy's BLAS gets the same threads as torch
        run(args)


def run(args: argparse.Namespace) -> None:
    import torch
    from sklearn.metrics import roc_auc_score
    from threadpoolctl import threadpool_info

    import descend as dc
    from descend import nn

    digits = [int(d) for d in args.digits.split(",")]
    train, test = dc.data.load_mnist()
    if args.quick:
        train, test, args.epochs = train[:6000], test[:2000], 1
    print(f"descend: {args.model} autoencoder 784-{HIDDEN}-{args.code}-{HIDDEN}-784, {args.epochs} epochs, "
          f"Adam lr {args.lr:g}, batch {args.batch_size}" + (f", input noise {args.noise:g}" if args.model == "denoising" else ""))
    print(f"PCA: {args.code} components; IsolationForest: default settings, random_state=0")
    blas_threads = sorted({pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"})
    print(f"threads: NumPy and SciPy BLAS {blas_threads}, torch {torch.get_num_threads()}; {os.cpu_count()} CPUs")

    print(f"\nROC AUC, held-out digit = anomaly ({len(test)} test images)")
    print(f"{'digit':>5} {'descend':>8} {'IForest':>8} {'PCA':>8} {'descend s':>10}")
    results = []
    for digit in digits:
        normal = train.x[train.y != digit]
        is_anomaly = test.y == digit
        descend, seconds = descend_scores(normal, test.x, args)
        row = [roc_auc_score(is_anomaly, scores) for scores in
               (descend, isolation_forest_scores(normal, test.x), pca_scores(normal, test.x, args.code))]
        results.append(row)
        print(f"{digit:>5} {row[0]:>8.4f} {row[1]:>8.4f} {row[2]:>8.4f} {seconds:>10.1f}", flush=True)
    means = np.mean(results, axis=0)
    print(f"{'mean':>5} {means[0]:>8.4f} {means[1]:>8.4f} {means[2]:>8.4f}")
    print(f"descend's mean AUC is {'above' if means[0] > max(means[1:]) else 'NOT above'} both baselines "
          f"({means[0] - means[1]:+.4f} vs IsolationForest, {means[0] - means[2]:+.4f} vs PCA)")

    held_out = digits[-1]
    normal = train.x[train.y != held_out]
    initial_model = nn.Autoencoder([784, HIDDEN, 64], rng=0)
    initial, initial_state = initial_model.flat_buffer().data.copy(), initial_model.state_dict()
    descend_seconds = min(descend_epoch_seconds(normal, args.batch_size, initial) for _ in range(args.repeats))
    torch_seconds = min(torch_epoch_seconds(normal, args.batch_size, initial_state) for _ in range(args.repeats))
    print(f"\nseconds per epoch, dense 784-{HIDDEN}-64-{HIDDEN}-784, Adam, batch {args.batch_size}, "
          f"{len(normal)} images (all but the {held_out}s), fastest of {args.repeats}")
    print(f"descend {descend_seconds:.2f}   torch {torch_seconds:.2f}   ratio {descend_seconds / torch_seconds:.2f}")


if __name__ == "__main__":
    main()

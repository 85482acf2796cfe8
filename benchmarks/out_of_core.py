"""Out-of-core training against in-memory training: MNIST's MLP from a Parquet file, from .npy files, from arrays.

The same model (MLP [784, --hidden, 10], by default descend train's mlp [784, 512, 256, 10]; SGD lr 0.05 momentum 0.9, batch 128, seed 0) trains --epochs epochs
on MNIST's 60,000 training rows held three ways: NumPy arrays in memory (fit's usual input), a Parquet
file of row groups of --row-group rows read by ParquetDataset, and .npy files read by NpyDataset through
memory maps of 4,096 rows. Each way runs in its own process, the three alternating for --rounds rounds;
printed per way: the median seconds per epoch (epochs after the first, over all rounds), the test accuracy
and the peak resident memory, and each out-of-core way's epoch time as a ratio of the in-memory one.
The files are written once into --folder (the page cache then holds them: this measures the reading,
decoding, checking and shuffling, not a disk).

    python benchmarks/out_of_core.py [--epochs 4] [--rounds 3] [--compression snappy]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

WAYS = ("memory", "parquet", "npy")


def write_files(folder: Path, row_group: int, compression: str) -> None:
    """MNIST's training rows as train.parquet and x.npy + y.npy in `folder`, unless already there."""
    import pyarrow as pa
    import pyarrow.parquet as parquet

    import descend as dc

    if (folder / "train.parquet").exists():
        return
    train = dc.data.load_mnist(shape="flat")[0]
    table = pa.table({"features": pa.FixedSizeListArray.from_arrays(pa.array(train.x.reshape(-1)), 784),
                      "label": pa.array(train.y)})
    parquet.write_table(table, folder / "train.parquet", row_group_size=row_group, compression=compression)
    np.save(folder / "x.npy", train.x)
    np.save(folder / "y.npy", train.y)


def train_one_way(way: str, folder: Path, epochs: int, hidden: list[int]) -> dict[str, object]:
    """Train the model on the data held `way`; seconds per epoch, test accuracy, peak resident memory."""
    import descend as dc
    from descend import nn, optim
    from descend.data import NpyDataset, ParquetDataset

    _, test = dc.data.load_mnist(shape="flat")
    if way == "memory":
        train = dc.data.load_mnist(shape="flat")[0]
    elif way == "parquet":
        train = ParquetDataset(folder / "train.parquet")
    else:
        train = NpyDataset(folder / "x.npy", folder / "y.npy")
    model = nn.MLP([784, *hidden, 10], rng=0)
    history = dc.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.05, momentum=0.9), train,
                     epochs=epochs, batch_size=128, seed=0, progress=False)
    peak = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
                if line.startswith("VmHWM:"))
    return {"seconds": history["seconds"], "accuracy": dc.evaluate(model, nn.CrossEntropyLoss(), test)["accuracy"],
            "peak_mb": peak / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hidden", default="512,256", help="hidden widths, comma-separated")
    parser.add_argument("--row-group", type=int, default=4096)
    parser.add_argument("--compression", default="snappy", help="Parquet compression: snappy, zstd or none")
    parser.add_argument("--folder", type=Path, default=None, help="Where the files go [a temporary folder]")
    parser.add_argument("--way", choices=WAYS, help=argparse.SUPPRESS)  # one way, in this process
    arguments = parser.parse_args()
    hidden = [int(width) for width in arguments.hidden.split(",")]
    folder = arguments.folder or Path(tempfile.mkdtemp(prefix="descend-out-of-core-"))
    if arguments.way:
        print(json.dumps(train_one_way(arguments.way, folder, arguments.epochs, hidden)))
        return
    folder.mkdir(parents=True, exist_ok=True)
    write_files(folder, arguments.row_group, arguments.compression)
    sizes = {path.name: path.stat().st_size / 2**20 for path in sorted(folder.iterdir())}
    print(f"MLP [784, {arguments.hidden}, 10]; files in {folder}: " + ", ".join(f"{name} {size:.0f} MB" for name, size in sizes.items())
          + f" (Parquet: row groups of {arguments.row_group}, {arguments.compression})")
    results: dict[str, list[dict[str, object]]] = {way: [] for way in WAYS}
    for round_ in range(arguments.rounds):
        for way in WAYS:
            started = time.perf_counter()
            child = subprocess.run([sys.executable, __file__, "--way", way, "--folder", str(folder),
                                    "--epochs", str(arguments.epochs), "--hidden", arguments.hidden],
                                   capture_output=True, text=True, check=True)
            results[way].append(json.loads(child.stdout.splitlines()[-1]))
            print(f"  round {round_ + 1} {way:>7}: {time.perf_counter() - started:.1f} s, epochs "
                  + ", ".join(f"{s:.2f}" for s in results[way][-1]["seconds"]))
    medians = {way: statistics.median(s for run in runs for s in run["seconds"][1:]) for way, runs in results.items()}
    print(f"\n{'data held as':>14} {'s/epoch':>8} {'ratio':>6} {'test acc':>9} {'peak MB':>8}")
    for way, runs in results.items():
        print(f"{way:>14} {medians[way]:>8.2f} {medians[way] / medians['memory']:>6.2f} "
              f"{statistics.median(run['accuracy'] for run in runs):>9.4f} "
              f"{max(run['peak_mb'] for run in runs):>8.0f}")


if __name__ == "__main__":
    main()

"""Character-level language models on Shakespeare: descend against PyTorch (CPU, 2 threads), same run.

Model: Embedding(vocab, 64) -> LSTM / GRU / RNN (hidden 256, 1 layer) -> Linear(256, vocab);
sequences of 64 characters, batches of 64, Adam lr 2e-3, gradients clipped to norm 5.

1. Throughput: characters per second of training for each cell type, both frameworks, and the ratio.
2. The same model (same initial weights, same minibatches in the same order) trained --steps steps in
   each framework: validation cross-entropy in nats per character, and the difference.
3. With --long: a 2-layer LSTM trained for --long-epochs epochs (Adam's rate falling along half a cosine
   to --long-min-lr, or constant with --long-constant-lr), its validation loss per epoch, a loss-curve PNG
   and a sample. The default 8 epochs reach 1.487 nats per character (about 20 minutes on two cores).

    python benchmarks/char_rnn.py [--cells lstm,gru,rnn] [--steps 1000] [--long --long-epochs 8]

Throughput is the median of --rounds alternating rounds after a few warm-up steps in each framework.
See benchmarks/blas_kernel.py for the OpenBLAS kernel this machine forces, and how to unset it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from blas_kernel import describe_blas

VOCAB_EMBED, HIDDEN, LENGTH, BATCH = 64, 256, 64, 64
WARM_UP_BATCHES = 5


def descend_model(vocab_size: int, cell: str, layers: int = 1):
    from descend import nn

    return nn.CharRNN(vocab_size, embed=VOCAB_EMBED, hidden=HIDDEN, layers=layers, cell=cell, rng=0)


def torch_twin(model, cell: str):
    """The same network in PyTorch with descend's weights copied in (recurrent and dense weights transposed)."""
    import torch

    class Twin(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(model.vocab_size, VOCAB_EMBED)
            self.recurrent = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell](
                VOCAB_EMBED, HIDDEN, batch_first=True)
            self.head = torch.nn.Linear(HIDDEN, model.vocab_size)

        def forward(self, ids):
            return self.head(self.recurrent(self.embedding(ids))[0])

    twin = Twin()
    with torch.no_grad():
        twin.embedding.weight.copy_(torch.from_numpy(model.embedding.weight.data))
        for name, parameter in model.recurrent.named_parameters():
            value = parameter.data.T if name.startswith("weight") else parameter.data
            getattr(twin.recurrent, name).copy_(torch.from_numpy(np.ascontiguousarray(value)))
        twin.head.weight.copy_(torch.from_numpy(np.ascontiguousarray(model.head.weight.data.T)))
        twin.head.bias.copy_(torch.from_numpy(model.head.bias.data))
    return twin


def descend_train(model, data, epochs: int = 1, validation=None):
    import descend as dc
    from descend import nn, optim

    return dc.fit(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=2e-3), data, epochs=epochs,
                  batch_size=BATCH, seed=0, clip_grad_norm=5.0, validation=validation, progress=False)


def torch_train(twin, data) -> float:
    """Seconds for one epoch over `data`, in the minibatch order of descend's fit(seed=0)."""
    import torch

    import descend as dc

    x, y = torch.from_numpy(data.x), torch.from_numpy(data.y)
    optimizer = torch.optim.Adam(twin.parameters(), lr=2e-3)
    started = time.perf_counter()
    for rows in dc.data.batches(len(x), BATCH, rng=np.random.default_rng([0, 0])):
        rows = torch.from_numpy(rows)
        optimizer.zero_grad()
        logits = twin(x[rows])
        torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y[rows].reshape(-1)).backward()
        torch.nn.utils.clip_grad_norm_(twin.parameters(), 5.0)
        optimizer.step()
    return time.perf_counter() - started


def torch_loss(twin, data) -> float:
    import torch

    with torch.no_grad():
        logits = twin(torch.from_numpy(data.x))
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                 torch.from_numpy(data.y).reshape(-1)).item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default="lstm,gru,rnn")
    parser.add_argument("--batches", type=int, default=40, help="batches timed per round, framework and cell")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per framework; the median counts")
    parser.add_argument("--steps", type=int, default=1000, help="steps of the same-model comparison (LSTM)")
    parser.add_argument("--long", action="store_true", help="also train a 2-layer LSTM for longer")
    parser.add_argument("--long-epochs", type=int, default=8, help="8 reach 1.49 nats per character (issue 18)")
    parser.add_argument("--long-min-lr", type=float, default=1e-4, help="where the cosine decay of the rate ends")
    parser.add_argument("--long-constant-lr", action="store_true", help="keep Adam's rate at 2e-3 throughout")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="runs/bench-char-rnn")
    args = parser.parse_args()

    import torch

    import descend as dc
    from descend import nn

    torch.set_num_threads(args.threads)
    text = dc.data.load_text("shakespeare")
    train = text.sequences(LENGTH)
    validation = text.sequences(LENGTH, split="validation")[:4000]
    timed = train[: args.batches * BATCH]
    print(f"{text}; sequences of {LENGTH}, batches of {BATCH}, hidden {HIDDEN}, {args.threads} threads")
    print(describe_blas())
    if args.cells:
        print(f"\n{'cell':5s} {'descend chars/s':>16s} {'torch chars/s':>14s} {'ratio':>6s}")
    for cell in filter(None, args.cells.split(",")):
        model = descend_model(text.vocab_size, cell)
        twin = torch_twin(model, cell)
        warm_up = train[: WARM_UP_BATCHES * BATCH]  # first steps pay for page faults and kernel set-up, in both
        descend_train(model, warm_up)
        torch_train(twin, warm_up)
        descend_seconds, torch_seconds = [], []
        for _ in range(args.rounds):  # alternate, so a busy moment of the machine hits both
            descend_seconds.append(sum(descend_train(model, timed)["seconds"]))
            torch_seconds.append(torch_train(twin, timed))
        characters = timed.x.size
        ours, theirs = characters / np.median(descend_seconds), characters / np.median(torch_seconds)
        print(f"{cell:5s} {ours:16,.0f} {theirs:14,.0f} {ours / theirs:6.2f}", flush=True)

    if args.steps:
        data = train[: args.steps * BATCH]
        model = descend_model(text.vocab_size, "lstm")
        twin = torch_twin(model, "lstm")
        descend_train(model, data)
        torch_train(twin, data)
        ours = dc.evaluate(model, nn.CrossEntropyLoss(), validation)["loss"]
        theirs = torch_loss(twin, validation)
        print(f"\nLSTM after {args.steps} steps from the same weights and batches: validation cross-entropy "
              f"descend {ours:.4f}, torch {theirs:.4f} nats per character (difference {ours - theirs:+.4f})")

    if args.long:
        out = Path(args.out)
        model = descend_model(text.vocab_size, "lstm", layers=2)
        losses = []

        class Record(dc.Callback):
            def on_batch_end(self, state, loss):
                losses.append(loss)

            def on_epoch_end(self, state, record):
                print(f"  epoch {record['epoch']}: validation {record['val_loss']:.4f} nats per character "
                      f"({record['seconds']:.0f} s)", flush=True)

        steps = args.long_epochs * -(-len(train) // BATCH)
        schedule = None if args.long_constant_lr else dc.optim.CosineDecay(steps, min_lr=args.long_min_lr)
        optimizer = dc.optim.Adam(model.parameters(), lr=2e-3, schedule=schedule)
        history = dc.fit(model, nn.CrossEntropyLoss(), optimizer, train,
                         epochs=args.long_epochs, batch_size=BATCH, seed=0, clip_grad_norm=5.0,
                         validation=validation, callbacks=[Record()], progress=False)
        print("\n2-layer LSTM, validation cross-entropy by epoch: "
              + " ".join(f"{value:.4f}" for value in history["val_loss"])
              + f" ({np.mean(history['seconds']):.0f} s per epoch)")
        dc.save(model, out / "model.dsc")
        from descend import viz

        curve = viz.plot_curves({"training loss": losses}, out / "loss.png",
                                   "2-layer character LSTM on Shakespeare", "step", "cross-entropy (nats per character)")
        print(f"loss curve: {curve}\nsample:\n{model.generate(text, prompt='ROMEO:', length=400, temperature=0.8, seed=0)}")


if __name__ == "__main__":
    main()

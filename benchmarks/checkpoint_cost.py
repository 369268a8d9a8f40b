"""What a run directory's checkpoints cost a training, against a plain PyTorch loop.

``train(..., run_dir=...)`` writes ``checkpoint.pt`` and ``metrics.jsonl`` atomically
(fsync, rename) after an epoch. Written after every epoch (``checkpoint_every=0``, the only
behaviour before the interval existed) that is a fixed cost of milliseconds an epoch, which
on small data in memory is as much as the epoch itself; the default interval (30 s) writes
one when 30 s have passed and after the last epoch. Each row times one training of an MLP
of the library's ``mlp`` shape (two hidden layers of 256; shuffled passes, 40 epochs, batch
128, one pass over 256 validation rows an epoch) on random data of a benchmark set's size,
as a ratio to ``throughput.py``'s hand-written loop over the same model and data in the
same run (runs interleaved, median of ``--repeats``).

Run: ``.venv/bin/python benchmarks/checkpoint_cost.py [--repeats 5]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from throughput import make_data, make_model, plain_loop

from sampletune.data import DataSplits
from sampletune.samplers.shuffle import ShuffleSampler
from sampletune.train import TrainConfig, train

# (name, training rows, input features, classes): sizes of the benchmark's data sets
SIZES = (("pima-sized", 553, 8, 2), ("digits-sized", 1_150, 64, 10),
         ("MNIST-5k-sized", 3_200, 784, 10))
HIDDEN = 256  # the library's ``mlp``: two hidden layers of 256


def run_sampletune(data: DataSplits, cfg: TrainConfig, checkpoint_every: float | None) -> float:
    """Seconds of one ``train`` call with shuffled passes; ``None``: no run directory."""
    model = make_model(data.input_shape[0], data.num_classes, HIDDEN)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = None if checkpoint_every is None else tmp
        cfg = cfg.replace(checkpoint_every=checkpoint_every or 0.0)
        t0 = time.perf_counter()
        train(model, data, ShuffleSampler(len(data.train), seed=0), cfg, run_dir=run_dir,
              progress=False, evaluate_test=False)
        return time.perf_counter() - t0


def run_plain(data: DataSplits, cfg: TrainConfig) -> float:
    """Seconds of throughput.py's hand-written loop with a shuffled pass an epoch."""
    model = make_model(data.input_shape[0], data.num_classes, HIDDEN)
    t0 = time.perf_counter()
    plain_loop(model, data, cfg, lambda g: torch.randperm(len(data.train), generator=g))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = TrainConfig(epochs=args.epochs, lr_schedule="step")
    contenders = {"plain loop": lambda d: run_plain(d, cfg),
                  "train(), no run dir": lambda d: run_sampletune(d, cfg, None),
                  "train(), checkpoint every epoch": lambda d: run_sampletune(d, cfg, 0.0),
                  "train(), checkpoint every 30 s (default)":
                      lambda d: run_sampletune(d, cfg, cfg.checkpoint_every)}
    print(f"mlp, {args.epochs} epochs, batch {cfg.batch_size}, {args.threads} thread(s), "
          f"median of {args.repeats}; seconds and ratio to the plain loop\n")
    print("| data | " + " | ".join(contenders) + " |")
    print("|---|" + "---|" * len(contenders))
    for name, n, dim, classes in SIZES:
        data = make_data(n, dim, classes)
        for run in contenders.values():  # warm-up: allocator, first-call costs
            run(data)
        times: dict[str, list[float]] = {k: [] for k in contenders}
        for _ in range(args.repeats):
            for k, run in contenders.items():
                times[k].append(run(data))
        med = {k: statistics.median(v) for k, v in times.items()}
        base = med["plain loop"]
        print(f"| {name} ({n} rows, {dim} features) | "
              + " | ".join(f"{med[k]:.2f} s ({med[k] / base:.2f}x)" for k in contenders) + " |")


if __name__ == "__main__":
    main()

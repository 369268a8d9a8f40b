"""What a run directory's checkpoints cost a training, against a plain PyTorch loop.

``train(..., run_dir=...)`` writes ``checkpoint.pt`` and ``metrics.jsonl`` atomically
(fsync, rename) after an epoch. Written after every epoch (``checkpoint_every=0``, the only
behaviour before the interval existed) that is a fixed cost of milliseconds an epoch, which
on small data in memory is as much as the epoch itself; the default interval (30 s) writes
one when 30 s have passed and after the last epoch. Each row times one training of the
library's ``mlp`` (shuffled passes, 40 epochs, batch 128, a validation pass an epoch) at
data sizes of the benchmark tables, as a ratio to a hand-written loop over the same model and
data in the same run (runs interleaved, median of ``--repeats``).

Run: ``.venv/bin/python benchmarks/checkpoint_cost.py [--repeats 5]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F

from sampletune.data import DataSplits, Split
from sampletune.models import build_model
from sampletune.samplers.shuffle import ShuffleSampler
from sampletune.train import TrainConfig, seeded_model, train

# (name, training rows, input features, classes): sizes of the benchmark's data sets
SIZES = (("pima-sized", 553, 8, 2), ("digits-sized", 1_150, 64, 10),
         ("MNIST-5k-sized", 3_200, 784, 10))


def make_data(n: int, dim: int, classes: int) -> DataSplits:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, dim, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    split = Split(x, y, y.clone(), torch.zeros(n, dtype=torch.bool))
    val = split.subset(torch.arange(min(n // 4, 800)))
    return DataSplits("synthetic", split, val, val, classes, "vector", False, (dim,))


def new_model(data: DataSplits):
    return seeded_model(lambda: build_model("mlp", data.input_shape, data.num_classes), 0)


def run_sampletune(data: DataSplits, cfg: TrainConfig, checkpoint_every: float | None) -> float:
    """Seconds of one ``train`` call; ``None``: no run directory."""
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = None if checkpoint_every is None else tmp
        cfg = cfg.replace(checkpoint_every=checkpoint_every or 0.0)
        t0 = time.perf_counter()
        train(new_model(data), data, ShuffleSampler(len(data.train), seed=0), cfg,
              run_dir=run_dir, progress=False, evaluate_test=False)
        return time.perf_counter() - t0


def run_plain(data: DataSplits, cfg: TrainConfig) -> float:
    """Seconds of the loop a careful PyTorch user writes for in-memory data: a shuffled pass
    an epoch, SGD with momentum, one validation pass an epoch, no files."""
    model = new_model(data)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                          weight_decay=cfg.weight_decay)
    x, y, g = data.train.x, data.train.y, torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    for _ in range(cfg.epochs):
        idx = torch.randperm(len(y), generator=g)
        for s in range(0, len(idx), cfg.batch_size):
            b = idx[s:s + cfg.batch_size]
            loss = F.cross_entropy(model(x[b]), y[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            model.eval()
            F.cross_entropy(model(data.val.x), data.val.y)
            model.train()
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

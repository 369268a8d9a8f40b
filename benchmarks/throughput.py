"""Training throughput of sampletune against a plain PyTorch loop, and index-drawing speed.

1. Steps per second of ``sampletune.train.train`` with a ``WeightedSampler`` against a
   hand-written PyTorch loop (tensors in memory, ``torch.multinomial`` per epoch, slicing,
   forward/backward/step) on the same model, data and batch size, in one run; reported as
   a ratio (target >= 0.95). A DataLoader + WeightedRandomSampler loop is shown too, as the
   pattern most users start from.
2. Seconds to draw one epoch of indices from 1M and 20M weights (``torch.multinomial``
   refuses more than 2**24 categories; sampletune uses an alias table built once per
   sampler; `benchmarks/weighted_draw.py` compares it with the old inverse-CDF draw).

Run: ``.venv/bin/python benchmarks/throughput.py [--repeats 5]``. Runs are interleaved and
the median is reported, so load on the machine affects all contenders alike.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from sampletune.data import DataSplits, Split
from sampletune.samplers import WeightedSampler
from sampletune.train import TrainConfig, seeded_model, train


def make_data(n: int, dim: int, classes: int) -> DataSplits:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, dim, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    split = Split(x, y, y.clone(), torch.zeros(n, dtype=torch.bool))
    small = split.subset(torch.arange(256))
    return DataSplits("synthetic", split, small, small, classes, "vector", False, (dim,))


def make_model(dim: int, classes: int, hidden: int) -> nn.Module:
    return seeded_model(lambda: nn.Sequential(
        nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
        nn.Linear(hidden, classes)), 0)


def run_sampletune(data, weights, cfg, hidden) -> float:
    model = make_model(data.input_shape[0], data.num_classes, hidden)
    sampler = WeightedSampler(weights, seed=0)
    t0 = time.perf_counter()
    result = train(model, data, sampler, cfg, progress=False, evaluate_test=False)
    return result.final["steps"] / (time.perf_counter() - t0)


def plain_loop(model: nn.Module, data: DataSplits, cfg: TrainConfig, draw) -> int:
    """The hand-written loop a careful PyTorch user would write for in-memory data:
    ``cfg.epochs`` epochs of the indices ``draw(generator)`` returns, SGD with momentum, and
    the same one validation pass an epoch sampletune does. Returns the steps taken."""
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                          weight_decay=cfg.weight_decay)
    x, y = data.train.x, data.train.y
    g = torch.Generator().manual_seed(0)
    steps = 0
    for _ in range(cfg.epochs):
        idx = draw(g)
        for s in range(0, len(idx), cfg.batch_size):
            b = idx[s : s + cfg.batch_size]
            loss = F.cross_entropy(model(x[b]), y[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
        with torch.no_grad():
            model.eval()
            F.cross_entropy(model(data.val.x), data.val.y)
            model.train()
    return steps


def run_plain(data, weights, cfg, hidden) -> float:
    """Steps/s of :func:`plain_loop` drawing ``torch.multinomial`` each epoch."""
    model = make_model(data.input_shape[0], data.num_classes, hidden)
    t0 = time.perf_counter()
    steps = plain_loop(model, data, cfg, lambda g: torch.multinomial(
        weights, len(weights), replacement=True, generator=g))
    return steps / (time.perf_counter() - t0)


def run_dataloader(data, weights, cfg, hidden) -> float:
    model = make_model(data.input_shape[0], data.num_classes, hidden)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                          weight_decay=cfg.weight_decay)
    ds = torch.utils.data.TensorDataset(data.train.x, data.train.y)
    sampler = torch.utils.data.WeightedRandomSampler(
        weights, len(weights), generator=torch.Generator().manual_seed(0))
    loader = torch.utils.data.DataLoader(ds, batch_size=cfg.batch_size, sampler=sampler)
    steps = 0
    t0 = time.perf_counter()
    for _ in range(cfg.epochs):
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
    return steps / (time.perf_counter() - t0)


def draw_seconds(n: int, repeats: int) -> dict[str, float | None]:
    w = torch.rand(n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    sampler = WeightedSampler(w, seed=0)
    out: dict[str, float | None] = {}
    times = []
    for e in range(repeats):
        sampler.set_epoch(e)
        t0 = time.perf_counter()
        sampler.epoch_indices()
        times.append(time.perf_counter() - t0)
    out["sampletune"] = statistics.median(times)
    if n <= 2**24:
        g = torch.Generator().manual_seed(0)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            torch.multinomial(w, n, replacement=True, generator=g)
            times.append(time.perf_counter() - t0)
        out["torch.multinomial"] = statistics.median(times)
    else:
        out["torch.multinomial"] = None
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    data = make_data(args.n, args.dim, 10)
    weights = torch.rand(args.n, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=0.01,
                      lr_schedule="constant")
    runners = {"sampletune": run_sampletune, "plain loop": run_plain,
               "DataLoader": run_dataloader}
    for fn in runners.values():  # warm-up (lazy imports, allocator)
        fn(data, weights, cfg.replace(epochs=1), args.hidden)
    rates: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(args.repeats):
        for name, fn in runners.items():
            rates[name].append(fn(data, weights, cfg, args.hidden))
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"training: MLP {args.dim}-{args.hidden}-{args.hidden}-10, N={args.n}, "
          f"batch {args.batch_size}, {args.epochs} epochs, {args.threads} thread(s), "
          f"median of {args.repeats}")
    for name, r in med.items():
        print(f"  {name:<12} {r:9.1f} steps/s   ratio to plain loop {r / med['plain loop']:.3f}")
    ratio = med["sampletune"] / med["plain loop"]
    print(f"sampletune / plain loop = {ratio:.3f} (target >= 0.95): "
          f"{'MET' if ratio >= 0.95 else 'NOT MET'}")
    print("drawing one epoch of indices (with replacement), median seconds:")
    for n in (1_000_000, 20_000_000):
        d = draw_seconds(n, 3)
        mult = d["torch.multinomial"]
        mult_s = f"{mult:.3f}s" if mult is not None else "refuses (> 2**24 categories)"
        print(f"  N={n:>10,}: sampletune {d['sampletune']:.3f}s   torch.multinomial {mult_s}")


if __name__ == "__main__":
    main()

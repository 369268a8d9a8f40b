"""Seconds to draw one epoch (k = N, with replacement) from N static weights.

Contenders, interleaved in one process (so load on the machine hits all alike), median of
``--repeats``:

* ``alias``: today's ``WeightedSampler.epoch_indices()`` (an alias table built once per
  sampler, then one random table read per draw); its one-off build is timed separately.
* ``inverse CDF``: the previous implementation, kept below as :func:`old_inverse_cdf`
  (sorted uniforms from exponential spacings, ``searchsorted``, then ``randperm``).
* ``numpy choice``: ``numpy.random.Generator.choice(N, N, p=p)``.

Ratios are to the alias draw of the same round, median over rounds. ``--profile`` also
times each step of both implementations.

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/weighted_draw.py [--n 20000000]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial

import numpy as np
import torch

from sampletune.samplers import WeightedSampler
from sampletune.samplers.weighted import AliasTable


def old_inverse_cdf(weights: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """The implementation ``sample_with_replacement`` had before the alias table."""
    cdf = torch.cumsum(weights, 0)
    spacings = torch.empty(k + 1, dtype=torch.float64).exponential_(generator=generator)
    u = torch.cumsum(spacings, 0)
    u = u[:-1] * (cdf[-1] / u[-1])
    idx = torch.searchsorted(cdf, u, right=True).clamp_max(len(weights) - 1)
    return idx[torch.randperm(k, generator=generator)]


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def profile(w: torch.Tensor, table: AliasTable, repeats: int) -> None:
    """Seconds of each step of the old and the new draw (median of ``repeats``)."""
    n = k = len(w)
    parts: dict[str, list[float]] = {}
    last = [0.0]

    def lap(name: str) -> None:  # time since the previous lap
        now = time.perf_counter()
        parts.setdefault(name, []).append(now - last[0])
        last[0] = now

    for r in range(repeats):
        g = torch.Generator().manual_seed(r)
        last[0] = time.perf_counter()
        cdf = torch.cumsum(w, 0)
        lap("old: cumsum(weights)")
        u = torch.empty(k + 1, dtype=torch.float64).exponential_(generator=g)
        lap("old: exponential_ k+1")
        u = torch.cumsum(u, 0)
        u = u[:-1] * (cdf[-1] / u[-1])
        lap("old: cumsum + scale")
        idx = torch.searchsorted(cdf, u, right=True).clamp_max(n - 1)
        lap("old: searchsorted")
        perm = torch.randperm(k, generator=g)
        lap("old: randperm(k)")
        idx = idx[perm]
        lap("old: idx[perm] gather")
        del cdf, u, idx, perm
        last[0] = time.perf_counter()
        rng = np.random.Generator(np.random.PCG64(r))
        j = rng.integers(0, n, size=k, dtype=np.int64)
        lap("new: integers(0, N)")
        e = table.table.take(j)
        lap("new: table.take(j)")
        c = rng.integers(0, 1 << table.shift, size=k, dtype=np.int64)
        lap("new: integers(0, 2**s)")
        c <<= table.bits
        c |= (1 << table.bits) - 1
        keep = c < e
        lap("new: threshold compare")
        e &= (1 << table.bits) - 1
        np.copyto(e, j, where=keep)
        lap("new: alias select")
        del j, e, c, keep
    print(f"profile, median seconds of {repeats}:")
    for name, t in parts.items():
        print(f"  {name:<26} {statistics.median(t):.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--numpy-repeats", type=int, default=3,
                    help="numpy choice is slow; it runs in the first this-many rounds")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    n = args.n
    w = torch.rand(n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    build = []
    for _ in range(3):
        t0 = time.perf_counter()
        sampler = WeightedSampler(w, seed=0)
        build.append(time.perf_counter() - t0)
    p = (w / w.sum()).numpy()
    times: dict[str, list[float]] = {"alias": [], "inverse CDF": [], "numpy choice": []}
    for r in range(args.repeats):
        sampler.set_epoch(r)
        times["alias"].append(timed(sampler.epoch_indices))
        g = torch.Generator().manual_seed(r)
        times["inverse CDF"].append(timed(partial(old_inverse_cdf, w, n, g)))
        if r < args.numpy_repeats:
            rng = np.random.default_rng(r)
            times["numpy choice"].append(timed(partial(rng.choice, n, n, p=p)))
    med = {k: statistics.median(v) for k, v in times.items() if v}
    # ratio to the alias draw of the same round, median over rounds
    ratio = {k: statistics.median(t / a for t, a in zip(v, times["alias"], strict=False))
             for k, v in times.items() if v}
    print(f"one epoch of N={n:,} draws from N weights, {args.threads} thread(s), median of "
          f"{args.repeats} interleaved rounds (numpy choice: {args.numpy_repeats})")
    print(f"  alias table build (once per sampler): {statistics.median(build):.3f}s")
    for name, t in med.items():
        print(f"  {name:<13} {t:7.3f}s   {ratio[name]:5.2f}x the alias draw"
              f"   [{', '.join(f'{x:.2f}' for x in times[name])}]")
    if args.profile:
        profile(w, sampler.alias, 3)


if __name__ == "__main__":
    main()

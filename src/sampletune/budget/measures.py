"""Measures of a budgeted run (budgeted-importance-sampling.txt, sections 4.2-4.4).

Test accuracy mean and standard deviation over seeds, wall-clock time, speed-up against a
full training (Table 1's S), and data variability: the entropy of the per-example sample
counts over training (section 4.4, Fig. 1c/d).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


class SampleCounter:
    """Observer counting how often each training example was fed to a training step."""

    def __init__(self, n: int):
        self.counts = torch.zeros(int(n), dtype=torch.long)

    def on_batch(self, report) -> None:
        idx = report.indices.detach()
        if self.counts.device != idx.device:  # count where training runs: no host sync
            self.counts = self.counts.to(idx.device)
        self.counts.index_add_(0, idx, torch.ones_like(idx))

    def state_dict(self) -> dict:
        return {"counts": self.counts.cpu().clone()}

    def load_state_dict(self, state: dict) -> None:
        self.counts = state["counts"].clone()


def count_entropy(counts: Tensor) -> float:
    """``H(c) = -sum_i c_i log c_i`` (nats) of the normalised sample counts ``c`` (N,):
    section 4.4's data variability. ``log N`` when every example is seen equally often."""
    c = counts.to(torch.float64)
    total = c.sum()
    if total <= 0:
        return 0.0
    p = c[c > 0] / total
    return float(-(p * p.log()).sum())


def normalized_entropy(counts: Tensor) -> float:
    """:func:`count_entropy` divided by ``log N``: 1 for perfectly even counts."""
    n = len(counts)
    return count_entropy(counts) / math.log(n) if n > 1 else 1.0


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1, the "± std over seeds" of every table in
    this project); std is 0 for one value."""
    vals = [float(v) for v in values]
    if not vals:
        return float("nan"), float("nan")
    m = sum(vals) / len(vals)
    if len(vals) == 1:
        return m, 0.0
    return m, math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1))


def speedup(time: float, full_time: float) -> float:
    """Table 1's S: percentage of a full training's wall time saved, ``100 (1 - t / t_full)``."""
    return 100.0 * (1.0 - time / full_time) if full_time > 0 else float("nan")

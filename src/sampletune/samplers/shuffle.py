"""scan-SGD and unif-SGD samplers (budgeted-importance-sampling.txt, section 3)."""

from __future__ import annotations

import torch
from torch import Tensor

from sampletune.samplers.base import IndexSampler, budget_samples


class ShuffleSampler(IndexSampler):
    """scan-SGD: a fresh permutation of all ``n`` examples per epoch.

    With ``budget < 1`` the permutation is truncated to ``round(n * budget)`` examples
    (each epoch a different subset, without repeats inside the epoch).
    """

    def __init__(self, n: int, *, budget: float = 1.0, **kw):
        super().__init__(budget_samples(n, budget), **kw)
        self.n = int(n)

    def _draw(self, generator: torch.Generator) -> Tensor:
        return torch.randperm(self.n, generator=generator)[: self.num_samples]


class UniformSampler(IndexSampler):
    """unif-SGD: ``round(n * budget)`` independent uniform draws (with replacement) per epoch."""

    def __init__(self, n: int, *, budget: float = 1.0, **kw):
        super().__init__(budget_samples(n, budget), **kw)
        self.n = int(n)

    def _draw(self, generator: torch.Generator) -> Tensor:
        return torch.randint(0, self.n, (self.num_samples,), generator=generator)

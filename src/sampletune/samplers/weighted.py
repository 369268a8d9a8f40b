"""Sampling by static per-example probabilities, for any number of examples."""

from __future__ import annotations

import torch
from torch import Tensor

from sampletune.errors import ConfigError, check
from sampletune.samplers.base import IndexSampler


def validate_weights(weights: Tensor, field: str = "weights") -> Tensor:
    """Return ``weights`` as a float64 1-D tensor, or raise a one-line :class:`ConfigError`
    if any weight is negative, NaN or infinite, or all are zero."""
    w = torch.as_tensor(weights).detach().to("cpu", torch.float64).flatten()
    check(w.numel() > 0, field, "is empty")
    if torch.isnan(w).any():
        raise ConfigError(field, f"{int(torch.isnan(w).sum())} NaN value(s)", "finite >= 0")
    if torch.isinf(w).any():
        raise ConfigError(field, f"{int(torch.isinf(w).sum())} infinite value(s)", "finite >= 0")
    if (w < 0).any():
        raise ConfigError(field, f"{int((w < 0).sum())} negative value(s)", "finite >= 0")
    check(bool((w > 0).any()), field, "all weights are zero", "at least one weight > 0")
    return w


def sample_with_replacement(weights: Tensor, k: int, generator: torch.Generator) -> Tensor:
    """``k`` draws from the categorical ``weights / sum(weights)`` by inverse CDF.

    Unlike ``torch.multinomial`` this has no 2**24 category limit. The ``k`` uniforms are
    drawn already sorted (normalised partial sums of ``k + 1`` Exp(1) variables), so the
    CDF look-ups walk memory in order (about 10x faster than random-order look-ups at
    20M), and a random permutation then gives the draws their i.i.d. order.
    ``weights`` is float64 ``(N,)``; returns int64 ``(k,)``.
    """
    cdf = torch.cumsum(weights, 0)
    spacings = torch.empty(k + 1, dtype=torch.float64).exponential_(generator=generator)
    u = torch.cumsum(spacings, 0)
    u = u[:-1] * (cdf[-1] / u[-1])
    idx = torch.searchsorted(cdf, u, right=True).clamp_max(len(weights) - 1)
    return idx[torch.randperm(k, generator=generator)]


def sample_without_replacement(weights: Tensor, k: int, generator: torch.Generator) -> Tensor:
    """``k`` distinct indices drawn successively proportional to ``weights``.

    Exponential-race (Efraimidis-Spirakis) keys ``E_i / w_i`` with ``E_i ~ Exp(1)``; the
    ``k`` smallest keys are the draw, in the order they would be drawn. Zero-weight
    examples are never drawn, so ``k`` must not exceed the number of positive weights.
    """
    positive = int((weights > 0).sum())
    check(k <= positive, "num_samples", f"{k} draws without replacement but only "
          f"{positive} positive weights", f"<= {positive}")
    e = torch.empty(len(weights), dtype=torch.float64).exponential_(generator=generator)
    keys = e / weights  # inf where weight is 0
    return torch.topk(keys, k, largest=False, sorted=True).indices


class WeightedSampler(IndexSampler):
    """Draw ``num_samples`` indices per epoch with probability proportional to ``weights``.

    Args:
        weights: (N,) non-negative, finite, not all zero (need not sum to one).
        num_samples: global draws per epoch (default ``N``); each of ``num_replicas``
            ranks yields its ``ceil(num_samples / num_replicas)`` shard.
        replacement: draw with replacement (default) or distinct indices.
    """

    def __init__(self, weights: Tensor, num_samples: int | None = None, *,
                 replacement: bool = True, seed: int = 0, num_replicas: int = 1, rank: int = 0):
        w = validate_weights(weights)
        super().__init__(num_samples or len(w), seed=seed, num_replicas=num_replicas, rank=rank)
        self.weights = w
        self.replacement = bool(replacement)
        if not self.replacement:
            check(self.num_samples <= int((w > 0).sum()), "num_samples",
                  f"{self.num_samples} draws without replacement exceed the "
                  f"{int((w > 0).sum())} positive weights")

    @property
    def probabilities(self) -> Tensor:
        """(N,) float64, sums to one."""
        return self.weights / self.weights.sum()

    def _draw(self, generator: torch.Generator) -> Tensor:
        if self.replacement:
            return sample_with_replacement(self.weights, self.num_samples, generator)
        return sample_without_replacement(self.weights, self.num_samples, generator)

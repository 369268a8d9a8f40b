"""Sampling by static per-example probabilities, for any number of examples."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from sampletune.errors import ConfigError, check, check_int
from sampletune.samplers.base import IndexSampler, check_flag


def _as_weights(weights: Tensor, field: str) -> Tensor:
    """``weights`` as a tensor on its own device and dtype, or a one-line
    :class:`ConfigError` unless they are ``(N,)`` real numbers (integer, bool or floating),
    ``N >= 1``; checks the metadata alone (no host sync)."""
    allowed = "(N,) real numbers"
    try:
        w = torch.as_tensor(weights).detach()
    except (TypeError, ValueError, RuntimeError):
        raise ConfigError(field, f"a {type(weights).__name__} is not an array of numbers",
                          allowed) from None
    check(not w.is_complex(), field, f"complex values ({w.dtype})", allowed)
    check(w.dim() == 1, field, f"shape {tuple(w.shape)} is not 1-D", allowed)
    check(w.numel() > 0, field, "is empty")
    return w


def _positive_count(w: Tensor, field: str) -> int:
    """How many of ``w`` are positive, or a one-line :class:`ConfigError` if any is NaN,
    infinite or negative; one host sync on ``w``'s device."""
    nan, inf, neg, pos = torch.stack([torch.isnan(w).sum(), torch.isinf(w).sum(),
                                      (w < 0).sum(), (w > 0).sum()]).tolist()
    check(nan == 0, field, f"{nan} NaN value(s)", "finite >= 0")
    check(inf == 0, field, f"{inf} infinite value(s)", "finite >= 0")
    check(neg == 0, field, f"{neg} negative value(s)", "finite >= 0")
    return pos


def _check_generator(generator: torch.Generator, device: torch.device) -> None:
    """A one-line :class:`ConfigError` unless ``generator`` is a ``torch.Generator`` on
    ``device``'s type (torch's own requirement)."""
    allowed = f"a torch.Generator on {device.type}"
    check(isinstance(generator, torch.Generator), "generator",
          f"{type(generator)} is not a torch.Generator", allowed)
    check(generator.device.type == device.type, "generator",
          f"on {generator.device.type}, the draw is on {device.type}", allowed)


def validate_weights(weights: Tensor, field: str = "weights") -> Tensor:
    """Return ``weights`` (a tensor, array or list of ``N`` real numbers) as a float64
    ``(N,)`` tensor, or raise a one-line :class:`ConfigError` if they are not 1-D and real
    (integer, bool or floating), any is negative, NaN or infinite, or all are zero."""
    w = _as_weights(weights, field).to("cpu", torch.float64)
    check(_positive_count(w, field) > 0, field, "all weights are zero",
          "at least one weight > 0")
    return w


class AliasTable:
    """Walker's alias table over static weights: ``k`` i.i.d. draws in O(k), no 2**24 limit.

    The weights are first rounded to integers ``m_i`` summing exactly to ``N * 2**s``
    (``s = 62 - bits(N - 1)``; a positive weight keeps at least one unit, a zero weight
    stays zero), so each example's probability is ``m_i / (N * 2**s)``: relative rounding
    error about ``2**-s`` of a bucket (~4e-12 at N = 20M). The table is then built
    exactly in int64 without a Python loop (a vectorised sweep, after Huebschle-Schneider
    and Sanders: each light example's gap is filled by one heavy one; a heavy one that
    gives too much becomes light and is topped up by the next heavy one), and stored one
    int64 per bucket, ``threshold << bits | alias``, so a draw reads one random entry.

    A draw: bucket ``j`` uniform, then ``j`` if a uniform integer in ``[0, 2**s)`` is below
    its threshold, else its alias. Random integers come from a NumPy PCG64 seeded by the
    given ``torch.Generator``, so draws depend on that generator's state alone.

    ``weights`` are those :func:`validate_weights` takes; others are a :class:`ConfigError`.
    """

    def __init__(self, weights: Tensor):
        w = validate_weights(weights).numpy()
        n = len(w)
        check(n < 2**31, "weights", f"{n} examples; the alias table takes fewer than 2**31")
        self.n = n
        self.bits = max(1, (n - 1).bit_length())  # alias field width
        self.shift = 62 - self.bits  # a bucket holds 2**shift units; n * 2**shift < 2**62
        cap = 1 << self.shift
        with np.errstate(over="ignore"):
            total = w.sum()
            scale = n * cap / total
        if not (np.isfinite(total) and np.isfinite(scale)):  # weights near 1e-300 or 1e308
            w = w / w.max()
            scale = n * cap / w.sum()
        m = np.rint(w * scale).astype(np.int64)
        np.maximum(m, w > 0, out=m)  # a positive weight is never rounded away
        m[int(np.argmax(m))] += n * cap - int(m.sum())  # sum exactly n * cap
        light = m < cap
        lights, heavies = np.flatnonzero(light), np.flatnonzero(~light)
        gaps = np.zeros(len(lights) + 1, dtype=np.int64)  # gaps[i]: light gaps before i
        np.cumsum(cap - m[lights], out=gaps[1:])
        excess = np.cumsum(m[heavies] - cap)  # heavy excess up to and including each
        # where heavy k stops on the gap line: the end of the light gap it stops in (it
        # fills that one whole), never before where heavy k - 1 stopped
        stop = np.maximum.accumulate(gaps[np.searchsorted(gaps, excess, "left")])
        overshoot = stop - excess  # heavy k's own gap, filled by heavy k + 1
        assert overshoot[-1] == 0 and 0 <= overshoot.min() and overshoot.max() < cap
        table = np.empty(n, dtype=np.int64)
        giver = heavies[np.searchsorted(stop, gaps[:-1], "right")]
        table[lights] = (m[lights] << self.bits) | giver
        nxt = np.append(heavies[1:], heavies[-1])
        table[heavies] = ((cap - overshoot) << self.bits) | nxt
        self.table = table

    def probabilities(self) -> np.ndarray:
        """(N,) float64: each example's probability as the table holds it (its own units
        plus the units it fills as an alias, summed exactly in int64, over ``N * 2**s``)."""
        own = self.table >> self.bits
        alias = self.table & ((1 << self.bits) - 1)
        given = (1 << self.shift) - own  # < 2**37 at N = 20M; < 2**62 in all
        units = own.copy()
        for lo in range(0, 62, 26):  # bincount sums float64: add 26-bit slices, each exact
            part = np.bincount(alias, weights=(given >> lo) & ((1 << 26) - 1), minlength=self.n)
            units += part.astype(np.int64) << lo
        return units / (self.n * float(1 << self.shift))

    def sample(self, k: int, generator: torch.Generator) -> Tensor:
        """``k`` (an integer >= 0) i.i.d. draws, int64 ``(k,)``, from ``generator``, a CPU
        ``torch.Generator``."""
        check_int(k, "num_samples", 0)
        _check_generator(generator, torch.device("cpu"))
        seed = torch.randint(2**62, (4,), generator=generator).tolist()
        rng = np.random.Generator(np.random.PCG64(seed))
        j = rng.integers(0, self.n, size=k, dtype=np.int64)
        entry = self.table.take(j)
        coin = rng.integers(0, 1 << self.shift, size=k, dtype=np.int64)
        mask = (1 << self.bits) - 1
        coin <<= self.bits  # coin < threshold  <=>  (coin << bits | mask) < entry
        coin |= mask
        keep = coin < entry
        entry &= mask
        np.copyto(entry, j, where=keep)
        return torch.from_numpy(entry)


def sample_with_replacement(weights: Tensor, k: int, generator: torch.Generator) -> Tensor:
    """``k`` i.i.d. draws from the categorical ``weights / sum(weights)`` by an
    :class:`AliasTable` built for this call (build one yourself to draw repeatedly).

    Unlike ``torch.multinomial`` this has no 2**24 category limit.
    ``weights`` is non-negative ``(N,)``; returns int64 ``(k,)``.
    """
    return AliasTable(weights).sample(k, generator)


def sample_without_replacement(weights: Tensor, k: int, generator: torch.Generator) -> Tensor:
    """``k`` distinct indices drawn successively proportional to ``weights``.

    Exponential-race (Efraimidis-Spirakis) keys ``E_i / w_i`` with ``E_i ~ Exp(1)``; the
    ``k`` smallest keys are the draw, in the order they would be drawn. Zero-weight
    examples are never drawn, so ``k`` must not exceed the number of positive weights.
    Runs on ``weights``' device, which must be ``generator``'s. ``weights`` are those
    :func:`validate_weights` takes (all zero only for ``k = 0``); checking them costs one
    host sync.
    """
    weights = _as_weights(weights, "weights")
    check_int(k, "num_samples", 0)
    _check_generator(generator, weights.device)
    positive = _positive_count(weights, "weights")
    check(k <= positive, "num_samples", f"{k} draws without replacement but only "
          f"{positive} positive weights", f"<= {positive}")
    e = torch.empty(len(weights), dtype=torch.float64,
                    device=weights.device).exponential_(generator=generator)
    keys = e / weights  # inf where weight is 0
    return torch.topk(keys, k, largest=False, sorted=True).indices


class WeightedSampler(IndexSampler):
    """Draw ``num_samples`` indices per epoch with probability proportional to ``weights``.

    Args:
        weights: (N,) real, non-negative, finite, not all zero (need not sum to one).
        num_samples: global draws per epoch (default ``N``); each of ``num_replicas``
            ranks yields its ``ceil(num_samples / num_replicas)`` shard.
        replacement: draw with replacement (default) or distinct indices.
        seed: the draw of epoch ``e`` depends on ``(seed, e)`` alone; an integer in
            ``[0, 2**64)``.
        num_replicas, rank: the shard this sampler yields; ``None`` takes them from an
            initialised ``torch.distributed`` default process group (else 1 and 0).
        drop_last: cut the draw to a multiple of ``num_replicas`` instead of padding it.
    """

    def __init__(self, weights: Tensor, num_samples: int | None = None, *,
                 replacement: bool = True, seed: int = 0, num_replicas: int | None = None,
                 rank: int | None = None, drop_last: bool = False):
        w = validate_weights(weights)
        super().__init__(len(w) if num_samples is None else num_samples, seed=seed,
                         num_replicas=num_replicas, rank=rank, drop_last=drop_last)
        check_flag(replacement, "replacement")
        self.weights = w
        self.replacement = replacement
        self.alias = AliasTable(w) if self.replacement else None  # built once: weights are static
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
            return self.alias.sample(self.num_samples, generator)
        return sample_without_replacement(self.weights, self.num_samples, generator)


def subset_sampler(subset: Tensor, n: int, seed: int) -> WeightedSampler:
    """Each epoch, a fresh shuffle of the fixed ``subset`` of ``range(n)``."""
    w = torch.zeros(n, dtype=torch.float64)
    w[subset] = 1.0
    return WeightedSampler(w, len(subset), replacement=False, seed=seed)

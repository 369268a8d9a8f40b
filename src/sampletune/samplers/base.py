"""The base of every sampletune sampler: an epoch of indices drawn from its own generator.

Each epoch's draw depends only on ``(seed, epoch)``, so a run resumed at epoch ``e`` draws
exactly what the uninterrupted run drew, and ranks of a distributed job agree on the
global draw before each takes its shard.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor
from torch.utils.data import Sampler

from sampletune.errors import check, check_flag, check_int, check_number
from sampletune.seeding import check_seed, torch_seed

# The epoch's generator is seeded with ``seed * SEED_STRIDE + epoch`` (the formula of every
# published run); epochs stay below the stride so no two (seed, epoch) pairs share a seed.
SEED_STRIDE = 1_000_003


def state_entries(state: dict, *keys: str) -> list:
    """The values of ``keys`` in a sampler's ``state`` (from ``state_dict()``); a missing
    key is a one-line :class:`ConfigError` naming it."""
    check(isinstance(state, dict), "state_dict", f"is a {type(state).__name__}, not a dict",
          "a sampler's state_dict()")
    missing = [k for k in keys if k not in state]
    check(not missing, "state_dict", f"has no {', '.join(map(repr, missing))}",
          f"a sampler's state_dict() with {', '.join(map(repr, keys))}")
    return [state[k] for k in keys]


def distributed_defaults(num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    """``num_replicas``/``rank`` as given, or where ``None`` the default process group's
    world size/rank if ``torch.distributed`` is initialised, else 1/0 (as
    ``torch.utils.data.DistributedSampler`` does)."""
    dist = torch.distributed
    if (num_replicas is None or rank is None) and dist.is_available() and dist.is_initialized():
        if num_replicas is None:
            num_replicas = dist.get_world_size()
        if rank is None:
            rank = dist.get_rank()
    return (1 if num_replicas is None else num_replicas), (0 if rank is None else rank)


class IndexSampler(Sampler[int]):
    """A ``Sampler[int]`` whose epoch is computed at once as an int64 tensor.

    Subclasses implement :meth:`_draw` (the global draw for one epoch). This class adds
    the generator per epoch, sharding over ``num_replicas``/``rank`` and state.
    ``num_replicas``/``rank`` left ``None`` come from an initialised ``torch.distributed``
    default process group (else 1/0); each rank yields every ``num_replicas``-th index of
    the global draw from its ``rank``. The draw is padded by wrapping to a multiple of
    ``num_replicas``, so every rank gets ``ceil(num_samples / num_replicas)`` indices, or
    with ``drop_last`` cut to one, so every rank gets ``num_samples // num_replicas``
    (as ``DistributedSampler``'s ``drop_last``). ``seed`` is an integer in ``[0, 2**64)``
    (a user's seed is below ``2**32``; derived ones, like FineTuner's, can be larger).
    """

    def __init__(self, num_samples: int, *, seed: int = 0, num_replicas: int | None = None,
                 rank: int | None = None, drop_last: bool = False):
        num_replicas, rank = distributed_defaults(num_replicas, rank)
        check_int(num_samples, "num_samples", 1)
        check_int(num_replicas, "num_replicas", 1)
        check_int(rank, "rank", 0, num_replicas - 1)
        check_seed(seed, bits=64)
        check_flag(drop_last, "drop_last")
        self.num_samples = int(num_samples)  # global draws per epoch
        self.seed = int(seed)
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.drop_last = drop_last
        check(not self.drop_last or self.num_samples >= self.num_replicas, "drop_last",
              f"{self.num_samples} draws leave nothing for each of {self.num_replicas} ranks",
              f"num_samples >= {self.num_replicas}, or no drop_last")
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select which epoch's draw :meth:`__iter__` yields next, ``0 <= epoch <
        SEED_STRIDE``."""
        check_int(epoch, "epoch", 0, SEED_STRIDE - 1)
        self.epoch = int(epoch)

    def generator(self) -> torch.Generator:
        """A generator seeded from ``(seed, epoch)`` alone."""
        return torch.Generator().manual_seed(torch_seed(self.seed * SEED_STRIDE + self.epoch))

    def _draw(self, generator: torch.Generator) -> Tensor:
        raise NotImplementedError

    def epoch_indices(self) -> Tensor:
        """This rank's indices for the current epoch, an int64 tensor ``(len(self),)``."""
        idx = self._draw(self.generator())
        if self.num_replicas > 1:
            total = len(self) * self.num_replicas  # padded, or cut with drop_last
            if total > len(idx):  # pad by wrapping so every rank gets the same count
                idx = torch.cat([idx, idx[: total - len(idx)]])
            idx = idx[self.rank : total : self.num_replicas]
        return idx

    def __iter__(self) -> Iterator[int]:
        return iter(self.epoch_indices().tolist())

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_samples // self.num_replicas
        return math.ceil(self.num_samples / self.num_replicas)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        epoch, seed = state_entries(state, "epoch", "seed")
        check_seed(seed, bits=64)
        self.set_epoch(epoch)
        self.seed = int(seed)


def budget_samples(n: int, budget: float) -> int:
    """Examples per epoch under budget ``B``: ``round(N * B)``, at least 1, for ``N >= 1``
    examples (an integer)."""
    check_int(n, "n", 1)
    check_number(budget, "budget", "0 < budget <= 1")
    check(0.0 < budget <= 1.0, "budget", f"{budget} is outside (0, 1]", "0 < budget <= 1")
    return max(1, round(n * budget))


def epoch_draws(n: int, budget: float, batch_size: int) -> int:
    """Examples per epoch for budget ``B``, for every sampler, method and pipeline alike:
    ``round(N * B)`` rounded *down* to whole mini-batches (at least one batch), as the
    paper's code does (``int(N * B)`` with ``drop_last``). Rounding down keeps every method
    at or under the same budget: selective backprop trains about ``N * B`` examples as whole
    batches too. A full budget is a full pass, ``N`` (its last batch partial): the uniform
    training every other is compared with."""
    k = budget_samples(n, budget)
    if k >= n or k <= batch_size:
        return k
    return (k // batch_size) * batch_size

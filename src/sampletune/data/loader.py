"""Batches of ``(index, x, y)`` for the indices a sampler gives.

:class:`InMemoryLoader` keeps the whole split as tensors on the training device and
gathers each batch with one indexing op: no workers, no collation, no per-example Python.
:class:`StreamingLoader` is the ``DataLoader`` path for data that does not fit in memory.
Both take any ``torch.utils.data.Sampler[int]``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from sampletune.data.dataset import Split
from sampletune.errors import check

Batch = tuple[Tensor, Tensor, Tensor]  # index (B,) int64, x (B, *shape), y (B,) int64


@runtime_checkable
class EpochIndexed(Protocol):
    """A sampler that draws a whole epoch at once (sampletune's ``IndexSampler``)."""

    def epoch_indices(self) -> Tensor: ...


def epoch_indices(sampler: Sampler[int]) -> Tensor:
    """One epoch of a sampler's indices as an int64 tensor (fast path for sampletune's own)."""
    if isinstance(sampler, EpochIndexed):
        return sampler.epoch_indices()
    return torch.as_tensor(list(iter(sampler)), dtype=torch.long)


def check_indices(idx: Tensor, n: int, sampler: Sampler[int]) -> None:
    """One line naming ``sampler`` unless its epoch ``idx`` ``(k,)`` lies in ``[0, n)``: an
    index past the split fails deep in torch, and a negative one silently wraps around to
    the split's end. One min and max per epoch."""
    if len(idx):
        low, high = int(idx.min()), int(idx.max())
        check(low >= 0 and high < n, "sampler", f"{type(sampler).__name__} drew index "
              f"{low if low < 0 else high}, outside the {n} training examples",
              f"indices in [0, {n})")


class InMemoryLoader:
    """Yield ``(index, x, y)`` batches of ``batch_size`` from an in-memory split on ``device``."""

    def __init__(self, split: Split, sampler: Sampler[int], batch_size: int,
                 device: torch.device | str = "cpu"):
        self.split = split.to(device)
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.device = torch.device(device)

    def __len__(self) -> int:
        return math.ceil(len(self.sampler) / self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        idx = epoch_indices(self.sampler)
        check_indices(idx, len(self.split), self.sampler)
        idx = idx.to(self.device)
        x, y = self.split.x, self.split.y
        for start in range(0, len(idx), self.batch_size):
            b = idx[start : start + self.batch_size]
            yield b, x[b], y[b]


class _Indexed(Dataset):
    def __init__(self, split: Split):
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int):
        return i, self.split.x[i], self.split.y[i]


class StreamingLoader:
    """``DataLoader`` over a split that does not fit in memory; yields ``(index, x, y)``."""

    def __init__(self, split: Split, sampler: Sampler[int], batch_size: int,
                 device: torch.device | str = "cpu", num_workers: int = 2):
        self.sampler = sampler
        self.device = torch.device(device)
        self.loader = DataLoader(
            _Indexed(split), batch_size=batch_size, sampler=sampler, num_workers=num_workers,
            pin_memory=self.device.type == "cuda", persistent_workers=num_workers > 0,
        )

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Batch]:
        for i, x, y in self.loader:
            yield (i.to(self.device, non_blocking=True), x.to(self.device, non_blocking=True),
                   y.to(self.device, non_blocking=True))


def make_loader(split: Split, sampler: Sampler[int], batch_size: int,
                device: torch.device | str = "cpu", num_workers: int = 2):
    """The in-memory loader for tensor splits, the streaming one for lazy datasets."""
    if split.in_memory:
        return InMemoryLoader(split, sampler, batch_size, device)
    return StreamingLoader(split, sampler, batch_size, device, num_workers)

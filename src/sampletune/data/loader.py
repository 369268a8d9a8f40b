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


def check_index(index: int, n: int, sampler: Sampler[int]) -> None:
    """One line naming ``sampler`` unless ``index`` lies in ``[0, n)``: an index past the
    split fails deep in torch, and a negative one silently wraps around to the split's end."""
    check(0 <= index < n, "sampler", f"{type(sampler).__name__} drew index {index}, outside "
          f"the {n} training examples", f"indices in [0, {n})")


def check_indices(idx: Tensor, n: int, sampler: Sampler[int]) -> None:
    """:func:`check_index` for a whole epoch ``idx`` ``(k,)``: its min and max."""
    if len(idx):
        for index in (int(idx.min()), int(idx.max())):
            check_index(index, n, sampler)


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


class _InRange(Sampler[int]):
    """``sampler``'s indices, each checked (:func:`check_index`) as the ``DataLoader`` draws
    it in the main process, so a bad one is one line rather than a worker's traceback."""

    def __init__(self, sampler: Sampler[int], n: int):
        self.sampler, self.n = sampler, n

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[int]:
        for index in self.sampler:
            check_index(int(index), self.n, self.sampler)
            yield index


class StreamingLoader:
    """``DataLoader`` over a split that does not fit in memory; yields ``(index, x, y)``."""

    def __init__(self, split: Split, sampler: Sampler[int], batch_size: int,
                 device: torch.device | str = "cpu", num_workers: int = 2):
        self.sampler = sampler
        self.device = torch.device(device)
        self.loader = DataLoader(
            _Indexed(split), batch_size=batch_size, sampler=_InRange(sampler, len(split)),
            num_workers=num_workers,
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

"""Data-parallel training over a ``torch.distributed`` process group.

:class:`World` is this process's rank in the default process group (rank 0 of 1 without
one) and the few collectives the training loop needs: the global batch gathered from
every rank's shard, in the order one process would have seen it, sums and barriers.
:func:`process_group` starts the group for a process launched by ``torchrun``.

How a global batch is split: ``batch_size`` stays the *global* batch; each of the
``size`` ranks trains ``batch_size / size`` examples per step. A sampletune sampler gives
rank ``r`` every ``size``-th index of one global draw from ``r``, so rank ``r``'s ``j``-th
example of a step is position ``j * size + r`` of the single-process batch (the last,
shorter batch included: every rank gets the same count).

What every rank decides from computed numbers (a search's proposals and scores, a guard's
counts) is rank 0's, sent to the others as tensors (:meth:`World.broadcast`,
:meth:`World.decide`): rank 0 decides, the others follow, so no rank can take another
branch on a rounding difference, and nothing is pickled.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import Tensor, nn

from sampletune.errors import ConfigError, check
from sampletune.samplers.base import distributed_defaults

T = TypeVar("T")
LAUNCH_DEVICES = "cpu (gloo), cuda (nccl; process LOCAL_RANK uses cuda:LOCAL_RANK)"


@dataclass(frozen=True)
class World:
    """This process's ``rank`` among ``size`` processes of the default process group."""

    rank: int = 0
    size: int = 1

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def device(self) -> torch.device:
        """Where this rank's collectives run: its GPU under nccl, else the CPU (gloo)."""
        if self.distributed and dist.get_backend() == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def split_batch(self, batch_size: int) -> int:
        """This rank's share of a global batch of ``batch_size``."""
        check(batch_size % self.size == 0, "batch_size", f"{batch_size} does not split "
              f"evenly over {self.size} processes", f"a multiple of {self.size} (the global "
              f"batch: each process trains batch_size / {self.size})")
        return batch_size // self.size

    def all_gather(self, t: Tensor) -> Tensor:
        """``(size, *t.shape)``: every rank's ``t``, in rank order."""
        parts = [torch.empty_like(t) for _ in range(self.size)]
        dist.all_gather(parts, t.contiguous())
        return torch.stack(parts)

    def gather_batch(self, *shards: Tensor) -> tuple[Tensor, ...]:
        """The global batch of each 1-D per-example tensor in ``shards`` (the same length
        on every rank), in single-process order: position ``j * size + r`` is rank ``r``'s
        ``j``-th. One collective for all of them (exact for int64 below 2**53)."""
        packed = torch.stack([s.to(torch.float64) for s in shards])  # (k, b)
        full = self.all_gather(packed).permute(1, 2, 0).reshape(len(shards), -1)
        return tuple(f.to(s.dtype) for f, s in zip(full, shards, strict=True))

    def shard(self, t: Tensor) -> Tensor:
        """This rank's part of a global batch (the inverse of :meth:`gather_batch`)."""
        return t[self.rank :: self.size]

    def sum(self, t: Tensor) -> Tensor:
        """``t`` summed over the ranks (a new tensor)."""
        t = t.clone()
        dist.all_reduce(t)
        return t

    def broadcast(self, t: Tensor) -> Tensor:
        """Rank 0's ``t`` on every rank (``t`` has the same shape and dtype on every rank);
        ``t`` itself without a process group."""
        if not self.distributed:
            return t
        sent = t.detach().to(self.device, copy=True).contiguous()
        dist.broadcast(sent, 0)
        return sent.to(t.device)

    def decide(self, *values: float | None) -> tuple[float | None, ...]:
        """Rank 0's ``values`` on every rank (``None`` stays ``None``; an int comes back as
        an exact float below 2**53): the numbers a decision is taken on."""
        sent = torch.tensor([math.nan if v is None else v for v in values], dtype=torch.float64)
        return tuple(None if math.isnan(v) else v for v in self.broadcast(sent).tolist())

    def broadcast_buffers(self, model: nn.Module) -> None:
        """Rank 0's buffers (batch-norm statistics) on every rank, so evaluation and
        checkpoints see one model."""
        for buf in model.buffers():
            dist.broadcast(buf, 0)

    def agree(self, step: Callable[[], T], device: torch.device | str) -> T:
        """Run ``step`` here and return its result, after waiting for every rank (a
        collective on ``device``): if it raised a :class:`ConfigError` on any rank, every
        rank raises one, that error where it happened, elsewhere one naming the rank that
        stopped, so no rank waits forever and each prints one line."""
        error = result = None
        try:
            result = step()
        except ConfigError as err:
            error = err
        if self.distributed:
            failed = torch.tensor([-1 if error is None else self.rank], device=device)
            dist.all_reduce(failed, op=dist.ReduceOp.MAX)
            if error is None and failed.item() >= 0:
                raise ConfigError("torchrun", f"rank {failed.item()} stopped with its own "
                                  f"error, so rank {self.rank} stops too")
        if error is not None:
            raise error
        return result


def current_world() -> World:
    """The default process group's rank and size, or rank 0 of 1 without one."""
    size, rank = distributed_defaults(None, None)
    return World(rank, size)


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` in ``DistributedDataParallel``: gradients averaged over the ranks."""
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                   else None)


def launched_size() -> int:
    """Processes ``torchrun`` started (its ``WORLD_SIZE``), 1 when not launched by it."""
    size = os.environ.get("WORLD_SIZE", "1")
    check(size.isdigit() and int(size) >= 1, "WORLD_SIZE", f"{size!r} is not a process "
          "count", "a positive integer, as torchrun sets it")
    return int(size)


@contextlib.contextmanager
def process_group(device: str) -> Iterator[str]:
    """Under ``torchrun`` with more than one process, the default process group for the
    ``with`` block, initialised from torchrun's environment (``RANK``, ``WORLD_SIZE``,
    ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``): gloo on ``cpu``, nccl on ``cuda``
    with this process on ``cuda:LOCAL_RANK``. Yields this process's device (``device``
    unchanged without torchrun)."""
    size = launched_size()
    if size == 1:
        yield device
        return
    check(not dist.is_initialized(), "WORLD_SIZE", "a process group is already initialised")
    try:
        rank, local = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    except (KeyError, ValueError):
        raise ConfigError("RANK", f"WORLD_SIZE is {size} but RANK/LOCAL_RANK are not set",
                          "launch with torchrun") from None
    dev = torch.device(device)
    if dev.type == "cuda":
        check(dev.index is None, "device", f"{device!r} names one GPU for {size} processes",
              LAUNCH_DEVICES)
        count = torch.cuda.device_count()
        check(local < count, "device", f"process LOCAL_RANK={local} has no GPU (this machine "
              f"has {count})", f"--nproc_per_node at most {count}")
        torch.cuda.set_device(local)
        device, backend = f"cuda:{local}", "nccl"
    else:
        check(dev.type == "cpu", "device", f"{device!r} cannot run distributed",
              LAUNCH_DEVICES)
        backend = "gloo"
    dist.init_process_group(backend, rank=rank, world_size=size)
    try:
        yield device
        # No rank tears its connections down while another still talks to it (gloo aborts
        # the process when a peer disappears mid-exchange).
        dist.barrier()
    finally:
        dist.destroy_process_group()

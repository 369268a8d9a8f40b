"""Record a schedule from your own training loop, for AutoSampling's replay.

:class:`ScheduleRecorder` is told the indices of every batch your loop trains on (or, if
you run Algorithm 1 yourself, each exploitation interval's winning sub-schedule) and builds
the :class:`~sampletune.autosampling.schedule.RecordedSchedule` ``H*`` that
``sampletune autosampling search`` records. ``ScheduleSampler`` replays it batch by batch
(DYNAMIC) and ``static_sampler`` draws from its distribution (STATIC, eq. 6), on any model.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch

from sampletune.autosampling.schedule import RecordedSchedule
from sampletune.errors import check


class ScheduleRecorder:
    """Builds a :class:`RecordedSchedule` from the batches a loop trains on.

    Args:
        num_examples: ``N``, the size of the data the indices point into.
        batch_size: examples per batch; every recorded batch must have exactly this many
            (a ``DataLoader`` with ``drop_last=True``).
        steps_per_epoch: batches per epoch; by default the number the first epoch recorded.
            Every epoch must hold that many.
        split: optional fingerprint of the data, stored with the schedule.

    Epochs are numbered from 0 and recorded in order; batches of one epoch are replayed in
    the order recorded.
    """

    def __init__(self, num_examples: int, batch_size: int, *,
                 steps_per_epoch: int | None = None, split: str = ""):
        check(num_examples >= 1, "num_examples", f"{num_examples} must be positive", ">= 1")
        check(batch_size >= 1, "batch_size", f"{batch_size} must be positive", ">= 1")
        check(steps_per_epoch is None or steps_per_epoch >= 1, "steps_per_epoch",
              f"{steps_per_epoch} must be positive", ">= 1")
        self._schedule = RecordedSchedule(int(num_examples), int(batch_size),
                                          int(steps_per_epoch or 0), split=str(split))
        self._epoch = 0
        self._steps = 0  # batches recorded in the current epoch
        self._open: list[np.ndarray] = []  # record()ed batches not yet in an interval

    def record(self, indices, epoch: int) -> None:
        """One training step: ``indices`` ``(batch_size,)`` of the examples trained on
        (a tensor on any device, an array or a list) in epoch ``epoch``."""
        batch = self._batches(indices, epoch, "indices")
        self._open.append(batch)
        self._steps += 1

    def record_interval(self, batches, epoch: int, *, worker: int = 0,
                        val_acc: float = math.nan) -> None:
        """One exploitation interval of Algorithm 1 (eq. 5, ``H* <- H* + h_t*``): the winning
        ``worker``'s batches ``(steps, batch_size)`` and its validation accuracy."""
        rows = self._batches(batches, epoch, "batches")
        self._flush()
        self._schedule.append(rows.ravel(), epoch=epoch, worker=worker, val_acc=val_acc)
        self._steps += len(rows)

    @property
    def schedule(self) -> RecordedSchedule:
        """The schedule of the epochs recorded so far (the last one must be whole)."""
        self._flush()
        s = self._schedule
        check(s.num_intervals > 0, "schedule", "no batch recorded", "record() each step")
        self._close_epoch()
        return s

    def save(self, path: str | os.PathLike) -> None:
        """Write :attr:`schedule` as ``.npz``, atomically (read by ``ScheduleSampler(path)``,
        ``static_sampler(path)`` and ``sampletune autosampling replay``)."""
        self.schedule.save(path)

    # ---- internals -----------------------------------------------------------------------
    def _batches(self, indices, epoch: int, field: str) -> np.ndarray:
        """``indices`` as int64 ``(steps, batch_size)``, checked; starts epoch ``epoch``."""
        first = self._steps == 0 and self._schedule.num_intervals == 0
        allowed = (0,) if first else (self._epoch, self._epoch + 1)
        check(isinstance(epoch, int | np.integer) and epoch in allowed, "epoch",
              f"{epoch!r} " + ("as the first epoch" if first else f"after epoch {self._epoch}"),
              " or ".join(map(str, allowed)) + " (epochs in order from 0)")
        if isinstance(indices, torch.Tensor):
            indices = indices.detach().cpu().numpy()
        idx = np.asarray(indices)
        n, b = self._schedule.num_examples, self._schedule.batch_size
        check(idx.dtype.kind in "iu" and idx.size > 0, field, f"dtype {idx.dtype} with "
              f"{idx.size} entries", "integer example positions")
        check(idx.size % b == 0, field, f"{idx.size} indices are not whole batches of "
              f"{b}", "full batches: a DataLoader with drop_last=True")
        check(int(idx.min()) >= 0 and int(idx.max()) < n, field,
              f"positions {int(idx.min())}..{int(idx.max())} outside [0, {n})")
        if epoch != self._epoch:
            self._flush()
            self._close_epoch()
            self._epoch, self._steps = int(epoch), 0
        return idx.astype(np.int64).reshape(-1, b)

    def _flush(self) -> None:
        """The record()ed batches of the current epoch become one interval (worker 0)."""
        if self._open:
            self._schedule.append(np.concatenate(self._open), epoch=self._epoch, worker=0,
                                  val_acc=math.nan)
            self._open = []

    def _close_epoch(self) -> None:
        """Check the current epoch's batch count (the first epoch sets it if not given)."""
        s = self._schedule
        if s.steps_per_epoch == 0:
            s.steps_per_epoch = self._steps
        check(self._steps == s.steps_per_epoch, "epoch", f"epoch {self._epoch} has "
              f"{self._steps} batches, not {s.steps_per_epoch}",
              "the same number of batches every epoch")

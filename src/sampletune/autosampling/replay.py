"""Replay of an AutoSampling recorded schedule (autosampling-journal.txt, section 5.6, Table 9).

``ScheduleSampler`` is DYNAMIC: epoch ``e`` yields exactly the indices the search trained in
its epoch ``e``. :func:`static_sampler` is STATIC: i.i.d. draws from the final distribution
(eq. 6 over the whole schedule). Either can train another architecture (Table 10).
"""

from __future__ import annotations

import os

import torch
from torch import Tensor

from sampletune.autosampling.schedule import RecordedSchedule
from sampletune.errors import check
from sampletune.samplers.base import IndexSampler
from sampletune.samplers.weighted import WeightedSampler


def _as_schedule(schedule: RecordedSchedule | str | os.PathLike) -> RecordedSchedule:
    if not isinstance(schedule, RecordedSchedule):
        schedule = RecordedSchedule.load(schedule)
    check(schedule.num_epochs >= 1, "schedule", "records no epoch")
    return schedule


class ScheduleSampler(IndexSampler):
    """Epoch ``e`` is the recorded schedule's epoch ``e`` (``steps_per_epoch * batch_size``
    indices), in the recorded order.

    The replay is batch-exact when the trainer's batch size equals ``self.batch_size``.
    Epochs beyond the recorded ones are a :class:`ConfigError`. ``kw``: ``seed`` (unused by
    the draw, kept for the common sampler state) and the sharding of :class:`IndexSampler`.
    """

    def __init__(self, schedule: RecordedSchedule | str | os.PathLike, **kw):
        self.schedule = _as_schedule(schedule)
        super().__init__(self.schedule.epoch_length, **kw)
        self.batch_size = self.schedule.batch_size
        self.num_epochs = self.schedule.num_epochs

    def _draw(self, generator: torch.Generator) -> Tensor:
        return torch.from_numpy(self.schedule.epoch_indices(self.epoch))


def static_sampler(schedule: RecordedSchedule | str | os.PathLike, **kw) -> WeightedSampler:
    """STATIC: ``epoch_length`` draws per epoch, with replacement, from eq. (6) over the
    whole recorded schedule (``kw``: seed and sharding, as :class:`WeightedSampler`)."""
    s = _as_schedule(schedule)
    return WeightedSampler(torch.from_numpy(s.distribution()), s.epoch_length, **kw)

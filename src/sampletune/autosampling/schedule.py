"""The recorded schedule H* (Algorithms 1-2): the best worker's sub-schedule of every interval.

Logically one int array per exploitation interval; stored compactly in one ``.npz`` as the
concatenated indices plus interval offsets, with each interval's epoch, winning worker and
validation accuracy. Intervals never straddle epochs (:func:`plan_intervals`), so epoch
``e`` of the schedule is the concatenation of its intervals, ``steps_per_epoch`` batches.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sampletune import io
from sampletune.autosampling.algorithm import estimate_distribution
from sampletune.errors import ConfigError, check

FORMAT = 1


@dataclass
class RecordedSchedule:
    """H*: indices (training-set positions) the best worker trained on, interval by interval."""

    num_examples: int
    batch_size: int
    steps_per_epoch: int
    intervals: list[np.ndarray] = field(default_factory=list)  # each (batches * batch_size,)
    epochs_of: list[int] = field(default_factory=list)  # epoch of each interval
    workers: list[int] = field(default_factory=list)  # winning worker of each interval
    val_acc: list[float] = field(default_factory=list)  # its accuracy (NaN if not evaluated)
    split: str = ""  # fingerprint of the training split it indexes (Split.fingerprint)

    def append(self, indices: np.ndarray, *, epoch: int, worker: int, val_acc: float) -> None:
        """Record one interval's winning sub-schedule (eq. 5: ``H* <- H* + h_t*``)."""
        idx = np.asarray(indices, dtype=np.int64).ravel()
        check(idx.size % self.batch_size == 0, "indices",
              f"{idx.size} is not whole batches of {self.batch_size}")
        last = self.epochs_of[-1] if self.epochs_of else 0
        check(epoch >= last, "epoch", f"{epoch} is before the last recorded epoch {last}")
        self.intervals.append(idx)
        self.epochs_of.append(int(epoch))
        self.workers.append(int(worker))
        self.val_acc.append(float(val_acc))

    @property
    def num_intervals(self) -> int:
        return len(self.intervals)

    @property
    def num_epochs(self) -> int:
        """Epochs recorded (the last one may be partial while a search runs)."""
        return self.epochs_of[-1] + 1 if self.epochs_of else 0

    @property
    def epoch_length(self) -> int:
        """Indices per epoch: ``steps_per_epoch * batch_size``."""
        return self.steps_per_epoch * self.batch_size

    def epoch_indices(self, epoch: int) -> np.ndarray:
        """int64 ``(epoch_length,)``: the indices trained in ``epoch``, in order."""
        check(0 <= epoch < self.num_epochs, "epoch",
              f"{epoch} is outside the recorded {self.num_epochs} epochs",
              f"0..{self.num_epochs - 1}")
        lo, hi = np.searchsorted(self.epochs_of, [epoch, epoch + 1])
        return np.concatenate(self.intervals[lo:hi])

    def indices(self, start_epoch: int = 0, stop_epoch: int | None = None) -> np.ndarray:
        """All indices of epochs ``[start_epoch, stop_epoch)`` concatenated (int64)."""
        stop = self.num_epochs if stop_epoch is None else stop_epoch
        lo, hi = np.searchsorted(self.epochs_of, [start_epoch, stop])
        parts = self.intervals[lo:hi]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    def counts(self, start_epoch: int = 0, stop_epoch: int | None = None) -> np.ndarray:
        """int64 ``(num_examples,)``: how often each example appears in those epochs."""
        return np.bincount(self.indices(start_epoch, stop_epoch), minlength=self.num_examples)

    def distribution(self) -> np.ndarray:
        """Eq. (6) over the whole schedule: the final sampling distribution (STATIC, Table 9)."""
        return estimate_distribution(self.indices(), self.num_examples)

    # ---- storage --------------------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        flat = self.indices()
        dtype = np.int32 if self.num_examples < 2**31 else np.int64
        offsets = np.cumsum([0] + [len(i) for i in self.intervals], dtype=np.int64)
        return {
            "format": np.array(FORMAT), "num_examples": np.array(self.num_examples),
            "batch_size": np.array(self.batch_size),
            "steps_per_epoch": np.array(self.steps_per_epoch),
            "indices": flat.astype(dtype), "offsets": offsets,
            "epoch": np.asarray(self.epochs_of, np.int64),
            "worker": np.asarray(self.workers, np.int64),
            "val_acc": np.asarray(self.val_acc, np.float64), "split": np.array(self.split),
        }

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> RecordedSchedule:
        """The schedule :meth:`to_arrays` gave; anything else is a :class:`ConfigError`."""
        try:
            if int(a["format"]) != FORMAT:
                raise ConfigError("schedule", f"format {int(a['format'])} is not {FORMAT}")
            flat, offsets = np.asarray(a["indices"], np.int64), np.asarray(a["offsets"])
            if not (offsets.ndim == 1 and len(offsets) >= 1 and offsets.dtype.kind in "iu"
                    and offsets[0] == 0 and offsets[-1] == len(flat)
                    and bool((np.diff(offsets) >= 0).all())):
                raise ConfigError("schedule", "its offsets do not run from 0 up to the number "
                                  "of indices", "schedule.npz of an autosampling search")
            schedule = cls(
                int(a["num_examples"]), int(a["batch_size"]), int(a["steps_per_epoch"]),
                [flat[lo:hi] for lo, hi in zip(offsets[:-1], offsets[1:], strict=True)],
                [int(e) for e in a["epoch"]], [int(w) for w in a["worker"]],
                [float(v) for v in a["val_acc"]], str(a["split"]) if "split" in a else "",
            )
        except (KeyError, IndexError, TypeError, ValueError, OverflowError) as err:
            raise ConfigError("schedule", f"not a recorded schedule ({io.describe_error(err)})",
                              "schedule.npz of an autosampling search") from None
        n, intervals = schedule.num_examples, schedule.intervals
        check(len(intervals) == len(schedule.epochs_of) == len(schedule.workers)
              and all(i.size == 0 or 0 <= int(i.min()) <= int(i.max()) < n for i in intervals)
              and schedule.epochs_of == sorted(schedule.epochs_of), "schedule",
              "its intervals, epochs or indices are inconsistent",
              "schedule.npz of an autosampling search")
        return schedule

    def save(self, path: str | os.PathLike) -> None:
        """Write the schedule as one ``.npz``, atomically."""
        io.save_npz(path, **self.to_arrays())

    @classmethod
    def load(cls, path: str | os.PathLike) -> RecordedSchedule:
        p = Path(path)
        if not p.exists():
            raise ConfigError("schedule", f"{p} does not exist")
        return cls.from_arrays(io.load_numpy(p, "schedule"))

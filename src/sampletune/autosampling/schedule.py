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
_ALLOWED = "schedule.npz of an autosampling search"


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
    def from_arrays(cls, a: dict[str, np.ndarray], *, partial: bool = False
                    ) -> RecordedSchedule:
        """The schedule :meth:`to_arrays` gave; anything else is a :class:`ConfigError`.

        Epochs run from 0 without gaps, each of whole batches, ``steps_per_epoch`` of them;
        ``partial`` lets the last epoch be short (a search's checkpoint).
        """
        try:
            fmt, n, batch, steps = (int(_array(a, k, 0, "iu")) for k in
                                    ("format", "num_examples", "batch_size", "steps_per_epoch"))
            flat, offsets = _array(a, "indices", 1, "iu"), _array(a, "offsets", 1, "iu")
            epochs, workers = _array(a, "epoch", 1, "iu"), _array(a, "worker", 1, "iu")
            val_acc = _array(a, "val_acc", 1, "f")
            split = str(_array(a, "split", 0, "U")) if "split" in a else ""
        except KeyError as err:
            raise ConfigError("schedule", f"not a recorded schedule (no {err} array)",
                              _ALLOWED) from None
        check(fmt == FORMAT, "schedule", f"format {fmt} is not {FORMAT}", _ALLOWED)
        check(n >= 1 and batch >= 1 and steps >= 1, "schedule", f"num_examples {n}, "
              f"batch_size {batch} and steps_per_epoch {steps} must be positive", _ALLOWED)
        check(len(offsets) == len(epochs) + 1 and len(offsets) >= 1 and offsets[0] == 0
              and offsets[-1] == len(flat) and bool((np.diff(offsets) >= 0).all()),
              "schedule", "its offsets do not run from 0 up to the number of indices, one "
              "interval per epoch entry", _ALLOWED)
        sizes = np.diff(offsets)
        check(len(workers) == len(val_acc) == len(sizes) and not (sizes % batch).any(),
              "schedule", f"its intervals are not whole batches of {batch}, each with an "
              "epoch, worker and accuracy", _ALLOWED)
        check(flat.size == 0 or 0 <= int(flat.min()) <= int(flat.max()) < n, "schedule",
              f"its indices are outside [0, {n})", _ALLOWED)
        check(epochs.size == 0 or (epochs[0] == 0 and bool(np.isin(np.diff(epochs),
                                                                   (0, 1)).all())),
              "schedule", "its epochs do not run from 0 without gaps", _ALLOWED)
        starts = np.flatnonzero(np.diff(epochs, prepend=-1))
        totals = np.add.reduceat(sizes, starts) if sizes.size else sizes
        whole = totals[:-1] if partial else totals
        check(bool((whole == steps * batch).all()) and bool((totals <= steps * batch).all()),
              "schedule", f"its epochs do not each hold {steps} batches of {batch}", _ALLOWED)
        return cls(n, batch, steps,
                   [flat[lo:hi] for lo, hi in zip(offsets[:-1], offsets[1:], strict=True)],
                   epochs.tolist(), workers.tolist(), val_acc.tolist(), split)

    def save(self, path: str | os.PathLike) -> None:
        """Write the schedule as one ``.npz``, atomically."""
        io.save_npz(path, **self.to_arrays())

    @classmethod
    def load(cls, path: str | os.PathLike) -> RecordedSchedule:
        p = Path(path)
        if not p.exists():
            raise ConfigError("schedule", f"{p} does not exist")
        return cls.from_arrays(io.load_numpy(p, "schedule"))


def _array(a: dict, key: str, ndim: int, kinds: str) -> np.ndarray:
    """``a[key]``, checked to have ``ndim`` dimensions and a dtype of ``kinds`` (integers
    come back as int64)."""
    v = np.asarray(a[key])
    noun = {"iu": "integers", "f": "floats", "U": "text"}[kinds]
    check(v.ndim == ndim and v.dtype.kind in kinds, "schedule",
          f"its {key} is {v.dtype} of {v.ndim} dimensions, not {noun} of {ndim}", _ALLOWED)
    return v.astype(np.int64) if kinds == "iu" else v

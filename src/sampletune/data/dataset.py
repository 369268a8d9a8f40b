"""The data containers every part of sampletune passes around.

A registered loader returns a :class:`RawDataset` (train and test arrays as the source
ships them); :func:`sampletune.data.splits.make_splits` turns it into :class:`DataSplits`
with a validation split carved from training, label noise applied to training only, and
inputs normalised with training statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from torch import Tensor
from torch.utils.data import Dataset

from sampletune.errors import check, check_flag
from sampletune.io import digest

MAX_CLASSES = 100_000  # a hard cap on num_classes (ImageNet-21k has ~22k)
KINDS = ("image", "vector", "sequence")  # RawDataset.kind: decides which augmentations apply


@dataclass
class RawDataset:
    """A data set as loaded from its source.

    ``x_*`` are float32 tensors shaped ``(N, C, H, W)`` for images (values in [0, 1]) or
    ``(N, L)`` / ``(N, C, L)`` for vectors and sequences; for data that does not fit in
    memory they are a ``Dataset`` whose ``__getitem__(i)`` returns one input tensor.
    ``y_*`` are int64 class labels ``(N,)``.
    """

    name: str
    x_train: Tensor | Dataset
    y_train: Tensor
    x_test: Tensor | Dataset
    y_test: Tensor
    num_classes: int
    kind: str = "image"  # "image" | "vector" | "sequence": decides which augmentations apply
    hflip: bool = True  # horizontal flip is label-preserving (False for digits, SVHN)
    classes: list[str] = field(default_factory=list)

    def __post_init__(self):
        check(self.kind in KINDS, "dataset.kind", f"unknown kind {self.kind!r}",
              ", ".join(KINDS))
        check_flag(self.hflip, "dataset.hflip")

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input, e.g. ``(1, 8, 8)``."""
        x0 = self.x_train[0]
        return tuple(x0.shape)


@dataclass
class Split:
    """One split of examples. Position ``i`` in the split is the example's index.

    ``y`` holds the labels used for training (noisy where noise was applied); ``clean_y``
    and ``noisy`` are kept for analysis and oracles only and are never used to train.
    """

    x: Tensor | Dataset  # (n, *input_shape), or a Dataset for data that does not fit
    y: Tensor  # (n,) int64 training labels
    clean_y: Tensor  # (n,) int64 true labels
    noisy: Tensor  # (n,) bool, y != clean_y

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def in_memory(self) -> bool:
        return isinstance(self.x, Tensor)

    def fingerprint(self) -> str:
        """A short hash of the split's training and clean labels, in order.

        Samplers, features and schedules index examples by position; a file fitted on one
        split records this so it is never applied to another (a different seed, noise rate
        or subset gives different labels in a different order).
        """
        return digest(*(t.detach().to("cpu", torch.int64).numpy().tobytes()
                        for t in (self.y, self.clean_y)))

    def to(self, device: torch.device | str) -> Split:
        """The split with its tensors on ``device`` (a lazy ``Dataset`` stays as it is)."""
        x = self.x.to(device) if self.in_memory else self.x
        return Split(x, self.y.to(device), self.clean_y.to(device), self.noisy.to(device))

    def subset(self, index: Tensor) -> Split:
        """The examples at ``index`` (int64 positions), in that order."""
        if self.in_memory:
            x = self.x[index]
        else:
            x = torch.utils.data.Subset(self.x, index.tolist())
        return Split(x, self.y[index], self.clean_y[index], self.noisy[index])


@dataclass
class DataSplits:
    """Train / validation / test splits of one data set, plus what augmentation needs to know."""

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    kind: str
    hflip: bool
    input_shape: tuple[int, ...]
    mean: Tensor | None = None  # per-channel normalisation applied to x (train statistics)
    std: Tensor | None = None


def check_labels(y: Tensor, num_classes: int, field: str) -> Tensor:
    """``y`` as (N,) int64 class ids in [0, num_classes): integers, or floats with integral
    values; anything else is a :class:`ConfigError` naming ``field``."""
    y = torch.as_tensor(y)
    check(y.dim() == 1, field, f"has shape {tuple(y.shape)}", "(N,) class ids")
    if y.is_floating_point():
        check(bool(torch.isfinite(y).all()) and bool((y == y.round()).all()), field,
              "holds non-integral labels", "integer class ids 0..C-1")
    else:
        check(y.dtype not in (torch.bool, torch.complex64, torch.complex128), field,
              f"has dtype {y.dtype}", "integer class ids 0..C-1")
    if len(y):
        lo, hi = y.min().item(), y.max().item()
        check(lo >= 0 and hi < num_classes, field,
              f"has labels in [{lo:g}, {hi:g}] outside [0, {num_classes})",
              f"class ids 0..{num_classes - 1}")
    return y.to(torch.int64)


def _check_inputs(x, n: int, field: str) -> None:
    if isinstance(x, Tensor):
        check(x.dim() >= 2 and x.shape[0] == n, field,
              f"has shape {tuple(x.shape)} for {n} labels", "(N, ...) with one row per label")
        check(all(d >= 1 for d in x.shape[1:]), field, f"has empty examples {tuple(x.shape)}")
        check(x.is_floating_point(), field, f"has dtype {x.dtype}", "float inputs")
        check(bool(torch.isfinite(x).all()), field, "contains NaN or infinite values",
              "finite numbers")
    elif hasattr(x, "__len__"):
        check(len(x) == n, field, f"holds {len(x)} examples for {n} labels")


def validate_raw(raw: RawDataset, prefix: str = "dataset") -> RawDataset:
    """Check what a loader returned; the same raw data with int64 labels.

    ``num_classes`` in [2, min(rows, MAX_CLASSES)]; labels in [0, num_classes) with every
    class present in training; inputs finite with one row per label; test examples shaped
    like training ones. Problems are one-line :class:`ConfigError` s named
    ``PREFIX.y`` / ``PREFIX.x_test`` ...
    """
    k, n = raw.num_classes, len(raw.y_train)
    check(isinstance(k, int) and k <= MAX_CLASSES, f"{prefix}.num_classes",
          f"{k} classes", f"2..{MAX_CLASSES}")
    check(k >= 2, f"{prefix}.y", f"names {k} class; a classifier needs two or more",
          "labels of two or more classes")
    check(n >= k, f"{prefix}.y", f"{n} training examples for {k} classes",
          "at least one training example per class")
    y = check_labels(raw.y_train, k, f"{prefix}.y")
    yt = check_labels(raw.y_test, k, f"{prefix}.y_test")
    missing = torch.nonzero(torch.bincount(y, minlength=k) == 0).flatten().tolist()
    check(not missing, f"{prefix}.y", f"class {missing[0] if missing else 0} has no training "
          f"examples ({len(missing)} of {k} classes missing)",
          "labels 0..C-1 with every class in training")
    check(len(yt) >= 1, f"{prefix}.y_test", "the test split is empty")
    _check_inputs(raw.x_train, n, f"{prefix}.x")
    _check_inputs(raw.x_test, len(yt), f"{prefix}.x_test")
    if isinstance(raw.x_train, Tensor) and isinstance(raw.x_test, Tensor):
        check(raw.x_test.shape[1:] == raw.x_train.shape[1:], f"{prefix}.x_test",
              f"examples shaped {tuple(raw.x_test.shape[1:])} but training ones are "
              f"{tuple(raw.x_train.shape[1:])}")
    return replace(raw, y_train=y, y_test=yt)

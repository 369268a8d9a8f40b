"""The data containers every part of sampletune passes around.

A registered loader returns a :class:`RawDataset` (train and test arrays as the source
ships them); :func:`sampletune.data.splits.make_splits` turns it into :class:`DataSplits`
with a validation split carved from training, label noise applied to training only, and
inputs normalised with training statistics.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.utils.data import Dataset


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
        h = hashlib.sha1()
        for t in (self.y, self.clean_y):
            h.update(t.detach().to("cpu", torch.int64).numpy().tobytes())
        return h.hexdigest()[:16]

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

"""Augmentation policies by name, checked against the data they apply to."""

from __future__ import annotations

import torch
from torch import Tensor

from sampletune.augment.image import CropFlip, RandAugment
from sampletune.augment.mix import RICAP, Mixup
from sampletune.data.dataset import DataSplits
from sampletune.errors import ConfigError
from sampletune.train.hooks import Augment, Mixer

AUGMENT_NAMES = ("none", "standard", "randaugment", "mixup", "ricap")


class Compose:
    """Apply per-example augmentations in order, all from one generator."""

    def __init__(self, *steps: Augment):
        self.steps = steps

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        for step in self.steps:
            x = step(x, generator)
        return x


def crop_padding(height: int) -> int:
    """Pixels of padding of the standard crop for images ``height`` pixels tall: the papers'
    4 at CIFAR's 32 (and Fashion-MNIST's 28), scaled with the image (1 at digits' 8, where
    4 would shift the digit by half its width)."""
    return max(1, round(height / 8))


def build_augment(name: str, data: DataSplits, *, alpha: float = 0.3, randaugment_n: int = 2,
                  randaugment_m: int = 4) -> tuple[Augment | None, Mixer | None]:
    """``(augment, mixer)`` for the trainer's hooks (budgeted-importance-sampling.txt 4.1, 4.5).

    - ``none``: nothing.
    - ``standard``: crop with padding (:func:`crop_padding`: 4 pixels at 28-32 px) +
      horizontal flip (no flip if ``data.hflip`` is False).
    - ``randaugment``: RandAugment(N, M) then the standard crop + flip.
    - ``mixup`` / ``ricap``: the standard crop + flip, then mixing with ``alpha``.

    Raises :class:`ConfigError` for any augmentation other than ``none`` on data that is not
    image-shaped ``(C, H, W)``.
    """
    if name not in AUGMENT_NAMES:
        raise ConfigError("augment", f"unknown augmentation {name!r}", ", ".join(AUGMENT_NAMES))
    if name == "none":
        return None, None
    if data.kind != "image" or len(data.input_shape) != 3:
        raise ConfigError("augment", f"{name!r} needs image data (C, H, W) but {data.name!r} is "
                          f"{data.kind} data shaped {tuple(data.input_shape)}", "none")
    crop = CropFlip(crop_padding(data.input_shape[1]), hflip=data.hflip, mean=data.mean,
                    std=data.std)
    if name == "standard":
        return crop, None
    if name == "randaugment":
        return Compose(RandAugment(randaugment_n, randaugment_m, data.mean, data.std), crop), None
    return crop, (Mixup(alpha) if name == "mixup" else RICAP(alpha))

"""Data augmentation for budgeted training: crop + flip, RandAugment, mixup, RICAP."""

from sampletune.augment.factory import AUGMENT_NAMES, Compose, build_augment
from sampletune.augment.image import CropFlip, RandAugment
from sampletune.augment.mix import RICAP, Mixup, sample_beta

__all__ = ["AUGMENT_NAMES", "RICAP", "Compose", "CropFlip", "Mixup", "RandAugment",
           "build_augment", "sample_beta"]

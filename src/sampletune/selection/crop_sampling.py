"""Crop-level sampling (swift-sampler.txt section 4.2): with random-crop augmentation the
samples are crops, not images.

"During re-training and the fine-tuning ... we randomly sample twice the number of needed
crops, calculate their features on the according pre-trained model, and use the given
sampler and the features to sample half of them." For a batch of ``B`` images,
:class:`CropSampling` makes ``factor * B`` random crops (each image ``factor`` times, by the
run's crop augmentation), computes their features with the frozen pre-trained model in one
batched no-grad forward pass in eval mode, turns them into sampler weights and keeps ``B``
crops by sampling without replacement proportional to the weights (the paper samples; it
does not take the top ``B``). An image may give two of the kept crops, or none.

Every random draw (the crops and the keep) comes from a generator on the batch's device
seeded by ``(seed, epoch, step)`` alone, ``step`` counting the batches of the epoch, so a
batch keeps the same crops whatever ran before it (and a resumed run draws what the
uninterrupted one drew).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from sampletune.errors import check
from sampletune.features import batch_features
from sampletune.samplers.weighted import sample_without_replacement
from sampletune.train.loop import Augment


class CropSampling:
    """A :class:`~sampletune.train.loop.Selector` that replaces the crop augmentation.

    Args:
        model: the pre-trained model the features come from; frozen (eval mode, no grad).
        weights: crop features ``{name: float64 (factor B,)}`` -> non-negative sampler
            weights ``(factor B,)`` (e.g. :meth:`sampletune.swift.SwiftFamily.scorer`).
        features: the feature names ``weights`` reads (:data:`sampletune.features.FEATURE_NAMES`).
        crop: the crop augmentation ``(x, generator) -> crops`` (e.g. ``CropFlip``); the
            trainer must not augment again.
        factor: candidate crops per kept crop (the paper's 2).
        seed: with the epoch and the step, seeds every draw.

    Crops with weight 0 are never kept: when fewer than ``B`` crops of a batch have a
    positive weight, all of those are kept (a smaller batch), and a batch with none is
    skipped (``select`` returns ``None``).
    """

    def __init__(self, model: nn.Module, weights: Callable[[dict[str, Tensor]], Tensor],
                 features: Sequence[str], crop: Augment, *, factor: int = 2, seed: int = 0):
        check(factor >= 1, "crop_factor", f"{factor} must be at least 1", ">= 1")
        self.model = model.eval().requires_grad_(False)
        self.weights, self.features = weights, tuple(features)
        self.crop, self.factor, self.seed = crop, int(factor), int(seed)
        self.epoch, self.step = 0, 0
        self.candidates = 0  # crops scored so far
        self.kept = 0  # crops handed to the training step

    def set_epoch(self, epoch: int) -> None:
        """Start epoch ``epoch``: steps count from 0 again."""
        self.epoch, self.step = int(epoch), 0

    def generator(self, device: torch.device) -> torch.Generator:
        """The generator of the current ``(seed, epoch, step)``, on ``device``."""
        seed = np.random.SeedSequence([self.seed, self.epoch, self.step]).generate_state(1)[0]
        return torch.Generator(device).manual_seed(int(seed))

    @torch.no_grad()
    def select(self, model: nn.Module, index: Tensor, x: Tensor, y: Tensor
               ) -> tuple[Tensor, Tensor, Tensor] | None:
        """``(index, crops, labels)`` of the kept crops ``(k,)``, ``(k, C, H, W)``, ``(k,)``
        with ``k = min(B, crops with positive weight)``; ``None`` if ``k = 0``. The model
        being trained (``model``) is not used: the features are the pre-trained model's."""
        del model
        gen = self.generator(x.device)
        self.step += 1
        source = torch.arange(len(x), device=x.device).repeat(self.factor)  # (factor B,)
        crops = self.crop(x[source], gen)
        feats = batch_features(self.model.to(x.device), crops, y[source], self.features)
        w = self.weights(feats).to(x.device, torch.float64)
        check(w.shape == source.shape and bool(torch.isfinite(w).all())
              and bool((w >= 0).all()), "weights", "crop weights must be finite and "
              f"non-negative, one per crop ({len(source)})")
        self.candidates += len(source)
        k = min(len(x), int((w > 0).sum()))
        if k == 0:
            return None
        keep = sample_without_replacement(w, k, gen)
        self.kept += k
        return index[source[keep]], crops[keep], y[source[keep]]

    def loss_weights(self, losses: Tensor) -> None:
        return None  # kept crops train with the plain mean loss

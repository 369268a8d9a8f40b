"""Crop-level sampling with a Swift sampler file (swift-sampler.txt section 4.2).

The images of an epoch are drawn uniformly (the crops are sampled *instead of* the whole
images); each batch's crops are scored by the sampler's ``tau = H(T(G(f)))`` on features
from the model the sampler's features came from (``w_share``). A crop is a new point, so
eq. 7 needs a reference distribution: each crop feature goes through the empirical cdf of
the training set's whole-image features stored in the feature file (``searchsorted``), and
T is the one fitted on the training set's G (:meth:`SwiftFamily.scorer`). Crops (with their
zero padding) are somewhat harder than whole images, so their features sit a little higher
on that reference.
"""

from __future__ import annotations

from pathlib import Path

import torch

from sampletune import io
from sampletune.augment import build_augment
from sampletune.data.dataset import DataSplits
from sampletune.errors import ConfigError, check
from sampletune.features import MODEL_FEATURES
from sampletune.models import build_model
from sampletune.selection import CropSampling
from sampletune.swift.sampler_file import checked_spec


def crop_sampling(data: DataSplits, weights_path: str | Path | None, *, seed: int,
                  device: str | torch.device = "cpu") -> CropSampling:
    """The trainer's selector for ``--crop-sampling``: 2 candidate crops per needed crop (the
    standard crop with 4-pixel padding, and a horizontal flip where ``data.hflip``), scored
    on ``device`` by the Swift sampler file ``weights_path`` and its feature model.

    Raises :class:`ConfigError` on non-image data, or a sampler file that names no feature
    model or one that does not fit ``data``.
    """
    check(data.kind == "image" and len(data.input_shape) == 3, "crop_sampling",
          f"needs image data (C, H, W) but {data.name!r} is {data.kind} data shaped "
          f"{tuple(data.input_shape)}", "an image data set, or leave --crop-sampling out")
    spec = checked_spec(data, weights_path)
    check(bool(spec.feature_model and spec.feature_arch), "weights",
          f"{weights_path} names no feature model to score crops with", "a sampler.json "
          "written by swift search of this version (it saves the model's weights beside it)")
    per_crop = [k for k in spec.features if k not in MODEL_FEATURES]
    check(not per_crop, "crop_sampling", f"the sampler uses {per_crop}, which has no value "
          "for a new crop (a statistic of w_share's training)", "a sampler searched with "
          "--features loss renormed_entropy")
    model = build_model(spec.feature_arch, data.input_shape, data.num_classes)
    state = io.load_torch(spec.feature_model, "weights")
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as err:
        raise ConfigError("weights", f"{spec.feature_model} does not fit a "
                          f"{spec.feature_arch!r} on {data.name!r} ({io.describe_error(err)})",
                          "the feature model swift search saved for this data") from None
    family = spec.family()
    crop, _ = build_augment("standard", data)
    return CropSampling(model, family.scorer(spec.params, device), spec.features, crop,
                        seed=seed)

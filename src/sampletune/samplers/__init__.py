"""Index samplers: every one is a ``torch.utils.data.Sampler[int]`` with its own generator,
``set_epoch``, ``state_dict`` / ``load_state_dict`` and ``epoch_indices()``."""

from sampletune.samplers.adaptive import (
    CSGDSampler,
    PSGDSampler,
    csgd_probabilities,
    psgd_probabilities,
    seen_mean,
    smoothed_probabilities,
)
from sampletune.samplers.base import IndexSampler, budget_samples
from sampletune.samplers.factory import (
    build_sampler,
    load_weights,
    register_sampler,
    sampler_names,
)
from sampletune.samplers.shuffle import ShuffleSampler, UniformSampler
from sampletune.samplers.weighted import WeightedSampler, validate_weights

__all__ = [
    "CSGDSampler", "IndexSampler", "PSGDSampler", "ShuffleSampler", "UniformSampler",
    "WeightedSampler", "budget_samples", "build_sampler", "csgd_probabilities", "load_weights",
    "psgd_probabilities", "register_sampler", "sampler_names", "seen_mean",
    "smoothed_probabilities", "validate_weights",
]

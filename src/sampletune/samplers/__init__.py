"""Index samplers: every one is a ``torch.utils.data.Sampler[int]`` with its own generator,
``set_epoch``, ``state_dict`` / ``load_state_dict`` and ``epoch_indices()``."""

from sampletune.samplers.adaptive import CSGDSampler, PSGDSampler
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
    "WeightedSampler", "budget_samples", "build_sampler", "load_weights", "register_sampler",
    "sampler_names", "validate_weights",
]

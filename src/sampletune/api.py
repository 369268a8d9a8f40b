"""Everything a plain PyTorch training loop needs from sampletune, in one import.

- features: :func:`features_from_loader` (loss, renormed entropy, gradient norms of any
  model on any ``DataLoader``), :func:`compute_features` (on tensors);
- Swift Sampler: :class:`SwiftStudy` (ask/tell search, you score each ``trial.sampler``),
  :func:`sampler_from_file` (a ``DataLoader`` sampler from a ``sampler.json``);
- AutoSampling: :class:`ScheduleRecorder` (record the batches your loop trains on),
  :class:`ScheduleSampler` / :func:`static_sampler` (replay them);
- budgeted importance sampling: :class:`PSGDSampler` / :class:`CSGDSampler` (samplers you
  ``observe(indices, true_prob)`` from your step), their pure rules :func:`seen_mean`,
  :func:`psgd_probabilities`, :func:`csgd_probabilities`, and selective backprop's
  :func:`sb_select` / :func:`sb_keep_probability` on per-example losses;
- seeds: :func:`derive_seed`, :func:`torch_generator`, :func:`numpy_generator`.

The README section "Use it from your own training loop" is a runnable example.
"""

from sampletune.autosampling.recorder import ScheduleRecorder
from sampletune.autosampling.replay import ScheduleSampler, static_sampler
from sampletune.features import compute_features, features_from_loader
from sampletune.samplers import (
    CSGDSampler,
    PSGDSampler,
    ShuffleSampler,
    WeightedSampler,
    csgd_probabilities,
    psgd_probabilities,
    seen_mean,
)
from sampletune.seeding import derive_seed, numpy_generator, torch_generator
from sampletune.selection import sb_keep_probability, sb_select, selectivity_for_budget
from sampletune.swift.sampler_file import sampler_from_file
from sampletune.swift.study import SwiftStudy, Trial

__all__ = [
    "CSGDSampler", "PSGDSampler", "ScheduleRecorder", "ScheduleSampler", "ShuffleSampler",
    "SwiftStudy", "Trial",
    "WeightedSampler", "compute_features", "csgd_probabilities", "derive_seed",
    "features_from_loader", "numpy_generator", "psgd_probabilities", "sampler_from_file",
    "sb_keep_probability", "sb_select", "seen_mean", "selectivity_for_budget", "static_sampler",
    "torch_generator",
]

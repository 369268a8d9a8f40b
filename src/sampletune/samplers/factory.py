"""Samplers by name, for the command line and configs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sampletune import io
from sampletune.data.dataset import DataSplits
from sampletune.errors import ConfigError, check
from sampletune.samplers.base import IndexSampler, budget_samples
from sampletune.samplers.shuffle import ShuffleSampler, UniformSampler
from sampletune.samplers.weighted import WeightedSampler

SAMPLER_NAMES = ("uniform", "shuffle", "with-replacement", "oracle", "weights", "swift")


def build_sampler(name: str, data: DataSplits, *, budget: float = 1.0, seed: int = 0,
                  weights_path: str | Path | None = None) -> IndexSampler:
    """A sampler over ``data.train`` by name.

    - ``uniform`` (alias ``shuffle``): a shuffled pass per epoch, truncated to ``N*B`` under a
      budget. The one meaning of "uniform" everywhere (``swift search``'s w_share too).
    - ``with-replacement``: ``N*B`` independent uniform draws per epoch (unif-SGD).
    - ``oracle``: uniform over the examples whose label is clean (uses the noise mask:
      an upper reference for analysis, not a method).
    - ``weights``: static weights from ``weights_path`` (``.npy`` or ``.pt``, one per example).
    - ``swift``: a Swift Sampler file (``sampler.json`` from ``sampletune swift search``).
    """
    n = len(data.train)
    if name in ("uniform", "shuffle"):
        return ShuffleSampler(n, budget=budget, seed=seed)
    if name == "with-replacement":
        return UniformSampler(n, budget=budget, seed=seed)
    if name == "oracle":
        clean = (~data.train.noisy).to(torch.float64).cpu()
        return WeightedSampler(clean, budget_samples(n, budget), seed=seed)
    if name == "weights":
        check(weights_path is not None, "weights", "sampler 'weights' needs a weights file")
        w = load_weights(weights_path, n)
        return WeightedSampler(w, budget_samples(n, budget), seed=seed)
    if name == "swift":
        from sampletune.swift.sampler_file import load_sampler

        check(weights_path is not None, "weights", "sampler 'swift' needs --weights sampler.json")
        spec = load_sampler(weights_path)
        check(spec.n == n and spec.split in ("", data.train.fingerprint()), "weights",
              f"the sampler file covers {spec.n} examples of another training split than this "
              f"one ({n})", "a sampler fitted with this data set, seed, noise and subset")
        return WeightedSampler(spec.probabilities(), budget_samples(n, budget), seed=seed)
    raise ConfigError("sampler", f"unknown sampler {name!r}", ", ".join(SAMPLER_NAMES))


def load_weights(path: str | Path, n: int) -> torch.Tensor:
    """Per-example weights from ``.npy`` / ``.pt`` (read without unpickling anything); their
    count must equal the training size."""
    path = Path(path)
    check(path.exists(), "weights", f"file {str(path)!r} does not exist")
    check(path.suffix in (".npy", ".pt"), "weights", f"{path.name} is not a .npy or .pt file",
          ".npy, .pt")
    w = io.load_numpy(path, "weights") if path.suffix == ".npy" else io.load_torch(path,
                                                                                  "weights")
    ok = isinstance(w, torch.Tensor) or (isinstance(w, np.ndarray) and w.dtype.kind in "biuf")
    check(ok, "weights", f"{path.name} holds no array of numbers", f"a 1-D array of length {n}")
    w = torch.as_tensor(w)
    check(w.dim() == 1 and len(w) == n, "weights",
          f"{tuple(w.shape)} values in {path.name} but the training split has {n} examples",
          f"a 1-D array of length {n}")
    return w

"""Samplers by name, for the command line and configs: a registry (``register_sampler``,
``sampler_names``, ``build_sampler``) with the core samplers registered."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from sampletune import io
from sampletune.data.dataset import DataSplits
from sampletune.errors import ConfigError, check
from sampletune.samplers.base import IndexSampler, budget_samples
from sampletune.samplers.shuffle import ShuffleSampler, UniformSampler
from sampletune.samplers.weighted import WeightedSampler

Builder = Callable[..., IndexSampler]
_BUILDERS: dict[str, Builder] = {}
_ALIASES: set[str] = set()


def register_sampler(name: str, *, aliases: tuple[str, ...] = ()) -> Callable[[Builder], Builder]:
    """Decorator: ``builder(data, *, budget, seed, weights_path) -> IndexSampler`` is what
    :func:`build_sampler` calls for ``name`` (and each alias). A family registers its own
    samplers when it is imported; registering a name twice with another builder is an error."""
    def add(builder: Builder) -> Builder:
        for key in (name, *aliases):
            if _BUILDERS.get(key, builder) is not builder:
                raise ValueError(f"sampler {key!r} is already registered")
            _BUILDERS[key] = builder
        _ALIASES.update(aliases)
        return builder
    return add


def sampler_names(aliases: bool = True) -> tuple[str, ...]:
    """The registered sampler names, in registration order (an alias after its name)."""
    return tuple(k for k in _BUILDERS if aliases or k not in _ALIASES)


def build_sampler(name: str, data: DataSplits, *, budget: float = 1.0, seed: int = 0,
                  weights_path: str | Path | None = None) -> IndexSampler:
    """A sampler over ``data.train`` by its registered name (:func:`sampler_names`).

    - ``uniform`` (alias ``shuffle``): a shuffled pass per epoch, truncated to ``N*B`` under a
      budget. The one meaning of "uniform" everywhere (``swift search``'s w_share too).
    - ``with-replacement``: ``N*B`` independent uniform draws per epoch (unif-SGD).
    - ``oracle``: uniform over the examples whose label is clean (uses the noise mask:
      an upper reference for analysis, not a method).
    - ``weights``: static weights from ``weights_path`` (``.npy`` or ``.pt``, one per example).

    Families add theirs with :func:`register_sampler` when imported (``swift``: a Swift
    Sampler file, registered by ``sampletune.swift``).
    """
    builder = _BUILDERS.get(name)
    if builder is None:
        raise ConfigError("sampler", f"unknown sampler {name!r}", ", ".join(sampler_names()))
    return builder(data, budget=budget, seed=seed, weights_path=weights_path)


@register_sampler("uniform", aliases=("shuffle",))
def _uniform(data: DataSplits, *, budget: float, seed: int, **_) -> IndexSampler:
    return ShuffleSampler(len(data.train), budget=budget, seed=seed)


@register_sampler("with-replacement")
def _with_replacement(data: DataSplits, *, budget: float, seed: int, **_) -> IndexSampler:
    return UniformSampler(len(data.train), budget=budget, seed=seed)


@register_sampler("oracle")
def _oracle(data: DataSplits, *, budget: float, seed: int, **_) -> IndexSampler:
    clean = (~data.train.noisy).to(torch.float64).cpu()
    return WeightedSampler(clean, budget_samples(len(data.train), budget), seed=seed)


@register_sampler("weights")
def _weights(data: DataSplits, *, budget: float, seed: int,
             weights_path: str | Path | None) -> IndexSampler:
    check(weights_path is not None, "weights", "sampler 'weights' needs a weights file")
    n = len(data.train)
    w = load_weights(weights_path, n)
    return WeightedSampler(w, budget_samples(n, budget), seed=seed)


def load_weights(path: str | Path, n: int) -> torch.Tensor:
    """Per-example weights from ``.npy`` / ``.pt`` (read without unpickling anything); their
    count must equal the training size."""
    path = Path(path)
    check(path.exists(), "weights", f"file {str(path)!r} does not exist")
    check(path.suffix in (".npy", ".pt"), "weights", f"{path.name} is not a .npy or .pt file",
          ".npy, .pt")
    w = (io.load_numpy(path, "weights", allowed=".npy without pickled objects, or .pt")
         if path.suffix == ".npy"
         else io.load_torch(path, "weights", allowed=f"a 1-D tensor of length {n}"))
    ok = (isinstance(w, torch.Tensor) and not w.is_complex()
          or isinstance(w, np.ndarray) and w.dtype.kind in "biuf")
    check(ok, "weights", f"{path.name} holds no array of numbers", f"a 1-D array of length {n}")
    w = torch.as_tensor(w)
    check(w.dim() == 1 and len(w) == n, "weights",
          f"{tuple(w.shape)} values in {path.name} but the training split has {n} examples",
          f"a 1-D array of length {n}")
    return w

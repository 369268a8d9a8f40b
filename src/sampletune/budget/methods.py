"""The methods of budgeted-importance-sampling.txt (section 3) under a budget B, by name.

``build_method(name, data, cfg)`` returns a :class:`Method`: the sampler, the number of
epochs, the selection rule and augmentation hooks, and the number of iterations per epoch
the budget-aware LR schedule spans. ``cfg.epochs`` is T, the epochs of a *full* training;
``cfg.budget`` is B.

==============  ==================================================================
scan-sgd        full passes (a fresh permutation per epoch) for ``round(T * B) >= 1`` epochs
unif-sgd        ``round(N * B)`` uniform draws per epoch for T epochs
p-sgd, c-sgd    ``round(N * B)`` draws per epoch from ``P^t`` (eqs. 2-3) for T epochs
sb              selective backprop (eq. 4): one no-grad pass over all N candidates per
                epoch, ``b = 1/B - 1`` so about ``N * B`` are back-propagated, T epochs
osgd            ordered SGD (top-q losses), truncated like scan-sgd to ``round(T * B)``
random-subset   a random subset of ``round(N * B)`` examples fixed for all T epochs
coreset         a k-center greedy core-set of ``round(N * B)`` examples (features of a
                model trained ``coreset_epochs`` full epochs), fixed for all T epochs
==============  ==================================================================

Sampling of unif-sgd, p-sgd and c-sgd is without replacement inside an epoch by default,
as in the paper's public code (``replacement=True`` draws i.i.d.). The per-epoch draws
``N * B`` are rounded to whole mini-batches (:func:`epoch_draws`; the paper's code drops
the last partial batch): a trailing batch of a few examples taking a full-LR step costs
up to 3 points on a Fashion-MNIST subset at B = 0.5 (8 examples after 14 batches of 128).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from sampletune.augment import build_augment
from sampletune.budget.coreset import kcenter_greedy, penultimate_features, random_subset
from sampletune.budget.measures import SampleCounter, count_entropy, normalized_entropy
from sampletune.data.dataset import DataSplits
from sampletune.errors import ConfigError, check
from sampletune.samplers import IndexSampler, ShuffleSampler, UniformSampler
from sampletune.samplers.adaptive import CSGDSampler, PSGDSampler
from sampletune.samplers.base import epoch_draws
from sampletune.samplers.weighted import subset_sampler
from sampletune.seeding import torch_seed
from sampletune.selection import OrderedSGD, SelectiveBackprop
from sampletune.train import TrainConfig, TrainResult, train
from sampletune.train.hooks import Augment, Mixer, Selector

METHOD_NAMES = ("scan-sgd", "unif-sgd", "p-sgd", "c-sgd", "sb", "osgd")
SUBSET_METHODS = ("random-subset", "coreset")
ALL_METHODS = METHOD_NAMES + SUBSET_METHODS


@dataclass
class Method:
    """Everything :func:`sampletune.train.train` needs to run one method under a budget."""

    name: str
    budget: float
    sampler: IndexSampler
    epochs: int  # epochs actually trained
    steps_per_epoch: int  # sampler batches per epoch the LR schedule is laid out on
    full_epochs: int  # T of a full training (the budget's reference)
    selector: Selector | None = None
    augment: Augment | None = None
    mixer: Mixer | None = None
    observers: list = field(default_factory=list)
    selection_time: float = 0.0  # seconds spent choosing a core-set before training

    def train(self, model: nn.Module, data: DataSplits, cfg: TrainConfig, *,
              run_dir: str | Path | None = None, progress: bool = True,
              evaluate_test: bool = True, description: str | None = None) -> TrainResult:
        """Train ``model``; ``result.final`` gains the method, budget, used budget,
        sample-count entropy (section 4.4) and, for SB, its forward-pass cost."""
        n = len(data.train)
        counter = SampleCounter(n)
        result = train(model, data, self.sampler, cfg, epochs=self.epochs,
                       steps_per_epoch=self.steps_per_epoch,
                       observers=[*self.observers, counter], selector=self.selector,
                       augment=self.augment, mixer=self.mixer, run_dir=run_dir,
                       progress=progress, evaluate_test=evaluate_test,
                       description=description or f"{self.name} B={self.budget:g}")
        full = float(n * self.full_epochs)
        final = result.final
        final.update(method=self.name, budget=self.budget,
                     used_budget=float(counter.counts.sum()) / full,
                     entropy=count_entropy(counter.counts.cpu()),
                     entropy_normalized=normalized_entropy(counter.counts.cpu()),
                     wall_time=final.get("wall_time", 0.0) + self.selection_time,
                     selection_time=self.selection_time)
        if isinstance(self.selector, SelectiveBackprop):
            cost = self.selector.cost(n, self.full_epochs)
            final.update(sb_effective_budget=cost["effective"],
                         sb_extra_forward=cost["extra_forward"],
                         sb_paper_estimate=cost["paper_estimate"])
        result.counts = counter.counts.cpu()
        return result


TRUNCATED = ("scan-sgd", "osgd")  # methods that spend the budget as fewer full epochs


def truncated_epochs(name: str, epochs: int, budget: float, field: str = "budget") -> int:
    """The full epochs ``round(T * B)`` that ``name`` (one of :data:`TRUNCATED`) trains for
    budget ``B`` of ``T`` epochs; a budget under one epoch is a :class:`ConfigError` on
    ``field`` (it was rounded up to a whole epoch, over the budget)."""
    check(epochs * budget >= 1, field, f"{budget} of {epochs} epochs is less than the one "
          f"full epoch {name} trains at least", f">= 1/{epochs} for {name}")
    return round(epochs * budget)


def build_method(name: str, data: DataSplits, cfg: TrainConfig, *, augment: str = "none",
                 warmup_epochs: int = 0, replacement: bool = False,
                 sb_beta: float | None = None, sb_history: int = 1024,
                 model_fn: Callable[[], nn.Module] | None = None,
                 coreset_epochs: int = 2, progress: bool = False) -> Method:
    """The :class:`Method` ``name`` for budget ``cfg.budget`` over ``cfg.epochs`` full epochs.

    Args:
        augment: ``none``, ``standard``, ``randaugment``, ``mixup`` or ``ricap``
            (:func:`sampletune.augment.build_augment`).
        warmup_epochs: uniform epochs before p-SGD / c-SGD start to weight (default 0).
        replacement: i.i.d. draws for unif-/p-/c-SGD instead of distinct ones per epoch.
        sb_beta: selective backprop's ``b`` (default ``1/B - 1``); sb_history: its ``R``.
        model_fn: builds a fresh model; needed by ``coreset`` (trained ``coreset_epochs``
            full epochs to get features).
    """
    check(name in ALL_METHODS, "method", f"unknown method {name!r}", ", ".join(ALL_METHODS))
    n, budget, seed, bs = len(data.train), cfg.budget, cfg.seed, cfg.batch_size
    aug, mixer = build_augment(augment, data)
    k = epoch_draws(n, budget, bs)
    per_epoch = k / n  # the budget after rounding to whole batches
    per_budget_steps = math.ceil(k / bs)
    common = dict(name=name, budget=budget, full_epochs=cfg.epochs, augment=aug, mixer=mixer)

    if name in TRUNCATED:
        sampler = ShuffleSampler(n, seed=seed)
        selector = OrderedSGD(bs) if name == "osgd" else None
        return Method(sampler=sampler, epochs=truncated_epochs(name, cfg.epochs, budget),
                      steps_per_epoch=math.ceil(n / bs),
                      selector=selector, observers=[selector] if selector else [], **common)
    if name == "unif-sgd":
        sampler = (UniformSampler(n, budget=per_epoch, seed=seed) if replacement
                   else ShuffleSampler(n, budget=per_epoch, seed=seed))
        return Method(sampler=sampler, epochs=cfg.epochs, steps_per_epoch=per_budget_steps,
                      **common)
    if name in ("p-sgd", "c-sgd"):
        cls = PSGDSampler if name == "p-sgd" else CSGDSampler
        sampler = cls(n, budget=per_epoch, warmup_epochs=warmup_epochs,
                      replacement=replacement, seed=seed)
        return Method(sampler=sampler, epochs=cfg.epochs, steps_per_epoch=per_budget_steps,
                      **common)
    if name == "sb":
        selector = SelectiveBackprop(bs, budget=budget, beta=sb_beta, history=sb_history,
                                     augment=aug, mixer=mixer, seed=seed)
        # the schedule follows the candidate batches (all N forwarded per epoch), so it
        # ends with the training however many of them fill a back-propagated batch
        return Method(sampler=ShuffleSampler(n, seed=seed), epochs=cfg.epochs,
                      steps_per_epoch=math.ceil(n / bs), selector=selector, **common)
    # fixed subsets (Fig. 1a/b)
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(torch_seed(seed * 1_000_033 + 5))
    if name == "random-subset":
        subset = random_subset(n, k, gen)
    else:
        subset = _coreset(data, cfg, k, gen, model_fn, coreset_epochs, progress)
    return Method(sampler=subset_sampler(subset, n, seed), epochs=cfg.epochs,
                  steps_per_epoch=per_budget_steps, selection_time=time.perf_counter() - t0,
                  **common)


def _coreset(data: DataSplits, cfg: TrainConfig, k: int, gen: torch.Generator,
             model_fn: Callable[[], nn.Module] | None, epochs: int, progress: bool):
    """k-center greedy on the penultimate features of a model trained ``epochs`` epochs."""
    if model_fn is None:
        raise ConfigError("method", "'coreset' needs a model to compute features (model_fn)")
    check(epochs >= 1, "coreset_epochs", f"{epochs} must be positive", ">= 1")
    check(data.train.in_memory, "method", "'coreset' needs an in-memory training split")
    n = len(data.train)
    brief = cfg.replace(epochs=epochs, budget=1.0)
    result = train(model_fn(), data, ShuffleSampler(n, seed=cfg.seed), brief,
                   progress=progress, evaluate_test=False, description="core-set features")
    feats = penultimate_features(result.model, data.train.x)
    return kcenter_greedy(feats, k, gen)

"""Learning-with-noisy-labels baselines by name, for the trainer (issue 8).

``build_noisy(name, data, cfg, model_fn=...)`` returns a :class:`NoisyMethod`: the sampler,
the selector / loss hooks and the cost; ``NoisyMethod.train`` runs it and adds to
``result.final`` the method, ``cost_trainings`` (forward/backward compute in full
trainings) and what the method measured. Same model, config and epochs as uniform.

================  ==================================================================  ====
name              what it does                                                        cost
================  ==================================================================  ====
uniform           a shuffled pass per epoch; the last epoch's model                   1
early-stopping    uniform, reported at the best-validation epoch (test_acc, val_acc   1
                  and the model are the best epoch's; the last are ``last_*``)
small-loss        Co-teaching's single-network small-loss rule, noise rate            1
                  estimated (DivideMix GMM on training losses)
small-loss-known  the same with the given ``noise_rate``                              1
reed-soft         bootstrapping, soft target, beta = 0.95                             1
reed-hard         bootstrapping, hard target, beta = 0.8                              1
self-paced        MentorNet-PD: ``v = 1[l < lambda]``, lambda a moving percentile     1
l2rw              Learning to Reweight on the validation split as meta set            3
cleanlab          confident learning: K-fold out-of-fold probabilities, drop the      K
                  label issues, train uniform on the rest
================  ==================================================================  ====

Costs are nominal (small-loss and self-paced back-propagate fewer examples but forward
all; L2RW's step is about 3 plain steps; cleanlab is ``K * (K-1)/K`` fold trainings plus
the last). ``result.final["wall_time"]`` has the measured time, cleanlab's folds included.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from sampletune.data.dataset import DataSplits
from sampletune.errors import ConfigError, check
from sampletune.noisy.bootstrap import Bootstrap
from sampletune.noisy.cleanlab_filter import find_label_issues, out_of_fold_probs, require_cleanlab
from sampletune.noisy.estimate import LossMaskSelector
from sampletune.noisy.l2rw import L2RW
from sampletune.noisy.self_paced import SelfPaced
from sampletune.noisy.small_loss import SmallLoss
from sampletune.samplers import IndexSampler, ShuffleSampler
from sampletune.train import TrainConfig, TrainResult, train
from sampletune.train.hooks import LossFn, Selector

NOISY_NAMES = ("uniform", "early-stopping", "small-loss", "small-loss-known", "reed-soft",
               "reed-hard", "self-paced", "l2rw", "cleanlab")
USES_NOISE_RATE = ("small-loss-known", "self-paced")


def default_ramp_epochs(epochs: int) -> int:
    """``T_k`` (and MentorNet-PD's burn-in): 10 epochs as Co-teaching, at most a quarter of
    training (at least 1)."""
    return max(1, min(10, epochs // 4))


def check_noisy(name: str, noise_rate: float | None) -> None:
    """One-line :class:`ConfigError` for an unknown name or a bad / missing / unused rate."""
    check(name in NOISY_NAMES, "noisy", f"unknown noisy-label method {name!r}",
          ", ".join(NOISY_NAMES))
    if noise_rate is not None:
        check(0.0 <= noise_rate < 1.0, "noise_rate", f"{noise_rate} is outside [0, 1)",
              "0 <= noise_rate < 1")
        check(name in USES_NOISE_RATE, "noise_rate", f"{name!r} does not use a noise rate",
              "only with " + ", ".join(USES_NOISE_RATE) + "; 'small-loss' estimates it")
    check(name != "small-loss-known" or noise_rate is not None, "noise_rate",
          "'small-loss-known' needs the noise rate", "--noise-rate R with 0 <= R < 1")


@dataclass
class NoisyMethod:
    """Everything :func:`sampletune.train.train` needs to run one noisy-label baseline."""

    name: str
    sampler: IndexSampler
    cost: float  # full trainings of forward/backward compute
    selector: Selector | None = None
    loss_fn: LossFn | None = None
    observers: list = field(default_factory=list)
    noise_rate: float | None = None
    selection_time: float = 0.0  # seconds spent before training (cleanlab's folds)
    info: dict = field(default_factory=dict)  # what was decided before training

    def train(self, model: nn.Module, data: DataSplits, cfg: TrainConfig, *,
              run_dir: str | Path | None = None, progress: bool = True,
              evaluate_test: bool = True, description: str | None = None) -> TrainResult:
        """Train ``model``; ``result.final`` gains ``noisy``, ``cost_trainings`` and the
        method's measurements (see the module)."""
        result = train(model, data, self.sampler, cfg, observers=self.observers,
                       selector=self.selector, loss_fn=self.loss_fn, run_dir=run_dir,
                       progress=progress, evaluate_test=evaluate_test,
                       description=description or self.name)
        final = result.final
        final.update(noisy=self.name, cost_trainings=self.cost, noise_rate=self.noise_rate,
                     wall_time=final.get("wall_time", 0.0) + self.selection_time,
                     selection_time=self.selection_time, **self.info)
        sel = self.selector
        if isinstance(sel, LossMaskSelector):
            final.update(sel.kept_noisy_share(data.train.noisy),
                         noise_rate_used=sel.rate)
        if isinstance(sel, L2RW):
            final.update(l2rw_steps=sel.steps, l2rw_skipped_steps=sel.skipped)
        if self.name == "early-stopping" and "best_epoch" in final:
            final.update(last_val_acc=final.get("val_acc"), last_test_acc=final.get("test_acc"),
                         val_acc=final["best_val_acc"])
            if "best_test_acc" in final:
                final["test_acc"] = final["best_test_acc"]
            result.model = result.best_model()
        return result


def build_noisy(name: str, data: DataSplits, cfg: TrainConfig, *,
                model_fn: Callable[[], nn.Module] | None = None,
                noise_rate: float | None = None, ramp_epochs: int | None = None,
                cv_folds: int = 4, cv_epochs: int | None = None,
                progress: bool = False) -> NoisyMethod:
    """The :class:`NoisyMethod` ``name`` for ``cfg`` (full budget, ``cfg.epochs`` epochs).

    Args:
        model_fn: builds a fresh model; needed by ``cleanlab`` (one per fold).
        noise_rate: the known noise rate (``small-loss-known`` needs it; ``self-paced``
            uses it when given, else estimates it).
        ramp_epochs: small-loss's ``T_k`` and self-paced's burn-in
            (default :func:`default_ramp_epochs`).
        cv_folds, cv_epochs: cleanlab's K and the epochs of each fold model (default
            ``cfg.epochs``). The folds are trained here, before :meth:`NoisyMethod.train`.
    """
    check_noisy(name, noise_rate)
    check(cfg.budget == 1.0, "budget", "the noisy-label baselines train full epochs", "1")
    n, seed = len(data.train), cfg.seed
    tk = default_ramp_epochs(cfg.epochs) if ramp_epochs is None else int(ramp_epochs)
    common = dict(name=name, sampler=ShuffleSampler(n, seed=seed), noise_rate=noise_rate)
    if name in ("uniform", "early-stopping"):
        return NoisyMethod(cost=1.0, **common)
    if name in ("small-loss", "small-loss-known"):
        sel = SmallLoss(n, noise_rate=noise_rate, ramp_epochs=tk, seed=seed)
        return NoisyMethod(cost=1.0, selector=sel, observers=[sel], **common)
    if name == "self-paced":
        sel = SelfPaced(n, noise_rate=noise_rate, burn_in=tk, seed=seed)
        return NoisyMethod(cost=1.0, selector=sel, observers=[sel], **common)
    if name in ("reed-soft", "reed-hard"):
        return NoisyMethod(cost=1.0, loss_fn=Bootstrap(name.split("-")[1]), **common)
    if name == "l2rw":
        return NoisyMethod(cost=3.0, selector=L2RW(data.val, cfg.batch_size, seed=seed),
                           **common)
    # cleanlab
    require_cleanlab()
    if model_fn is None:
        raise ConfigError("noisy", "'cleanlab' needs a model to cross-validate (model_fn)")
    t0 = time.perf_counter()
    probs, _ = out_of_fold_probs(data, cfg, model_fn, cv_folds, epochs=cv_epochs,
                                 progress=progress)
    issues = find_label_issues(data.train.y, probs)
    kept = torch.nonzero(~issues).squeeze(1)
    check(len(kept) > 0, "noisy", "cleanlab flagged every training example")
    from sampletune.samplers.weighted import subset_sampler

    noisy = data.train.noisy.cpu()
    removed = int(issues.sum())
    info = {"cleanlab_removed": removed, "cleanlab_folds": cv_folds,
            "cleanlab_removed_precision": float(noisy[issues].float().mean()) if removed else 0.0,
            "cleanlab_removed_recall": float(issues[noisy].float().mean()) if noisy.any() else 0.0}
    fold_epochs = cfg.epochs if cv_epochs is None else cv_epochs
    cost = (cv_folds - 1) * fold_epochs / cfg.epochs + 1.0  # nominal, as the others
    common["sampler"] = subset_sampler(kept, n, seed)
    return NoisyMethod(cost=cost, selection_time=time.perf_counter() - t0, info=info, **common)

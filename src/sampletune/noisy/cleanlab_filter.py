"""Confident learning (Northcutt, Jiang & Chuang, JAIR 2021) as a data filter.

1. Out-of-fold predicted probabilities ``p_hat[i] = P(y* = k | x_i)`` by K-fold cross-
   validation (section 3; K = 4 by default, cleanlab uses 5): stratified folds from the
   seed (scikit-learn ``StratifiedKFold(shuffle=True, random_state=seed)``, deterministic);
   each fold model is trained with our trainer on the other ``K - 1`` folds with the run's
   config (``cv_epochs``, default the run's epochs) and predicts on its fold with its
   best-validation weights (early stopping, which the trainer keeps anyway).
2. ``cleanlab.filter.find_label_issues(labels, pred_probs)`` (default
   ``filter_by="prune_by_noise_rate"``: the off-diagonal confident joint ``C[y~][y*]``
   decides how many examples of each (given, true) pair are removed, those with the
   largest margin ``p_hat[y*] - p_hat[y~]``).
3. Training on the kept examples with a fresh shuffled pass of them per epoch.

The folds are trained when the method is built (``build_noisy``), before the run directory
is involved: a killed ``cleanlab`` run trains them again (the final training resumes).

Cost: K fold trainings on ``(K - 1) / K`` of the data plus the final one on the kept
examples: ``K * (K - 1) / K + 1 = K`` trainings (less the removed share in the last).
Needs the optional ``cleanlab`` package (``pip install 'sampletune[cleanlab]'``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sampletune.data.dataset import DataSplits
from sampletune.errors import ConfigError, check
from sampletune.models import eval_mode
from sampletune.samplers import ShuffleSampler
from sampletune.train import TrainConfig, train


def require_cleanlab():
    """The ``cleanlab.filter`` module, or a one-line :class:`ConfigError` naming the extra."""
    try:
        import cleanlab.filter
    except ImportError:
        raise ConfigError("noisy", "'cleanlab' needs the cleanlab package, which is not "
                          "installed", "pip install 'sampletune[cleanlab]'") from None
    return cleanlab.filter


def kfold_indices(labels: Tensor, k: int, seed: int) -> list[Tensor]:
    """The K held-out folds (int64 positions, sorted), stratified by ``labels``; the same
    for the same labels, K and seed."""
    from sklearn.model_selection import StratifiedKFold

    check(k >= 2, "cv_folds", f"{k} folds cannot cross-validate", ">= 2")
    y = labels.cpu().numpy()
    check(np.bincount(y).max() >= k, "cv_folds", f"{k} folds but no class has {k} examples")
    skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=int(seed))
    return [torch.from_numpy(np.sort(held)).long() for _, held in skf.split(np.zeros(len(y)), y)]


@torch.no_grad()
def predict_proba(model: nn.Module, x: Tensor, device: torch.device | str = "cpu",
                  batch_size: int = 1024) -> Tensor:
    """(n, C) softmax of ``model`` on ``x`` in eval mode (the mode is restored)."""
    with eval_mode(model):
        return torch.cat([F.softmax(model(x[i:i + batch_size].to(device)), 1).cpu()
                          for i in range(0, len(x), batch_size)])


def out_of_fold_probs(data: DataSplits, cfg: TrainConfig, model_fn: Callable[[], nn.Module],
                      k: int = 4, *, epochs: int | None = None, progress: bool = False
                      ) -> tuple[Tensor, list[Tensor]]:
    """(n, C) out-of-fold predicted probabilities for ``data.train`` and the folds used."""
    check(data.train.in_memory, "noisy", "'cleanlab' needs an in-memory training split")
    n = len(data.train)
    folds = kfold_indices(data.train.y, k, cfg.seed)
    probs = torch.zeros(n, data.num_classes)
    for f, held in enumerate(folds):
        keep = torch.ones(n, dtype=torch.bool)
        keep[held] = False
        fit_idx = torch.nonzero(keep).squeeze(1)
        sub = dataclasses.replace(data, train=data.train.subset(fit_idx))
        result = train(model_fn(), sub, ShuffleSampler(len(fit_idx), seed=cfg.seed + 101 * f),
                       cfg, epochs=epochs, progress=progress, evaluate_test=False,
                       description=f"cleanlab fold {f + 1}/{k}")
        probs[held] = predict_proba(result.best_model(), data.train.x[held], cfg.device)
    return probs, folds


def find_label_issues(labels: Tensor, pred_probs: Tensor) -> Tensor:
    """(n,) bool: cleanlab's ``find_label_issues`` with its defaults."""
    flt = require_cleanlab()
    issues = flt.find_label_issues(labels.cpu().numpy(), pred_probs.cpu().double().numpy())
    return torch.from_numpy(np.asarray(issues, dtype=bool))

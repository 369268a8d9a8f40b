"""Why a search worked or failed: how well features separate noisy labels, where a sampler
puts its mass, and how many examples it effectively trains on.

All take plain tensors, so they work on any run; the noise mask is known only in
benchmarks (synthetic noise), and the functions that need it say so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from sampletune.errors import check


def auroc(scores: Tensor, positive: Tensor) -> float | None:
    """Area under the ROC curve of ``scores`` ``(n,)`` for the ``positive`` mask ``(n,)``
    (scikit-learn's, ties counted half); ``None`` if a class is empty. 1.0: every positive
    scores above every negative."""
    from sklearn.metrics import roc_auc_score

    pos = torch.as_tensor(positive).bool().cpu().flatten()
    if bool(pos.all()) or not bool(pos.any()):
        return None
    s = torch.as_tensor(scores, dtype=torch.float64).cpu().flatten()
    return float(roc_auc_score(pos.numpy(), s.numpy()))


def noisy_mass(probs: Tensor, noisy: Tensor) -> float:
    """Share of the sampling probability ``probs`` ``(N,)`` on examples flagged ``noisy``."""
    p = torch.as_tensor(probs, dtype=torch.float64).cpu()
    return float((p * noisy.to(torch.float64).cpu()).sum() / p.sum())


def effective_sample_size(probs: Tensor) -> float:
    """Kish's effective sample size ``(sum p)^2 / sum p^2`` as a share of ``N`` (1.0 for
    uniform sampling, ``k / N`` for uniform over ``k`` examples)."""
    p = torch.as_tensor(probs, dtype=torch.float64).cpu()
    return float(p.sum() ** 2 / (p.pow(2).sum() * len(p)))


def least_drawn_class(probs: Tensor, labels: Tensor) -> tuple[int, float]:
    """``(k, ratio)``: the labelled class whose share of the sampling probability ``probs``
    ``(N,)`` is smallest relative to its share of the examples (``labels`` ``(N,)``), and
    that ratio (1.0: drawn as often as under uniform sampling; 0.0: never drawn). Needs no
    noise mask: a loss cut that drops a hard class's clean examples with the noisy labels
    shows as a class far below the others (symmetric noise alone leaves every class near
    1)."""
    p = torch.as_tensor(probs, dtype=torch.float64).cpu()
    y = torch.as_tensor(labels).cpu().long()
    k = int(y.max()) + 1
    mass = torch.zeros(k, dtype=torch.float64).index_add_(0, y, p / p.sum())
    share = torch.bincount(y, minlength=k).to(torch.float64) / len(y)
    present = share > 0
    ratio = torch.where(present, mass / share.clamp_min(1e-300), torch.inf)
    low = int(ratio.argmin())
    return low, float(ratio[low])


def sampler_diagnostics(probs: Tensor, noisy: Tensor | None,
                        labels: Tensor | None = None) -> dict:
    """``{"ess", "noisy_mass", "least_drawn_class", "least_drawn_class_mass"}`` of one
    sampler (``noisy_mass`` only with a noise mask, the class pair only with ``labels``)."""
    out = {"ess": effective_sample_size(probs)}
    if noisy is not None and bool(noisy.any()):
        out["noisy_mass"] = noisy_mass(probs, noisy)
    if labels is not None:
        out["least_drawn_class"], out["least_drawn_class_mass"] = least_drawn_class(probs,
                                                                                    labels)
    return out


def reference_spread(scores: Sequence[float], n_val: int) -> dict:
    """Could the inner loop tell the reference samplers apart? ``scores``: their fine-tune
    validation accuracies in [0, 1]; ``n_val``: validation examples. Returns ``{"spread"``
    (best less worst), ``"two_se"`` (two binomial standard errors of an accuracy at their
    mean, ``2 sqrt(p (1 - p) / n_val)``), ``"flat"`` (``spread < two_se``)``}``. Flat: the
    fine-tunes did not separate uniform from dropping the highest-loss examples, so what is
    kept rests on the from-scratch retrains and the guards. Needs no noise mask; seen where
    the noise costs uniform little and where w_share memorised it within a few epochs (its
    fine-tunes start from the last epoch)."""
    check(len(scores) >= 2, "scores", f"{len(scores)} reference scores", "at least 2")
    check(n_val >= 1, "n_val", f"{n_val} validation examples", ">= 1")
    p = sum(scores) / len(scores)
    spread, two_se = max(scores) - min(scores), 2.0 * math.sqrt(p * (1.0 - p) / n_val)
    return {"spread": spread, "two_se": two_se, "flat": spread < two_se}


def feature_auroc(features: dict[str, Tensor], noisy: Tensor) -> dict[str, float | None]:
    """AUROC of each feature against the noise mask: how well it alone flags noisy labels."""
    return {name: auroc(values, noisy) for name, values in sorted(features.items())}

"""Why a search worked or failed: how well features separate noisy labels, where a sampler
puts its mass, and how many examples it effectively trains on.

All take plain tensors, so they work on any run; the noise mask is known only in
benchmarks (synthetic noise), and the functions that need it say so.
"""

from __future__ import annotations

import torch
from torch import Tensor


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


def sampler_diagnostics(probs: Tensor, noisy: Tensor | None) -> dict:
    """``{"ess", "noisy_mass"}`` of one sampler (``noisy_mass`` only with a noise mask)."""
    out = {"ess": effective_sample_size(probs)}
    if noisy is not None and bool(noisy.any()):
        out["noisy_mass"] = noisy_mass(probs, noisy)
    return out


def feature_auroc(features: dict[str, Tensor], noisy: Tensor) -> dict[str, float | None]:
    """AUROC of each feature against the noise mask: how well it alone flags noisy labels."""
    return {name: auroc(values, noisy) for name, values in sorted(features.items())}

"""Self-paced weighting with a predefined curriculum: MentorNet-PD (Jiang et al., ICML 2018,
section 3.1 and eq. 5; google/mentornet ``utils.mentornet`` with the PD network).

What is implemented, exactly:

- per step, ``pct_t`` = the ``p``-th percentile of the batch's cross-entropy losses
  (``torch.quantile(..., interpolation="nearest")``, as TF's ``percentile`` default);
- ``lambda_t = decay * lambda_{t-1} + (1 - decay) * pct_t`` (the code's moving average,
  ``decay = 0.9``), started at the first ``pct`` instead of the code's zero;
- weights ``v_i = 1[l_i < lambda_t]`` (the self-paced solution of eq. 5's
  ``argmin_v sum v_i l_i - lambda sum v_i``), computed without gradient; if no example
  is below ``lambda_t`` the smallest-loss one is kept, so a step is never empty;
- the step's loss is the mean over kept examples (the trainer's normalisation; the
  MentorNet code divides the weighted sum by the batch size instead);
- ``burn_in`` epochs of uniform weights first (default ``T_k``: 10, at most a quarter of
  training), while ``lambda`` is tracked already;
- ``p = 1 - noise_rate`` when the rate is known (MentorNet sets the percentile from the
  noise level), else ``1 - estimate`` with the DivideMix GMM estimate fitted at the end of
  burn-in on the examples' last training losses (``lambda`` then starts there).
"""

from __future__ import annotations

import torch
from torch import Tensor

from sampletune.errors import check
from sampletune.noisy.estimate import LossMaskSelector


def self_paced_weights(losses: Tensor, threshold: float | Tensor) -> Tensor:
    """(B,) float ``1[l_i < threshold]``; the smallest loss is kept if none is below."""
    v = (losses < threshold).to(losses.dtype)
    if not bool(v.any()):
        v[torch.argmin(losses)] = 1.0
    return v


def batch_percentile(losses: Tensor, p: float) -> Tensor:
    """The ``p``-quantile (p in [0, 1]) of ``losses``, nearest rank."""
    return torch.quantile(losses.detach().float(), float(p), interpolation="nearest")


def moving_threshold(previous: Tensor | None, percentile: Tensor, decay: float) -> Tensor:
    """``decay * previous + (1 - decay) * percentile`` (``percentile`` when no previous)."""
    return percentile if previous is None else decay * previous + (1.0 - decay) * percentile


class SelfPaced(LossMaskSelector):
    """Selector + observer: MentorNet-PD's threshold rule (see the module)."""

    def __init__(self, n: int, *, noise_rate: float | None = None, burn_in: int = 10,
                 decay: float = 0.9, seed: int = 0):
        check(burn_in >= 0, "burn_in", f"{burn_in} is negative", ">= 0")
        check(0.0 <= decay < 1.0, "decay", f"{decay} is outside [0, 1)")
        super().__init__(n, noise_rate=noise_rate, estimate_epoch=max(1, burn_in), seed=seed)
        self.burn_in, self.decay = int(burn_in), float(decay)
        self.threshold: Tensor | None = None

    @property
    def percentile(self) -> float | None:
        return None if self.rate is None else 1.0 - self.rate

    def mask(self, losses: Tensor) -> Tensor | None:
        if self.percentile is not None:
            self.threshold = moving_threshold(self.threshold,
                                              batch_percentile(losses, self.percentile),
                                              self.decay)
        if self.epoch < self.burn_in or self.threshold is None:
            return None
        return self_paced_weights(losses, self.threshold)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "threshold": self.threshold}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.threshold = state["threshold"]

"""Small-loss selection: Co-teaching's rule for one network (Han et al., NeurIPS 2018,
Algorithm 1, steps 4-5 and 8).

Each mini-batch keeps the ``R(T)`` fraction of its examples with the smallest loss and
back-propagates their mean loss; with ``tau`` the noise (forget) rate and ``T_k`` the ramp,

    R(T) = 1 - min(T / T_k * tau, tau),   T the epoch (0-based here),

so ``r(T) = 1 - R(T) = tau * min(T / T_k, 1)`` is the forgotten fraction. The number kept is
``floor(R(T) * B)`` (the authors' code: ``int(remember_rate * len(loss_sorted))``), at least
one. Ties are broken by position (stable sort).

``small-loss-known`` is given ``tau`` (the benchmark passes the true rate, as the paper does).
``small-loss`` estimates it with :func:`~sampletune.noisy.estimate.estimate_noise_rate`
(DivideMix's 2-component GMM) from each example's last training loss at the start of epoch
``estimate_epoch`` (default ``T_k // 2``); before that it keeps every example (``r = 0``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sampletune.errors import check
from sampletune.noisy.estimate import LossMaskSelector


def forget_rate(epoch: int, rate: float, ramp_epochs: int) -> float:
    """``r(T) = rate * min(T / T_k, 1)``: the fraction of a batch not back-propagated."""
    return float(rate) * min(epoch / max(ramp_epochs, 1), 1.0)


def small_loss_mask(losses: Tensor, forget: float) -> Tensor:
    """(B,) bool: True for the ``max(1, floor((1 - forget) * B))`` smallest ``losses``."""
    b = losses.shape[0]
    keep = max(1, int(math.floor((1.0 - forget) * b + 1e-9)))
    order = torch.argsort(losses, stable=True)
    mask = torch.zeros(b, dtype=torch.bool, device=losses.device)
    mask[order[:keep]] = True
    return mask


class SmallLoss(LossMaskSelector):
    """Selector + observer for the trainer: weights 1 on the kept examples, 0 elsewhere.

    Args:
        n: training examples. noise_rate: ``tau`` if known, else estimated (see module).
        ramp_epochs: ``T_k``. estimate_epoch: epoch whose start fits the estimate.
    """

    def __init__(self, n: int, *, noise_rate: float | None = None, ramp_epochs: int = 10,
                 estimate_epoch: int | None = None, seed: int = 0):
        check(ramp_epochs >= 1, "ramp_epochs", f"{ramp_epochs} must be positive", ">= 1")
        super().__init__(n, noise_rate=noise_rate, seed=seed,
                         estimate_epoch=max(1, ramp_epochs // 2) if estimate_epoch is None
                         else estimate_epoch)
        self.ramp_epochs = int(ramp_epochs)

    def current_forget_rate(self) -> float:
        return 0.0 if self.rate is None else forget_rate(self.epoch, self.rate, self.ramp_epochs)

    def mask(self, losses: Tensor) -> Tensor | None:
        r = self.current_forget_rate()
        return None if r <= 0 else small_loss_mask(losses, r).to(losses.dtype)

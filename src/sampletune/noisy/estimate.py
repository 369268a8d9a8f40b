"""What the loss-based noisy-label rules share: the noise-rate estimate and the bookkeeping
of a selector that masks examples by their loss.

Noise-rate estimate (used when the rate is not given): DivideMix's loss model (Li et al.,
ICLR 2020, section 3.1): min-max normalise the per-example training losses, fit a
two-component 1-D Gaussian mixture (EM, ``reg_covar=5e-4``, as their code), and call an
example noisy when the posterior of the component with the larger mean exceeds 0.5. The
estimate is the fraction of such examples, clipped to ``[0, max_rate]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class NoiseMixture:
    """The two-component mixture's view of a loss vector: ``rate``, the share of examples
    whose high-loss posterior exceeds 0.5 (clipped to ``[0, max_rate]``), and ``ambiguous``,
    the share whose posterior lies in ``(AMBIGUOUS_LOW, 1 - AMBIGUOUS_LOW)``: examples the
    mixture cannot call clean or noisy, many where the losses separate noise poorly."""

    rate: float
    ambiguous: float


AMBIGUOUS_LOW = 0.1


def noisy_posterior(losses: Tensor, *, seed: int = 0) -> Tensor:
    """``(N,)`` float64 posterior of the high-loss ("noisy") component of DivideMix's
    two-component GMM on min-max normalised ``losses`` ``(N,)``; non-finite losses are left
    out of the fit and get 1, and all-equal losses give 0 everywhere (nothing looks noisy)."""
    loss = losses.detach().to("cpu", torch.float64).numpy()
    finite = np.isfinite(loss)
    out = np.where(finite, 0.0, 1.0)
    kept = loss[finite]
    if kept.size < 2 or float(kept.max() - kept.min()) <= 0:
        return torch.from_numpy(out)
    from sklearn.mixture import GaussianMixture

    z = ((kept - kept.min()) / (kept.max() - kept.min()))[:, None]
    gmm = GaussianMixture(2, max_iter=10, tol=1e-2, reg_covar=5e-4, random_state=seed).fit(z)
    out[finite] = gmm.predict_proba(z)[:, int(np.argmax(gmm.means_[:, 0]))]
    return torch.from_numpy(out)


def noise_mixture(losses: Tensor, *, seed: int = 0, max_rate: float = 0.9) -> NoiseMixture:
    """The :class:`NoiseMixture` of :func:`noisy_posterior` over the finite ``losses``;
    ``NoiseMixture(0, 0)`` when all losses are equal."""
    finite = torch.isfinite(losses.detach().cpu())
    posterior = noisy_posterior(losses, seed=seed)[finite].numpy()
    if posterior.size < 2:
        return NoiseMixture(0.0, 0.0)
    rate = float((posterior > 0.5).mean())
    ambiguous = float(((posterior > AMBIGUOUS_LOW) & (posterior < 1 - AMBIGUOUS_LOW)).mean())
    return NoiseMixture(min(max(rate, 0.0), max_rate), ambiguous)


def estimate_noise_rate(losses: Tensor, *, seed: int = 0, max_rate: float = 0.9) -> float:
    """Fraction of examples a 2-component GMM on normalised ``losses`` puts in the
    high-loss component (posterior > 0.5); 0 when all losses are equal."""
    return noise_mixture(losses, seed=seed, max_rate=max_rate).rate


class LossMaskSelector:
    """Base of the selectors that weight a batch by its own losses (small-loss, self-paced).

    As a :class:`~sampletune.train.hooks.Selector` it forwards every example and keeps the
    batch indices for :meth:`loss_weights`; as an observer it records each example's last
    training loss, from which the noise rate is estimated at the start of epoch
    ``estimate_epoch`` when it was not given. ``kept`` / ``seen`` count, per example, how
    often it was back-propagated / forwarded (for analysis).
    """

    def __init__(self, n: int, *, noise_rate: float | None, estimate_epoch: int, seed: int = 0):
        self.n = int(n)
        self.known = noise_rate is not None
        self.rate: float | None = None if noise_rate is None else float(noise_rate)
        self.estimate_epoch = int(estimate_epoch)
        self.seed = int(seed)
        self.epoch = 0
        self.last_loss = torch.full((self.n,), float("nan"))
        self.kept = torch.zeros(self.n)
        self.seen = torch.zeros(self.n)
        self._index: Tensor | None = None

    def select(self, model: nn.Module, index: Tensor, x: Tensor, y: Tensor
               ) -> tuple[Tensor, Tensor, Tensor]:
        self._index = index
        return index, x, y  # every example is forwarded; the rule acts on the loss

    def mask(self, losses: Tensor) -> Tensor | None:
        """(B,) float 0/1 weights of the batch, or ``None`` for all ones."""
        raise NotImplementedError

    def loss_weights(self, losses: Tensor) -> Tensor | None:
        w = self.mask(losses.detach())
        if self._index is not None:
            idx = self._index.cpu()
            self.seen.index_add_(0, idx, torch.ones(len(idx)))
            self.kept.index_add_(0, idx, torch.ones(len(idx)) if w is None else w.cpu())
        return w

    def set_epoch(self, epoch: int) -> None:
        if not self.known and self.rate is None and epoch >= self.estimate_epoch:
            self.rate = estimate_noise_rate(self.last_loss, seed=self.seed)
        self.epoch = int(epoch)

    def on_batch(self, report) -> None:
        if not self.known and self.rate is None:  # only the estimate needs the record
            self.last_loss[report.indices.cpu()] = report.losses.detach().float().cpu()

    def kept_noisy_share(self, noisy: Tensor) -> dict:
        """Share of noisy examples among back-propagated vs forwarded example-visits."""
        noisy = noisy.cpu().float()
        return {"kept_noisy_share": float((self.kept * noisy).sum() / self.kept.sum().clamp_min(1)),
                "seen_noisy_share": float((self.seen * noisy).sum() / self.seen.sum().clamp_min(1)),
                "kept_fraction": float(self.kept.sum() / self.seen.sum().clamp_min(1))}

    def state_dict(self) -> dict:
        return {"rate": self.rate, "epoch": self.epoch, "last_loss": self.last_loss.clone(),
                "kept": self.kept.clone(), "seen": self.seen.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.rate, self.epoch = state["rate"], int(state["epoch"])
        self.last_loss = state["last_loss"].clone()
        self.kept, self.seen = state["kept"].clone(), state["seen"].clone()

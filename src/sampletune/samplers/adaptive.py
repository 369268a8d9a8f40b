"""p-SGD and c-SGD: adaptive importance samplers fed by the training forward pass.

budgeted-importance-sampling.txt, section 3 (after Chang et al., "Active Bias", 2017). Each
example's importance is the running mean of ``1 - p(true class)`` over the times it was seen
in training (eq. 2), plus the smoothing constant ``epsilon^t`` (the mean importance); the
epoch draws ``round(N * B)`` examples from ``P^t`` (eq. 3). The samplers are observers: the
training loop calls :meth:`on_batch` with the per-example true-class probabilities it already
computed, so importance costs no extra forward pass.

Choices taken from the paper's public code (EricArazo/ImportanceSampling) and kept here:
examples never seen yet get the largest running mean seen so far (so they are explored), and
the ``N * B`` draws are distinct (``replacement=False``) unless asked otherwise.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sampletune.errors import ConfigError, check
from sampletune.samplers.base import (
    IndexSampler,
    budget_samples,
    check_flag,
    check_int,
    state_entries,
)
from sampletune.samplers.weighted import sample_with_replacement, sample_without_replacement


def seen_mean(hardness_sum: Tensor, weight_sum: Tensor) -> Tensor:
    """The first term of eq. 2: ``hardness_sum / weight_sum`` ``(N,)`` float64, the mean
    ``1 - p(true class)`` over the times each example was seen; examples never seen
    (``weight_sum == 0``) get the largest mean seen, 1 if none was seen."""
    hardness = torch.as_tensor(hardness_sum).detach().cpu().to(torch.float64)
    weight = torch.as_tensor(weight_sum).detach().cpu().to(torch.float64)
    check(hardness.shape == weight.shape and hardness.dim() == 1, "weight_sum",
          f"shape {tuple(weight.shape)} for hardness_sum {tuple(hardness.shape)}", "(N,) each")
    seen = weight > 0
    mean = torch.ones(len(weight), dtype=torch.float64)
    if seen.any():
        m = hardness[seen] / weight[seen]
        mean[seen] = m
        mean[~seen] = m.max()
    return mean


def csgd_importance(mean: Tensor) -> Tensor:
    """c-SGD's importance ``c = p (1 - p)`` of the running mean ``p`` ``(N,)`` (section 3)."""
    return mean * (1.0 - mean)


def smoothed_probabilities(importance: Tensor) -> Tensor:
    """Eqs. 2-3: ``P^t = (imp + eps^t) / sum``, ``eps^t`` the mean importance, from
    ``importance`` ``(N,)`` float64 >= 0; uniform when that sum is not positive. A NaN,
    infinite or negative importance (a diverged loss, a ``true_prob`` outside [0, 1]) is a
    one-line :class:`ConfigError`, not a silent fall back to uniform."""
    bad = ~torch.isfinite(importance) | (importance < 0)
    if bool(bad.any()):
        raise ConfigError("importance", f"{int(bad.sum())} example(s) with a NaN, infinite or "
                          "negative running hardness (a diverged loss, or true_prob outside "
                          "[0, 1])", "finite >= 0")
    p = importance + importance.mean()
    if not bool(p.sum() > 0):  # every example fitted perfectly: fall back to uniform
        return torch.full((len(p),), 1.0 / len(p), dtype=torch.float64)
    return p / p.sum()


def psgd_probabilities(mean: Tensor) -> Tensor:
    """p-SGD's ``P^t`` (eqs. 2-3) ``(N,)`` from the running mean ``1 - p(true class)``
    ``(N,)`` (:func:`seen_mean`)."""
    return smoothed_probabilities(mean)


def csgd_probabilities(mean: Tensor) -> Tensor:
    """c-SGD's ``P^t`` ``(N,)``: eqs. 2-3 on ``c = mean (1 - mean)``."""
    return smoothed_probabilities(csgd_importance(mean))


class PSGDSampler(IndexSampler):
    """p-SGD: draw ``round(n * budget)`` examples per epoch from ``P^t`` (eqs. 2-3).

    Args:
        n: number of training examples ``N``.
        budget: ``B`` in (0, 1]: the fraction of ``N`` drawn per epoch.
        warmup_epochs: epochs ``< warmup_epochs`` draw uniformly (statistics still update).
        replacement: draw with replacement (default: distinct examples, as the paper's code).
        seed, num_replicas, rank, drop_last: as :class:`IndexSampler` (``num_replicas`` and
            ``rank`` default to the process group's).

    State (``state_dict``) holds the per-example sums, so a resumed run draws exactly what
    the uninterrupted one would have. With ``num_replicas > 1`` every rank must observe the
    reports of all ranks (the trainer all-gathers them) so that all ranks agree on ``P^t``.
    """

    def __init__(self, n: int, *, budget: float = 1.0, warmup_epochs: int = 0,
                 replacement: bool = False, **kw):
        super().__init__(budget_samples(n, budget), **kw)
        check_int(warmup_epochs, "warmup_epochs", 0)
        check_flag(replacement, "replacement")
        self.n = int(n)
        self.warmup_epochs = int(warmup_epochs)
        self.replacement = replacement
        self.hardness_sum = torch.zeros(self.n, dtype=torch.float64)  # sum_k (1 - p_k)
        self.weight_sum = torch.zeros(self.n, dtype=torch.float64)  # sightings

    def on_batch(self, report) -> None:
        """The trainer's hook: :meth:`observe` the report's indices and ``true_prob`` (for
        mixed batches the trainer already credits each source with its share-weighted
        mean)."""
        self.observe(report.indices, report.true_prob)

    def observe(self, indices: Tensor, true_prob: Tensor) -> None:
        """Accumulate ``1 - true_prob`` ``(B,)`` by ``indices`` ``(B,)`` (from your own loop:
        ``true_prob = exp(-per-example cross-entropy)``). The sums live on the indices'
        device, so observing costs no host sync.

        Types, shapes and lengths are checked here (one-line :class:`ConfigError`), and
        indices in ``[0, n)`` on the CPU, where that is free; on an accelerator, where it
        would cost a host sync per batch, an index out of range trips the device's index
        assert. A NaN or infinite ``true_prob`` (a diverged loss) is refused by the next
        draw after warm-up (:func:`smoothed_probabilities`)."""
        check(isinstance(indices, Tensor) and indices.dim() == 1
              and indices.dtype in (torch.int32, torch.int64), "indices",
              f"{_describe(indices)} is not a 1-D int32/int64 tensor", "(B,) int64 in [0, n)")
        check(isinstance(true_prob, Tensor) and true_prob.shape == indices.shape
              and not true_prob.is_complex() and true_prob.dtype != torch.bool, "true_prob",
              f"{_describe(true_prob)} for {len(indices)} indices", "(B,) real, one per index")
        if indices.device.type == "cpu":
            out = int(((indices < 0) | (indices >= self.n)).sum())
            check(out == 0, "indices", f"{out} index(es) outside [0, {self.n})",
                  f"0 <= index < {self.n}")
        idx = indices.detach()
        if self.hardness_sum.device != idx.device:
            self.hardness_sum = self.hardness_sum.to(idx.device)
            self.weight_sum = self.weight_sum.to(idx.device)
        hard = 1.0 - true_prob.detach().to(torch.float64)
        self.hardness_sum.index_add_(0, idx, hard)
        self.weight_sum.index_add_(0, idx, torch.ones_like(hard))

    def running_mean(self) -> Tensor:
        """(N,) float64: :func:`seen_mean` of the sums observed so far."""
        return seen_mean(self.hardness_sum, self.weight_sum)

    def base_importance(self, mean: Tensor) -> Tensor:
        """p-SGD's importance before smoothing: the running mean itself."""
        return mean

    def importance(self) -> Tensor:
        """(N,) float64: eq. 2, ``importance_i + epsilon^t`` with ``epsilon^t`` the mean
        importance over all ``N`` examples."""
        imp = self.base_importance(self.running_mean())
        return imp + imp.mean()

    def probabilities(self) -> Tensor:
        """(N,) float64 ``P^t`` of eq. 3 (uniform during warm-up)."""
        if self.epoch < self.warmup_epochs:
            return torch.full((self.n,), 1.0 / self.n, dtype=torch.float64)
        return smoothed_probabilities(self.base_importance(self.running_mean()))

    def _draw(self, generator: torch.Generator) -> Tensor:
        p = self.probabilities()
        if self.replacement:
            return sample_with_replacement(p, self.num_samples, generator)
        return sample_without_replacement(p.clamp_min(1e-12), self.num_samples, generator)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "hardness_sum": self.hardness_sum.cpu().clone(),
                "weight_sum": self.weight_sum.cpu().clone()}

    def load_state_dict(self, state: dict) -> None:
        sums = state_entries(state, "hardness_sum", "weight_sum")
        for key, t in zip(("hardness_sum", "weight_sum"), sums, strict=True):
            check(isinstance(t, Tensor) and t.shape == (self.n,) and not t.is_complex(),
                  "state_dict", f"{key} is {_describe(t)}", f"a ({self.n},) real tensor")
        super().load_state_dict(state)
        self.hardness_sum, self.weight_sum = (t.to(torch.float64).clone() for t in sums)


def _describe(value) -> str:
    """``value``'s shape and dtype if it is a tensor, else its type, for error messages."""
    if isinstance(value, Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


class CSGDSampler(PSGDSampler):
    """c-SGD: importance ``c = p (1 - p)`` of the running mean ``p`` (section 3, after eq. 3),
    favouring examples near the decision boundary; smoothed and drawn as in p-SGD."""

    def base_importance(self, mean: Tensor) -> Tensor:
        return csgd_importance(mean)

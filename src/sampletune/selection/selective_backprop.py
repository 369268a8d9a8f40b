"""Selective backprop (Jiang et al., 2019) as budgeted-importance-sampling.txt eq. 4 uses it.

Every candidate batch gets one batched, ``no_grad`` forward pass (eval mode, as the
authors' code); example i is kept with probability ``s_i = F_R(loss_i) ** b`` (eq. 4), where
``F_R`` is the empirical CDF of the last ``R`` losses. Kept examples queue up until a whole
mini-batch of ``batch_size`` is ready; the trainer then runs its usual forward and backward
pass on them. With augmentation, the candidates are scored on an augmented (and mixed)
version of themselves and each mixed example's loss is credited to its sources by share;
the trainer re-augments the kept examples for the training pass.

Budget: with ``b = 1 / B - 1`` a uniform ``F_R`` keeps a fraction ``E[U^b] = 1 / (b + 1) = B``
of the candidates, so one pass of candidates per epoch gives ``N * B`` back-propagated
examples, like unif-SGD; the extra forward passes cost about 1/3 of a training step each
(section 3: ``B_SB = B + 1/3``). :meth:`SelectiveBackprop.cost` reports the measured value.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sampletune.errors import check, check_int, check_number
from sampletune.models import eval_mode
from sampletune.seeding import check_seed, torch_seed
from sampletune.train.hooks import Augment, Mixer, credit_to_sources


def selectivity_for_budget(budget: float) -> float:
    """``b`` of eq. 4 whose expected keep rate ``1 / (b + 1)`` equals ``budget``."""
    check(0.0 < budget <= 1.0, "budget", f"{budget} is outside (0, 1]", "0 < budget <= 1")
    return 1.0 / budget - 1.0


def sb_keep_probability(losses: Tensor, reference: Tensor, beta: float) -> Tensor:
    """Eq. 4: ``F_R(loss) ** b`` ``(B,)`` float32 in ``[0, 1]``, ``F_R`` the empirical cdf
    of ``reference`` ``(R,)``, the recent losses (eq. 4 counts the batch's own among them).
    ``losses`` ``(B,)``; ``beta`` is ``b >= 0`` (:func:`selectivity_for_budget`). Both
    must be 1-D and finite, ``beta`` a real number (a one-line :class:`ConfigError`)."""
    _check_losses(losses, reference)
    check_number(beta, "sb_beta", "a real number >= 0")
    check(not math.isnan(beta), "sb_beta", f"{beta!r} is not a number", "a real number >= 0")
    return _keep_probability(losses, reference, beta)


def _check_losses(losses: Tensor, reference: Tensor) -> None:
    """One-line errors unless ``losses`` and ``reference`` are 1-D finite real tensors."""
    for field, values in (("losses", losses), ("reference", reference)):
        check(isinstance(values, Tensor) and values.dim() == 1 and not values.is_complex(),
              field, f"is not a 1-D real tensor: {type(values).__name__} "
              f"{tuple(getattr(values, 'shape', ()))}", "(B,) losses")
        bad = int((~torch.isfinite(values)).sum())
        check(bad == 0, field, f"{bad} NaN or infinite value(s) (a diverged loss?)", "finite")


def _keep_probability(losses: Tensor, reference: Tensor, beta: float) -> Tensor:
    """:func:`sb_keep_probability` without its input checks (the trainer's own path)."""
    check(beta >= 0, "sb_beta", f"{beta} is negative", ">= 0")
    recent = reference.detach().flatten().to(losses.device, losses.dtype).sort().values
    check(len(recent) > 0, "reference", "no recent losses", "(R,) losses, R >= 1")
    cdf = torch.searchsorted(recent, losses, right=True).float() / len(recent)
    return cdf.pow(beta)


def sb_select(losses: Tensor, beta: float, generator: torch.Generator,
              reference: Tensor | None = None) -> Tensor:
    """Selective backprop's draw for your own loop: ``(B,)`` bool, example ``i`` kept with
    probability :func:`sb_keep_probability` of its loss ``(B,)`` against ``reference``
    (default: the batch's own losses, as Composer's ``select_using_loss``). Back-propagate
    ``losses[keep]`` (or re-forward ``x[keep]``); ``generator`` on the losses' device.
    A NaN or infinite loss or reference (a diverged model) is a one-line
    :class:`ConfigError` (checking costs a host sync), not a silent keep or drop."""
    _check_losses(losses, losses if reference is None else reference)
    losses = losses.detach().float()
    reference = losses if reference is None else reference.detach()
    p = sb_keep_probability(losses, reference, beta)
    return torch.rand(len(p), generator=generator, device=p.device) < p


class SelectiveBackprop:
    """A :class:`~sampletune.train.hooks.Selector` implementing eq. 4.

    Args:
        batch_size: examples per training step (kept examples are pooled to fill it).
        beta: selectivity ``b > 0``; default :func:`selectivity_for_budget` of ``budget``.
        history: ``R``, the number of recent losses ``F_R`` is built from (1024).
        augment, mixer: the run's augmentation, used to score candidates as they train.
        seed: seeds the generator of the keep draws and the scoring augmentation.
    """

    def __init__(self, batch_size: int, *, budget: float = 1.0, beta: float | None = None,
                 history: int = 1024, augment: Augment | None = None,
                 mixer: Mixer | None = None, seed: int = 0):
        check_int(batch_size, "batch_size", 1)
        check_int(history, "sb_history", 1)
        check_seed(seed, bits=64)
        if beta is not None:
            check_number(beta, "sb_beta", ">= 0")
            check(math.isfinite(beta), "sb_beta", f"{beta!r} is not a finite number", ">= 0")
        self.beta = selectivity_for_budget(budget) if beta is None else float(beta)
        check(self.beta >= 0, "sb_beta", f"{self.beta} is negative", ">= 0")
        self.batch_size = int(batch_size)
        self.budget = float(budget)
        self.R = int(history)
        self.augment, self.mixer = augment, mixer
        self.seed = int(seed)
        self.history = torch.zeros(self.R)
        self.filled = 0  # losses recorded so far (the buffer holds the last min(filled, R))
        self.pool: tuple[Tensor, Tensor, Tensor] | None = None  # kept (index, x, y) waiting
        self.forward_examples = 0  # candidates given the extra no_grad forward pass
        self.backprop_examples = 0  # examples handed to the training step
        self._generator: torch.Generator | None = None
        self._generator_state: Tensor | None = None

    # ---- eq. 4 ------------------------------------------------------------------------
    def keep_probability(self, losses: Tensor) -> Tensor:
        """(B,) ``F_R(loss) ** b`` after adding ``losses`` (B,) to the history."""
        losses = losses.detach().float()
        if self.history.device != losses.device:
            self.history = self.history.to(losses.device)
        n = len(losses)
        if n >= self.R:
            self.history = losses[-self.R:].clone()
        else:
            pos = (self.filled + torch.arange(n, device=losses.device)) % self.R
            self.history[pos] = losses
        self.filled += n
        return _keep_probability(losses, self.history[: min(self.filled, self.R)], self.beta)

    @torch.no_grad()
    def score(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        """(B,) per-example loss from one batched no-grad forward pass in eval mode, on the
        augmented / mixed candidates, credited back to each source example by share."""
        gen = self.generator(x.device)
        with eval_mode(model):
            if self.augment is not None:
                x = self.augment(x, gen)
            if self.mixer is None:
                return F.cross_entropy(model(x), y, reduction="none")
            mixed = self.mixer(x, y, gen)
            logp = F.log_softmax(model(mixed.x), dim=1)
            per_mixed = (-logp.gather(1, mixed.labels) * mixed.shares).sum(1)
            return credit_to_sources(mixed, per_mixed, len(y))

    def select(self, model: nn.Module, index: Tensor, x: Tensor, y: Tensor
               ) -> tuple[Tensor, Tensor, Tensor] | None:
        """Score the candidates, keep each with probability eq. 4, and return a full
        mini-batch once ``batch_size`` kept examples are pooled (else ``None``)."""
        p = self.keep_probability(self.score(model, x, y))
        keep = torch.rand(len(p), generator=self.generator(x.device), device=x.device) < p
        self.forward_examples += len(p)
        kept = (index[keep], x[keep], y[keep])
        if self.pool is not None:  # (on the CPU after a resume)
            kept = tuple(torch.cat([a.to(x.device), b])
                         for a, b in zip(self.pool, kept, strict=True))
        if len(kept[0]) < self.batch_size:
            self.pool = kept
            return None
        self.pool = tuple(t[self.batch_size:] for t in kept)
        self.backprop_examples += self.batch_size
        return tuple(t[: self.batch_size] for t in kept)

    def loss_weights(self, losses: Tensor) -> None:
        return None  # kept examples train with the plain mean loss

    # ---- accounting ----------------------------------------------------------------------
    def cost(self, n: int, epochs: int) -> dict:
        """Budget actually used over ``epochs`` epochs of ``n`` examples, counting a
        forward pass as 1/3 of a training step (section 3): ``backprop`` = back-propagated
        examples / (n T); ``extra_forward`` = no-grad candidate forwards / (3 n T);
        ``effective`` = their sum; ``paper_estimate`` = B + 1/3."""
        full = float(n * epochs)
        bp = self.backprop_examples / full
        fw = self.forward_examples / (3.0 * full)
        return {"backprop": bp, "extra_forward": fw, "effective": bp + fw,
                "paper_estimate": self.budget + 1.0 / 3.0}

    # ---- state -------------------------------------------------------------------------
    def generator(self, device: torch.device) -> torch.Generator:
        if self._generator is None or self._generator.device != torch.device(device):
            self._generator = torch.Generator(device).manual_seed(
                torch_seed(self.seed * 7_919 + 17))
            if self._generator_state is not None:
                self._generator.set_state(self._generator_state)
                self._generator_state = None
        return self._generator

    def state_dict(self) -> dict:
        gen = self._generator.get_state() if self._generator is not None else self._generator_state
        pool = None if self.pool is None else tuple(t.cpu() for t in self.pool)
        return {"history": self.history.cpu(), "filled": self.filled, "pool": pool,
                "forward_examples": self.forward_examples,
                "backprop_examples": self.backprop_examples, "generator": gen}

    def load_state_dict(self, state: dict) -> None:
        self.history = state["history"].clone()
        self.filled = int(state["filled"])
        self.pool = state["pool"]
        self.forward_examples = int(state["forward_examples"])
        self.backprop_examples = int(state["backprop_examples"])
        self._generator, self._generator_state = None, state["generator"]

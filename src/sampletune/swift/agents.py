"""Outer-loop agents behind one ask/tell interface over the unit cube ``[0, 1]^D``.

- :class:`BOAgent` (swift-sampler.txt section 3.3): Gaussian process with an RBF kernel and a
  constant mean equal to the mean of the observed scores, UCB acquisition (the GP of
  :mod:`sampletune.swift.gp`: BoTorch's model and fit, in plain torch).
- :class:`RandomAgent`: uniform points of the cube (appendix A.1.2 baseline).
- :class:`RLAgent`: REINFORCE with a diagonal Gaussian policy in logit space (appendix A.1.2).

Every agent is a deterministic function of ``(seed, history)``: trial ``t``'s draws come
from a generator seeded with ``(seed, t)``, so replaying the history through :meth:`tell`
restores the agent exactly (that is how a search resumes). A failed trial is told as ``None``
and is scored as the worst score observed so far (0 if none), for the agents that learn from
it. The global torch RNG is left untouched.

Several trials in flight (:meth:`ask_batch`): the points of trials proposed but not yet told
are passed as ``pending``; the next point is trial ``t = told + pending``, drawn with trial
``t``'s seed. A batch of ``q`` is ``q`` such proposals in a row, each one pending for the
next, so ``ask_batch(q, P)`` equals ``ask_batch(1, P)`` followed by ``ask_batch(1, P + x)``
... and ``ask_batch(1)`` with nothing pending is :meth:`ask`, the sequential search's point.
Random search and REINFORCE ignore the pending points (independent draws from the trials'
seeds); BO conditions its GP on them (a kriging believer, :class:`BOAgent`).
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from sampletune.errors import check, check_flag, check_int, check_number
from sampletune.swift import gp

AGENTS = ("bo", "random", "rl")
SIGMA_MIN, SIGMA_MAX = 0.05, 3.0  # the RL policy's sigma is kept in this range

# The agents' numeric options: counts are integers >= 1, the others finite numbers in a
# range (a negative beta has no square root, a zero lr never learns, an init_sigma outside
# the kept range is clamped away at the first update): (test, its description).
_COUNTS = ("n_init", "num_restarts", "raw_samples", "fit_maxiter", "acqf_maxiter",
           "refit_every")
_NUMBERS = {
    "beta": (lambda v: v >= 0, ">= 0"),
    "lr": (lambda v: v > 0, "> 0"),
    "lr_sigma": (lambda v: v >= 0, ">= 0"),
    "init_sigma": (lambda v: SIGMA_MIN <= v <= SIGMA_MAX, f"in [{SIGMA_MIN}, {SIGMA_MAX}]"),
}


class Agent(Protocol):
    """Propose cube points and learn from their scores (higher is better)."""

    dim: int

    def ask(self) -> Tensor:
        """The next point, float64 ``(dim,)`` in ``[0, 1]``. Does not change the agent."""
        ...

    def ask_batch(self, q: int, pending: Tensor | None = None) -> Tensor:
        """The next ``q`` points, float64 ``(q, dim)``, given the points ``pending``
        ``(p, dim)`` of trials asked but not yet told. Does not change the agent."""
        ...

    def tell(self, x: Tensor, score: float | None) -> None:
        """Record the score of ``x`` (``None``: the trial failed)."""
        ...

    def recommend(self) -> int | None:
        """Index (in telling order) of the point to keep; ``None`` if every trial failed."""
        ...


class _History:
    """Points and scores told so far, shared by the agents."""

    def __init__(self, dim: int, seed: int):
        check(dim >= 1, "dim", f"{dim} must be positive", ">= 1")
        self.dim, self.seed = int(dim), int(seed)
        self.xs: list[Tensor] = []
        self.scores: list[float | None] = []

    def record(self, x: Tensor, score: float | None) -> None:
        x = torch.as_tensor(x, dtype=torch.float64).flatten()
        check(x.numel() == self.dim, "x", f"{x.numel()} coordinates for a {self.dim}-D agent")
        if score is not None and not math.isfinite(score):
            score = None
        self.xs.append(x.clone())
        self.scores.append(None if score is None else float(score))

    def imputed(self) -> Tensor:
        """Scores ``(t,)`` with failures replaced by the worst observed score (0 if none)."""
        ok = [s for s in self.scores if s is not None]
        worst = min(ok) if ok else 0.0
        return torch.tensor([worst if s is None else s for s in self.scores], dtype=torch.float64)

    def step_seed(self, t: int) -> int:
        """Seed of trial ``t``'s draws (the formula every published search used)."""
        return self.seed * 100_003 + t

    def ask(self) -> Tensor:
        return self.ask_batch(1)[0]

    def ask_batch(self, q: int, pending: Tensor | None = None) -> Tensor:
        """``q`` proposals in a row, float64 ``(q, dim)``; proposal ``i`` is trial
        ``len(told) + len(pending) + i`` and sees the earlier ones as pending."""
        check(q >= 1, "q", f"{q} must be positive", ">= 1")
        pending = (torch.empty(0, self.dim, dtype=torch.float64) if pending is None
                   else torch.as_tensor(pending, dtype=torch.float64).reshape(-1, self.dim))
        out = []
        for _ in range(q):
            x = self._propose(len(self.xs) + len(pending), pending)
            out.append(x)
            pending = torch.cat([pending, x.unsqueeze(0)])
        return torch.stack(out)

    def _propose(self, t: int, pending: Tensor) -> Tensor:
        """Trial ``t``'s point ``(dim,)`` given the pending points ``(t - told, dim)``."""
        raise NotImplementedError

    def recommend(self) -> int | None:
        """Index of the told point to keep: the highest score (the earliest of ties), or
        ``None`` if every trial failed."""
        ok = [i for i, s in enumerate(self.scores) if s is not None]
        return max(ok, key=lambda i: (self.scores[i], -i), default=None)


class RandomAgent(_History):
    """Uniform random search over the cube."""

    def _propose(self, t: int, pending: Tensor) -> Tensor:
        gen = torch.Generator().manual_seed(self.step_seed(t))
        return torch.rand(self.dim, generator=gen, dtype=torch.float64)

    def tell(self, x: Tensor, score: float | None) -> None:
        self.record(x, score)


class BOAgent(_History):
    """GP-UCB Bayesian optimisation (section 3.3).

    The first ``n_init`` points are a scrambled Sobol sequence (10 for the 10-D space: on
    digits at 40% noise, 9 seeds, retrained SS test accuracy 84.4% vs 81.4% with 5). Then
    a GP with an RBF kernel (BoTorch's dimension-scaled lengthscale prior) and a learned
    Gaussian noise (:mod:`sampletune.swift.gp`) is fitted to the standardised scores with
    its constant mean fixed at 0, i.e. at the mean of the observed scores, and the next
    point maximises
    ``UCB = mu + sqrt(beta) * sigma``.

    Cost: every ``refit_every`` tells the GP's hyperparameters are refitted in :meth:`tell`
    by one L-BFGS-B run of at most ``fit_maxiter`` steps started from the previous fit's;
    in between, the posterior is conditioned on the new point under the last fit's
    hyperparameters (``tell`` is also what a resumed search replays, so the agent stays a
    function of ``(seed, history)``); :meth:`ask` only maximises UCB on the GP's closed-form
    posterior (:meth:`_ucb_argmax`). A 40-trial search spends about half a second in the
    agent on a CPU (``benchmarks/bo_agent.py``).
    """

    def __init__(self, dim: int, seed: int = 0, *, n_init: int = 10, beta: float = 2.0,
                 ard: bool = True, num_restarts: int = 4, raw_samples: int = 2048,
                 fit_maxiter: int = 20, acqf_maxiter: int = 25, refit_every: int = 5):
        super().__init__(dim, seed)
        check_flag(ard, "ard")
        for key, value in (("n_init", n_init), ("beta", beta), ("num_restarts", num_restarts),
                           ("raw_samples", raw_samples), ("fit_maxiter", fit_maxiter),
                           ("acqf_maxiter", acqf_maxiter), ("refit_every", refit_every)):
            _check_option(key, value, key)
        self.refit_every = int(refit_every)
        self.ard = ard
        self.n_init, self.beta = int(n_init), float(beta)
        self.num_restarts, self.raw_samples = int(num_restarts), int(raw_samples)
        self.fit_maxiter, self.acqf_maxiter = int(fit_maxiter), int(acqf_maxiter)
        self._hyper: gp.Hyperparameters | None = None  # fitted once there are n_init points
        self._posterior: gp.Posterior | None = None  # the GP's posterior given the history

    def _propose(self, t: int, pending: Tensor) -> Tensor:
        if self._hyper is None:
            from torch.quasirandom import SobolEngine

            sobol = SobolEngine(self.dim, scramble=True, seed=self.seed)
            return sobol.draw(t + 1, dtype=torch.float64)[t]
        posterior = self._posterior.believe(pending) if len(pending) else self._posterior
        return self._ucb_argmax(posterior, self.step_seed(t))

    def tell(self, x: Tensor, score: float | None) -> None:
        self.record(x, score)
        if len(self.xs) >= self.n_init and any(s is not None for s in self.scores):
            x, y = torch.stack(self.xs), _standardise(self.imputed())
            if self._hyper is None or (len(self.xs) - self.n_init) % self.refit_every == 0:
                start = self._hyper or gp.Hyperparameters.prior_modes(self.dim, self.ard)
                self._hyper = gp.fit(x, y, start, self.fit_maxiter)
            self._posterior = gp.Posterior(self._hyper, x, y)

    def recommend(self) -> int | None:
        """Index of the told point with the highest GP posterior mean among the trials that
        did not fail: with noisy scores (a few hundred validation examples) that is the
        standard recommendation of noisy BO, where the top raw score is often a lucky draw."""
        ok = [i for i, s in enumerate(self.scores) if s is not None]
        if self._posterior is None or not ok:
            return super().recommend()
        with torch.no_grad():
            mu, _ = self._posterior(torch.stack([self.xs[i] for i in ok]))
        return ok[int(mu.argmax())]

    def ucb(self, x: Tensor, posterior: gp.Posterior | None = None) -> Tensor:
        """``UCB(x) = mu(x) + sqrt(beta) * sigma(x)`` of the fitted GP (or of ``posterior``),
        ``(m, dim) -> (m,)``."""
        mu, var = (posterior or self._posterior)(x)
        return mu + math.sqrt(self.beta) * var.clamp_min(1e-12).sqrt()

    def _ucb_argmax(self, posterior: gp.Posterior, seed: int) -> Tensor:
        """UCB's maximiser: the best ``num_restarts`` of ``raw_samples`` uniform points (drawn
        with ``seed``), each refined by ``acqf_maxiter`` steps of projected Adam in the cube
        (lr 0.05, torch's Adam update, in numpy on the analytic gradient); the best result."""
        gen = torch.Generator().manual_seed(seed)
        raw = torch.rand(self.raw_samples, self.dim, generator=gen, dtype=torch.float64)
        with torch.no_grad():
            top = self.ucb(raw, posterior).topk(min(self.num_restarts, self.raw_samples)).indices
        x = raw[top].numpy().copy()
        lr, beta1, beta2, eps = 0.05, 0.9, 0.999, 1e-8
        m, v = np.zeros_like(x), np.zeros_like(x)
        for step in range(1, self.acqf_maxiter + 1):
            grad = -posterior.ucb_and_grad(x, math.sqrt(self.beta))[1]  # Adam descends -UCB
            m += (1 - beta1) * (grad - m)
            v = beta2 * v + (1 - beta2) * grad * grad
            denom = np.sqrt(v) / math.sqrt(1 - beta2 ** step) + eps
            x = np.clip(x - lr / (1 - beta1 ** step) * m / denom, 0.0, 1.0)
        with torch.no_grad():
            cands = torch.cat([torch.from_numpy(x), raw[top]])
            return cands[self.ucb(cands, posterior).argmax()].clone()


def _standardise(y: Tensor) -> Tensor:
    std = float(y.std()) if len(y) > 1 and float(y.std()) > 0 else 1.0
    return (y - y.mean()) / std


class RLAgent(_History):
    """REINFORCE with a diagonal Gaussian policy ``z ~ N(mu, sigma^2)``, ``x = sigmoid(z)``.

    Reward = score; advantage = (reward - mean of earlier rewards) / their std. Updates, with
    ``eps = (z - mu) / sigma``: ``mu += lr * A * sigma * eps`` and
    ``log sigma += lr_sigma * A * (eps^2 - 1) / 2`` (score-function gradients, natural scaling).
    Sigma is kept in ``[SIGMA_MIN, SIGMA_MAX]``, so ``init_sigma`` must lie there.
    """

    def __init__(self, dim: int, seed: int = 0, *, lr: float = 0.5, lr_sigma: float = 0.2,
                 init_sigma: float = 1.0):
        super().__init__(dim, seed)
        for key, value in (("lr", lr), ("lr_sigma", lr_sigma), ("init_sigma", init_sigma)):
            _check_option(key, value, key)
        self.lr, self.lr_sigma = float(lr), float(lr_sigma)
        self.mu = torch.zeros(dim, dtype=torch.float64)
        self.log_sigma = torch.full((dim,), math.log(init_sigma), dtype=torch.float64)

    def _propose(self, t: int, pending: Tensor) -> Tensor:
        gen = torch.Generator().manual_seed(self.step_seed(t))
        eps = torch.randn(self.dim, generator=gen, dtype=torch.float64)
        return torch.sigmoid(self.mu + self.log_sigma.exp() * eps)

    def tell(self, x: Tensor, score: float | None) -> None:
        self.record(x, score)
        rewards = self.imputed()
        if len(rewards) < 2:
            return
        past = rewards[:-1]
        spread = float(past.std()) if len(past) > 1 else 0.0
        adv = (float(rewards[-1]) - float(past.mean())) / (spread if spread > 0 else 1.0)
        sigma = self.log_sigma.exp()
        z = torch.logit(self.xs[-1].clamp(1e-6, 1 - 1e-6))
        eps = (z - self.mu) / sigma
        self.mu = self.mu + self.lr * adv * sigma * eps
        self.log_sigma = (self.log_sigma + self.lr_sigma * adv * (eps.pow(2) - 1) / 2).clamp(
            math.log(SIGMA_MIN), math.log(SIGMA_MAX))


def make_agent(name: str, dim: int, seed: int = 0, /, **kw) -> Agent:
    """An agent by name (one of :data:`AGENTS`); ``kw`` are its options, each checked
    against the agent's keyword-only arguments (:func:`check_options`)."""
    check(name in AGENTS, "agent", f"unknown agent {name!r}", ", ".join(AGENTS))
    cls = {"bo": BOAgent, "random": RandomAgent, "rl": RLAgent}[name]
    check_options(name, cls, kw)
    return cls(dim, seed, **kw)


def _check_option(key: str, value, field: str) -> None:
    """One-line :class:`ConfigError` on ``field`` unless ``value`` is in the range of the
    agents' option ``key`` (of :data:`_COUNTS` or :data:`_NUMBERS`)."""
    if key in _COUNTS:
        check_int(value, field, 1)
        return
    holds, allowed = _NUMBERS[key]
    allowed = f"a finite number {allowed}"
    check_number(value, field, allowed)
    check(math.isfinite(value), field, f"{value!r} is not finite", allowed)
    check(holds(value), field, f"{value!r} is out of range", allowed)


def check_options(name: str, cls: type, options: dict) -> None:
    """One-line :class:`ConfigError` on ``agent_options.KEY`` for an option ``cls`` does not
    take, a value not of its default's type (bool, int, or a finite number): never a
    cast (``int(1.5)``, ``bool("no")``), or a value out of the option's range
    (:func:`_check_option`)."""
    import inspect

    taken = {k: p.default for k, p in inspect.signature(cls.__init__).parameters.items()
             if p.kind is inspect.Parameter.KEYWORD_ONLY}
    for key, value in options.items():
        check(key in taken, "agent_options", f"the {name} agent has no option {key!r}",
              ", ".join(taken) or "none")
        default = taken[key]
        if isinstance(default, bool):
            ok, kind = isinstance(value, bool), "true or false"
        elif isinstance(default, int):
            ok, kind = isinstance(value, int) and not isinstance(value, bool), "an integer"
        else:
            ok = (isinstance(value, int | float) and not isinstance(value, bool)
                  and math.isfinite(value))
            kind = "a finite number"
        check(ok, f"agent_options.{key}", f"{value!r} is not {kind}", kind)
        if key in _COUNTS or key in _NUMBERS:
            _check_option(key, value, f"agent_options.{key}")

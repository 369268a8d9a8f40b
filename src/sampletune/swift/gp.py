"""The Gaussian process behind the BO agent (swift-sampler.txt section 3.3), in plain torch.

It is BoTorch's ``SingleTaskGP`` as the agent configures it: a constant mean fixed at 0 (the
scores are standardised), an RBF kernel without output scale (one lengthscale per dimension,
or one shared), Gaussian observation noise, and BoTorch's default priors (Hvarfner et al.
2024: lengthscale ``LogNormal(sqrt(2) + log(D) / 2, sqrt(3))``, noise ``LogNormal(-4, 1)``,
bounded below by 0.025 and 1e-4). :func:`fit` maximises the same objective as
``botorch.fit_gpytorch_mll_scipy`` (exact marginal log likelihood plus log priors, over the
number of points) with the same optimiser (scipy's L-BFGS-B, from the given start, the
bounds as box constraints); :class:`Posterior` is the closed-form posterior. The priors'
constants and the initial values are BoTorch's float32 numbers, so the loss and its gradient
equal gpytorch's to 1e-15 and a search follows BoTorch's as closely as another CPU would
(``tests/test_swift_gp.py``; ``tests/test_swift_parallel.py`` against trials recorded with
BoTorch). The agent spends a third of the time it did in BoTorch's path, whose per-call
overhead made it a search's largest fixed cost on small data (``benchmarks/bo_agent.py``).
"""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

LENGTHSCALE_MIN = 2.5e-2
NOISE_MIN = 1e-4
NOISE_PRIOR = (-4.0, 1.0)  # LogNormal (loc, scale) of the noise variance


def lengthscale_prior(dim: int) -> tuple[float, float]:
    """LogNormal ``(loc, scale)`` of each lengthscale in a ``dim``-D space, rounded to
    float32 as BoTorch keeps them."""
    loc, scale = torch.tensor([math.sqrt(2.0) + 0.5 * math.log(dim), math.sqrt(3.0)],
                              dtype=torch.float32)
    return float(loc), float(scale)


@dataclass(frozen=True)
class Hyperparameters:
    """``lengthscale`` float64 ``(D,)`` (ARD) or ``(1,)`` (shared), in cube units;
    ``noise``: the observation noise variance, in units of the standardised scores."""

    lengthscale: Tensor
    noise: float

    @classmethod
    def prior_modes(cls, dim: int, ard: bool) -> Hyperparameters:
        """The priors' modes, ``exp(loc - scale^2)``, in float32: BoTorch's initial values
        (gpytorch computes them in float32 before the model moves to float64)."""
        loc, scale = torch.tensor([NOISE_PRIOR, lengthscale_prior(dim)], dtype=torch.float32).T
        modes = torch.exp(loc - scale ** 2).double()  # float32 arithmetic, as gpytorch's
        return cls(modes[1].repeat(dim if ard else 1), float(modes[0]))


def _lognormal_log_prob(value: Tensor, loc: float, scale: float) -> Tensor:
    """``log LogNormal(value; loc, scale)`` as torch.distributions computes it from gpytorch's
    float32 ``loc`` and ``scale`` (its variance and log scale are float32 results)."""
    scale32 = torch.tensor(scale, dtype=torch.float32)
    var, log_scale = float(scale32 ** 2), float(scale32.log())
    log_value = value.log()
    return (-((log_value - loc) ** 2) / (2 * var) - log_scale
            - math.log(math.sqrt(2 * math.pi)) - log_value)


def rbf(a: Tensor, b: Tensor, lengthscale: Tensor) -> Tensor:
    """``exp(-|a - b|^2 / 2)`` in lengthscale units, ``(m, D), (n, D) -> (m, n)``."""
    return torch.exp(-0.5 * torch.cdist(a / lengthscale, b / lengthscale).pow(2))


def neg_log_marginal(theta: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """The loss :func:`fit` minimises, a scalar: ``-(log N(y; 0, K + noise I) + log p(l)
    + log p(noise)) / n`` with ``K = rbf(x, x, l)`` (Rasmussen & Williams eq. 2.30, plus the
    priors). ``theta`` ``(1 + L,)`` is ``[noise, l_1..l_L]``; ``x`` ``(n, D)``; ``y`` ``(n,)``."""
    noise, lengthscale = theta[0], theta[1:]
    n, dim = x.shape
    k = rbf(x, x, lengthscale) + noise * torch.eye(n, dtype=x.dtype)
    chol = torch.linalg.cholesky(k)
    alpha = torch.cholesky_solve(y.reshape(-1, 1), chol)
    log_lik = (-0.5 * (y.reshape(1, -1) @ alpha).squeeze()
               - chol.diagonal().log().sum() - 0.5 * n * math.log(2 * math.pi))
    log_prior = (_lognormal_log_prob(noise, *NOISE_PRIOR)
                 + _lognormal_log_prob(lengthscale, *lengthscale_prior(dim)).sum())
    return -(log_lik + log_prior) / n


def fit(x: Tensor, y: Tensor, start: Hyperparameters, maxiter: int) -> Hyperparameters:
    """Hyperparameters for points ``x`` ``(n, D)`` and standardised scores ``y`` ``(n,)``:
    at most ``maxiter`` L-BFGS-B iterations on :func:`neg_log_marginal` from ``start``."""
    from scipy.optimize import minimize

    x, y = x.to(torch.float64), y.to(torch.float64).reshape(-1)

    def loss_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        t = torch.from_numpy(theta).requires_grad_(True)
        loss = neg_log_marginal(t, x, y)
        (grad,) = torch.autograd.grad(loss, t)
        return float(loss.detach()), grad.numpy()

    theta0 = np.concatenate([[start.noise], start.lengthscale.numpy()])
    bounds = [(NOISE_MIN, None)] + [(LENGTHSCALE_MIN, None)] * len(start.lengthscale)
    with _blas().limit(limits=1, user_api="blas"):  # OpenBLAS threads slow it 4x on 2 cores
        res = minimize(loss_and_grad, theta0, jac=True, method="L-BFGS-B", bounds=bounds,
                       options={"maxiter": maxiter})
    return Hyperparameters(torch.from_numpy(res.x[1:].copy()), float(res.x[0]))


@functools.cache
def _blas():
    """The process's BLAS thread pools (numpy's and scipy's OpenBLAS), found once."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


class Posterior:
    """Closed-form posterior of the GP given ``x`` ``(n, D)`` and standardised scores ``y``
    ``(n,)`` under ``hyper``: ``__call__(x (m, D))`` returns the mean and the variance of the
    latent function, ``(m,)`` each (what UCB uses)."""

    def __init__(self, hyper: Hyperparameters, x: Tensor, y: Tensor):
        self.lengthscale = hyper.lengthscale
        self.noise = hyper.noise
        self._condition(x, y.reshape(-1))

    def _condition(self, x: Tensor, y: Tensor) -> None:
        with torch.no_grad():
            self.x, self.y = x, y
            eye = torch.eye(len(x), dtype=x.dtype)
            k = rbf(x, x, self.lengthscale) + self.noise * eye
            self.chol = torch.linalg.cholesky(k + 1e-8 * eye)
            self.alpha = torch.cholesky_solve(y.reshape(-1, 1), self.chol)

    def believe(self, pending: Tensor) -> Posterior:
        """Kriging believer: a new posterior that also observed ``pending`` ``(p, D)`` at
        this posterior's mean (same hyperparameters; this one is unchanged)."""
        with torch.no_grad():
            mean, _ = self(pending)
        other = copy.copy(self)
        other._condition(torch.cat([self.x, pending]), torch.cat([self.y, mean]))
        return other

    def __call__(self, x: Tensor) -> tuple[Tensor, Tensor]:
        ks = rbf(x, self.x, self.lengthscale)  # (m, n)
        mean = (ks @ self.alpha).squeeze(-1)
        v = torch.linalg.solve_triangular(self.chol, ks.T, upper=False)  # (n, m)
        return mean, 1.0 - v.pow(2).sum(0)

    def ucb_and_grad(self, x: Tensor, sqrt_beta: float) -> tuple[Tensor, Tensor]:
        """``UCB = mu + sqrt_beta * sigma`` ``(m,)`` at ``x`` ``(m, D)`` and its gradient
        ``(m, D)``, analytically: with ``k`` the kernel vector of a point, ``dmu = alpha^T dk``
        and ``dsigma = -(K^-1 k)^T dk / sigma`` (zero where the variance is floored at
        1e-12, as for autograd through the floor), ``dk_i / dx = -k_i (x - x_i) / l^2``."""
        with torch.no_grad():
            u, units = x / self.lengthscale, self.x / self.lengthscale
            ks = torch.exp(-0.5 * torch.cdist(u, units).pow(2))  # (m, n)
            v = torch.linalg.solve_triangular(self.chol, ks.T, upper=False)  # (n, m)
            var = 1.0 - v.pow(2).sum(0)
            sigma = var.clamp_min(1e-12).sqrt()
            w = torch.linalg.solve_triangular(self.chol.T, v, upper=True)  # (n, m) = K^-1 k
            dsigma = torch.where(var >= 1e-12, sqrt_beta / sigma, 0.0)
            coef = (self.alpha.T - w.T * dsigma[:, None]) * ks  # (m, n)
            grad = (coef @ units - coef.sum(1, keepdim=True) * u) / self.lengthscale
            return (ks @ self.alpha).squeeze(-1) + sqrt_beta * sigma, grad

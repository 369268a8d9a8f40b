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
equal gpytorch's to rounding and a search follows BoTorch's as closely as another CPU would
(``tests/test_swift_gp.py``; ``tests/test_swift_parallel.py`` against trials recorded with
BoTorch). The loss, its gradient and UCB's gradient are closed-form numpy on small arrays,
where gpytorch's and autograd's per-call overhead made the agent a search's largest fixed
cost on small data: a 40-trial search now spends about 0.3 s in it, 5.8x less
(``benchmarks/bo_agent.py``).
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


def _lognormal_log_prob(value: np.ndarray, loc: float, scale: float):
    """``log LogNormal(value; loc, scale)`` and its derivative in ``value``, elementwise, as
    torch.distributions computes it from gpytorch's float32 ``loc`` and ``scale`` (its
    variance and log scale are float32 results)."""
    scale32 = torch.tensor(scale, dtype=torch.float32)
    var, log_scale = float(scale32 ** 2), float(scale32.log())
    log_value = np.log(value)
    log_prob = (-((log_value - loc) ** 2) / (2 * var) - log_scale
                - math.log(math.sqrt(2 * math.pi)) - log_value)
    return log_prob, (-(log_value - loc) / var - 1.0) / value


def rbf(a: Tensor, b: Tensor, lengthscale: Tensor) -> Tensor:
    """``exp(-|a - b|^2 / 2)`` in lengthscale units, ``(m, D), (n, D) -> (m, n)``."""
    return torch.exp(-0.5 * torch.cdist(a / lengthscale, b / lengthscale).pow(2))


def neg_log_marginal(theta: np.ndarray, x: np.ndarray, y: np.ndarray
                     ) -> tuple[float, np.ndarray]:
    """The loss :func:`fit` minimises and its gradient ``(1 + L,)``: ``-(log N(y; 0, K)
    + log p(l) + log p(noise)) / n`` with ``K = rbf(x, x, l) + noise I`` (Rasmussen &
    Williams eq. 2.30, plus the priors; gradient from their eq. 5.9, ``dL/dtheta =
    tr((alpha alpha^T - K^-1) dK/dtheta) / 2``). ``theta`` is ``[noise, l_1..l_L]`` (``L`` is
    ``D`` or 1, shared); ``x`` ``(n, D)``; ``y`` ``(n,)``; all float64."""
    from scipy.linalg import cho_solve

    noise, lengthscale = theta[0], theta[1:]
    n, dim = x.shape
    sq_diff = (x[:, None, :] - x[None, :, :]) ** 2  # (n, n, D)
    scaled = x / lengthscale
    k_rbf = np.exp(-0.5 * ((scaled[:, None, :] - scaled[None, :, :]) ** 2).sum(-1))
    chol = np.linalg.cholesky(k_rbf + noise * np.eye(n))
    k_inv = cho_solve((chol, True), np.eye(n))
    alpha = k_inv @ y
    log_lik = -0.5 * y @ alpha - np.log(np.diag(chol)).sum() - 0.5 * n * math.log(2 * math.pi)
    prior_noise, dprior_noise = _lognormal_log_prob(noise, *NOISE_PRIOR)
    prior_l, dprior_l = _lognormal_log_prob(lengthscale, *lengthscale_prior(dim))
    outer = np.outer(alpha, alpha) - k_inv
    weighted = outer * k_rbf  # dK/dl_d = k_rbf * sq_diff_d / l_d^3
    if len(lengthscale) == dim:
        dlog_lik_l = 0.5 * np.einsum("ij,ijd->d", weighted, sq_diff) / lengthscale ** 3
    else:
        dlog_lik_l = 0.5 * (weighted * sq_diff.sum(-1)).sum() / lengthscale ** 3
    loss = -(log_lik + prior_noise + prior_l.sum()) / n
    grad = np.concatenate([[0.5 * np.trace(outer) + dprior_noise], dlog_lik_l + dprior_l])
    return float(loss), -grad / n


def fit(x: Tensor, y: Tensor, start: Hyperparameters, maxiter: int) -> Hyperparameters:
    """Hyperparameters for points ``x`` ``(n, D)`` and standardised scores ``y`` ``(n,)``:
    at most ``maxiter`` L-BFGS-B iterations on :func:`neg_log_marginal` from ``start``."""
    from scipy.optimize import minimize

    x, y = x.to(torch.float64).numpy(), y.to(torch.float64).reshape(-1).numpy()
    theta0 = np.concatenate([[start.noise], start.lengthscale.numpy()])
    bounds = [(NOISE_MIN, None)] + [(LENGTHSCALE_MIN, None)] * len(start.lengthscale)
    with _blas().limit(limits=1, user_api="blas"):  # OpenBLAS threads slow it 4x on 2 cores
        res = minimize(neg_log_marginal, theta0, args=(x, y), jac=True, method="L-BFGS-B",
                       bounds=bounds, options={"maxiter": maxiter})
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
            self._np = None  # numpy copies for ucb_and_grad, made on first use

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

    def ucb_and_grad(self, x: np.ndarray, sqrt_beta: float) -> tuple[np.ndarray, np.ndarray]:
        """``UCB = mu + sqrt_beta * sigma`` ``(m,)`` at ``x`` ``(m, D)`` and its gradient
        ``(m, D)``, analytically, in numpy (the acquisition's inner loop; a few small arrays,
        where torch's per-operation overhead dominates): with ``k`` the kernel vector of a
        point, ``dmu = alpha^T dk`` and ``dsigma = -(K^-1 k)^T dk / sigma`` (zero where the
        variance is floored at 1e-12, as for autograd through the floor), ``dk_i / dx =
        -k_i (x - x_i) / l^2``."""
        if self._np is None:
            chol_inv = np.linalg.inv(self.chol.numpy())
            self._np = (self.lengthscale.numpy(), (self.x / self.lengthscale).numpy(),
                        self.alpha.numpy().reshape(-1), chol_inv)
        lengthscale, units, alpha, chol_inv = self._np
        u = x / lengthscale
        ks = np.exp(-0.5 * ((u[:, None, :] - units[None, :, :]) ** 2).sum(-1))  # (m, n)
        v = chol_inv @ ks.T  # (n, m)
        var = 1.0 - (v ** 2).sum(0)
        sigma = np.sqrt(np.maximum(var, 1e-12))
        w = chol_inv.T @ v  # (n, m) = K^-1 k
        dsigma = np.where(var >= 1e-12, sqrt_beta / sigma, 0.0)
        coef = (alpha[None, :] - w.T * dsigma[:, None]) * ks  # (m, n)
        grad = (coef @ units - coef.sum(1, keepdims=True) * u) / lengthscale
        return ks @ alpha + sqrt_beta * sigma, grad

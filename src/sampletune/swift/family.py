"""The Swift sampler family ``tau(x) = H(T(G(x)))`` (swift-sampler.txt, eqs. 4-10).

- ``G`` (eq. 6): linear aggregation ``sum_i c_i f_i(x)`` of cdf-normalised features (eq. 7).
- ``T``: ``cdf`` (eq. 7 applied to G) or ``cgf`` (eq. 10: the share of total gradient norm
  held by examples with ``G <= G(x)``).
- ``H`` (eq. 8): continuous piecewise-linear on ``[0, 1]`` through ``(e_s, v_s)``.

Probabilities are ``tau`` normalised to sum to one over the training set (section 4).
"""

from __future__ import annotations

import torch
from torch import Tensor

from sampletune.errors import check
from sampletune.features import cdf_normalise
from sampletune.swift.params import SwiftParams
from sampletune.swift.trials import InvalidCandidate

TRANSFORMS = ("cdf", "cgf")
DEFAULT_FEATURES = ("loss", "renormed_entropy")  # the paper's (section 4)
# What `swift search` aggregates by default: the loss statistic over w_share's training
# flags noisy labels better than its loss (benchmarks/results/feature_cuts.md).
SEARCH_FEATURES = ("train_loss", "renormed_entropy")
GRAD_FEATURE = "grad_norm"


class InvalidSampler(InvalidCandidate):
    """A candidate sampler that gives no usable distribution (all zero or non-finite)."""

    def __init__(self, problem: str):
        super().__init__(problem, "sampler", "some example with tau > 0")


def aggregate(f: Tensor, c: Tensor) -> Tensor:
    """Eq. 6: ``G = f @ c`` for cdf-normalised features ``f`` ``(n, N)`` and ``c`` ``(N,)``."""
    return f @ c.to(f.dtype)


def cgf_transform(g: Tensor, grad: Tensor) -> Tensor:
    """Eq. 10: ``T(G(x_i)) = sum_{j: G_j <= G_i} grad_j / sum_j grad_j``, float64 ``(n,)``.

    Ties in ``G`` share one value; equal-length intervals of the output hold equal gradient
    mass. ``grad`` ``(n,)`` must be finite, non-negative and not all zero.
    """
    grad = grad.to(torch.float64)
    check(bool(torch.isfinite(grad).all()) and bool((grad >= 0).all()), "grad_norm",
          "gradient norms must be finite and non-negative")
    total = grad.sum()
    check(float(total) > 0, "grad_norm", "all gradient norms are zero; cgf is undefined",
          "transform='cdf'")
    order = torch.argsort(g, stable=True)
    sorted_g = g[order]
    cum = torch.cumsum(grad[order], 0)
    last = torch.searchsorted(sorted_g, g, right=True) - 1  # last position with G_j <= G_i
    return (cum[last] / total).clamp(0.0, 1.0)


def piecewise_linear(t: Tensor, e: Tensor, v: Tensor) -> Tensor:
    """Eq. 8: ``H(t)``, linear between ``(e_{s-1}, v_{s-1})`` and ``(e_s, v_s)``.

    ``e`` ``(S+1,)`` ordered with ``e_0 = 0``, ``e_S = 1``; ``v`` ``(S+1,)``; ``t`` ``(n,)`` in
    ``[0, 1]``. A zero-length segment is skipped (the right end point's segment is used).
    """
    t = t.to(torch.float64)
    s = (torch.searchsorted(e, t, right=True) - 1).clamp(0, len(e) - 2)
    left, right = e[s], e[s + 1]
    width = right - left
    frac = torch.where(width > 0, (t - left) / width.clamp_min(1e-300), torch.ones_like(t))
    return v[s] + frac.clamp(0.0, 1.0) * (v[s + 1] - v[s])


class SwiftFamily:
    """Sampling probabilities of Swift samplers on one training set.

    Args:
        features: ``{name: (n,)}`` raw feature values (as from :mod:`sampletune.features`).
        names: the ``N`` features aggregated by G, in the order of ``c``.
        transform: ``"cdf"`` or ``"cgf"``.
        grad_feature: the gradient norm ``cgf`` weighs by (eq. 10): ``grad_norm`` (logit
            layer, closed form) or ``grad_norm_full`` (all parameters).
    """

    def __init__(self, features: dict[str, Tensor], names=DEFAULT_FEATURES,
                 transform: str = "cgf", grad_feature: str = GRAD_FEATURE):
        names = tuple(names)
        check(transform in TRANSFORMS, "transform", f"unknown transform {transform!r}",
              ", ".join(TRANSFORMS))
        check(len(names) >= 1, "features", "needs at least one feature name")
        missing = [k for k in names + ((grad_feature,) if transform == "cgf" else ())
                   if k not in features]
        check(not missing, "features", f"missing {missing}", ", ".join(sorted(features)))
        self.names, self.transform = names, transform
        self.f = torch.stack([cdf_normalise(features[k]) for k in names], dim=1)  # eq. 7
        self.grad_feature = grad_feature
        self.grad = features[grad_feature].to(torch.float64) if transform == "cgf" else None

    @property
    def n(self) -> int:
        return int(self.f.shape[0])

    def t(self, params: SwiftParams) -> Tensor:
        """``T(G(x))`` ``(n,)`` in ``[0, 1]``: the input of H."""
        check(len(params.c) == len(self.names), "params.c",
              f"{len(params.c)} coefficients for {len(self.names)} features {self.names}")
        g = aggregate(self.f, torch.tensor(params.c, dtype=torch.float64))
        return cdf_normalise(g) if self.transform == "cdf" else cgf_transform(g, self.grad)

    def tau(self, params: SwiftParams) -> Tensor:
        """Eq. 5: unnormalised ``tau(x) = H(T(G(x)))`` ``(n,)`` in ``[0, 1]``."""
        return piecewise_linear(self.t(params), torch.tensor(params.e, dtype=torch.float64),
                                torch.tensor(params.v, dtype=torch.float64))

    def probabilities(self, params: SwiftParams) -> Tensor:
        """``tau / sum(tau)``, float64 ``(n,)``; :class:`InvalidSampler` if that is undefined."""
        tau = self.tau(params)
        if not bool(torch.isfinite(tau).all()):
            raise InvalidSampler("tau has non-finite values")
        total = float(tau.sum())
        if total <= 0.0:
            raise InvalidSampler("all examples have zero sampling probability")
        return tau / total

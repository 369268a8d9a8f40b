"""The Swift sampler family ``tau(x) = H(T(G(x)))`` (swift-sampler.txt, eqs. 4-10).

- ``G`` (eq. 6): linear aggregation ``sum_i c_i f_i(x)`` of cdf-normalised features (eq. 7).
- ``T``: ``cdf`` (eq. 7 applied to G) or ``cgf`` (eq. 10: the share of total gradient norm
  held by examples with ``G <= G(x)``).
- ``H`` (eq. 8): continuous piecewise-linear on ``[0, 1]`` through ``(e_s, v_s)``.

Probabilities are ``tau`` normalised to sum to one over the training set (section 4).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from sampletune.errors import check
from sampletune.features import EmpiricalCdf, cdf_normalise
from sampletune.swift.params import SwiftParams
from sampletune.swift.trials import InvalidCandidate

TRANSFORMS = ("cdf", "cgf")
DEFAULT_FEATURES = ("loss", "renormed_entropy")  # the paper's (section 4)
# What `swift search` aggregates by default: the loss statistic over w_share's training
# flags noisy labels better than its loss (benchmarks/results/feature_cuts.md). Its
# class-relative form, `class_train_loss`, is an option: it lost round 7's held-out check
# (benchmarks/results/swift_noise.md).
SEARCH_FEATURES = ("train_loss", "renormed_entropy")
GRAD_FEATURE = "grad_norm"


class InvalidSampler(InvalidCandidate):
    """A candidate sampler that gives no usable distribution (all zero or non-finite)."""

    def __init__(self, problem: str):
        super().__init__(problem, "sampler", "some example with tau > 0")


def aggregate(f: Tensor, c: Tensor) -> Tensor:
    """Eq. 6: ``G = f @ c`` for cdf-normalised features ``f`` ``(n, N)`` and ``c`` ``(N,)``."""
    return f @ c.to(f.dtype)


class CumulativeGradient:
    """Eq. 10 fitted on the training set: ``T(u) = sum_{j: G_j <= u} grad_j / sum_j grad_j``.

    ``g``, ``grad`` ``(n,)`` are the training examples' aggregates and gradient norms (finite,
    non-negative, not all zero); they are sorted once, and calling the object on any ``u``
    ``(m,)`` (the training set's own G, or new points such as crops) is one
    ``searchsorted``: float64 ``(m,)`` in ``[0, 1]``, 0 below every ``G_j``, on ``device``.
    """

    def __init__(self, g: Tensor, grad: Tensor, device: str | torch.device = "cpu"):
        grad = grad.to(torch.float64)
        check(bool(torch.isfinite(grad).all()) and bool((grad >= 0).all()), "grad_norm",
              "gradient norms must be finite and non-negative")
        total = grad.sum()
        check(float(total) > 0, "grad_norm", "all gradient norms are zero; cgf is undefined",
              "transform='cdf'")
        order = torch.argsort(g, stable=True)
        self.sorted_g = g[order].to(device)
        # mass[k]: share of the gradient held by the k smallest G (mass[0] = 0)
        self.mass = torch.cat([grad.new_zeros(1), torch.cumsum(grad[order], 0) / total]).to(device)

    def __call__(self, u: Tensor) -> Tensor:
        u = u.to(self.sorted_g.device, torch.float64)
        return self.mass[torch.searchsorted(self.sorted_g, u, right=True)].clamp(0.0, 1.0)


def cgf_transform(g: Tensor, grad: Tensor) -> Tensor:
    """Eq. 10 on the training set itself, float64 ``(n,)``: ties in ``G`` share one value;
    equal-length intervals of the output hold equal gradient mass."""
    return CumulativeGradient(g, grad)(g)


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
        used = names + ((grad_feature,) if transform == "cgf" else ())
        shapes = {k: tuple(features[k].shape) if isinstance(features[k], Tensor) else None
                  for k in used}
        check(all(s is not None and len(s) == 1 for s in shapes.values())
              and len({s[0] for s in shapes.values()}) == 1, "features",
              f"shapes {shapes}", "one 1-D tensor (n,) per feature, all of the same n")
        self.names, self.transform = names, transform
        self.reference = {k: features[k] for k in names}  # raw values: eq. 7 for new points
        self.f = torch.stack([cdf_normalise(features[k]) for k in names], dim=1)  # eq. 7
        self.grad_feature = grad_feature
        self.grad = features[grad_feature].to(torch.float64) if transform == "cgf" else None

    @property
    def n(self) -> int:
        return int(self.f.shape[0])

    def _g(self, params: SwiftParams, f: Tensor) -> Tensor:
        check(len(params.c) == len(self.names), "params.c",
              f"{len(params.c)} coefficients for {len(self.names)} features {self.names}")
        return aggregate(f, torch.tensor(params.c, dtype=torch.float64, device=f.device))

    def t(self, params: SwiftParams) -> Tensor:
        """``T(G(x))`` ``(n,)`` in ``[0, 1]``: the input of H."""
        g = self._g(params, self.f)
        return cdf_normalise(g) if self.transform == "cdf" else cgf_transform(g, self.grad)

    def tau(self, params: SwiftParams) -> Tensor:
        """Eq. 5: unnormalised ``tau(x) = H(T(G(x)))`` ``(n,)`` in ``[0, 1]``."""
        return piecewise_linear(self.t(params), torch.tensor(params.e, dtype=torch.float64),
                                torch.tensor(params.v, dtype=torch.float64))

    def scorer(self, params: SwiftParams, device: str | torch.device = "cpu"
               ) -> Callable[[dict[str, Tensor]], Tensor]:
        """``tau`` at new points (e.g. random crops, section 4.2) with the training set as
        the reference distribution: each raw feature through the training set's empirical
        cdf (eq. 7), G (eq. 6), then T fitted on the training set's G (its cdf, or eq. 10's
        cumulative gradient) and H. Returns ``features {name: (m,)} -> tau float64 (m,)``
        on ``device``; the training-set references are sorted once, here. On the training
        set's own features it gives :meth:`tau`.
        """
        cdfs = [EmpiricalCdf(self.reference[k], device) for k in self.names]
        g_train = self._g(params, self.f)
        transform = EmpiricalCdf(g_train, device) if self.transform == "cdf" \
            else CumulativeGradient(g_train, self.grad, device)
        e, v = (torch.tensor(a, dtype=torch.float64, device=device) for a in (params.e, params.v))

        def tau_at(features: dict[str, Tensor]) -> Tensor:
            missing = [k for k in self.names if k not in features]
            check(not missing, "features", f"missing {missing}", ", ".join(self.names))
            f = torch.stack([cdf(features[k]) for cdf, k in zip(cdfs, self.names,
                                                                strict=True)], dim=1)
            return piecewise_linear(transform(self._g(params, f)), e, v)

        return tau_at

    def probabilities(self, params: SwiftParams) -> Tensor:
        """``tau / sum(tau)``, float64 ``(n,)``; :class:`InvalidSampler` if that is undefined."""
        tau = self.tau(params)
        if not bool(torch.isfinite(tau).all()):
            raise InvalidSampler("tau has non-finite values")
        total = float(tau.sum())
        if total <= 0.0:
            raise InvalidSampler("all examples have zero sampling probability")
        return tau / total

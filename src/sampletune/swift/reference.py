"""Reference samplers inside the Swift family: uniform, and "drop the top q by loss".

They are what a practitioner would try first on noisy labels (small-loss selection with a
static cut), written as points ``z`` of the family (eqs. 5-9) so the search can start from
them: ``G = loss`` (``c`` = 1 on the loss feature, 0 elsewhere), ``T`` the family's
transform, and ``H`` a step that is 1 up to the value of ``T`` below which a ``1 - q`` share
of the examples lies and 0 after it. The loss feature is the first of ``class_train_loss``,
``train_loss`` and ``loss`` the family has (:func:`loss_feature`).

:func:`estimated_cut` sets ``q`` from the data: the share of examples a two-component
mixture on the loss feature calls noisy (DivideMix's estimate), the cut the pipeline
retrains when the fine-tunes cannot see any sampler beat uniform.

:func:`rescored_cut` moves that cut onto the losses of a better model (the Swift model the
pipeline trained); where w_share's mixture leaves many examples undecided
(:data:`MIN_AMBIGUOUS`), the pipeline retrains the new cut (its refinement step).
"""

from __future__ import annotations

import math

from sampletune.errors import check
from sampletune.noisy.estimate import NoiseMixture, noise_mixture
from sampletune.swift.family import SwiftFamily
from sampletune.swift.params import SwiftParams
from sampletune.train.distributed import current_world

DEFAULT_DROP_SHARES = (0.1, 0.2, 0.3, 0.4, 0.5)
LOSS_FEATURES = ("class_train_loss", "train_loss", "loss")  # in order of preference


def loss_feature(names) -> str | None:
    """The loss feature among ``names`` the reference samplers cut on, or ``None``."""
    return next((k for k in LOSS_FEATURES if k in names), None)


def uniform_params(segments: int, num_features: int) -> SwiftParams:
    """``tau = 1`` everywhere: uniform sampling with replacement."""
    e = tuple(k / segments for k in range(segments + 1))
    return SwiftParams(e, (1.0,) * (segments + 1), (0.0,) * num_features)


def drop_top_loss_params(family: SwiftFamily, q: float, segments: int) -> SwiftParams:
    """The sampler that draws uniformly from the ``1 - q`` share of examples with the lowest
    loss and never draws the rest (ties at the cut are kept). Needs ``segments >= 3``."""
    score = loss_feature(family.names)
    check(score is not None, "features", "reference samplers need a loss feature",
          "features including " + " or ".join(LOSS_FEATURES))
    check(0.0 < q < 1.0, "drop_share", f"{q} is outside (0, 1)")
    check(segments >= 3, "segments", f"a step needs at least 3 segments, not {segments}", ">= 3")
    c = tuple(1.0 if name == score else 0.0 for name in family.names)
    t = family.t(SwiftParams((0.0, 1.0), (1.0, 1.0), c)).sort().values
    keep = max(1, math.ceil((1.0 - q) * family.n))
    cut = float(t[keep - 1])
    after = min(1.0, math.nextafter(cut, 2.0))
    # H = 1 on [0, cut], falls to 0 on [cut, after], 0 up to 1; further end points split the
    # flat zero part evenly so every segment exists.
    rest = [after + (1.0 - after) * k / (segments - 2) for k in range(1, segments - 2)]
    e = (0.0, cut, after, *rest, 1.0)
    v = (1.0, 1.0, *([0.0] * (segments - 1)))
    return SwiftParams(e, v, c)


def reference_params(family: SwiftFamily, segments: int,
                     drop_shares=DEFAULT_DROP_SHARES) -> list[tuple[str, SwiftParams]]:
    """``[(name, params)]``: uniform first, then "drop top q by loss" for each ``q``."""
    refs = [("uniform", uniform_params(segments, len(family.names)))]
    if loss_feature(family.names) is not None and segments >= 3:
        refs += [(f"drop-top-{q:g}", drop_top_loss_params(family, q, segments))
                 for q in drop_shares]
    return refs



# Below this estimated share of noisy labels, the estimated cut is not tried: the mixture's
# high-loss component is then the hard tail of clean data, which a cut would throw away.
MIN_ESTIMATED_SHARE = 0.05


def loss_mixture(family: SwiftFamily, seed: int = 0) -> NoiseMixture | None:
    """The two-component mixture on ``family``'s loss feature
    (:func:`~sampletune.noisy.estimate.noise_mixture`), ``None`` without one; in a
    distributed job, rank 0's."""
    score = loss_feature(family.names)
    if score is None:
        return None
    mixture = noise_mixture(family.reference[score], seed=seed)
    return NoiseMixture(*current_world().decide(mixture.rate, mixture.ambiguous))


def estimated_cut(family: SwiftFamily, segments: int, seed: int = 0,
                  mixture: NoiseMixture | None = None) -> tuple[float, SwiftParams | None]:
    """``(q, params)``: the estimated noisy share ``q`` of the training set (the rate of
    :func:`loss_mixture`, fitted here unless ``mixture`` is that already) and "drop the top
    q" (:func:`drop_top_loss_params`), or ``params = None`` where there is no loss feature,
    fewer than 3 segments, or ``q < MIN_ESTIMATED_SHARE``. In a distributed job ``q`` is rank
    0's estimate."""
    mixture = mixture or loss_mixture(family, seed)
    if mixture is None or segments < 3:
        return 0.0, None
    q = mixture.rate
    if q < MIN_ESTIMATED_SHARE:
        return q, None
    return q, drop_top_loss_params(family, q, segments)


# From this share of examples that w_share's loss mixture leaves undecided (posterior of
# the noisy component in (0.1, 0.9)), the pipeline re-scores its cut with the Swift model:
# w_share's losses then separate the noise poorly. Set on the tuning sets at 40% noise
# (benchmarks/results/refined_cut.md): 0.04-0.05 on digits, where the re-scored cut retrains
# no better; 0.29-0.51 on MNIST-1D, where it gains 3.7 points. The seen sets at 20-40% noise
# lie at 0.02-0.09 (breast cancer's 409 rows: up to 0.52).
MIN_AMBIGUOUS = 0.15


def rescored_cut(family: SwiftFamily, rescored: SwiftFamily, q: float, segments: int
                 ) -> tuple[SwiftParams, float]:
    """``(params, swapped)``: "drop the top q" on ``rescored``'s loss feature (the same
    training examples, features from another model), and the share of the training set that
    one of it and the same cut on ``family`` keeps and the other drops."""
    check(rescored.n == family.n, "features", f"{rescored.n} re-scored examples for "
          f"{family.n} training examples", str(family.n))
    new = drop_top_loss_params(rescored, q, segments)
    old = drop_top_loss_params(family, q, segments)
    swapped = (family.tau(old) > 0) != (rescored.tau(new) > 0)
    return new, float(swapped.double().mean())

"""Label noise for robustness experiments. Deterministic given a ``torch.Generator``.

The clean labels are returned alongside, for analysis and oracles only.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sampletune.errors import check

NOISE_TYPES = ("symmetric", "pairflip")


def symmetric_noise(y: Tensor, rate: float, num_classes: int, generator: torch.Generator) -> Tensor:
    """Symmetric noise as in Swift Sampler section 4.1.

    In each class c with n_c examples, exactly ``round(rate * n_c)`` examples, chosen
    uniformly, are relabelled uniformly to one of the *other* ``num_classes - 1`` classes.

    Args:
        y: (N,) int64 clean labels.
    Returns:
        (N,) int64 noisy labels; no relabelled example keeps its label.
    """
    _check_rate(rate, num_classes)
    noisy = y.clone()
    for c in range(num_classes):
        members = torch.nonzero(y == c).flatten()
        k = round(rate * len(members))
        if k == 0:
            continue
        chosen = members[torch.randperm(len(members), generator=generator)[:k]]
        # A uniform draw among the other classes: shift by 1..C-1 modulo C.
        shift = torch.randint(1, num_classes, (k,), generator=generator)
        noisy[chosen] = (c + shift) % num_classes
    return noisy


def pairflip_noise(y: Tensor, rate: float, num_classes: int, generator: torch.Generator) -> Tensor:
    """Pair-flip (asymmetric) noise: in each class c, exactly ``round(rate * n_c)`` examples
    are relabelled to class ``(c + 1) mod C``.
    """
    _check_rate(rate, num_classes)
    noisy = y.clone()
    for c in range(num_classes):
        members = torch.nonzero(y == c).flatten()
        k = round(rate * len(members))
        chosen = members[torch.randperm(len(members), generator=generator)[:k]]
        noisy[chosen] = (c + 1) % num_classes
    return noisy


def apply_noise(
    y: Tensor, kind: str, rate: float, num_classes: int, generator: torch.Generator
) -> Tensor:
    """Noisy labels of ``kind`` (one of :data:`NOISE_TYPES`) at ``rate``."""
    check(kind in NOISE_TYPES, "noise_type", f"unknown noise type {kind!r}", ", ".join(NOISE_TYPES))
    _check_rate(rate, num_classes)
    top = max_rate(kind, num_classes)
    check(rate < top, "noise", f"{rate:g} {kind} noise over {num_classes} classes leaves the "
          "true class no longer the most frequent label of its examples",
          f"noise < {top:.4g} for {kind} noise over {num_classes} classes")
    fn = symmetric_noise if kind == "symmetric" else pairflip_noise
    return fn(y, rate, num_classes, generator)


def max_rate(kind: str, num_classes: int) -> float:
    """The noise rate above which labels stop being learnable: the true class stays the
    most frequent label of its examples only below ``(C - 1) / C`` for symmetric noise
    (each other class gets ``rate / (C - 1)``) and below 1/2 for pair-flip noise."""
    return (num_classes - 1) / num_classes if kind == "symmetric" else 0.5


def _check_rate(rate: float, num_classes: int) -> None:
    check(0.0 <= rate < 1.0, "noise", f"rate {rate} is outside [0, 1)", "0 <= noise < 1")
    check(num_classes >= 2, "num_classes", f"{num_classes} classes cannot carry label noise",
          ">= 2")

"""Bootstrapping (Reed et al., ICLR 2015 workshop, section 3.2): cross-entropy against a
convex combination of the given label and the model's own prediction.

With ``t`` the one-hot label and ``q = softmax(logits)``:

    soft:  L = -sum_k [beta * t_k + (1 - beta) * q_k]  log q_k      (beta = 0.95)
    hard:  L = -sum_k [beta * t_k + (1 - beta) * z_k]  log q_k      (beta = 0.8),
           z_k = 1[k = argmax_j q_j]

The paper's betas. The prediction inside the target is **detached** by default (a
pseudo-label, as common implementations do, e.g. vfdev-5/BootstrappingLoss with
``as_pseudo_label=True``); ``detach=False`` lets the gradient flow through ``q`` in the
soft target, the paper's reading of soft bootstrapping as minimum-entropy regularisation
(``beta * CE + (1 - beta) * H(q)``). The hard target has no gradient through ``argmax``.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from sampletune.errors import check

REED_BETA = {"soft": 0.95, "hard": 0.8}


def bootstrap_target(logits: Tensor, y: Tensor, beta: float, mode: str = "soft",
                     detach: bool = True) -> Tensor:
    """(B, C) target ``beta * onehot(y) + (1 - beta) * (q, or onehot(argmax q) if hard)``."""
    check(mode in REED_BETA, "mode", f"unknown bootstrapping {mode!r}", "soft, hard")
    c = logits.shape[1]
    q = F.softmax(logits, dim=1)
    if detach:
        q = q.detach()
    pred = q if mode == "soft" else F.one_hot(q.argmax(1), c).to(q.dtype)
    return beta * F.one_hot(y, c).to(q.dtype) + (1.0 - beta) * pred


def bootstrap_loss(logits: Tensor, y: Tensor, beta: float | None = None, mode: str = "soft",
                   detach: bool = True) -> Tensor:
    """(B,) per-example ``-sum_k target_k log softmax(logits)_k`` (see the module)."""
    beta = REED_BETA.get(mode, 0.0) if beta is None else float(beta)
    check(0.0 <= beta <= 1.0, "beta", f"{beta} is outside [0, 1]")
    target = bootstrap_target(logits, y, beta, mode, detach)
    return -(target * F.log_softmax(logits, dim=1)).sum(1)


class Bootstrap:
    """The trainer's ``loss_fn`` hook for REED-soft / REED-hard."""

    def __init__(self, mode: str = "soft", beta: float | None = None, detach: bool = True):
        check(mode in REED_BETA, "mode", f"unknown bootstrapping {mode!r}", "soft, hard")
        self.mode, self.detach = mode, bool(detach)
        self.beta = REED_BETA[mode] if beta is None else float(beta)
        check(0.0 <= self.beta <= 1.0, "beta", f"{self.beta} is outside [0, 1]")

    def __call__(self, logits: Tensor, y: Tensor) -> Tensor:
        return bootstrap_loss(logits, y, self.beta, self.mode, self.detach)

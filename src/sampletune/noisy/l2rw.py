"""Learning to Reweight Examples (Ren et al., ICML 2018, Algorithm 1).

Per training step, with ``f`` the per-example cross-entropy, a training batch and a batch
of the clean meta set (our validation split):

    eps = 0 (B,);            l(theta, eps) = sum_i eps_i f_i(theta)
    theta'(eps) = theta - alpha * grad_theta l(theta, eps)          (virtual SGD step)
    g = grad_eps  mean_j f^meta_j(theta'(eps))  at eps = 0
    w~ = max(-g, 0);  w = w~ / sum(w~)  (w = 0 when sum(w~) = 0: eq. 7's delta)
    real step on sum_i w_i f_i(theta)

Because ``eps = 0`` the virtual step leaves ``theta`` unchanged and ``g_i = -alpha <grad
f^meta(theta), grad f_i(theta)>``, so ``alpha`` only scales ``w~`` and cancels in the
normalisation: we take ``alpha = 1`` (the virtual step is plain SGD, no momentum or
weight decay, as the authors' code). All-zero weights mean no update: the step is
skipped (momentum and weight decay do not move the weights either). The double backward
makes a step cost about 3x a plain one (the meta batch's forward/backward and the second
order pass); :class:`L2RW` counts skipped steps. Models with batch-norm would have their
running statistics updated by the extra forward passes; the models here have none.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from sampletune.data.dataset import Split
from sampletune.errors import check
from sampletune.seeding import torch_seed


def l2rw_weights(model: nn.Module, x: Tensor, y: Tensor, x_meta: Tensor, y_meta: Tensor,
                 alpha: float = 1.0) -> Tensor:
    """(B,) normalised example weights of Algorithm 1 (lines 4-11) for the batch ``x, y``."""
    params = {k: p for k, p in model.named_parameters() if p.requires_grad}
    buffers = dict(model.named_buffers())
    dtype = next(iter(params.values())).dtype
    eps = torch.zeros(len(y), device=x.device, dtype=dtype, requires_grad=True)
    losses = F.cross_entropy(functional_call(model, (params, buffers), (x,)), y,
                             reduction="none")
    grads = torch.autograd.grad((eps * losses).sum(), list(params.values()), create_graph=True)
    virtual = {k: p - alpha * g for (k, p), g in zip(params.items(), grads, strict=True)}
    meta = F.cross_entropy(functional_call(model, (virtual, buffers), (x_meta,)), y_meta)
    (grad_eps,) = torch.autograd.grad(meta, eps)
    w = torch.clamp(-grad_eps, min=0.0)
    total = w.sum()
    return w / total if float(total) > 0 else w


class L2RW:
    """Selector for the trainer: computes the weights in ``select`` (it sees the model and
    the batch), skips the step when they are all zero, and hands them to ``loss_weights``.

    Args:
        meta: the clean meta set (the validation split). meta_batch: its batch size
            (default: the training batch size, as the paper's MNIST setting).
        seed: seeds the meta-batch draws (a fresh permutation of ``meta`` per pass).
    """

    def __init__(self, meta: Split, meta_batch: int, *, seed: int = 0):
        check(len(meta) > 0, "val_fraction", "L2RW needs a non-empty validation split "
              "(its clean meta set)", "> 0")
        check(meta.in_memory, "noisy", "L2RW needs an in-memory validation split")
        self.meta = meta
        self.meta_batch = max(1, min(int(meta_batch), len(meta)))
        self.generator = torch.Generator().manual_seed(torch_seed(int(seed) * 1_000_003 + 17))
        self.order = torch.empty(0, dtype=torch.int64)
        self.skipped = 0
        self.steps = 0
        self._w: Tensor | None = None

    def _meta_batch(self, device: torch.device) -> tuple[Tensor, Tensor]:
        if len(self.order) < self.meta_batch:
            self.order = torch.cat([self.order,
                                    torch.randperm(len(self.meta), generator=self.generator)])
        idx, self.order = self.order[: self.meta_batch], self.order[self.meta_batch:]
        return self.meta.x[idx].to(device), self.meta.y[idx].to(device)

    def select(self, model: nn.Module, index: Tensor, x: Tensor, y: Tensor
               ) -> tuple[Tensor, Tensor, Tensor] | None:
        xm, ym = self._meta_batch(x.device)
        w = l2rw_weights(model, x, y, xm, ym)
        self.steps += 1
        finite, positive = torch.stack([torch.isfinite(w).all(), (w > 0).any()]).tolist()
        check(finite, "lr", f"training diverged: L2RW's example weights at step {self.steps} "
              "are not finite", "a smaller learning rate")
        if not positive:
            self.skipped += 1
            return None
        self._w = w
        return index, x, y

    def loss_weights(self, losses: Tensor) -> Tensor:
        return self._w

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "order": self.order.clone(),
                "skipped": self.skipped, "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.order = state["order"].clone()
        self.skipped, self.steps = int(state["skipped"]), int(state["steps"])

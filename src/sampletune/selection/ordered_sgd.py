"""Ordered SGD (Kawaguchi & Lu, AISTATS 2020): back-propagate the q largest losses of each
mini-batch (budgeted-importance-sampling.txt, section 3).

q follows the authors' default rule (README and ``main.py`` of their code, k9k2/qSGD), with
``s`` the batch size and ``train_acc`` the previous epoch's training accuracy:
q = s at the start; q = s/2 once train_acc >= 80%, s/4 at >= 90%, s/8 at >= 95% and s/16 at
>= 99.5%; q never grows back. Differences from that code, kept on purpose: training accuracy
is the running accuracy of the previous epoch's training forward passes (the authors add a
full extra pass over the training set each epoch), and their one-off LR cut at 99.5% is not
applied (the budget-aware LR schedule owns the learning rate).

The rule assumes a step LR schedule, under which q shrinks after the LR has dropped. Under a
slowly decaying one (linear) q can reach s/8 at a large LR, a step on the mean gradient of a
few of the hardest examples, and test accuracy can collapse (``benchmarks/osgd_collapse.py``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sampletune.errors import check

# (training accuracy threshold in %, divisor of the batch size), checked from the top
OSGD_SCHEDULE = ((99.5, 16), (95.0, 8), (90.0, 4), (80.0, 2))


class OrderedSGD:
    """A :class:`~sampletune.train.hooks.Selector` and observer: weights 1 on the ``q``
    largest losses of the batch, 0 elsewhere, so the step's loss is their mean."""

    def __init__(self, batch_size: int, schedule: tuple[tuple[float, int], ...] = OSGD_SCHEDULE):
        check(batch_size >= 1, "batch_size", f"{batch_size} must be positive", ">= 1")
        self.batch_size = int(batch_size)
        self.schedule = tuple(schedule)
        self.q = self.batch_size
        self.epoch = 0
        self.correct = 0
        self.seen = 0

    def select(self, model: nn.Module, index: Tensor, x: Tensor, y: Tensor
               ) -> tuple[Tensor, Tensor, Tensor]:
        return index, x, y  # every example is forwarded; the rule acts on the loss

    def loss_weights(self, losses: Tensor) -> Tensor:
        """(B,) 1 for the ``min(q, B)`` largest ``losses``, else 0."""
        q = min(self.q, len(losses))
        w = torch.zeros_like(losses)
        w[torch.topk(losses.detach(), q, sorted=False).indices] = 1.0
        return w

    def set_epoch(self, epoch: int) -> None:
        """At the start of a new epoch, update q from the last epoch's accuracy (the trainer
        calls this before the epoch's first step, as the authors' code does)."""
        if epoch != self.epoch:
            self.update_q()
            self.epoch = int(epoch)

    def on_batch(self, report) -> None:
        """Track training accuracy (and catch an epoch change when the trainer is driven
        step by step, without :meth:`set_epoch`)."""
        self.set_epoch(report.epoch)
        if report.correct is not None:  # a device tensor: no host sync per step
            self.correct = self.correct + report.correct.sum()
            self.seen += len(report.correct)

    def update_q(self) -> None:
        """Apply :data:`OSGD_SCHEDULE` to the accuracy accumulated since the last update."""
        if self.seen:
            acc = 100.0 * float(self.correct) / self.seen
            for threshold, divisor in self.schedule:
                if acc >= threshold:
                    self.q = min(self.q, max(1, self.batch_size // divisor))
                    break
        self.correct = self.seen = 0

    def state_dict(self) -> dict:
        return {"q": self.q, "epoch": self.epoch, "correct": int(self.correct),
                "seen": self.seen}

    def load_state_dict(self, state: dict) -> None:
        self.q, self.epoch = int(state["q"]), int(state["epoch"])
        self.correct, self.seen = int(state["correct"]), int(state["seen"])

"""What plugs into the training loop: the step report observers hear, the hook types
(:class:`Selector`, :data:`Augment`, :data:`Mixer`, :data:`LossFn`) and the optional
methods the loop looks for (:class:`EpochAware`, :class:`Stateful`), as protocols."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class BatchReport:
    """What one training step saw, per *source* example (detached, on the training device).

    For mixed batches (mixup, RICAP) each value is the share-weighted mean over the mixed
    examples a source contributed to.
    """

    epoch: int
    step: int  # global iteration, 0-based
    indices: Tensor  # (B,) int64 training-set indices
    losses: Tensor  # (B,) per-example cross-entropy
    true_prob: Tensor  # (B,) softmax probability of the (training) label
    correct: Tensor | None = None  # (B,) bool: argmax == label (largest share when mixed)


@runtime_checkable
class Observer(Protocol):
    def on_batch(self, report: BatchReport) -> None: ...


@runtime_checkable
class EpochObserver(Protocol):
    """An observer that also hears the end of each epoch: its record (``train_loss``, and
    ``val_acc`` on evaluated epochs) and whether it is early stopping's best so far. Called
    before the epoch's checkpoint, so state kept here survives a resume."""

    def on_epoch_end(self, record: dict, is_best: bool) -> None: ...


@runtime_checkable
class EpochAware(Protocol):
    """A sampler or selector with per-epoch state (ordered SGD's ``q``, a sampler's draw):
    told the epoch's number before the epoch starts."""

    def set_epoch(self, epoch: int) -> None: ...


@runtime_checkable
class Stateful(Protocol):
    """A sampler, selector or observer whose state checkpoints keep and resumes restore."""

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


@dataclass
class MixedBatch:
    """A batch after mixing: input ``x`` and, for each mixed example i, K source labels with
    their shares (rows sum to 1) and the batch positions of the sources."""

    x: Tensor  # (B, *shape)
    labels: Tensor  # (B, K) int64
    shares: Tensor  # (B, K) float
    sources: Tensor  # (B, K) int64 positions in the batch


class Selector(Protocol):
    """A rule that changes which examples are back-propagated (selective backprop, OSGD)."""

    def select(self, model: nn.Module, index: Tensor, x: Tensor, y: Tensor
               ) -> tuple[Tensor, Tensor, Tensor] | None:
        """Filter a candidate batch; ``None`` while not enough examples are kept."""

    def loss_weights(self, losses: Tensor) -> Tensor | None:
        """(B,) weights of each example's loss in the backward pass, or ``None`` for the mean."""


Augment = Callable[[Tensor, torch.Generator], Tensor]
Mixer = Callable[[Tensor, Tensor, torch.Generator], MixedBatch]
# (logits, labels) -> (B,) per-example training objective replacing cross-entropy in the
# backward pass (e.g. bootstrapping); selectors and observers still see the cross-entropy.
LossFn = Callable[[Tensor, Tensor], Tensor]


def credit_to_sources(mixed: MixedBatch, values: Tensor, n: int) -> Tensor:
    """(n,) each source's share-weighted mean of ``values`` over the mixed examples it fed.

    ``values`` is ``(B,)`` (one per mixed example, e.g. its loss) or ``(B, K)`` (one per
    mixed example and source, e.g. the probability of that source's label).
    """
    w = mixed.shares
    v = values[:, None].expand_as(w) if values.dim() == 1 else values
    src = mixed.sources.flatten()
    num = torch.zeros(n, device=v.device, dtype=v.dtype).index_add_(0, src, (w * v).flatten())
    den = torch.zeros(n, device=v.device, dtype=w.dtype).index_add_(0, src, w.flatten())
    return num / den.clamp_min(1e-12)

"""Evaluation: per-example losses and the mean loss and accuracy of a model on a split,
in eval mode without augmentation, in one process or sharded over a process group.
``amp`` (:data:`~sampletune.train.config.AMP_MODES`) runs the forward passes under
autocast; losses are float32 all the same."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sampletune.data.dataset import Split
from sampletune.models import eval_mode
from sampletune.train.accel import logits_of
from sampletune.train.distributed import World


@torch.no_grad()
def example_losses(model: nn.Module, split: Split, device: torch.device | str = "cpu",
                   batch_size: int = 1024, amp: str = "off") -> tuple[Tensor, Tensor]:
    """Per-example cross-entropy ``(n,)`` and correctness ``(n,)`` bool of ``model`` on
    ``split``'s labels, in eval mode without augmentation (the mode is restored after)."""
    device = torch.device(device)
    losses, correct = [], []
    with eval_mode(model):
        for start in range(0, len(split), batch_size):
            index = torch.arange(start, min(start + batch_size, len(split)))
            x, y = _gather(split, index, device)
            logits = logits_of(model, x, amp, device)
            losses.append(F.cross_entropy(logits, y, reduction="none"))
            correct.append(logits.argmax(1) == y)
    return torch.cat(losses), torch.cat(correct)


def evaluate(model: nn.Module, split: Split, device: torch.device | str = "cpu",
             batch_size: int = 1024, amp: str = "off") -> dict:
    """Mean cross-entropy and accuracy of ``model`` on ``split`` (eval mode, no augmentation)."""
    losses, correct = example_losses(model, split, device, batch_size, amp)
    n = len(losses)
    return {"loss": float(losses.sum()) / n, "acc": float(correct.sum()) / n}


def evaluate_sharded(model: nn.Module, split: Split, world: World, device: torch.device,
                     batch_size: int = 1024, amp: str = "off") -> dict:
    """:func:`evaluate` over ``world``: each rank evaluates a contiguous part of ``split``
    and the sums are all-reduced (float64), so every rank returns the same metrics (a
    collective: call it on every rank). With one process, :func:`evaluate`."""
    if not world.distributed:
        return evaluate(model, split, device, batch_size, amp)
    part = torch.arange(len(split)).tensor_split(world.size)[world.rank]
    sums = torch.zeros(2, dtype=torch.float64, device=device)
    if len(part):
        losses, correct = example_losses(model, split.subset(part), device, batch_size, amp)
        sums = torch.stack([losses.double().sum(), correct.double().sum()])
    loss, hits = world.sum(sums).tolist()
    return {"loss": loss / len(split), "acc": hits / len(split)}


def _gather(split: Split, index: Tensor, device: torch.device) -> tuple[Tensor, Tensor]:
    """``split``'s examples ``index`` (B,) on ``device``: ``x (B, *shape)``, ``y (B,)``."""
    if split.in_memory:
        index = index.to(split.x.device)
        return split.x[index].to(device), split.y[index].to(device)
    x = torch.stack([split.x[i] for i in index.tolist()])
    return x.to(device), split.y[index].to(device)

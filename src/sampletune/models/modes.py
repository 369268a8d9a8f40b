"""Switching a model's train/eval mode for a block."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode for the ``with`` block (batch norm uses its running
    statistics, dropout is off); its mode before the block is restored after, also when
    the block raises. Gradients are untouched: add ``torch.no_grad()`` where needed."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)

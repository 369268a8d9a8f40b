"""The guards that keep ``swift search`` from doing worse than uniform training.

1. :func:`clearly_beats`: the searched sampler is used only if its fine-tune score beats
   the uniform reference's by more than one standard error of a validation accuracy;
   else the search found nothing better than uniform, and no Swift model is trained.
2. :func:`paired_comparison`: the retrained Swift model is kept only where validation does
   not prefer the early-stopped uniform model.

For 2, both are early-stopped models picked on the same validation split, so their
validation accuracies are optimistic by similar amounts; what tells them apart is the
examples one gets right and the other wrong: ``b`` only Swift gets right, ``c`` only uniform.
"""

from __future__ import annotations

import math

from torch import nn

from sampletune.data import Split
from sampletune.train import example_losses


def clearly_beats(score: float, reference: float, n_val: int) -> bool:
    """Whether a validation accuracy ``score`` beats ``reference`` by more than one standard
    error ``sqrt(p (1 - p) / n_val)`` of an accuracy ``p = reference`` on ``n_val`` examples
    (at least half an example, so a perfect reference cannot be beaten by noise)."""
    se = math.sqrt(reference * (1.0 - reference) / n_val)
    return score - reference > max(se, 0.5 / n_val)


def paired_comparison(challenger: nn.Module, incumbent: nn.Module, val: Split,
                      device: str = "cpu") -> dict:
    """``{"wins", "losses", "keep"}``: validation examples only ``challenger`` gets right,
    only ``incumbent`` gets right, and ``keep = wins >= losses``. Ties go to the challenger:
    it exists only because the search showed on validation that its sampler clearly beats
    uniform (:func:`clearly_beats`)."""
    _, right_a = example_losses(challenger, val, device)
    _, right_b = example_losses(incumbent, val, device)
    wins, losses = int((right_a & ~right_b).sum()), int((right_b & ~right_a).sum())
    return {"wins": wins, "losses": losses, "keep": wins >= losses}

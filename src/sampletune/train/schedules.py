"""Learning-rate schedules as a multiplier of the initial LR per iteration.

All are defined on the total number of (budgeted) iterations, as in Li et al.'s
budget-aware schedules (budgeted-importance-sampling.txt, section 4.1).
"""

from __future__ import annotations

import math

from sampletune.train.config import TrainConfig


def lr_factor(cfg: TrainConfig, step: int, total_steps: int) -> float:
    """Multiplier of ``cfg.lr`` for 0-based iteration ``step`` of ``total_steps``.

    - ``step``: ``gamma ** k`` where k counts milestones (fractions of training) passed;
      ``milestones=(1/3, 2/3)`` is the paper's budget-aware step schedule.
    - ``linear``: linear decay from ``lr`` at step 0 to ``final_lr`` (about 1e-6) at the
      last step.
    - ``cosine``: ``final_lr + (lr - final_lr) * (1 + cos(pi * t)) / 2``, t = step / (T-1).
    - ``constant``: 1.
    """
    t = step / max(total_steps - 1, 1)
    t = min(max(t, 0.0), 1.0)
    end = cfg.final_lr / cfg.lr
    if cfg.lr_schedule == "step":
        progress = step / max(total_steps, 1)
        return cfg.gamma ** sum(progress >= m for m in cfg.milestones)
    if cfg.lr_schedule == "linear":
        return 1.0 + (end - 1.0) * t
    if cfg.lr_schedule == "cosine":
        return end + (1.0 - end) * 0.5 * (1.0 + math.cos(math.pi * t))
    return 1.0

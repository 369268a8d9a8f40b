"""The training core: config, LR schedules, the one loop, evaluation, checkpoint/resume."""

from sampletune.train.config import LR_SCHEDULES, TrainConfig
from sampletune.train.loop import (
    BatchReport,
    EpochObserver,
    MixedBatch,
    Observer,
    Trainer,
    TrainResult,
    evaluate,
    example_losses,
    seeded_model,
    train,
)
from sampletune.train.progress import progress_bar
from sampletune.train.schedules import lr_factor

__all__ = [
    "LR_SCHEDULES", "BatchReport", "EpochObserver", "MixedBatch", "Observer", "TrainConfig",
    "TrainResult", "Trainer", "evaluate", "example_losses", "lr_factor", "progress_bar",
    "seeded_model", "train",
]

"""The training core: config, LR schedules, hook types, the trainer, evaluation,
checkpoint/resume and the loop (one module each)."""

from sampletune.train.config import LR_SCHEDULES, TrainConfig
from sampletune.train.evaluation import evaluate, example_losses
from sampletune.train.hooks import BatchReport, EpochObserver, MixedBatch, Observer
from sampletune.train.loop import TrainResult, train
from sampletune.train.progress import progress_bar
from sampletune.train.schedules import lr_factor
from sampletune.train.trainer import Trainer, seeded_model

__all__ = [
    "LR_SCHEDULES", "BatchReport", "EpochObserver", "MixedBatch", "Observer", "TrainConfig",
    "TrainResult", "Trainer", "evaluate", "example_losses", "lr_factor", "progress_bar",
    "seeded_model", "train",
]

"""Run configuration, run directories, result tables and plots."""

from sampletune.experiments.config import RunConfig
from sampletune.experiments.run import run_train
from sampletune.experiments.setup import load_data, new_model

__all__ = ["RunConfig", "load_data", "new_model", "run_train"]

"""Run configuration, run directories, result tables and plots, and the jobs built on them
(a training run; the end-to-end Swift job, :mod:`~sampletune.experiments.swift_pipeline`).

The names are imported on first use, so the command line's parser can read the
configuration parts without loading the training and plotting code.
"""

import importlib

_HOMES = {"RunConfig": "config", "run_train": "run", "load_data": "setup",
          "new_model": "setup", "run_swift": "swift_pipeline", "verify_run": "swift_pipeline"}
__all__ = ["RunConfig", "load_data", "new_model", "run_swift", "run_train", "verify_run"]


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)

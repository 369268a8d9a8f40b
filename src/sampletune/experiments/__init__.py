"""Run configuration, run directories, result tables and plots.

The names are imported on first use, so the command line's parser can read the
configuration parts without loading the training and plotting code.
"""

import importlib

_HOMES = {"RunConfig": "config", "run_train": "run", "load_data": "setup",
          "new_model": "setup"}
__all__ = ["RunConfig", "load_data", "new_model", "run_train"]


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)

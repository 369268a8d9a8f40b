"""Data sets, splits, label noise and loaders that yield ``(index, x, y)`` batches."""

from sampletune.data.dataset import DataSplits, RawDataset, Split
from sampletune.data.registry import dataset_names, load_dataset, register_dataset
from sampletune.data.splits import make_splits

__all__ = [
    "DataSplits", "RawDataset", "Split", "dataset_names", "load_dataset", "make_splits",
    "register_dataset",
]

"""From a run configuration to data and a model: the shared first steps of every command."""

from __future__ import annotations

from torch import nn

from sampletune.data import DataSplits, load_dataset, make_splits
from sampletune.errors import check
from sampletune.experiments.config import RunConfig
from sampletune.models import build_model
from sampletune.train import seeded_model


def load_data(cfg: RunConfig) -> DataSplits:
    """The splits ``cfg`` describes (deterministic in ``cfg.seed``); a batch size larger
    than the training split is refused here, before any training."""
    raw = load_dataset(cfg.dataset, cfg.data_dir, cfg.download)
    data = make_splits(raw, seed=cfg.seed, val_fraction=cfg.val_fraction, noise=cfg.noise,
                       noise_type=cfg.noise_type, train_subset=cfg.train_subset,
                       val_noise=cfg.val_noise)
    n = len(data.train)
    check(cfg.batch_size <= n, "batch_size", f"{cfg.batch_size} exceeds the {n} examples "
          "of the training split", f"1..{n}")
    return data


def new_model(cfg: RunConfig, data: DataSplits, seed: int | None = None) -> nn.Module:
    """A fresh ``cfg.model`` for ``data``, initialised from ``seed`` (default ``cfg.seed``)."""
    return seeded_model(lambda: build_model(cfg.model, data.input_shape, data.num_classes),
                        cfg.seed if seed is None else seed)

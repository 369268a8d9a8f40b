"""Run configuration: one flat, validated record read from YAML and command-line flags.

Validation happens before any work; every problem is a one-line :class:`ConfigError`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import yaml

from sampletune.errors import ConfigError, check
from sampletune.train.config import TrainConfig


@dataclass(frozen=True)
class RunConfig:
    """Everything one ``sampletune train`` run needs (see ``sampletune train --help``)."""

    dataset: str = "digits"
    data_dir: str | None = None
    download: bool = False
    noise: float = 0.4
    noise_type: str = "symmetric"
    val_fraction: float = 0.1
    train_subset: int | None = None
    model: str = "mlp"
    sampler: str = "uniform"
    weights: str | None = None
    budget: float = 1.0
    epochs: int = 40
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    lr_schedule: str = "step"
    milestones: tuple[float, ...] = (0.5, 0.75)
    seed: int = 0
    device: str = "auto"
    out: str | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        check(0.0 <= self.noise < 1.0, "noise", f"{self.noise} is outside [0, 1)",
              "0 <= noise < 1")
        check(0.0 < self.budget <= 1.0, "budget", f"{self.budget} is outside (0, 1]",
              "0 < budget <= 1")
        check(self.device == "auto" or self.device.split(":")[0] in ("cpu", "cuda", "mps"),
              "device", f"unknown device {self.device!r}", "auto, cpu, cuda, cuda:N, mps")
        if self.data_dir is not None:
            check(Path(self.data_dir).exists(), "data_dir",
                  f"{self.data_dir!r} does not exist", "an existing folder or file")
        self.train_config()  # validates the training fields

    @property
    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        return "cuda" if torch.cuda.is_available() else "cpu"

    def train_config(self) -> TrainConfig:
        return TrainConfig(
            epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, momentum=self.momentum,
            nesterov=self.nesterov, weight_decay=self.weight_decay,
            lr_schedule=self.lr_schedule, milestones=tuple(self.milestones),
            budget=self.budget, seed=self.seed, device=self.resolved_device,
        )

    def replace(self, **changes) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["milestones"] = list(self.milestones)
        return d

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunConfig:
        """Build from a mapping; unknown keys and wrong types are :class:`ConfigError`."""
        known = {f.name: f for f in fields(cls)}
        kwargs = {}
        for key, value in values.items():
            key = key.replace("-", "_")
            if key not in known:
                raise ConfigError(key, "unknown config field", ", ".join(sorted(known)))
            f = known[key]
            default = f.default_factory() if f.default is dataclasses.MISSING else f.default
            kwargs[key] = _coerce(key, value, default)
        return cls(**kwargs)

    @classmethod
    def load(cls, path: str | Path | None = None, overrides: dict[str, Any] | None = None
             ) -> RunConfig:
        """Fields from a YAML file, then ``overrides`` (command-line flags) on top."""
        values: dict[str, Any] = {}
        if path is not None:
            check(Path(path).exists(), "config", f"file {str(path)!r} does not exist")
            try:
                loaded = yaml.safe_load(Path(path).read_text()) or {}
            except yaml.YAMLError as err:
                raise ConfigError("config", f"{path} is not valid YAML: "
                                  f"{str(err).splitlines()[0]}") from None
            check(isinstance(loaded, dict), "config", f"{path} must hold a mapping of fields")
            values.update(loaded)
        values.update({k: v for k, v in (overrides or {}).items() if v is not None})
        return cls.from_dict(values)


def _coerce(key: str, value: Any, default: Any) -> Any:
    """Check a value against its field's default type (ints accepted for floats)."""
    if value is None or default is None:
        return value
    if isinstance(default, dict):
        check(isinstance(value, dict), key, f"{value!r} is not a mapping")
        return value
    if isinstance(default, bool):
        check(isinstance(value, bool), key, f"{value!r} is not true/false")
        return value
    if isinstance(default, tuple):
        check(isinstance(value, list | tuple), key, f"{value!r} is not a list")
        return tuple(_coerce(key, v, default[0] if default else 0.0) for v in value)
    if isinstance(default, float):
        check(isinstance(value, int | float) and not isinstance(value, bool), key,
              f"{value!r} is not a number")
        return float(value)
    if isinstance(default, int):
        check(isinstance(value, int) and not isinstance(value, bool), key,
              f"{value!r} is not an integer")
        return value
    check(isinstance(value, type(default)), key, f"{value!r} is not a {type(default).__name__}")
    return value

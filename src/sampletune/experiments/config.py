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
    val_noise: bool = False  # noisy validation labels too (default: clean, as in the papers)
    val_fraction: float = 0.1
    train_subset: int | None = None
    model: str = "mlp"
    sampler: str = "uniform"
    weights: str | None = None
    method: str | None = None  # a budgeted-training method; replaces ``sampler`` when set
    noisy: str | None = None  # a noisy-label baseline (sampletune.noisy); replaces ``sampler``
    noise_rate: float | None = None  # the known noise rate, for the noisy baselines that use it
    augment: str = "none"
    budget: float = 1.0
    epochs: int = 40
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    lr_schedule: str = "step"
    milestones: tuple[float, ...] | None = None  # None: see resolved_milestones
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
        self._check_noisy()
        self.train_config()  # validates the training fields

    def _check_noisy(self) -> None:
        if self.noisy is None:
            check(self.noise_rate is None, "noise_rate", "is only used with a noisy-label "
                  "method", "set noisy (--noisy NAME) too, or drop it")
            return
        from sampletune.noisy.methods import check_noisy

        check_noisy(self.noisy, self.noise_rate)
        check(self.method is None, "noisy", f"{self.noisy!r} and method {self.method!r} "
              "cannot be combined", "one of --noisy, --method")
        check(self.budget == 1.0, "budget", "the noisy-label methods train full epochs", "1")
        check(self.augment == "none", "augment", "the noisy-label methods train without "
              "augmentation", "none")
        check(self.sampler == "uniform", "sampler", "the noisy-label methods bring their "
              "own sampling", "uniform (the default)")

    @property
    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        return "cuda" if torch.cuda.is_available() else "cpu"

    @property
    def resolved_milestones(self) -> tuple[float, ...]:
        """Step-schedule milestones: as given, else the budget-aware (1/3, 2/3) of
        budgeted-importance-sampling.txt for ``method`` runs, else (0.5, 0.75)."""
        if self.milestones is not None:
            return tuple(self.milestones)
        return (1 / 3, 2 / 3) if self.method else (0.5, 0.75)

    def train_config(self) -> TrainConfig:
        return TrainConfig(
            epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, momentum=self.momentum,
            nesterov=self.nesterov, weight_decay=self.weight_decay,
            lr_schedule=self.lr_schedule, milestones=self.resolved_milestones,
            budget=self.budget, seed=self.seed, device=self.resolved_device,
        )

    def replace(self, **changes) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["milestones"] = list(self.resolved_milestones)
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
            kwargs[key] = _coerce(key, value, known[key].type)
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


def _coerce(key: str, value: Any, annotation: str) -> Any:
    """Check ``value`` against its field's annotation (e.g. ``"float"``, ``"str | None"``,
    ``"tuple[float, ...] | None"``); ints are accepted for floats, lists for tuples."""
    kinds = [k.strip() for k in annotation.split("|")]
    if value is None:
        check("None" in kinds, key, "must be set")
        return value
    kind = kinds[0].split("[")[0]
    if kind == "tuple":
        check(isinstance(value, list | tuple), key, f"{value!r} is not a list")
        return tuple(_coerce(key, v, "float") for v in value)
    if kind == "float":
        check(isinstance(value, int | float) and not isinstance(value, bool), key,
              f"{value!r} is not a number")
        return float(value)
    expected, noun = {"bool": (bool, "true/false"), "int": (int, "an integer"),
                      "str": (str, "a string"), "dict": (dict, "a mapping")}[kind]
    ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
    check(ok, key, f"{value!r} is not {noun}")
    return value

"""Run configuration: one flat, validated record read from YAML and command-line flags.

Validation happens before any work; every problem is a one-line :class:`ConfigError`.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import yaml

from sampletune.errors import ConfigError, check
from sampletune.train.config import TrainConfig

# The binding limit: scikit-learn's random_state (numpy RandomState) takes [0, 2**32 - 1], and
# --noisy cleanlab's folds and the noise-rate GMM get the seed as it is. Derived torch seeds
# past 2**64 (FineTuner's sampler, seed * 10_007 * 1_000_003 + epoch, from seed 1_843_378_509)
# wrap mod 2**64 in seeding.torch_seed instead of raising.
MAX_SEED = 2**32 - 1
# labels `autosampling replay` records as the sampler of its runs (not buildable by name)
REPLAY_SAMPLERS = ("autosampling-dynamic", "autosampling-static")
DEVICES = "auto, cpu, cuda, cuda:N (an existing GPU), mps"


def check_seed(seed: int, field: str = "seed") -> None:
    """Seeds are integers in [0, MAX_SEED]."""
    check(0 <= seed <= MAX_SEED, field, f"{seed} is outside [0, {MAX_SEED}]",
          "0 <= seed <= 2**32 - 1")


def check_out_dir(out: str | Path, field: str = "out") -> None:
    """``out`` is an existing folder, or can be made one: its nearest existing ancestor is
    a writable folder (not a file such as ``/etc/passwd/x``'s)."""
    import os

    p = Path(out)
    allowed = "a new or existing folder"
    check(not p.exists() or p.is_dir(), field, f"{str(out)!r} exists and is not a folder",
          allowed)
    ancestor = p.absolute()
    while not ancestor.exists():
        ancestor = ancestor.parent
    check(ancestor.is_dir() and os.access(ancestor, os.W_OK | os.X_OK), field,
          f"{str(out)!r} cannot be created: {str(ancestor)!r} is not a writable folder",
          allowed)


def resolve_device(device: str, field: str = "device") -> str:
    """``device`` checked against this machine: ``auto`` -> ``cuda`` if available else
    ``cpu``; ``cuda``/``cuda:N``/``mps`` only where that device exists. Any other name, or
    an absent device, is a :class:`ConfigError` before any work."""

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise ConfigError(field, f"unknown device {device!r}", DEVICES) from None
    if dev.type == "cpu":
        check(dev.index in (None, 0), field, f"{device!r}: there is one CPU device", DEVICES)
    elif dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        check(count > 0, field, f"{device!r}: CUDA is not available on this machine",
              "auto, cpu" + (", mps" if _mps() else ""))
        check(dev.index is None or dev.index < count, field,
              f"{device!r}: this machine has {count} CUDA device(s)",
              ", ".join(["cuda"] + [f"cuda:{i}" for i in range(count)]))
    elif dev.type == "mps":
        check(_mps(), field, f"{device!r}: MPS is not available on this machine", "auto, cpu")
    else:
        raise ConfigError(field, f"unsupported device {device!r}", DEVICES)
    return device


def _mps() -> bool:

    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


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
    crop_sampling: bool = False  # sample crops, not images, by the Swift sampler (section 4.2)
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
        from sampletune.augment import AUGMENT_NAMES
        from sampletune.budget.methods import ALL_METHODS
        from sampletune.data import dataset_names
        from sampletune.models.registry import model_names
        from sampletune.samplers import sampler_names
        from sampletune.swift import sampler_file  # noqa: F401  (registers --sampler swift)

        check(self.dataset in dataset_names(), "dataset", f"unknown data set {self.dataset!r}",
              ", ".join(dataset_names()))
        check(self.model.startswith("tv:") or self.model in model_names(), "model",
              f"unknown model {self.model!r}", ", ".join(model_names()))
        check(self.sampler in (*sampler_names(), *REPLAY_SAMPLERS), "sampler",
              f"unknown sampler {self.sampler!r}", ", ".join(sampler_names()))
        check(self.method is None or self.method in ALL_METHODS, "method",
              f"unknown method {self.method!r}", ", ".join(ALL_METHODS))
        check(self.method is None or self.sampler == "uniform", "sampler",
              f"{self.sampler!r} given with method {self.method!r}, which brings its own "
              "sampler", "either --sampler or --method")
        check(self.weights is None or (self.sampler in ("weights", "swift")
                                       and self.method is None), "weights",
              f"given, but sampler {self.sampler!r} does not read a weights file",
              "--weights only with --sampler weights or --sampler swift")
        check(self.augment in AUGMENT_NAMES, "augment", f"unknown augmentation "
              f"{self.augment!r}", ", ".join(AUGMENT_NAMES))
        check(not self.crop_sampling or self.sampler == "swift", "crop_sampling",
              f"needs --sampler swift (its sampler file weighs the crops), not "
              f"{self.method or self.noisy or self.sampler!r}", "--sampler swift --weights "
              "sampler.json, or leave --crop-sampling out")
        check(not self.crop_sampling or self.augment == "standard", "crop_sampling",
              f"needs --augment standard (the random crops it samples from), not "
              f"{self.augment!r}", "--augment standard")
        check(0.0 <= self.noise < 1.0, "noise", f"{self.noise} is outside [0, 1)",
              "0 <= noise < 1")
        check(0.0 < self.val_fraction < 1.0, "val_fraction",
              f"{self.val_fraction} is outside (0, 1)", "0 < val_fraction < 1")
        check(self.train_subset is None or self.train_subset >= 2, "train_subset",
              f"{self.train_subset} is too small", ">= 2, at most the training set's size")
        check(0.0 < self.budget <= 1.0, "budget", f"{self.budget} is outside (0, 1]",
              "0 < budget <= 1")
        check_seed(self.seed)
        resolve_device(self.device)
        if self.data_dir is not None:
            check(Path(self.data_dir).exists(), "data_dir",
                  f"{self.data_dir!r} does not exist", "an existing folder or file")
        self._check_noisy()
        if self.out is not None:
            check_out_dir(self.out)
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
        return resolve_device(self.device)

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
            if not isinstance(key, str) or not re.fullmatch(r"[a-z_\-]+", key):
                raise ConfigError("config", f"unknown field {key!r}", ", ".join(sorted(known)))
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
            check(Path(path).is_file(), "config", f"{str(path)!r} is not a file",
                  "a YAML file of field: value lines")
            try:
                loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
            except UnicodeDecodeError:
                raise ConfigError("config", f"{path} is not UTF-8 text") from None
            except (yaml.YAMLError, ValueError, RecursionError) as err:
                raise ConfigError("config", f"{path} is not valid YAML: "
                                  f"{(str(err).splitlines() or [''])[0]}") from None
            loaded = {} if loaded is None else loaded
            check(isinstance(loaded, dict), "config", f"{path} must hold a mapping of fields, "
                  f"not a {type(loaded).__name__}")
            values.update(loaded)
        values.update({k: v for k, v in (overrides or {}).items() if v is not None})
        return cls.from_dict(values)


def _coerce(key: str, value: Any, annotation: str) -> Any:
    """Check ``value`` against its field's annotation (e.g. ``"float"``, ``"str | None"``,
    ``"tuple[float, ...] | None"``); ints are accepted for floats, lists for tuples, and
    strings that spell a number for floats (PyYAML reads ``1e-3`` as a string). Floats must
    be finite."""
    kinds = [k.strip() for k in annotation.split("|")]
    if value is None:
        check("None" in kinds, key, "must be set")
        return value
    kind = kinds[0].split("[")[0]
    if kind == "tuple":
        check(isinstance(value, list | tuple), key, f"{value!r} is not a list")
        return tuple(_coerce(key, v, "float") for v in value)
    if kind == "float":
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        check(isinstance(value, int | float) and not isinstance(value, bool), key,
              f"{value!r} is not a number")
        try:
            value = float(value)
        except OverflowError:  # an int beyond float range
            value = math.inf
        check(math.isfinite(value), key, f"{value!r} is not a finite number")
        return value
    expected, noun = {"bool": (bool, "true/false"), "int": (int, "an integer"),
                      "str": (str, "a string"), "dict": (dict, "a mapping")}[kind]
    ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
    check(ok, key, f"{value!r} is not {noun}")
    return value

"""Run configuration, composed of parts: data, sampling, training (``TrainConfig``).

Each part is a typed dataclass that validates itself; :class:`RunConfig` holds them with
the model and the run directory, and checks what involves several parts. YAML files and
flags reach every field (:mod:`sampletune.configs`). Validation happens before any work;
every problem is a one-line :class:`ConfigError`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sampletune import configs
from sampletune.errors import ConfigError, check
from sampletune.seeding import check_seed
from sampletune.train.config import TrainConfig, check_amp

# labels `autosampling replay` records as the sampler of its runs (not buildable by name)
REPLAY_SAMPLERS = ("autosampling-dynamic", "autosampling-static")
# --swift-features: where a Swift sampler file takes its features
# (sampletune.experiments.swift_transfer)
SWIFT_FEATURES = ("auto", "search", "target")
DEVICES = "auto, cpu, cuda, cuda:N (an existing GPU), mps"


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
class DataConfig:
    """The data set, its label noise and its splits."""

    # digits, mnist1d, fashion-mnist, cifar10, cifar100, svhn, npz, imagefolder
    dataset: str = "digits"
    data_dir: str | None = None  # folder (or .npz file) holding the data set
    download: bool = False  # download cifar/svhn/fashion-mnist into --data-dir (internet)
    noise: float = 0.0  # synthetic label noise injected into the training split, in [0, 1)
    noise_type: str = "symmetric"
    val_noise: bool = False  # noisy validation labels too (default: clean, as in the papers)
    val_fraction: float = 0.1  # validation share of the training data
    train_subset: int | None = None  # keep only this many training examples

    def __post_init__(self):
        from sampletune.data import dataset_names
        from sampletune.data.noise import NOISE_TYPES

        check(self.dataset in dataset_names(), "dataset", f"unknown data set {self.dataset!r}",
              ", ".join(dataset_names()))
        check(0.0 <= self.noise < 1.0, "noise", f"{self.noise} is outside [0, 1)",
              "0 <= noise < 1")
        check(self.noise_type in NOISE_TYPES, "noise_type",
              f"unknown noise type {self.noise_type!r}", ", ".join(NOISE_TYPES))
        for field, meaningless in (("noise_type", self.noise_type != "symmetric"),
                                   ("val_noise", self.val_noise)):
            check(self.noise > 0 or not meaningless, field,
                  "has no effect without label noise (--noise 0)", "--noise > 0")
        check(0.0 < self.val_fraction < 1.0, "val_fraction",
              f"{self.val_fraction} is outside (0, 1)", "0 < val_fraction < 1")
        check(self.train_subset is None or self.train_subset >= 2, "train_subset",
              f"{self.train_subset} is too small", ">= 2, at most the training set's size")
        if self.data_dir is not None and not self.download:  # a download creates it
            check(Path(self.data_dir).exists(), "data_dir",
                  f"{self.data_dir!r} does not exist", "an existing folder or file, or --download")


@dataclass(frozen=True)
class SamplingConfig:
    """What decides the examples each step trains on: a sampler, or a budgeted-training
    method or a noisy-label baseline in its place; and augmentation."""

    sampler: str = "uniform"  # a shuffled pass per epoch; see --help for the others
    # per-example weights (.npy/.pt) for --sampler weights, or a sampler.json for --sampler swift
    weights: str | None = None
    method: str | None = None  # a budgeted-training method (replaces --sampler)
    noisy: str | None = None  # a noisy-label baseline (replaces --sampler; not with --method)
    # the known label-noise rate, for --noisy small-loss-known (required) and self-paced
    noise_rate: float | None = None
    augment: str = "none"  # data augmentation (image data)
    crop_sampling: bool = False  # sample crops, not images, by the Swift sampler (section 4.2)
    # the features a --sampler swift file is applied to: search (its own, as saved), target
    # (the --model's own uniform pre-trained model), auto (target if --model differs from
    # the file's feature_arch and the file is not refined)
    swift_features: str = "auto"

    def __post_init__(self):
        from sampletune.augment import AUGMENT_NAMES
        from sampletune.budget.methods import ALL_METHODS
        from sampletune.samplers import sampler_names
        from sampletune.swift import sampler_file  # noqa: F401  (registers --sampler swift)

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
        check(self.swift_features in SWIFT_FEATURES, "swift_features",
              f"unknown source {self.swift_features!r}", ", ".join(SWIFT_FEATURES))
        check(self.swift_features == "auto" or self.sampler == "swift", "swift_features",
              f"{self.swift_features!r} given, but sampler {self.sampler!r} reads no Swift "
              "sampler file", "--swift-features only with --sampler swift")
        check(not (self.crop_sampling and self.swift_features == "target"), "swift_features",
              "target: --crop-sampling scores crops with the search's feature model",
              "search or auto with --crop-sampling")
        check(not self.crop_sampling or self.augment == "standard", "crop_sampling",
              f"needs --augment standard (the random crops it samples from), not "
              f"{self.augment!r}", "--augment standard")
        if self.noisy is None:
            check(self.noise_rate is None, "noise_rate", "is only used with a noisy-label "
                  "method", "set noisy (--noisy NAME) too, or drop it")
            return
        from sampletune.noisy.methods import check_noisy

        check_noisy(self.noisy, self.noise_rate)
        check(self.method is None, "noisy", f"{self.noisy!r} and method {self.method!r} "
              "cannot be combined", "one of --noisy, --method")
        check(self.augment == "none", "augment", "the noisy-label methods train without "
              "augmentation", "none")
        check(self.sampler == "uniform", "sampler", "the noisy-label methods bring their "
              "own sampling", "uniform (the default)")


# A run's training part: TrainConfig's defaults, but the device picked at run time.
RUN_TRAIN = TrainConfig(device="auto")
# Step-schedule milestones of ``method`` runs when none are given: the budget-aware 1/3
# and 2/3 of budgeted-importance-sampling.txt.
METHOD_MILESTONES = (1 / 3, 2 / 3)
PARTS = {"data": DataConfig, "sampling": SamplingConfig, "train": TrainConfig}
OWN_FIELDS = ("model", "out")
# field name -> the part holding it, for flat keywords and attributes (``cfg.lr``)
_OWNER = {name: part for part, cls in PARTS.items() for name in configs.field_names(cls)}
# settings of earlier versions that are gone: accepted (and dropped) at these values
_REMOVED = {"extra": ({}, "it was never read")}


@dataclass(frozen=True, init=False)
class RunConfig:
    """Everything one ``sampletune train`` run needs: the parts, the model and the run
    directory (see ``sampletune train --help``).

    Built from parts, or from flat keywords naming any part's field as earlier versions
    took them (``RunConfig(dataset="digits", lr=0.05)``; ``data=...`` and friends are the
    base they apply to); ``cfg.lr`` reads a part's field the same way. Step milestones not
    given default to (1/3, 2/3) for ``method`` runs, else TrainConfig's (0.5, 0.75); that
    is decided when the training part is built (``replace`` keeps the part's milestones).
    """

    data: DataConfig
    sampling: SamplingConfig
    train: TrainConfig
    model: str = "mlp"  # mlp, cnn1d, smallcnn, resnet18, wrn28_2, tv:NAME (torchvision)
    out: str | None = None  # run directory (rerun the same command to resume)

    def __init__(self, data: DataConfig | None = None, sampling: SamplingConfig | None = None,
                 train: TrainConfig | None = None, model: str = "mlp", out: str | None = None,
                 **fields: Any):
        unknown = sorted(set(fields) - set(_OWNER))
        if unknown:
            raise ConfigError(unknown[0], "unknown config field",
                              ", ".join(sorted({*_OWNER, *OWN_FIELDS})))
        by_part = {p: {k: v for k, v in fields.items() if _OWNER[k] == p} for p in PARTS}
        data = dataclasses.replace(data or DataConfig(), **by_part["data"])
        sampling = dataclasses.replace(sampling or SamplingConfig(), **by_part["sampling"])
        if train is None and sampling.method and "milestones" not in fields:
            by_part["train"]["milestones"] = METHOD_MILESTONES
        train = dataclasses.replace(train or RUN_TRAIN, **by_part["train"])
        for name, value in (("data", data), ("sampling", sampling), ("train", train),
                            ("model", model), ("out", out)):
            object.__setattr__(self, name, value)
        self._check()

    def __getattr__(self, name: str) -> Any:
        part = _OWNER.get(name)
        if part is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(object.__getattribute__(self, part), name)

    def _check(self) -> None:
        """What involves several parts, the model and the run directory."""
        from sampletune.models.registry import model_names

        check(self.model.startswith("tv:") or self.model in model_names(), "model",
              f"unknown model {self.model!r}", ", ".join(model_names()))
        check(self.sampling.noisy is None or self.train.budget == 1.0, "budget",
              "the noisy-label methods train full epochs", "1")
        check_seed(self.train.seed)
        check_amp(self.train.amp, resolve_device(self.train.device))
        if self.out is not None:
            check_out_dir(self.out)

    @property
    def resolved_device(self) -> str:
        return resolve_device(self.train.device)

    def train_config(self) -> TrainConfig:
        """The training part, with the device resolved on this machine."""
        return self.train.replace(device=self.resolved_device)

    def replace(self, **changes) -> RunConfig:
        """A copy with fields changed, by part or flat field name."""
        own = {k: changes.pop(k) for k in (*PARTS, *OWN_FIELDS) if k in changes}
        return RunConfig(**{"data": self.data, "sampling": self.sampling, "train": self.train,
                            "model": self.model, "out": self.out, **own}, **changes)

    def to_dict(self) -> dict:
        """Every setting under its field name (the flat form of ``config.yaml``)."""
        return {**dataclasses.asdict(self.data), **dataclasses.asdict(self.sampling),
                **self.train.to_dict(), "model": self.model, "out": self.out}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunConfig:
        """Build from a mapping, flat (``lr: 0.1``) or by part (``train: {lr: 0.1}``);
        unknown keys and wrong types are :class:`ConfigError`."""
        return cls.from_sections(configs.route(_drop_removed(values), SECTIONS))

    @classmethod
    def from_sections(cls, sections: dict[str, dict[str, Any]]) -> RunConfig:
        """Build from :func:`sampletune.configs.route`'s split of a mapping by part."""
        own = {k: configs.coerce(k, v, configs.hints(cls)[k]) for k, v in sections[""].items()}
        fields = {k: configs.coerce(k, v, configs.hints(PARTS[p])[k])
                  for p in PARTS for k, v in sections[p].items()}
        return cls(**own, **fields)

    @classmethod
    def load(cls, path: str | Path | None = None, overrides: dict[str, Any] | None = None
             ) -> RunConfig:
        """Fields from a YAML file, then ``overrides`` (command-line flags) on top."""
        return cls.from_sections(load_sections(path, overrides or {}))


SECTIONS = {"": OWN_FIELDS, **{p: configs.field_names(c) for p, c in PARTS.items()}}


def load_sections(path: str | Path | None, overrides: dict[str, Any],
                  extra: dict[str, tuple[str, ...]] | None = None) -> dict[str, dict]:
    """A YAML file's values, then ``overrides`` (flags) on top, split by section
    (:data:`SECTIONS` and ``extra``: section -> its field names)."""
    sections = {**SECTIONS, **(extra or {})}
    values = configs.route(_drop_removed(read_yaml(path)), sections)
    for section, given in configs.route(overrides, sections).items():
        values[section].update(given)
    return values


def _drop_removed(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` less the settings of earlier versions that are gone (at their only value)."""
    for key, (value, why) in _REMOVED.items():
        check(values.get(key, value) == value, key, f"was removed ({why})", "drop it")
    return {k: v for k, v in values.items() if k not in _REMOVED}


def read_yaml(path: str | Path | None) -> dict[str, Any]:
    """The mapping a YAML config file holds (``{}`` for no file)."""
    import yaml

    if path is None:
        return {}
    check(Path(path).is_file(), "config", f"{str(path)!r} is not a file",
          "a YAML file of field: value lines")
    try:
        loaded = configs.safe_load_yaml(Path(path).read_text(encoding="utf-8"))
    except ConfigError:  # a key set twice
        raise
    except UnicodeDecodeError:
        raise ConfigError("config", f"{path} is not UTF-8 text") from None
    except (yaml.YAMLError, ValueError, RecursionError) as err:
        raise ConfigError("config", f"{path} is not valid YAML: "
                          f"{(str(err).splitlines() or [''])[0]}") from None
    loaded = {} if loaded is None else loaded
    check(isinstance(loaded, dict), "config", f"{path} must hold a mapping of fields, "
          f"not a {type(loaded).__name__}")
    return loaded

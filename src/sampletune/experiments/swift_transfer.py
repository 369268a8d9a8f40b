"""Which features a Swift sampler file is applied to when it trains a model: the search's, as
saved, or the target's own (swift-sampler.txt, Table 2: "SS(R18)" on other architectures).

A sampler file holds the parameters ``z`` of ``tau(x) = H(T(G(x)))`` and the features they
were searched on, computed by the search's w_share (an architecture ``feature_arch``). The
paper transfers a sampler searched with one model to another by applying the same ``z`` to
features "from the pre-trained models with the same architectures as the target models".
``sampletune train --sampler swift --weights sampler.json --swift-features SOURCE``:

- ``search``: the feature file of the sampler, as saved (the search's model judges the
  examples whatever model trains on them);
- ``target``: the target ``--model`` is first trained uniformly with the run's own config
  and seed, as ``swift search`` trains w_share (a shuffled pass per epoch, no augmentation,
  each example's ``train_loss`` recorded on the way); the features the sampler names come
  from its best-validation epoch (early stopping), ``z`` is applied to them, and the target
  then trains from scratch with that sampler. With ``--out`` the pre-training resumes in
  ``OUT/pretrained`` and its features are kept in ``OUT/features``;
- ``auto`` (the default): ``target`` when ``--model`` differs from the file's
  ``feature_arch``, else ``search``; always ``search`` for a refined sampler file (its
  features are the loss of the search's Swift model, trained on a cut of the data, which a
  uniform pre-training of the target does not reproduce: ``sampler_transfer.md``).

The family normalises each feature by its empirical cdf (eq. 7) and fits T (the cdf of G,
or eq. 10's cumulative gradient) on the values it is built from: target features are
normalised on their own distribution, so ``z`` acts on the target model's ranks of the
examples, not on the search model's raw loss scale.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor

from sampletune import io
from sampletune.data.dataset import DataSplits
from sampletune.errors import check
from sampletune.features import (
    FEATURE_NAMES,
    TrainLossTracker,
    cached_features,
    compute_features,
    train_loss_features,
)
from sampletune.swift.family import SwiftFamily
from sampletune.swift.sampler_file import SamplerSpec, checked_spec
from sampletune.train import TrainResult

PRETRAIN_DIR = "pretrained"  # the target's uniform pre-training, inside the run directory
FEATURE_DIR = "features"


@dataclass(frozen=True)
class FeatureSource:
    """Where a run's Swift sampler takes its features from, decided before any training."""

    spec: SamplerSpec
    kind: str  # "search" (the file's features, as saved) or "target" (the model's own)
    model: str  # the architecture the run trains
    epochs: int  # of the target's pre-training (the run's)

    @property
    def needed(self) -> tuple[str, ...]:
        """The features the sampler reads: G's, and the gradient norm ``cgf`` weighs by."""
        grad = (self.spec.grad_feature,) if self.spec.transform == "cgf" else ()
        return tuple(dict.fromkeys(self.spec.features + grad))

    def line(self) -> str:
        """One line saying which features the sampler is applied to."""
        arch = self.spec.feature_arch
        searched = f"sampler searched with {arch}" if arch else \
            "sampler searched with a model its file does not name"
        if self.kind == "target":
            return (f"{searched}; features from the target's own pre-trained {self.model} "
                    f"(uniform, {self.epochs} epochs, early-stopped), each cdf-normalised on "
                    "its own distribution")
        if not arch:
            return f"{searched}; features from its feature file, as saved"
        same = "same architecture" if arch == self.model else f"not the target {self.model}'s"
        if self.spec.refined:
            same += "; refined: the loss of the search's Swift model, trained on a cut"
        return f"{searched}; features from the search's {arch} (feature_arch), as saved " \
               f"({same})"

    def identity(self) -> str:
        """A digest of what decides the sampler of a ``target`` run besides the run's own
        config: the file's parameters and feature names (its features are not read)."""
        s = self.spec
        blob = json.dumps({"params": s.params.to_dict(), "features": list(s.features),
                           "transform": s.transform, "grad_feature": s.grad_feature,
                           "source": self.kind}, sort_keys=True)
        return io.digest(blob.encode())


def feature_source(cfg, data: DataSplits, *, distributed: bool = False) -> FeatureSource:
    """The :class:`FeatureSource` of run config ``cfg`` (``--sampler swift``) on ``data``:
    ``cfg.swift_features`` resolved against the sampler file's ``feature_arch``. A
    combination that cannot work is a one-line :class:`~sampletune.errors.ConfigError`."""
    spec = checked_spec(data, cfg.weights)
    kind = cfg.swift_features
    if kind == "auto":  # a refined sampler's features come from no uniform pre-training
        kind = "target" if spec.feature_arch and spec.feature_arch != cfg.model \
            and not cfg.crop_sampling and not spec.refined else "search"
    source = FeatureSource(spec, kind, cfg.model, cfg.epochs)
    if kind == "target":
        unknown = [k for k in source.needed if k not in FEATURE_NAMES]
        check(not unknown, "swift_features", f"target: the sampler reads {unknown}, which "
              "cannot be computed from the target's model", "search, or a sampler on "
              + ", ".join(FEATURE_NAMES))
        check(not distributed, "swift_features", "target: the target's pre-training does "
              "not run distributed", "search, or pre-train without torchrun")
    return source


def pretrain_target(cfg, data: DataSplits, out: Path | None, *,
                    progress: bool = True, full_grad: bool = False
                    ) -> tuple[dict[str, Tensor], TrainResult]:
    """The target's own features: ``cfg.model`` trained uniformly as ``swift search`` trains
    w_share (same seed, config and budget), features of its best-validation epoch on the
    training set, with ``train_loss`` over its first epochs. Returns ``({name: float64
    (n,)}, the pre-training)``; with ``out`` it resumes in ``out/pretrained`` and the
    features are cached in ``out/features``."""
    from sampletune.experiments.setup import new_model
    from sampletune.experiments.swift_pipeline import feature_key
    from sampletune.samplers import ShuffleSampler
    from sampletune.samplers.base import epoch_draws
    from sampletune.train import train

    n = len(data.train)
    tcfg = cfg.train_config()
    tracker = TrainLossTracker(n, cfg.epochs)
    uniform = train(new_model(cfg, data), data,
                    ShuffleSampler(n, budget=epoch_draws(n, cfg.budget, cfg.batch_size) / n,
                                   seed=cfg.seed), tcfg,
                    observers=[tracker], run_dir=None if out is None else out / PRETRAIN_DIR,
                    progress=progress, description=f"uniform {cfg.model} (pre-trained)")
    best = uniform.best_model()
    kw = {"device": tcfg.device, "full_grad": full_grad, "progress": progress}
    extra = train_loss_features(tracker.mean(), data.train.y, cfg.seed)
    if out is None:
        return {**compute_features(best, data.train.x, data.train.y, **kw), **extra}, uniform
    feats, _ = cached_features(out / FEATURE_DIR, feature_key(cfg), best, data.train.x,
                               data.train.y, extra=extra, **kw)
    return feats, uniform


def target_probabilities(cfg, data: DataSplits, source: FeatureSource, out: Path | None, *,
                         progress: bool = True) -> tuple[Tensor, dict]:
    """Float64 ``(n,)`` probabilities of ``source``'s sampler on the target's own features
    (:func:`pretrain_target`), and a record of the pre-training (best epoch, its
    validation and test accuracy, wall seconds)."""
    feats, pre = pretrain_target(cfg, data, out, progress=progress,
                                 full_grad="grad_norm_full" in source.needed)
    s = source.spec
    probs = SwiftFamily(feats, s.features, s.transform, s.grad_feature).probabilities(s.params)
    f = pre.final
    return probs, {"best_epoch": f["best_epoch"], "best_val_acc": f["best_val_acc"],
                   "best_test_acc": f["best_test_acc"], "wall_time": f["wall_time"]}

"""One training run with a run directory: config, metrics, summary, learning curve."""

from __future__ import annotations

import contextlib
from pathlib import Path

import yaml
from torch import Tensor

from sampletune import io, rundir
from sampletune.data import DataSplits
from sampletune.experiments.config import RUN_TRAIN, RunConfig
from sampletune.experiments.setup import load_data, new_model
from sampletune.plots import learning_curves
from sampletune.samplers import build_sampler
from sampletune.samplers.base import epoch_draws
from sampletune.train import TrainResult, train
from sampletune.train.config import NOT_IN_IDENTITY
from sampletune.train.distributed import current_world


def run_train(cfg: RunConfig, progress: bool = True, restart: bool = False,
              tensorboard: bool = False) -> TrainResult:
    """Train as ``cfg`` says: with ``cfg.method`` one of the budgeted-training methods
    (:func:`sampletune.budget.build_method`), with ``cfg.noisy`` a noisy-label baseline
    (:func:`sampletune.noisy.build_noisy`), else ``cfg.sampler``; ``cfg.augment`` either way.
    With ``cfg.crop_sampling`` the images are drawn uniformly and their crops by the Swift
    sampler file ``cfg.weights`` (:func:`sampletune.swift.crops.crop_sampling`). A Swift
    sampler file is applied to the features ``cfg.swift_features`` names
    (:mod:`sampletune.experiments.swift_transfer`: with ``target`` the model is pre-trained
    uniformly first, in ``OUT/pretrained``); ``final["swift_features"]`` says which, in one line.

    With ``cfg.out`` the run directory holds ``config.yaml``, ``metrics.jsonl`` (one record
    per epoch), ``checkpoint.pt`` (resume by rerunning the same command), ``summary.json``
    and ``learning_curve.png``; it is claimed with :func:`run_identity` (``restart``
    discards an earlier run there). ``tensorboard`` also writes the per-epoch scalars as
    TensorBoard events under ``tb/`` (:func:`write_tensorboard`).

    In a distributed job (a process group of more than one process, as ``torchrun``
    starts it) every rank trains and only rank 0 claims and writes the run directory;
    the others wait for its claim (and ``restart``'s wipe) before reading a checkpoint, and
    stop with it if it fails."""
    from sampletune.augment import build_augment
    from sampletune.budget import build_method

    if tensorboard:
        check_tensorboard(cfg.out)
    data = load_data(cfg)
    train_cfg = cfg.train_config()
    out = Path(cfg.out) if cfg.out else None
    weights = None  # a sampler's weights from a file, for the run's identity
    world = current_world()
    source = None  # which features a Swift sampler file is applied to (--swift-features)
    if cfg.sampler == "swift":
        from sampletune.experiments.swift_transfer import feature_source

        source = feature_source(cfg, data, distributed=world.distributed)
    if cfg.method:
        method = build_method(cfg.method, data, train_cfg, augment=cfg.augment,
                              model_fn=lambda: new_model(cfg, data), progress=progress)
    elif cfg.noisy:
        from sampletune.noisy import build_noisy

        method = build_noisy(cfg.noisy, data, train_cfg, noise_rate=cfg.noise_rate,
                             model_fn=lambda: new_model(cfg, data), progress=progress)
    elif cfg.crop_sampling:  # images drawn uniformly, their crops by the Swift sampler
        from sampletune.swift.crops import crop_sampling
        from sampletune.swift.sampler_file import checked_spec

        selector = crop_sampling(data, cfg.weights, seed=cfg.seed, device=train_cfg.device)
        sampler = build_sampler("uniform", data, budget=cfg.budget, seed=cfg.seed)
        augment, mixer = None, None  # the selector crops
        weights = checked_spec(data, cfg.weights).probabilities()
    else:
        n = len(data.train)  # the methods' rounding of N * B: whole mini-batches
        budget = epoch_draws(n, cfg.budget, cfg.batch_size) / n
        augment, mixer = build_augment(cfg.augment, data)
        selector, sampler = None, None  # a target-feature sampler: after the pre-training
        if source is None or source.kind != "target":
            sampler = build_sampler(cfg.sampler, data, seed=cfg.seed, weights_path=cfg.weights,
                                    budget=budget)
            weights = getattr(sampler, "weights", None)
    writes = out is not None and world.rank == 0
    identity = run_identity(cfg, data, weights)
    if source is not None and source.kind == "target":
        identity["weights"] = source.identity()
    with contextlib.ExitStack() as held:
        # rank 0 claims (and with restart wipes) the directory before any rank reads from it
        world.agree(lambda: held.enter_context(rundir.held(
            out if writes else None, identity, restart=restart)), train_cfg.device)
        if writes:
            io.write_text(out / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=True))
        pretrained = None
        if source is not None and source.kind == "target":  # the target's own features
            from sampletune.experiments.swift_transfer import target_probabilities
            from sampletune.samplers import WeightedSampler, budget_samples

            probs, pretrained = target_probabilities(cfg, data, source, out,
                                                     progress=progress)
            sampler = WeightedSampler(probs, budget_samples(n, budget), seed=cfg.seed)
        model = new_model(cfg, data)
        if cfg.method or cfg.noisy:
            result = method.train(model, data, train_cfg, run_dir=out, progress=progress)
        else:
            result = train(model, data, sampler, train_cfg, selector=selector,
                           augment=augment, mixer=mixer, run_dir=out, progress=progress,
                           description=f"{cfg.sampler} {cfg.dataset}")
        if source is not None:
            result.final["swift_features"] = source.line()
            if pretrained is not None:
                result.final["pretrained"] = pretrained
        if writes:
            write_summary(out, cfg, result)
            if tensorboard:
                write_tensorboard(out / "tb", result.history)
    return result


TB_SCALARS = {"train_loss": "train/loss", "val_loss": "val/loss", "val_acc": "val/acc",
              "test_loss": "test/loss", "test_acc": "test/acc", "lr": "lr"}


def check_tensorboard(out: str | None) -> None:
    """Refuse ``--tensorboard`` (one line) without a run directory or the package."""
    import importlib.util

    from sampletune.errors import check

    check(out is not None, "tensorboard", "needs a run directory", "--out RUN_DIR")
    check(importlib.util.find_spec("tensorboard") is not None, "tensorboard",
          "the tensorboard package is not installed",
          "pip install 'sampletune[tensorboard]' (or pip install tensorboard)")


def write_tensorboard(tb_dir: Path, history: list[dict]) -> Path:
    """TensorBoard events of a run's epoch records (step = epoch + 1, as in the learning
    curve): train loss, validation/test loss and accuracy, learning rate. Written from the
    whole history after training, so a resumed run's events cover every epoch; event files
    an earlier call left in ``tb_dir`` are replaced."""
    from torch.utils.tensorboard import SummaryWriter

    tb_dir.mkdir(parents=True, exist_ok=True)
    for old in tb_dir.glob("events.out.tfevents.*"):
        old.unlink()
    with SummaryWriter(str(tb_dir)) as writer:
        for record in history:
            for key, tag in TB_SCALARS.items():
                if key in record:
                    writer.add_scalar(tag, float(record[key]), record["epoch"] + 1)
    return tb_dir


# Settings a run gained after run directories were first written: in the identity only
# when they differ from the value every earlier run had, so those directories resume.
ADDED_SETTINGS = {"gamma": RUN_TRAIN.gamma, "final_lr": RUN_TRAIN.final_lr,
                  "eval_every": RUN_TRAIN.eval_every, "crop_sampling": False,
                  "amp": RUN_TRAIN.amp, "compile": RUN_TRAIN.compile,
                  "swift_features": "auto"}


def config_identity(cfg: RunConfig) -> dict:
    """``cfg``'s fields that decide results: all but the run directory, ``download``,
    ``loader_workers`` and :data:`~sampletune.train.config.NOT_IN_IDENTITY`, with the
    device resolved."""
    identity = {k: v for k, v in cfg.to_dict().items()
                if k not in ("out", "download", "loader_workers", *NOT_IN_IDENTITY)
                and not (k in ADDED_SETTINGS and v == ADDED_SETTINGS[k])}
    identity["device"] = cfg.resolved_device
    return identity


def run_identity(cfg: RunConfig, data: DataSplits, weights: Tensor | None = None) -> dict:
    """What decides a run's results: :func:`config_identity` with the training split's
    fingerprint standing for the data's location, the sampler's weights by digest when
    they come from a file, and the number of processes of a distributed job."""
    identity = config_identity(cfg)
    world = current_world()
    if world.distributed:
        identity["world_size"] = world.size
    del identity["data_dir"]
    identity["data"] = data.train.fingerprint()
    if cfg.weights is not None:
        identity["weights"] = None if weights is None else io.digest(
            weights.double().cpu().numpy().tobytes())
    return identity


def write_summary(out: Path, cfg: RunConfig, result: TrainResult) -> None:
    """``summary.json`` and ``learning_curve.png`` of a finished run."""
    io.write_json(out / "summary.json", {"config": cfg.to_dict(), **result.final})
    learning_curves({cfg.method or cfg.noisy or cfg.sampler: result.history},
                    out / "learning_curve.png",
                    title=f"{cfg.model} on {cfg.dataset}, noise {cfg.noise}")

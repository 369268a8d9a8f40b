"""One training run with a run directory: config, metrics, summary, learning curve."""

from __future__ import annotations

from pathlib import Path

import yaml

from sampletune import io
from sampletune.experiments.config import RunConfig
from sampletune.experiments.plots import learning_curves
from sampletune.experiments.setup import load_data, new_model
from sampletune.samplers import build_sampler
from sampletune.train import TrainResult, train


def run_train(cfg: RunConfig, progress: bool = True) -> TrainResult:
    """Train as ``cfg`` says: with ``cfg.method`` one of the budgeted-training methods
    (:func:`sampletune.budget.build_method`), with ``cfg.noisy`` a noisy-label baseline
    (:func:`sampletune.noisy.build_noisy`), else ``cfg.sampler``; ``cfg.augment`` either way.

    With ``cfg.out`` the run directory holds ``config.yaml``, ``metrics.jsonl`` (one record
    per epoch), ``checkpoint.pt`` (resume by rerunning the same command), ``summary.json``
    and ``learning_curve.png``."""
    from sampletune.augment import build_augment
    from sampletune.budget import build_method

    data = load_data(cfg)
    train_cfg = cfg.train_config()
    out = Path(cfg.out) if cfg.out else None
    if cfg.method:
        method = build_method(cfg.method, data, train_cfg, augment=cfg.augment,
                              model_fn=lambda: new_model(cfg, data), progress=progress)
    elif cfg.noisy:
        from sampletune.noisy import build_noisy

        method = build_noisy(cfg.noisy, data, train_cfg, noise_rate=cfg.noise_rate,
                             model_fn=lambda: new_model(cfg, data), progress=progress)
    else:
        sampler = build_sampler(cfg.sampler, data, budget=cfg.budget, seed=cfg.seed,
                                weights_path=cfg.weights)
        augment, mixer = build_augment(cfg.augment, data)
    if out is not None:
        io.write_text(out / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=True))
    model = new_model(cfg, data)
    if cfg.method or cfg.noisy:
        result = method.train(model, data, train_cfg, run_dir=out, progress=progress)
    else:
        result = train(model, data, sampler, train_cfg, augment=augment, mixer=mixer,
                       run_dir=out, progress=progress, description=f"{cfg.sampler} {cfg.dataset}")
    if out is not None:
        write_summary(out, cfg, result)
    return result


def write_summary(out: Path, cfg: RunConfig, result: TrainResult) -> None:
    """``summary.json`` and ``learning_curve.png`` of a finished run."""
    io.write_json(out / "summary.json", {"config": cfg.to_dict(), **result.final})
    learning_curves({cfg.method or cfg.noisy or cfg.sampler: result.history},
                    out / "learning_curve.png",
                    title=f"{cfg.model} on {cfg.dataset}, noise {cfg.noise}")

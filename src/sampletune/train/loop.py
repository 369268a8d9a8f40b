"""The one training loop used by every search, baseline and demo: :func:`train` runs
whole epochs of a sampler through a :class:`~sampletune.train.trainer.Trainer`, with
evaluation, progress, early stopping's pick, checkpoint and resume.

Under an initialised ``torch.distributed`` process group of more than one process
(:mod:`sampletune.train.distributed`) the same code trains data-parallel: ``cfg.batch_size``
is the global batch, each rank trains its share of every step in
``DistributedDataParallel``, and hooks, observers and metrics see the global batch, so
every rank takes the same decisions. With one process none of that runs.

The names that lived here before the training layer was split (the hook types, the
trainer, evaluation) are importable from this module as before.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn
from torch.utils.data import Sampler

from sampletune.data.dataset import DataSplits
from sampletune.errors import check, check_int
from sampletune.train.checkpoint import Progress, resume, save_checkpoint
from sampletune.train.config import MAX_EPOCHS, TrainConfig
from sampletune.train.distributed import World, current_world
from sampletune.train.evaluation import evaluate, example_losses
from sampletune.train.hooks import (
    Augment,
    BatchReport,
    EpochObserver,
    LossFn,
    MixedBatch,
    Mixer,
    Observer,
    Selector,
    credit_to_sources,
)
from sampletune.train.progress import progress_bar
from sampletune.train.trainer import Trainer, seeded_model

__all__ = [  # the old home of the hook types, the trainer and evaluation, kept importable
    "Augment", "BatchReport", "EpochObserver", "LossFn", "MixedBatch", "Mixer", "Observer",
    "Selector", "TrainResult", "Trainer", "best_record", "credit_to_sources", "evaluate",
    "example_losses", "seeded_model", "train",
]


@dataclass
class TrainResult:
    """A finished training: the last model, one record per epoch, and ``final``: the last
    val/test metrics, wall time and steps, plus early stopping's view (``best_epoch``,
    ``best_val_acc``, ``best_test_acc``: the evaluated epoch with the highest validation
    accuracy, the earliest of ties)."""

    model: nn.Module
    history: list[dict] = field(default_factory=list)
    final: dict = field(default_factory=dict)
    best_state: dict | None = None  # model state_dict at ``final["best_epoch"]``

    @property
    def test_acc(self) -> float:
        return self.final["test_acc"]

    def best_model(self) -> nn.Module:
        """A copy of the model with the weights of the best-validation epoch (early
        stopping); the last model if no epoch was evaluated."""
        model = copy.deepcopy(self.model)
        if self.best_state is not None:
            model.load_state_dict(self.best_state)
        return model


def train(model: nn.Module, data: DataSplits, sampler: Sampler[int], cfg: TrainConfig, *,
          epochs: int | None = None, steps_per_epoch: int | None = None,
          observers: Sequence[Observer] = (),
          selector: Selector | None = None, augment: Augment | None = None,
          mixer: Mixer | None = None, loss_fn: LossFn | None = None,
          run_dir: str | Path | None = None,
          progress: bool = True, evaluate_test: bool = True, description: str = "train",
          ) -> TrainResult:
    """Train ``model`` for ``epochs`` (default ``cfg.epochs``) epochs of ``sampler``'s indices.

    With ``run_dir``, a checkpoint (model, optimizer, step, sampler, generator and
    history) is written atomically after the first epoch that ends ``cfg.checkpoint_every``
    wall seconds after the last one, and after the last epoch; a killed run resumes from
    it, ending with exactly the weights of an uninterrupted run. ``metrics.jsonl``, written
    with it, holds one record per epoch. A sampler with ``on_batch`` is observed automatically.
    ``steps_per_epoch`` (default: batches in one epoch of ``sampler``) lays out the LR
    schedule, which advances per batch of ``sampler``'s whether or not a selector
    back-propagates it (selective backprop steps on fewer batches than it forwards).

    Distributed (see :class:`Trainer`), ``sampler`` must shard over the process group (a
    sampletune sampler built after it started, or a ``DistributedSampler``); metrics are
    the same on every rank, and only rank 0 writes ``run_dir`` and shows progress, while
    every rank resumes from its checkpoint.
    """
    check(isinstance(cfg, TrainConfig), "cfg", f"{type(cfg).__name__} is not a TrainConfig")
    if epochs is None:
        epochs = cfg.epochs
    check_int(epochs, "epochs", 1, MAX_EPOCHS)  # 0 is not "the default", 1.7 not 1
    world = current_world()
    _check_shards(sampler, world)
    if steps_per_epoch is None:
        steps_per_epoch = -(-len(sampler) // world.split_batch(cfg.batch_size))
    else:
        check_int(steps_per_epoch, "steps_per_epoch", 1)
    epochs, steps_per_epoch = int(epochs), int(steps_per_epoch)
    observers = list(observers)
    if isinstance(sampler, Observer) and sampler not in observers:
        observers.append(sampler)
    trainer = Trainer(model, data, cfg, epochs * steps_per_epoch, observers=observers,
                      selector=selector, augment=augment, mixer=mixer, loss_fn=loss_fn)
    run_dir = Path(run_dir) if run_dir is not None else None
    run = resume(run_dir, trainer, sampler, observers) if run_dir is not None else Progress()

    saved = time.perf_counter()  # the last checkpoint, or this session's start
    t0 = saved - run.elapsed
    with progress_bar(description, total=epochs, completed=run.next_epoch,
                      enabled=progress and world.rank == 0) as bar:
        for epoch in range(run.next_epoch, epochs):
            evaluated = (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == epochs
            record = _train_epoch(trainer, sampler, data, epoch, evaluated, evaluate_test)
            record["time"] = time.perf_counter() - t0
            _finish_epoch(run, record, trainer, observers)
            bar.advance(_describe(record))
            if run_dir is not None and _checkpoint_due(epoch + 1 == epochs, saved, cfg, world):
                save_checkpoint(run_dir, trainer, sampler, observers, run)
                saved = time.perf_counter()
    return TrainResult(trainer.model, run.history, _final(run.history, trainer.step, epochs),
                       run.best_state)


def _checkpoint_due(last_epoch: bool, saved: float, cfg: TrainConfig, world: World) -> bool:
    """Whether this epoch writes the checkpoint: the last one does, any other once
    ``cfg.checkpoint_every`` seconds have passed since ``saved`` (a ``perf_counter``
    reading) on rank 0, whose clock every rank follows (saving is a collective)."""
    if last_epoch or cfg.checkpoint_every == 0:
        return True
    return bool(world.decide(float(time.perf_counter() - saved >= cfg.checkpoint_every))[0])


def best_record(history: list[dict]) -> dict | None:
    """Early stopping's pick: the evaluated epoch record with the highest ``val_acc`` (the
    earliest of ties), or ``None`` if no epoch was evaluated."""
    evaluated = [r for r in history if "val_acc" in r]
    return max(evaluated, key=lambda r: (r["val_acc"], -r["epoch"]), default=None)


def _check_shards(sampler: Sampler[int], world: World) -> None:
    """Distributed, ``sampler`` must give this rank its shard of the global draw."""
    if not world.distributed:
        return
    shards = (getattr(sampler, "num_replicas", None), getattr(sampler, "rank", None))
    check(shards == (world.size, world.rank), "sampler", f"{type(sampler).__name__} "
          f"shards as (num_replicas, rank) = {shards} but this is rank {world.rank} of "
          f"{world.size}", "a sampler built after the process group started")


def _train_epoch(trainer: Trainer, sampler: Sampler[int], data: DataSplits, epoch: int,
                 evaluated: bool, evaluate_test: bool) -> dict:
    """Train epoch ``epoch`` and return its record: ``epoch``, ``train_loss``, ``steps``,
    ``lr``, and when ``evaluated`` the val (and with ``evaluate_test`` test) loss and
    accuracy. A non-finite train loss (divergence) is a :class:`ConfigError` on ``lr``."""
    record = {"epoch": epoch, **trainer.train_epoch(sampler, epoch)}
    check(math.isfinite(record["train_loss"]), "lr", f"training diverged: the mean "
          f"train loss of epoch {epoch} is {record['train_loss']}",
          "a smaller learning rate, or check the inputs for NaN")
    # the mean loss is taken before each step's update: the epoch's last step (or a step a
    # selector skipped) can leave NaN weights behind a finite mean
    check(trainer.weights_finite(), "lr", f"training diverged: the weights after epoch {epoch} "
          "are not finite", "a smaller learning rate, or check the inputs for NaN")
    if evaluated:
        val = trainer.evaluate(data.val)
        record.update(val_loss=val["loss"], val_acc=val["acc"])
        if evaluate_test:
            test = trainer.evaluate(data.test)
            record.update(test_loss=test["loss"], test_acc=test["acc"])
        bad = [k for k in ("val_loss", "test_loss") if not math.isfinite(record.get(k, 0.0))]
        check(not bad, "lr", f"training diverged: the {bad[0] if bad else ''} after epoch "
              f"{epoch} is not finite (weights too large to evaluate)",
              "a smaller learning rate, or check the inputs for NaN")
    return record


def _finish_epoch(run: Progress, record: dict, trainer: Trainer,
                  observers: Sequence[Observer]) -> None:
    """Add ``record`` (with its ``time``) to ``run``, keep the weights if it is early
    stopping's best so far, and tell the epoch observers."""
    is_best = "val_acc" in record and record is best_record(run.history + [record])
    if is_best:
        run.best_state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    run.history.append(record)
    run.next_epoch, run.elapsed = record["epoch"] + 1, record["time"]
    for obs in observers:
        if isinstance(obs, EpochObserver):
            obs.on_epoch_end(record, is_best)


def _final(history: list[dict], steps: int, epochs: int) -> dict:
    """:attr:`TrainResult.final` of a run's epoch records."""
    last = history[-1] if history else {}
    final = {k: last[k] for k in ("val_loss", "val_acc", "test_loss", "test_acc") if k in last}
    final.update(wall_time=last.get("time", 0.0), steps=steps, epochs=epochs)
    best = best_record(history)
    if best is not None:
        final.update(best_epoch=best["epoch"], best_val_acc=best["val_acc"],
                     **({"best_test_acc": best["test_acc"]} if "test_acc" in best else {}))
    return final


def _describe(record: dict) -> str:
    parts = [f"loss {record['train_loss']:.3f}"]
    if "val_acc" in record:
        parts.append(f"val {record['val_acc']:.3f}")
    return " ".join(parts)

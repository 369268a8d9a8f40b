"""The one training loop used by every search, baseline and demo.

:class:`Trainer` owns the model, the SGD optimizer, the per-iteration LR schedule and the
augmentation generator; :meth:`Trainer.train_batch` does one SGD step on given training
indices, so engines that need exact control of the index sequence (AutoSampling) use it
directly. :func:`train` runs whole epochs from a sampler, with evaluation, progress,
checkpoint and resume.

Under an initialised ``torch.distributed`` process group of more than one process
(:mod:`sampletune.train.distributed`) the same code trains data-parallel: ``cfg.batch_size``
is the global batch, each rank trains its share of every step in
``DistributedDataParallel``, and hooks, observers and metrics see the global batch, so
every rank takes the same decisions. With one process none of that runs.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Sampler

from sampletune import io
from sampletune.data.dataset import DataSplits, Split
from sampletune.data.loader import make_loader
from sampletune.errors import ConfigError, check
from sampletune.train.config import TrainConfig
from sampletune.train.distributed import current_world, wrap
from sampletune.train.progress import progress_bar
from sampletune.train.schedules import lr_factor


@dataclass(frozen=True)
class BatchReport:
    """What one training step saw, per *source* example (detached, on the training device).

    For mixed batches (mixup, RICAP) each value is the share-weighted mean over the mixed
    examples a source contributed to.
    """

    epoch: int
    step: int  # global iteration, 0-based
    indices: Tensor  # (B,) int64 training-set indices
    losses: Tensor  # (B,) per-example cross-entropy
    true_prob: Tensor  # (B,) softmax probability of the (training) label
    correct: Tensor | None = None  # (B,) bool: argmax == label (largest share when mixed)


@runtime_checkable
class Observer(Protocol):
    def on_batch(self, report: BatchReport) -> None: ...


@runtime_checkable
class EpochObserver(Protocol):
    """An observer that also hears the end of each epoch: its record (``train_loss``, and
    ``val_acc`` on evaluated epochs) and whether it is early stopping's best so far. Called
    before the epoch's checkpoint, so state kept here survives a resume."""

    def on_epoch_end(self, record: dict, is_best: bool) -> None: ...


@dataclass
class MixedBatch:
    """A batch after mixing: input ``x`` and, for each mixed example i, K source labels with
    their shares (rows sum to 1) and the batch positions of the sources."""

    x: Tensor  # (B, *shape)
    labels: Tensor  # (B, K) int64
    shares: Tensor  # (B, K) float
    sources: Tensor  # (B, K) int64 positions in the batch


class Selector(Protocol):
    """A rule that changes which examples are back-propagated (selective backprop, OSGD)."""

    def select(self, model: nn.Module, index: Tensor, x: Tensor, y: Tensor
               ) -> tuple[Tensor, Tensor, Tensor] | None:
        """Filter a candidate batch; ``None`` while not enough examples are kept."""

    def loss_weights(self, losses: Tensor) -> Tensor | None:
        """(B,) weights of each example's loss in the backward pass, or ``None`` for the mean."""


Augment = Callable[[Tensor, torch.Generator], Tensor]
Mixer = Callable[[Tensor, Tensor, torch.Generator], MixedBatch]
# (logits, labels) -> (B,) per-example training objective replacing cross-entropy in the
# backward pass (e.g. bootstrapping); selectors and observers still see the cross-entropy.
LossFn = Callable[[Tensor, Tensor], Tensor]


def seeded_model(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    """Build a model initialised from ``seed``, leaving the global RNG as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return build()


class Trainer:
    """SGD on one model over ``data.train``, one step at a time; the LR of step ``t`` is
    ``cfg.lr * lr_factor(cfg, t, total_steps)``, set before the update.

    Args:
        total_steps: iterations of the whole (budgeted) run; the LR schedule spans them.
        observers: receive a :class:`BatchReport` after every step.
        selector, augment, mixer: optional hooks; ``augment`` is applied per example before
            ``mixer``; both draw only from the trainer's own generator.
        loss_fn: optional :data:`LossFn` back-propagated instead of the cross-entropy (not
            with ``mixer``).

    Distributed (a process group of ``size > 1``): ``self.model`` trains wrapped in
    ``DistributedDataParallel``; :meth:`train_batch` takes this rank's shard of the global
    batch (as the samplers shard it); the selector is given the global batch (gathered,
    so the training split must be in memory) and its losses and returns the global
    choice, of which each rank trains its shard; observers get the global
    :class:`BatchReport`. Augmentation draws from a generator of its own on each rank.
    """

    def __init__(self, model: nn.Module, data: DataSplits, cfg: TrainConfig, total_steps: int,
                 *, observers: Iterable[Observer] = (), selector: Selector | None = None,
                 augment: Augment | None = None, mixer: Mixer | None = None,
                 loss_fn: LossFn | None = None):
        check(loss_fn is None or mixer is None, "loss_fn", "a custom loss cannot be combined "
              "with a mixer (mixup, RICAP)")
        self.cfg = cfg
        self.device = torch.device(cfg.device)
        self.world = current_world()
        self.batch_size = self.world.split_batch(cfg.batch_size)  # this rank's share
        check(selector is None or not self.world.distributed or data.train.in_memory,
              "selector", "distributed selection gathers the global batch and needs an "
              "in-memory training split")
        self.data = data
        self.model = model.to(self.device)
        self.net = wrap(self.model, self.device) if self.world.distributed else self.model
        self.train_split = data.train.to(self.device) if data.train.in_memory else data.train
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
            weight_decay=cfg.weight_decay,
        )
        self.total_steps = int(total_steps)
        self.observers = list(observers)
        self.selector, self.augment, self.mixer = selector, augment, mixer
        self.loss_fn = loss_fn
        self.generator = torch.Generator(self.device).manual_seed(
            cfg.seed + 7919 + 1_000_003 * self.world.rank)
        self.step = 0
        self.epoch = 0
        self._loader = None  # kept across epochs so DataLoader workers persist

    # ---- one step -------------------------------------------------------------------
    def train_batch(self, index: Tensor, x: Tensor | None = None, y: Tensor | None = None
                    ) -> Tensor | None:
        """One SGD step on the training examples ``index`` (B,). Returns the detached mean
        loss (a 0-d tensor, no host sync), or ``None`` if the selector kept too few.
        Distributed: ``index`` is this rank's shard, and the loss this rank's part (their
        mean over the ranks is the global batch's)."""
        index = index.to(self.device)
        if x is None:
            x, y = self.train_split.x[index], self.train_split.y[index]
        if not self.model.training:
            self.model.train()
        if self.cfg.lr_schedule != "constant":
            lr = self.cfg.lr * lr_factor(self.cfg, self.step, self.total_steps)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
        if self.selector is not None:
            if self.world.distributed:  # the selector chooses from the global batch
                (index,) = self.world.gather_batch(index)
                x, y = self.train_split.x[index], self.train_split.y[index]
            kept = self.selector.select(self.model, index, x, y)
            if kept is None:
                return None
            index, x, y = kept
            if self.world.distributed:
                check(len(index) % self.world.size == 0, "selector", f"kept {len(index)} "
                      f"examples, which do not split over {self.world.size} processes",
                      f"a multiple of {self.world.size}")
                index, x, y = (self.world.shard(t) for t in kept)
        if self.augment is not None:
            x = self.augment(x, self.generator)
        if self.mixer is not None:
            mixed = self.mixer(x, y, self.generator)
            logits = self.net(mixed.x)
            logp = F.log_softmax(logits, dim=1)
            label_losses = -logp.gather(1, mixed.labels)  # (B, K)
            losses = (label_losses * mixed.shares).sum(1)
        else:
            logits = self.net(x)
            losses = F.cross_entropy(logits, y, reduction="none")
        objective = losses if self.loss_fn is None else self.loss_fn(logits, y)
        loss = self._reduce(objective, losses)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.observers:
            if self.mixer is not None:
                credited = credit_to_sources(mixed, losses.detach(), len(index))
                true_prob = credit_to_sources(mixed, torch.exp(-label_losses.detach()),
                                              len(index))
                main = mixed.labels.gather(1, mixed.shares.argmax(1, keepdim=True)).squeeze(1)
            else:
                credited, true_prob, main = losses.detach(), torch.exp(-losses.detach()), y
            correct = logits.detach().argmax(1) == main
            if self.world.distributed:
                index, credited, true_prob, correct = self.world.gather_batch(
                    index, credited, true_prob, correct)
            report = BatchReport(self.epoch, self.step, index, credited, true_prob, correct)
            for obs in self.observers:
                obs.on_batch(report)
        self.step += 1
        return loss.detach()

    def _reduce(self, objective: Tensor, losses: Tensor) -> Tensor:
        """The step's loss: the mean of ``objective``, or its mean weighted by the selector's
        ``loss_weights`` of the batch's ``losses``. Distributed, the weights are those of
        the global batch and each rank's part is scaled so that DDP's average of the
        ranks' gradients is the global batch's gradient (plain means need no scaling:
        every rank's shard has the same size)."""
        world = self.world
        if self.selector is None:
            return objective.mean()
        weights = self.selector.loss_weights(
            world.gather_batch(losses.detach())[0] if world.distributed else losses)
        if weights is None:
            return objective.mean()
        if not world.distributed:
            return (objective * weights).sum() / weights.sum()
        return (objective * world.shard(weights)).sum() * world.size / weights.sum()

    def train_epoch(self, sampler: Sampler[int], epoch: int) -> dict:
        """Train one epoch of ``sampler``'s indices; returns ``{"train_loss", "steps", "lr"}``."""
        self.epoch = int(epoch)
        for part in (sampler, self.selector):  # selectors with per-epoch state (ordered SGD)
            if hasattr(part, "set_epoch"):
                part.set_epoch(epoch)
        if self._loader is None or self._loader.sampler is not sampler:
            self._loader = make_loader(self.train_split, sampler, self.batch_size,
                                       self.device, self.cfg.loader_workers)
        total = torch.zeros((), device=self.device)
        steps = 0
        lr = self.cfg.lr * lr_factor(self.cfg, self.step, self.total_steps)  # at epoch start
        for index, x, y in self._loader:
            loss = self.train_batch(index, x, y)
            if loss is not None:
                total += loss
                steps += 1
        if self.world.distributed:  # the same on every rank: the global batches' mean
            total = self.world.sum(total) / self.world.size
            self.world.broadcast_buffers(self.model)
        return {"train_loss": float(total) / max(steps, 1), "steps": steps, "lr": lr}

    # ---- evaluation -----------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, split: Split, batch_size: int = 1024) -> dict:
        """Mean cross-entropy and accuracy (fraction in [0, 1]) on ``split``'s labels.
        Distributed, each rank evaluates a contiguous part and the sums are all-reduced
        (float64), so every rank returns the same metrics."""
        if not self.world.distributed:
            return evaluate(self.model, split, self.device, batch_size)
        part = torch.arange(len(split)).tensor_split(self.world.size)[self.world.rank]
        sums = torch.zeros(2, dtype=torch.float64, device=self.device)
        if len(part):
            losses, correct = example_losses(self.model, split.subset(part), self.device,
                                             batch_size)
            sums = torch.stack([losses.double().sum(), correct.double().sum()])
        loss, hits = self.world.sum(sums).tolist()
        return {"loss": loss / len(split), "acc": hits / len(split)}

    # ---- state ----------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Weights, optimizer, step and generator; distributed, every rank's generator state
        (``(size, ...)``, a collective: call it on every rank)."""
        generator = self.generator.get_state()
        if self.world.distributed:
            generator = self.world.all_gather(generator.to(self.device)).cpu()
        return {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "generator": generator,
            "step": self.step, "epoch": self.epoch,
            "selector": getattr(self.selector, "state_dict", lambda: None)(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        generator = state["generator"]
        if self.world.distributed:
            if generator.dim() != 2 or len(generator) != self.world.size:
                raise ValueError(f"it was not written by a run of {self.world.size} processes")
            generator = generator[self.world.rank].clone()  # set_state ignores offsets
        self.generator.set_state(generator)
        self.step, self.epoch = int(state["step"]), int(state["epoch"])
        if state.get("selector") is not None:
            self.selector.load_state_dict(state["selector"])


@torch.no_grad()
def example_losses(model: nn.Module, split: Split, device: torch.device | str = "cpu",
                   batch_size: int = 1024) -> tuple[Tensor, Tensor]:
    """Per-example cross-entropy ``(n,)`` and correctness ``(n,)`` bool of ``model`` on
    ``split``'s labels, in eval mode without augmentation (the mode is restored after)."""
    was_training = model.training
    model.eval()
    device = torch.device(device)
    losses, correct = [], []
    for start in range(0, len(split), batch_size):
        x, y = _gather(split, torch.arange(start, min(start + batch_size, len(split))), device)
        logits = model(x)
        losses.append(F.cross_entropy(logits, y, reduction="none"))
        correct.append(logits.argmax(1) == y)
    model.train(was_training)
    return torch.cat(losses), torch.cat(correct)


def evaluate(model: nn.Module, split: Split, device: torch.device | str = "cpu",
             batch_size: int = 1024) -> dict:
    """Mean cross-entropy and accuracy of ``model`` on ``split`` (eval mode, no augmentation)."""
    losses, correct = example_losses(model, split, device, batch_size)
    n = len(losses)
    return {"loss": float(losses.sum()) / n, "acc": float(correct.sum()) / n}


def _gather(split: Split, index: Tensor, device: torch.device) -> tuple[Tensor, Tensor]:
    if split.in_memory:
        index = index.to(split.x.device)
        return split.x[index].to(device), split.y[index].to(device)
    x = torch.stack([split.x[i] for i in index.tolist()])
    return x.to(device), split.y[index].to(device)


def credit_to_sources(mixed: MixedBatch, values: Tensor, n: int) -> Tensor:
    """(n,) each source's share-weighted mean of ``values`` over the mixed examples it fed.

    ``values`` is ``(B,)`` (one per mixed example, e.g. its loss) or ``(B, K)`` (one per
    mixed example and source, e.g. the probability of that source's label).
    """
    w = mixed.shares
    v = values[:, None].expand_as(w) if values.dim() == 1 else values
    src = mixed.sources.flatten()
    num = torch.zeros(n, device=v.device, dtype=v.dtype).index_add_(0, src, (w * v).flatten())
    den = torch.zeros(n, device=v.device, dtype=w.dtype).index_add_(0, src, w.flatten())
    return num / den.clamp_min(1e-12)


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
    history) is written atomically after every epoch and a killed run resumes from it,
    ending with exactly the weights of an uninterrupted run; ``metrics.jsonl`` holds one
    record per epoch. A sampler with ``on_batch`` is observed automatically.
    ``steps_per_epoch`` (default: batches in one epoch of ``sampler``) lays out the LR
    schedule when a selector trains fewer batches than the sampler yields (selective backprop).

    Distributed (see :class:`Trainer`), ``sampler`` must shard over the process group (a
    sampletune sampler built after it started, or a ``DistributedSampler``); metrics are
    the same on every rank, and only rank 0 writes ``run_dir`` and shows progress, while
    every rank resumes from its checkpoint.
    """
    epochs = int(epochs or cfg.epochs)
    world = current_world()
    if world.distributed:
        shards = (getattr(sampler, "num_replicas", None), getattr(sampler, "rank", None))
        check(shards == (world.size, world.rank), "sampler", f"{type(sampler).__name__} "
              f"shards as (num_replicas, rank) = {shards} but this is rank {world.rank} of "
              f"{world.size}", "a sampler built after the process group started")
    steps_per_epoch = int(steps_per_epoch
                          or -(-len(sampler) // world.split_batch(cfg.batch_size)))
    observers = list(observers)
    if isinstance(sampler, Observer) and sampler not in observers:
        observers.append(sampler)
    trainer = Trainer(model, data, cfg, epochs * steps_per_epoch, observers=observers,
                      selector=selector, augment=augment, mixer=mixer, loss_fn=loss_fn)
    history: list[dict] = []
    start_epoch, elapsed = 0, 0.0
    best_state: dict | None = None
    ckpt = Path(run_dir) / "checkpoint.pt" if run_dir is not None else None
    if ckpt is not None and ckpt.exists():
        # RNG states must stay CPU tensors; load_state_dict moves the rest to the device.
        state = io.load_torch(ckpt, "checkpoint", map_location="cpu")
        try:
            history, start_epoch, elapsed, best_state = _resume(state, trainer, sampler,
                                                                 observers)
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as err:
            raise ConfigError("checkpoint", f"{ckpt} does not fit this run "
                              f"({io.describe_error(err)})",
                              "the run's own settings, or --restart") from None

    t0 = time.perf_counter() - elapsed
    with progress_bar(description, total=epochs, completed=start_epoch,
                      enabled=progress and world.rank == 0) as bar:
        for epoch in range(start_epoch, epochs):
            record = {"epoch": epoch, **trainer.train_epoch(sampler, epoch)}
            check(math.isfinite(record["train_loss"]), "lr", f"training diverged: the mean "
                  f"train loss of epoch {epoch} is {record['train_loss']}",
                  "a smaller learning rate, or check the inputs for NaN")
            if (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == epochs:
                val = trainer.evaluate(data.val)
                record.update(val_loss=val["loss"], val_acc=val["acc"])
                if evaluate_test:
                    test = trainer.evaluate(data.test)
                    record.update(test_loss=test["loss"], test_acc=test["acc"])
            record["time"] = time.perf_counter() - t0
            is_best = "val_acc" in record and record is best_record(history + [record])
            if is_best:
                best_state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
            history.append(record)
            for obs in observers:
                if isinstance(obs, EpochObserver):
                    obs.on_epoch_end(record, is_best)
            bar.advance(_describe(record))
            if ckpt is not None:
                _checkpoint(ckpt, trainer, sampler, observers, history, epoch, record["time"],
                            best_state)

    last = history[-1] if history else {}
    final = {k: last[k] for k in ("val_loss", "val_acc", "test_loss", "test_acc") if k in last}
    final.update(wall_time=last.get("time", 0.0), steps=trainer.step, epochs=epochs)
    best = best_record(history)
    if best is not None:
        final.update(best_epoch=best["epoch"], best_val_acc=best["val_acc"],
                     **({"best_test_acc": best["test_acc"]} if "test_acc" in best else {}))
    return TrainResult(trainer.model, history, final, best_state)


def best_record(history: list[dict]) -> dict | None:
    """Early stopping's pick: the evaluated epoch record with the highest ``val_acc`` (the
    earliest of ties), or ``None`` if no epoch was evaluated."""
    evaluated = [r for r in history if "val_acc" in r]
    return max(evaluated, key=lambda r: (r["val_acc"], -r["epoch"]), default=None)


def _resume(state: dict, trainer: Trainer, sampler, observers
            ) -> tuple[list, int, float, dict | None]:
    """Load a checkpoint into the run; returns its history, next epoch, elapsed time and the
    best-validation weights."""
    trainer.load_state_dict(state["trainer"])
    if hasattr(sampler, "load_state_dict"):
        sampler.load_state_dict(state["sampler"])
    stateful = _stateful(observers, sampler)
    if len(stateful) != len(state["observers"]):
        raise ValueError(f"it holds {len(state['observers'])} observer states, this run has "
                         f"{len(stateful)} stateful observers")
    for obs, obs_state in zip(stateful, state["observers"], strict=True):
        obs.load_state_dict(obs_state)
    return state["history"], state["epoch"] + 1, state["elapsed"], state.get("best_state")


def _checkpoint(path: Path, trainer: Trainer, sampler, observers, history, epoch, elapsed,
                best_state):
    """Called on every rank (the trainer's state is gathered); rank 0 writes."""
    state = {
        "trainer": trainer.state_dict(),
        "sampler": sampler.state_dict() if hasattr(sampler, "state_dict") else None,
        "observers": [o.state_dict() for o in _stateful(observers, sampler)],
        "history": history, "epoch": epoch, "elapsed": elapsed, "best_state": best_state,
    }
    if trainer.world.rank == 0:
        io.save_torch(path, state)
        io.write_jsonl(path.parent / "metrics.jsonl", history)


def _stateful(observers, sampler) -> list:
    """Observers whose state a checkpoint keeps (the sampler's own state is kept apart)."""
    return [o for o in observers if o is not sampler and hasattr(o, "state_dict")]


def _describe(record: dict) -> str:
    parts = [f"loss {record['train_loss']:.3f}"]
    if "val_acc" in record:
        parts.append(f"val {record['val_acc']:.3f}")
    return " ".join(parts)

"""The trainer: SGD on one model, one step (:meth:`Trainer.train_batch`) or one epoch of a
sampler (:meth:`Trainer.train_epoch`) at a time, with the hooks of
:mod:`sampletune.train.hooks`.

Engines that need exact control of the index sequence (AutoSampling) call
:meth:`Trainer.train_batch` directly; :func:`sampletune.train.loop.train` runs whole epochs
with evaluation, progress and checkpoints.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Sampler

from sampletune.data.dataset import DataSplits, Split
from sampletune.data.loader import make_loader
from sampletune.errors import check
from sampletune.seeding import check_seed, torch_seed
from sampletune.train.accel import compiled, grad_scaler, logits_of
from sampletune.train.config import TrainConfig
from sampletune.train.distributed import current_world, wrap
from sampletune.train.evaluation import evaluate_sharded
from sampletune.train.hooks import (
    Augment,
    BatchReport,
    EpochAware,
    LossFn,
    MixedBatch,
    Mixer,
    Observer,
    Selector,
    Stateful,
    credit_to_sources,
)
from sampletune.train.schedules import lr_factor


def seeded_model(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    """Build a model initialised from ``seed``, leaving the global RNG as it was."""
    check_seed(seed, bits=64)  # a float such as 1.5 is refused, not truncated to 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(torch_seed(seed))
        return build()


@dataclass
class _Forward:
    """One step's forward pass: ``logits`` (B, C), per-example cross-entropy ``losses``
    (B,) and the back-propagated ``objective`` (B,); for a mixed batch, the mix and each
    mixed example's loss per source label ``label_losses`` (B, K)."""

    logits: Tensor
    losses: Tensor
    objective: Tensor
    mixed: MixedBatch | None = None
    label_losses: Tensor | None = None


def check_index_range(sampler: Sampler[int], n: int) -> None:
    """Where ``sampler`` says how many examples it draws from (``n`` of sampletune's
    samplers, the length of ``weights``), they fit a training split of ``n`` examples."""
    count = getattr(sampler, "n", None)
    if not isinstance(count, numbers.Integral) or isinstance(count, bool):
        weights = getattr(sampler, "weights", None)
        count = len(weights) if isinstance(weights, Tensor) and weights.dim() == 1 else None
    check(count is None or count <= n, "sampler", f"{type(sampler).__name__} draws indices "
          f"from {count} examples but the training split holds {n}",
          f"a sampler over the {n} training examples")


class Trainer:
    """SGD on one model over ``data.train``, one batch at a time; the LR of batch ``t`` is
    ``cfg.lr * lr_factor(cfg, t, total_steps)``, set before the update.

    The schedule advances per batch given to :meth:`train_batch`, stepped or not: a
    selector that back-propagates only some batches' examples (selective backprop) still
    ends its schedule with the training. ``self.step`` counts the optimizer's steps.

    Args:
        total_steps: batches of the whole (budgeted) run; the LR schedule spans them.
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

    On the device: the in-memory splits of ``data`` are moved to ``cfg.device`` once, here
    (:meth:`evaluate` uses these copies when given ``data``'s splits); ``cfg.amp`` runs the
    forward passes of training and evaluation under autocast (float32 losses, a grad
    scaler for fp16); the selector's own passes stay in full precision. ``cfg.compile``
    trains through ``torch.compile(model)``; ``self.model`` stays the plain module.
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
        if cfg.compile:
            self.net = compiled(self.net, self.device)
        self.scaler = grad_scaler(cfg.amp, self.device)
        self._placed = [(s, s.to(self.device) if s.in_memory else s)  # (given, on device)
                        for s in (data.train, data.val, data.test)]
        self.train_split = self._placed[0][1]
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
            weight_decay=cfg.weight_decay,
        )
        self.total_steps = int(total_steps)
        self.observers = list(observers)
        self.selector, self.augment, self.mixer = selector, augment, mixer
        self.loss_fn = loss_fn
        self.generator = torch.Generator(self.device).manual_seed(
            torch_seed(cfg.seed + 7919 + 1_000_003 * self.world.rank))
        self.step = 0  # optimizer steps
        self.batches = 0  # batches given to train_batch: the LR schedule's position
        self.epoch = 0
        self._loader = None  # kept across epochs so DataLoader workers persist
        self._logits_checked = False  # the first forward pass checks the logits' shape

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
            lr = self.lr_at(self.batches)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
        self.batches += 1
        if self.selector is not None:
            kept = self._select(index, x, y)
            if kept is None:
                return None
            index, x, y = kept
        if self.augment is not None:
            x = self.augment(x, self.generator)
        out = self._forward(x, y)
        loss = self._reduce(out.objective, out.losses)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            self.optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        if self.observers:
            self._report(index, y, out)
        self.step += 1
        return loss.detach()

    def lr_at(self, batch: int) -> float:
        """The learning rate of global batch ``batch`` (0-based)."""
        return self.cfg.lr * lr_factor(self.cfg, batch, self.total_steps)

    def _select(self, index: Tensor, x: Tensor, y: Tensor
                ) -> tuple[Tensor, Tensor, Tensor] | None:
        """The selector's pick ``(index, x, y)`` from the batch, or ``None`` while it fills
        one. Distributed, it picks from the gathered global batch and this rank gets its
        shard of the pick."""
        if self.world.distributed:  # the selector chooses from the global batch
            (index,) = self.world.gather_batch(index)
            x, y = self.train_split.x[index], self.train_split.y[index]
        kept = self.selector.select(self.model, index, x, y)
        if kept is None or not self.world.distributed:
            return kept
        check(len(kept[0]) % self.world.size == 0, "selector", f"kept {len(kept[0])} "
              f"examples, which do not split over {self.world.size} processes",
              f"a multiple of {self.world.size}")
        return tuple(self.world.shard(t) for t in kept)

    def _forward(self, x: Tensor, y: Tensor) -> _Forward:
        """The forward pass on ``x`` (B, *shape), mixed first when there is a mixer."""
        if self.mixer is None:
            logits = logits_of(self.net, x, self.cfg.amp, self.device)
            self._check_logits(logits, len(x))
            losses = F.cross_entropy(logits, y, reduction="none")
            objective = losses if self.loss_fn is None else self.loss_fn(logits, y)
            return _Forward(logits, losses, objective)
        mixed = self.mixer(x, y, self.generator)
        logits = logits_of(self.net, mixed.x, self.cfg.amp, self.device)
        self._check_logits(logits, len(mixed.x))
        label_losses = -F.log_softmax(logits, dim=1).gather(1, mixed.labels)  # (B, K)
        losses = (label_losses * mixed.shares).sum(1)
        return _Forward(logits, losses, losses, mixed, label_losses)

    def _check_logits(self, logits: Tensor, batch: int) -> None:
        """Once, on the first batch: the model gives (B, num_classes) logits (shapes only,
        no host sync)."""
        if self._logits_checked:
            return
        classes = self.data.num_classes
        shape = tuple(getattr(logits, "shape", ()))
        check(isinstance(logits, Tensor) and shape == (batch, classes), "model",
              f"gives outputs shaped {shape[1:]} for {classes} classes",
              "a classifier with one logit per class")
        self._logits_checked = True

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

    def _report(self, index: Tensor, y: Tensor, out: _Forward) -> None:
        """Tell the observers the step's :class:`BatchReport`, per source example (the
        global batch when distributed)."""
        if out.mixed is not None:
            mixed, n = out.mixed, len(index)
            credited = credit_to_sources(mixed, out.losses.detach(), n)
            true_prob = credit_to_sources(mixed, torch.exp(-out.label_losses.detach()), n)
            main = mixed.labels.gather(1, mixed.shares.argmax(1, keepdim=True)).squeeze(1)
        else:
            credited, true_prob, main = out.losses.detach(), torch.exp(-out.losses.detach()), y
        correct = out.logits.detach().argmax(1) == main
        if self.world.distributed:
            index, credited, true_prob, correct = self.world.gather_batch(
                index, credited, true_prob, correct)
        report = BatchReport(self.epoch, self.step, index, credited, true_prob, correct)
        for obs in self.observers:
            obs.on_batch(report)

    # ---- one epoch ------------------------------------------------------------------
    def train_epoch(self, sampler: Sampler[int], epoch: int) -> dict:
        """Train one epoch of ``sampler``'s indices; returns ``{"train_loss", "steps", "lr"}``."""
        self.epoch = int(epoch)
        for part in (sampler, self.selector):  # selectors with per-epoch state (ordered SGD)
            if isinstance(part, EpochAware):
                part.set_epoch(epoch)
        if self._loader is None or self._loader.sampler is not sampler:
            check_index_range(sampler, len(self.train_split))
            self._loader = make_loader(self.train_split, sampler, self.batch_size,
                                       self.device, self.cfg.loader_workers)
        total = torch.zeros((), device=self.device)
        steps = 0
        lr = self.lr_at(self.batches)  # at epoch start
        for index, x, y in self._loader:
            loss = self.train_batch(index, x, y)
            if loss is not None:
                total += loss
                steps += 1
        if self.world.distributed:  # the same on every rank: the global batches' mean
            total = self.world.sum(total) / self.world.size
            self.world.broadcast_buffers(self.model)
        return {"train_loss": float(total) / max(steps, 1), "steps": steps, "lr": lr}

    def evaluate(self, split: Split, batch_size: int = 1024) -> dict:
        """Mean cross-entropy and accuracy (fraction in [0, 1]) on ``split``'s labels, the
        same on every rank (:func:`~sampletune.train.evaluation.evaluate_sharded`)."""
        split = next((placed for given, placed in self._placed if given is split), split)
        return evaluate_sharded(self.model, split, self.world, self.device, batch_size,
                                self.cfg.amp)

    def weights_finite(self) -> bool:
        """Whether every weight is finite (one host sync): a diverged step leaves NaN or
        inf behind."""
        return bool(torch.stack([torch.isfinite(p).all() for p in self.model.parameters()])
                    .all())

    # ---- state ----------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Weights, optimizer, step, generator and (fp16) the grad scaler; distributed, every
        rank's generator state (``(size, ...)``, a collective: call it on every rank)."""
        generator = self.generator.get_state()
        if self.world.distributed:
            generator = self.world.all_gather(generator.to(self.device)).cpu()
        state = {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "generator": generator,
            "step": self.step, "batches": self.batches, "epoch": self.epoch,
            "selector": (self.selector.state_dict() if isinstance(self.selector, Stateful)
                         else None),
        }
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        return state

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
        # checkpoints before the schedule followed batches: step counted them, but under
        # selective backprop, where the two differ, such a run cannot resume exactly
        self.batches = int(state.get("batches", self.step))
        if self.scaler is not None:
            self.scaler.load_state_dict(state["scaler"])
        if state.get("selector") is not None:
            self.selector.load_state_dict(state["selector"])

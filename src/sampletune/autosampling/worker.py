"""One member of the AutoSampling population (a :class:`~sampletune.train.Trainer` and the way
it trains one exploitation interval) and a group of them in one process. Both engines run
exactly this code, so they agree.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import torch

from sampletune.data.dataset import DataSplits
from sampletune.models import build_model
from sampletune.seeding import derive_seed
from sampletune.train import TrainConfig, Trainer, example_losses, seeded_model


@dataclass(frozen=True)
class WorkerSpec:
    """What every worker is built from (picklable, so Ray actors can build their own)."""

    model: str  # a sampletune.models name
    data: DataSplits
    cfg: TrainConfig
    total_steps: int  # iterations of the whole search: the LR schedule spans them


def interval_seed(seed: int, interval: int, worker: int) -> int:
    """Seed of the global torch RNG (dropout and the like) while ``worker`` trains
    interval ``interval``: from these three alone, so engines agree."""
    return derive_seed(seed, 1, interval, worker)


class Worker:
    """A trainer whose initial weights come from ``spec.cfg.seed`` (identical in every worker)."""

    def __init__(self, spec: WorkerSpec):
        d = spec.data
        model = seeded_model(lambda: build_model(spec.model, d.input_shape, d.num_classes),
                             spec.cfg.seed)
        self.data = d
        self.trainer = Trainer(model, d, spec.cfg, spec.total_steps)

    def run_interval(self, batches: np.ndarray, seed: int, evaluate: bool) -> dict | None:
        """Algorithm 1, inner loop: one SGD step per row of ``batches`` (int64 ``(N_s, B)``),
        then (if ``evaluate``) validation ``{"loss", "acc"}``."""
        device = self.trainer.device
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            for row in torch.from_numpy(np.ascontiguousarray(batches)):
                self.trainer.train_batch(row)
        return self.trainer.evaluate(self.data.val) if evaluate else None

    def evaluate(self, split: str) -> dict:
        """``{"loss", "acc"}`` on ``"val"`` or ``"test"``."""
        return self.trainer.evaluate(getattr(self.data, split))

    def example_losses(self, batch_size: int = 1024) -> np.ndarray:
        """float32 ``(n_train,)``: cross-entropy of each training example (its training
        label, eval mode) — for Fig. 4."""
        t = self.trainer
        losses, _ = example_losses(t.model, t.train_split, t.device, batch_size)
        return losses.float().cpu().numpy()

    def state_dict(self) -> dict:
        """A CPU copy of the trainer state (model, optimizer, LR schedule, generator, step)."""
        return _to_cpu(self.trainer.state_dict())

    def load_state_dict(self, state: dict) -> None:
        """Load a private copy of ``state`` (so workers never share optimizer buffers)."""
        self.trainer.load_state_dict(copy.deepcopy(state))


class Group:
    """Workers in one process, trained one after another on one copy of the data: the
    in-process engine holds the whole population in one group, each Ray actor a share."""

    def __init__(self, spec: WorkerSpec, size: int):
        d, device = spec.data, spec.cfg.device
        data = dataclasses.replace(d, train=d.train.to(device), val=d.val.to(device),
                                   test=d.test.to(device))
        shared = dataclasses.replace(spec, data=data)
        self.workers = [Worker(shared) for _ in range(size)]

    def step(self, batches: list[np.ndarray], seeds: list[int], evaluate: bool,
             source: int | dict | None) -> tuple[list[dict | None], float]:
        """Eq. (3), then Algorithm 1's inner loop: the workers load ``source`` (the index of
        this group's worker to copy, or a state; ``None``: nothing to copy), then worker
        ``i`` trains on ``batches[i]`` under torch seed ``seeds[i]``. Returns each one's
        validation metrics (``None`` if not ``evaluate``) and the seconds it all took."""
        t0 = time.perf_counter()
        if isinstance(source, int):
            self.load(self.workers[source].state_dict(), skip=source)
        elif source is not None:
            self.load(source)
        metrics = [w.run_interval(b, s, evaluate)
                   for w, b, s in zip(self.workers, batches, seeds, strict=True)]
        return metrics, time.perf_counter() - t0

    def load(self, state: dict, skip: int | None = None) -> None:
        """Load ``state`` into every worker but ``skip``."""
        for i, w in enumerate(self.workers):
            if i != skip:
                w.load_state_dict(state)

    def ask(self, worker: int, method: str, *args):
        """``self.workers[worker].method(*args)``: how an engine reads one worker (its
        ``state_dict``, ``evaluate``, ``example_losses``) wherever the group lives."""
        return getattr(self.workers[worker], method)(*args)


@dataclass
class EngineCosts:
    """Where an engine's time went, in seconds (of this process's part of the search)."""

    start_s: float = 0.0  # building the workers (Ray: also starting Ray and the actors)
    intervals: int = 0
    interval_s: float = 0.0  # wall time of the intervals as the search waits for them
    busy_s: float = 0.0  # per interval the slowest group's step (copy, train, validate)
    work_s: float = 0.0  # every group's steps: worker-seconds

    def add(self, wall: float, seconds: list[float]) -> None:
        """One interval that took ``wall`` seconds, ``seconds[g]`` of them in group ``g``."""
        self.intervals += 1
        self.interval_s += wall
        self.busy_s += max(seconds)
        self.work_s += sum(seconds)


class Engine:
    """What the search asks of an engine. :meth:`run` trains one interval on every worker,
    after the others copy the worker that :meth:`adopt` chose (eq. 3); :meth:`state`,
    :meth:`evaluate` and :meth:`example_losses` read that worker (the population, once
    copied); :meth:`load` puts one state into every worker; :attr:`costs`; :meth:`close`.
    Subclasses implement ``run``, ``load``, ``close`` and ``_ask`` (:meth:`Group.ask` on
    the adopted worker)."""

    name: str
    costs: EngineCosts
    best = 0  # the adopted worker
    _copy = False  # whether the others still have to copy it

    def adopt(self, best: int) -> None:
        self.best, self._copy = best, True

    def state(self) -> dict:
        return self._ask("state_dict")

    def evaluate(self, split: str) -> dict:
        return self._ask("evaluate", split)

    def example_losses(self) -> np.ndarray:
        return self._ask("example_losses")

    def _ask(self, method: str, *args):
        raise NotImplementedError


def _to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj

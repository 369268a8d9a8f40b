"""One member of the AutoSampling population: a :class:`~sampletune.train.Trainer` and the way
it trains one exploitation interval. Both engines run exactly this code, so they agree.
"""

from __future__ import annotations

import copy
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


def _to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj

"""The in-process engine: the population's workers train one after another in this process,
and the best worker's state is copied to the others in memory (eq. 3), never through disk.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from sampletune.autosampling.worker import Worker, WorkerSpec


class LocalEngine:
    """``workers`` :class:`Worker` objects in this process.

    Every engine has this interface: :meth:`run` one interval on all workers, :meth:`adopt`
    the best, and :meth:`state` / :meth:`load` / :meth:`evaluate` / :meth:`example_losses`
    on the (identical after :meth:`adopt`) population, then :meth:`close`.
    """

    name = "local"

    def __init__(self, spec: WorkerSpec, workers: int):
        d = spec.data  # one copy of the in-memory splits on the device, shared by all workers
        device = spec.cfg.device
        data = dataclasses.replace(d, train=d.train.to(device), val=d.val.to(device),
                                   test=d.test.to(device))
        shared = dataclasses.replace(spec, data=data)
        self.workers = [Worker(shared) for _ in range(workers)]

    def run(self, batches: list[np.ndarray], seeds: list[int], evaluate: bool
            ) -> list[dict | None]:
        """Worker ``i`` trains on ``batches[i]`` (int64 ``(N_s, B)``) under torch seed
        ``seeds[i]``; returns each one's validation metrics (``None`` if not ``evaluate``)."""
        return [w.run_interval(b, s, evaluate)
                for w, b, s in zip(self.workers, batches, seeds, strict=True)]

    def adopt(self, best: int) -> None:
        """Eq. (3): copy worker ``best``'s weights, optimizer and schedule into all others."""
        state = self.workers[best].state_dict()
        for i, w in enumerate(self.workers):
            if i != best:
                w.load_state_dict(state)

    def state(self) -> dict:
        return self.workers[0].state_dict()

    def load(self, state: dict) -> None:
        for w in self.workers:
            w.load_state_dict(state)

    def evaluate(self, split: str) -> dict:
        return self.workers[0].evaluate(split)

    def example_losses(self) -> np.ndarray:
        return self.workers[0].example_losses()

    def close(self) -> None:
        self.workers = []

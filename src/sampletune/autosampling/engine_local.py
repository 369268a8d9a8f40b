"""The in-process engine: the population's workers train one after another in this process,
and the best worker's state is copied to the others in memory (eq. 3), never through disk.
"""

from __future__ import annotations

import time

import numpy as np

from sampletune.autosampling.worker import Engine, EngineCosts, Group, WorkerSpec


class LocalEngine(Engine):
    """``workers`` :class:`~sampletune.autosampling.worker.Worker` objects in one
    :class:`~sampletune.autosampling.worker.Group` in this process."""

    name = "local"

    def __init__(self, spec: WorkerSpec, workers: int):
        t0 = time.perf_counter()
        self.group = Group(spec, workers)
        self.costs = EngineCosts(start_s=time.perf_counter() - t0)

    def run(self, batches: list[np.ndarray], seeds: list[int], evaluate: bool
            ) -> list[dict | None]:
        """Worker ``i`` trains on ``batches[i]`` (int64 ``(N_s, B)``) under torch seed
        ``seeds[i]``; returns each one's validation metrics (``None`` if not ``evaluate``)."""
        t0 = time.perf_counter()
        metrics, seconds = self.group.step(batches, seeds, evaluate,
                                           self.best if self._copy else None)
        self._copy = False
        self.costs.add(time.perf_counter() - t0, [seconds])
        return metrics

    def load(self, state: dict) -> None:
        self.group.load(state)
        self.best, self._copy = 0, False

    def _ask(self, method: str, *args):
        return self.group.ask(self.best, method, *args)

    def close(self) -> None:
        self.group = None

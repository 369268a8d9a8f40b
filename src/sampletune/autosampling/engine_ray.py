"""The Ray engine: one actor per worker (its own GPU when the cluster has enough), and the best
worker's state broadcast to the others through Ray's object store (eq. 3).

Starts a local Ray instance (``num_cpus`` CPUs) unless ``address`` names a cluster to join.
``ray`` is imported only here, on first use.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from sampletune.autosampling.worker import Worker, WorkerSpec
from sampletune.ray_cluster import share, start_ray


class _ActorWorker(Worker):
    """A :class:`Worker` inside a Ray actor: one torch thread, its device chosen by Ray."""

    def __init__(self, spec: WorkerSpec, use_gpu: bool):
        torch.set_num_threads(1)
        cfg = spec.cfg.replace(device="cuda" if use_gpu else "cpu")
        super().__init__(dataclasses.replace(spec, cfg=cfg))


class RayEngine:
    """``workers`` Ray actors; same interface and results as :class:`LocalEngine`.

    Each actor asks for ``min(1, GPUs / workers)`` GPUs when the cluster has GPUs (one GPU
    each when there are enough) and ``min(1, CPUs / workers)`` CPUs, so a population larger
    than the machine still fits.
    """

    name = "ray"

    def __init__(self, spec: WorkerSpec, workers: int, *, address: str | None = None,
                 num_cpus: int = 2):
        ray, self._owns_ray = start_ray(address, num_cpus, "local, ray")
        self.ray = ray
        resources = ray.cluster_resources()
        per_gpu = share(resources.get("GPU", 0.0), workers)
        per_cpu = share(resources.get("CPU", 1.0), workers)
        actor = ray.remote(num_cpus=per_cpu, num_gpus=per_gpu)(_ActorWorker)
        spec_ref = ray.put(spec)  # the data set travels once through the object store
        self.actors = [actor.remote(spec_ref, per_gpu > 0) for _ in range(workers)]
        self._pending: list = []  # loads from adopt(), checked with the next run's results

    def run(self, batches: list[np.ndarray], seeds: list[int], evaluate: bool
            ) -> list[dict | None]:
        return self._get([a.run_interval.remote(b, s, evaluate)
                          for a, b, s in zip(self.actors, batches, seeds, strict=True)])

    def _get(self, refs: list) -> list:
        """``ray.get(refs)``, also awaiting (and so raising errors of) pending loads."""
        done = self.ray.get(self._pending + refs)
        self._pending = []
        return done[len(done) - len(refs):]

    def adopt(self, best: int) -> None:
        """Eq. (3): the best actor's state goes into the object store once; the others load
        it. Not awaited: an actor runs its calls in order, so the load precedes its next
        interval."""
        state_ref = self.actors[best].state_dict.remote()
        self._pending += [a.load_state_dict.remote(state_ref)
                          for i, a in enumerate(self.actors) if i != best]

    def state(self) -> dict:
        return self._get([self.actors[0].state_dict.remote()])[0]

    def load(self, state: dict) -> None:
        ref = self.ray.put(state)
        self._get([a.load_state_dict.remote(ref) for a in self.actors])

    def evaluate(self, split: str) -> dict:
        return self._get([self.actors[0].evaluate.remote(split)])[0]

    def example_losses(self) -> np.ndarray:
        return self._get([self.actors[0].example_losses.remote()])[0]

    def close(self) -> None:
        for a in self.actors:
            self.ray.kill(a)
        self.actors = []
        if self._owns_ray:
            self.ray.shutdown()

"""The Ray engine: the population split across Ray actors, each keeping its workers' models,
optimizers and generators for the whole search; only the best worker's state moves, actor to
actor through Ray's object store (eq. 3).

Starts a local Ray instance (``num_cpus`` CPUs) unless ``address`` names a cluster to join.
``ray`` is imported only here, on first use.
"""

from __future__ import annotations

import dataclasses
import gc
import time

import numpy as np
import torch

from sampletune.autosampling.worker import Engine, EngineCosts, Group, WorkerSpec
from sampletune.ray_cluster import share, start_ray


class _Actor(Group):
    """A :class:`Group` inside a Ray actor: one torch thread, its device chosen by Ray."""

    def __init__(self, spec: WorkerSpec, size: int, use_gpu: bool):
        torch.set_num_threads(1)
        cfg = spec.cfg.replace(device="cuda" if use_gpu else "cpu")
        super().__init__(dataclasses.replace(spec, cfg=cfg), size)
        gc.freeze()  # start-up's heap (torch, Ray, the data) stays: full collections skip it

    def step(self, batches: list[np.ndarray], seeds: list[int], evaluate: bool,
             source: int | list | None) -> tuple[list[dict | None], float]:
        """:meth:`Group.step`; a state another actor published arrives as ``[ref]`` and is
        fetched from the object store here."""
        if isinstance(source, list):
            import ray

            source = ray.get(source[0])
        return super().step(batches, seeds, evaluate, source)

    def publish(self, worker: int) -> list:
        """Put worker ``worker``'s state into the object store once; returns ``[ref]`` (in a
        list, so Ray hands the loading actors the ref and they fetch the state themselves)."""
        import ray

        return [ray.put(self.workers[worker].state_dict())]


class RayEngine(Engine):
    """The population on Ray actors; same interface and results as :class:`LocalEngine`.

    One actor per GPU when the cluster has GPUs, else per CPU, at most one per worker; each
    holds a :class:`Group` of consecutive workers and asks for ``min(1, GPUs / actors)``
    GPUs and ``min(1, CPUs / actors)`` CPUs. An interval is one call per actor, which
    returns its workers' validation metrics and its seconds. After :meth:`adopt`, the best
    worker's actor puts its state into the object store once and the other actors load it
    from there at the start of their next call; weights reach this process only through
    :meth:`state` (checkpoints, the final model).
    """

    name = "ray"

    def __init__(self, spec: WorkerSpec, workers: int, *, address: str | None = None,
                 num_cpus: int = 2):
        t0 = time.perf_counter()
        self.ray, self._owns_ray = start_ray(address, num_cpus, "local, ray")
        self.actors: list = []
        try:
            resources = self.ray.cluster_resources()
            gpus, cpus = resources.get("GPU", 0.0), resources.get("CPU", 1.0)
            count = min(workers, max(1, int(gpus or cpus)))
            self.sizes = [workers // count + (k < workers % count) for k in range(count)]
            per_gpu = share(gpus, count)
            actor = self.ray.remote(num_cpus=share(cpus, count), num_gpus=per_gpu)(_Actor)
            spec_ref = self.ray.put(spec)  # the data set travels once through the object store
            self.actors = [actor.remote(spec_ref, n, per_gpu > 0) for n in self.sizes]
            self.ray.get([a.__ray_ready__.remote() for a in self.actors])  # raises their errors
        except BaseException:
            self.close()
            raise
        self.place = [(a, i) for a, n in enumerate(self.sizes) for i in range(n)]
        self.costs = EngineCosts(start_s=time.perf_counter() - t0)

    def run(self, batches: list[np.ndarray], seeds: list[int], evaluate: bool
            ) -> list[dict | None]:
        t0 = time.perf_counter()
        ends = np.cumsum([0, *self.sizes])
        done = self.ray.get([a.step.remote(batches[lo:hi], seeds[lo:hi], evaluate, source)
                             for a, lo, hi, source in zip(self.actors, ends[:-1], ends[1:],
                                                          self._sources(), strict=True)])
        self.costs.add(time.perf_counter() - t0, [seconds for _, seconds in done])
        return [m for metrics, _ in done for m in metrics]

    def _sources(self) -> list:
        """Each actor's ``source`` for its next step: on the adopted worker's actor that
        worker's index, on the others the ref its actor publishes; ``None`` with nothing
        to copy."""
        if not self._copy:
            return [None] * len(self.actors)
        self._copy = False
        a, i = self.place[self.best]
        published = self.actors[a].publish.remote(i) if len(self.actors) > 1 else None
        return [i if k == a else published for k in range(len(self.actors))]

    def load(self, state: dict) -> None:
        ref = self.ray.put(state)
        self.ray.get([a.load.remote(ref) for a in self.actors])
        self.best, self._copy = 0, False

    def _ask(self, method: str, *args):
        a, i = self.place[self.best]
        return self.ray.get(self.actors[a].ask.remote(i, method, *args))

    def close(self) -> None:
        for a in self.actors:
            self.ray.kill(a)
        self.actors = []
        if self._owns_ray:
            self.ray.shutdown()
            self._owns_ray = False

"""Engines that run a search's trials: in this process (the default), in a local process
pool, or on Ray. One contract: ``submit(TrialTask)``, ``wait()`` -> the result of a finished
trial (any order; :func:`sampletune.swift.trials.evaluate`'s dict), ``close()``.

Every engine runs :func:`~sampletune.swift.trials.evaluate` on the same objective, and the
search tells results in trial order (:func:`~sampletune.swift.trials.run_trials`), so a
search's trials do not depend on the engine. A score is the same on every engine when the
objective is a function of the candidate and its seed (the fine-tune is) and runs with the
same number of torch threads: pool and Ray workers use one, the in-process engine the
process's (``--threads 1`` to match them bit for bit).

How they relate to AutoSampling's engines (:mod:`sampletune.autosampling.engine_local`,
:mod:`~sampletune.autosampling.engine_ray`): those hold a population of stateful workers
that train side by side and copy the best one's state into the others; these run
independent, stateless trials. Both start or join Ray the same way
(:mod:`sampletune.ray_cluster`); here each trial gets one GPU when the cluster has enough,
fractions otherwise, there each actor (a group of workers) one.
"""

from __future__ import annotations

import math
import multiprocessing
import pickle
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import torch

from sampletune.errors import ConfigError, check
from sampletune.ray_cluster import import_ray, share, start_ray
from sampletune.swift.trials import Objective, TrialTask, evaluate

ENGINES = ("local", "process", "ray")


@dataclass(frozen=True)
class EngineConfig:
    """Where trials run (not part of a search's identity: every engine gives its trials).

    ``ray_address`` joins a Ray cluster (default: a local instance of ``ray_num_cpus`` CPUs,
    default one per trial in flight). ``gpus_per_trial``: GPUs Ray gives each trial (whole
    GPUs, or a fraction in (0, 1) to share one; default one each when the cluster has enough,
    ``GPUs / q`` otherwise, 0 without GPUs); a trial's ``cuda`` device is then its GPU.
    """

    kind: str = "local"
    ray_address: str | None = None
    ray_num_cpus: int | None = None
    gpus_per_trial: float | None = None

    def __post_init__(self):
        check(self.kind in ENGINES, "engine", f"unknown engine {self.kind!r}", ", ".join(ENGINES))
        if self.kind == "ray":
            import_ray(", ".join(ENGINES))  # refused now rather than after w_share's training
        ray_only = {"ray_address": self.ray_address, "ray_num_cpus": self.ray_num_cpus,
                    "gpus_per_trial": self.gpus_per_trial}
        for name, value in ray_only.items():
            check(value is None or self.kind == "ray", name, "is an option of the ray engine",
                  "--engine ray")
        check(self.ray_num_cpus is None or self.ray_num_cpus >= 1, "ray_num_cpus",
              f"{self.ray_num_cpus} must be positive", ">= 1")
        g = self.gpus_per_trial
        check(g is None or (math.isfinite(g) and (0 <= g <= 1 or float(g).is_integer())),
              "gpus_per_trial", f"{g} is neither a fraction of one GPU nor whole GPUs",
              "0 <= g <= 1, or a whole number")


def make_engine(cfg: EngineConfig, objective: Objective, workers: int):
    """The engine ``cfg.kind`` for ``workers`` trials in flight, each scored by
    ``objective``."""
    check(workers >= 1, "parallel_trials", f"{workers} must be positive", ">= 1")
    if cfg.kind == "process":
        return ProcessEngine(objective, workers)
    if cfg.kind == "ray":
        return RayEngine(objective, workers, address=cfg.ray_address,
                         num_cpus=cfg.ray_num_cpus or workers, gpus_per_trial=cfg.gpus_per_trial)
    return LocalEngine(objective)


class LocalEngine:
    """Trials in this process, one after another in the order submitted (at :meth:`wait`)."""

    name = "local"

    def __init__(self, objective: Objective):
        self.objective = objective
        self.queue: deque[TrialTask] = deque()

    def submit(self, task: TrialTask) -> None:
        self.queue.append(task)

    def wait(self) -> dict:
        if not self.queue:
            raise RuntimeError("wait() with no trial submitted")
        return evaluate(self.objective, self.queue.popleft())

    def close(self) -> None:
        self.queue.clear()


_WORKER_OBJECTIVE: Objective | None = None  # the objective of a pool worker process


def _start_worker(objective: Objective) -> None:
    global _WORKER_OBJECTIVE
    torch.set_num_threads(1)
    _WORKER_OBJECTIVE = objective


def _run_in_worker(task: TrialTask) -> dict:
    return evaluate(_WORKER_OBJECTIVE, task)


class ProcessEngine:
    """``workers`` spawned processes on this machine (one torch thread each); the objective
    is sent once to each when it starts (its tensors through shared memory), a trial's
    candidate with each trial."""

    name = "process"

    def __init__(self, objective: Objective, workers: int):
        self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_start_worker, initargs=(objective,))
        self.futures: dict[Future, int] = {}

    def submit(self, task: TrialTask) -> None:
        try:
            self.futures[self.pool.submit(_run_in_worker, task)] = task.trial
        except (pickle.PicklingError, TypeError, AttributeError) as err:
            raise ConfigError("engine", f"the objective cannot be sent to a worker process "
                              f"({type(err).__name__}: {err})", "a picklable objective "
                              "(module-level functions and classes), or the local engine"
                              ) from None

    def wait(self) -> dict:
        if not self.futures:
            raise RuntimeError("wait() with no trial submitted")
        done, _ = wait_futures(self.futures, return_when=FIRST_COMPLETED)
        first = min(done, key=self.futures.__getitem__)
        del self.futures[first]
        try:
            return first.result()  # a worker's exception is raised here
        except BrokenProcessPool as err:
            raise ConfigError("engine", f"a worker process died ({err})", "enough memory; "
                              "a script that starts the search under `if __name__ == "
                              "'__main__':` (workers import the main module); or the local "
                              "engine") from None

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.futures = {}


def _ray_trial(objective: Objective, task: TrialTask) -> dict:
    torch.set_num_threads(1)
    return evaluate(objective, task)


class RayEngine:
    """Trials as Ray tasks (``num_cpus`` ``min(1, CPUs / workers)``, GPUs as
    :class:`EngineConfig` says); the objective goes into Ray's object store once."""

    name = "ray"

    def __init__(self, objective: Objective, workers: int, *, address: str | None = None,
                 num_cpus: int = 2, gpus_per_trial: float | None = None):
        self.ray, self._owns_ray = start_ray(address, num_cpus, ", ".join(ENGINES))
        try:
            resources = self.ray.cluster_resources()
            gpus = resources.get("GPU", 0.0)
            per_gpu = share(gpus, workers) if gpus_per_trial is None else gpus_per_trial
            check(per_gpu <= gpus, "gpus_per_trial", f"{per_gpu:g} GPUs per trial on a "
                  f"cluster of {gpus:g}", f"<= {gpus:g}")
            self.task = self.ray.remote(num_cpus=share(resources.get("CPU", 1.0), workers),
                                        num_gpus=per_gpu)(_ray_trial)
            self.objective = self.ray.put(objective)
        except BaseException:
            self._shutdown()
            raise
        self.refs: dict = {}  # object ref -> trial

    def submit(self, task: TrialTask) -> None:
        self.refs[self.task.remote(self.objective, task)] = task.trial

    def wait(self) -> dict:
        if not self.refs:
            raise RuntimeError("wait() with no trial submitted")
        ready, _ = self.ray.wait(list(self.refs), num_returns=1)
        del self.refs[ready[0]]
        return self.ray.get(ready[0])  # a task's exception is raised here

    def close(self) -> None:
        for ref in self.refs:
            self.ray.cancel(ref, force=True)
        self.refs = {}
        self._shutdown()

    def _shutdown(self) -> None:
        if self._owns_ray:
            self.ray.shutdown()
            self._owns_ray = False

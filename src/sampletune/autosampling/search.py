"""The AutoSampling search loop (Algorithm 2 around Algorithm 1), checkpointed and resumable.

A search leaves in its run directory:

- ``schedule.npz``: the recorded schedule H* (:class:`RecordedSchedule`);
- ``distribution.npy``: the final sampling distribution, eq. (6) over all of H*;
- ``curves.json``: one record per epoch (validation and test of the adopted model, cost);
- ``losses.npz``: each training example's loss at the stage epochs (for Fig. 4);
- ``model.pt``: the final model (``{"model": name, "state_dict": ...}``);
- ``report.json``: settings, final metrics, cost and a summary of the distribution;
- ``checkpoint.pt``: the adopted worker's state (which every worker copies before the next
  interval), schedule, curves and losses after an exploitation interval: the last of each
  cycle, and within a cycle the first to end ``checkpoint_every`` seconds after the last
  checkpoint.

Rerunning the same search in the same directory resumes after the checkpointed interval
(the worker streams are drawn again from the seed, the cycle and the recorded schedule) and
ends with the same schedule and model as an uninterrupted run; ``search.json`` records the
search's identity (:mod:`sampletune.rundir`), so other settings are refused.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from sampletune import io, ray_cluster, rundir
from sampletune.autosampling.algorithm import (
    EXPLORATIONS,
    cycle_streams,
    exploit,
    explore_weights,
    plan_cycles,
    plan_intervals,
)
from sampletune.autosampling.schedule import RecordedSchedule
from sampletune.autosampling.worker import Engine, WorkerSpec, interval_seed
from sampletune.data.dataset import DataSplits
from sampletune.errors import ConfigError, check
from sampletune.train import TrainConfig, progress_bar
from sampletune.train.config import NOT_IN_IDENTITY

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class SearchConfig:
    """AutoSampling settings; defaults are the paper's (section 5.2).

    ``exploration`` (section 5.4): ``uniform`` trains one worker on uniform draws (plain
    training), ``random`` runs multi-exploitation on uniform draws, ``mixture`` is the full
    method. ``warmup`` epochs precede the first exploration step; after that one happens
    every ``nu + 1`` epochs. ``stages`` is how many snapshots of per-example losses to keep.
    """

    workers: int = 20  # N_p, the population size
    interval: int = 20  # N_s, mini-batches per exploitation interval
    # uniform: one worker; random: uniform draws; mixture: the method
    exploration: str = "mixture"
    warmup: int = 20  # epochs before the first exploration
    nu: int = 3  # N_u, uniform epochs in the mixture
    beta: float = 1.0  # smoothing log(P + beta), >= 1
    stages: int = 3  # loss snapshots for the figures
    engine: str = "local"  # local (in this process) or ray (actors, one per CPU or GPU)
    ray_address: str | None = None  # join this Ray cluster (default: start a local one)
    ray_num_cpus: int | None = None  # CPUs of a local Ray instance (default 2)

    def __post_init__(self):
        check(self.workers >= 1, "workers", f"{self.workers} must be positive", ">= 1")
        check(self.interval >= 1, "interval", f"{self.interval} must be positive", ">= 1")
        check(self.exploration in EXPLORATIONS, "exploration",
              f"unknown type {self.exploration!r}", ", ".join(EXPLORATIONS))
        check(self.warmup >= 0, "warmup", f"{self.warmup} is negative", ">= 0")
        check(self.nu >= 0, "nu", f"{self.nu} is negative", ">= 0")
        check(self.beta >= 1.0, "beta", f"{self.beta} is below 1", ">= 1")
        check(self.stages >= 1, "stages", f"{self.stages} must be positive", ">= 1")
        check(self.engine in ENGINES, "engine", f"unknown engine {self.engine!r}",
              ", ".join(ENGINES))
        check(self.ray_num_cpus is None or self.ray_num_cpus >= 1, "ray_num_cpus",
              f"{self.ray_num_cpus} must be positive", ">= 1")
        for name in ("ray_address", "ray_num_cpus"):
            check(getattr(self, name) is None or self.engine == "ray", name,
                  "is an option of the ray engine", "--engine ray")

    @property
    def population(self) -> int:
        """Workers actually run: one for ``uniform`` exploration."""
        return 1 if self.exploration == "uniform" else self.workers

    def identity(self) -> dict:
        """The fields that decide the schedule (not how it is computed)."""
        d = asdict(self)
        for k in ("engine", "ray_address", "ray_num_cpus"):
            d.pop(k)
        d["workers"] = self.population
        return d


@dataclass
class SearchResult:
    schedule: RecordedSchedule
    distribution: np.ndarray  # (n_train,) float64, eq. (6) over the whole schedule
    curves: list[dict]  # one record per epoch
    final: dict  # last val/test metrics, cost
    model_state: dict = field(repr=False)  # the final model's state_dict


def make_engine(cfg: SearchConfig, spec: WorkerSpec) -> Engine:
    """The engine ``cfg.engine`` with ``cfg.population`` workers."""
    if cfg.engine == "ray":
        from sampletune.autosampling.engine_ray import RayEngine

        return RayEngine(spec, cfg.population, address=cfg.ray_address,
                         num_cpus=cfg.ray_num_cpus or 2)
    from sampletune.autosampling.engine_local import LocalEngine

    return LocalEngine(spec, cfg.population)


def search(model: str, data: DataSplits, train_cfg: TrainConfig, cfg: SearchConfig,
           run_dir: str | Path, *, progress: bool = True, plots: bool = True,
           settings: dict | None = None, restart: bool = False) -> SearchResult:
    """Run AutoSampling (Algorithm 2) for ``train_cfg.epochs`` epochs of ``model`` on ``data``.

    Every epoch is ``len(data.train) // batch_size`` mini-batches; every worker trains all of
    them, so the cost is ``population * epochs`` worker-epochs plus one validation pass per
    worker and interval. Resumes from ``run_dir/checkpoint.pt`` when present; it is written
    after each cycle and within one every ``train_cfg.checkpoint_every`` seconds.
    ``settings`` (e.g. the run config) join the identity ``run_dir`` is claimed with;
    ``restart`` discards an earlier search there.
    """
    out = Path(run_dir)
    n, batch = len(data.train), train_cfg.batch_size
    check(data.train.in_memory, "dataset", "AutoSampling needs an in-memory training split")
    check(n >= batch, "batch_size", f"{batch} exceeds the {n} training examples", f"<= {n}")
    check(train_cfg.budget == 1.0, "budget", f"{train_cfg.budget}: AutoSampling trains whole "
          "epochs (no budget)", "1")
    epochs, population, seed = train_cfg.epochs, cfg.population, train_cfg.seed
    steps = n // batch
    cycles = plan_cycles(epochs, cfg.warmup, cfg.nu)
    # a mixture cycle draws nu + 1 epochs per worker, however few of them it trains
    check(cfg.exploration != "mixture" or len(cycles) == 1 or cfg.nu <= epochs, "nu",
          f"{cfg.nu} uniform epochs per mixture exceed the search's {epochs} epochs",
          f"0..{epochs}")
    per_epoch = plan_intervals(steps, cfg.interval)
    stage_epochs = sorted({max(1, round(epochs * (k + 1) / cfg.stages))
                           for k in range(cfg.stages)})
    train_identity = {k: v for k, v in train_cfg.to_dict().items()
                      if k not in NOT_IN_IDENTITY}
    identity = {"model": model, "dataset": data.name, "num_train": n,
                "train": train_identity, "search": cfg.identity()}
    if cfg.engine == "ray":  # refused before the run directory is claimed
        ray_cluster.import_ray(", ".join(ENGINES))
    with rundir.held(out, {**identity, "data": data.train.fingerprint(), **(settings or {})},
                     file="search.json", restart=restart):
        ckpt = out / "checkpoint.pt"
        schedule = RecordedSchedule(n, batch, steps, split=data.train.fingerprint())
        curves: list[dict] = []
        losses: dict[int, np.ndarray] = {}
        elapsed, evaluations = 0.0, 0
        engine = make_engine(cfg, WorkerSpec(model, data, train_cfg, epochs * steps))
        try:
            if ckpt.exists():
                schedule, curves, losses, elapsed, evaluations = _resume(
                    ckpt, engine, schedule, per_epoch, epochs, stage_epochs)
            t0 = time.perf_counter() - elapsed
            saved = time.perf_counter()  # the last checkpoint, or this session's start
            done = schedule.num_intervals
            starts = np.cumsum([0, *per_epoch])  # each interval's first batch in its epoch
            with progress_bar(f"autosampling {cfg.exploration}", total=epochs * len(per_epoch),
                              completed=done, enabled=progress) as bar:
                for c in range(len(cycles)):
                    first = sum(cycles[:c])
                    todo = [(e, j) for e in range(first, first + cycles[c])
                            for j in range(len(per_epoch)) if e * len(per_epoch) + j >= done]
                    if not todo:
                        continue
                    last = schedule.indices(first - cycles[c - 1], first) if c else None
                    weights = explore_weights(cfg.exploration, last, n, cfg.beta)  # eqs. 6-7
                    uniform_epochs = cycles[c] - 1 if c == 0 and cfg.warmup else cfg.nu
                    streams = cycle_streams(weights, n, uniform_epochs, cycles[c] * steps, batch,
                                            seed, c, population)
                    for epoch, j in todo:  # Algorithm 1
                        pos = (epoch - first) * steps + starts[j]
                        evaluate = population > 1 or j == len(per_epoch) - 1
                        chunks = [s[pos:pos + per_epoch[j]] for s in streams]
                        seeds = [interval_seed(seed, schedule.num_intervals, w)
                                 for w in range(population)]
                        metrics = engine.run(chunks, seeds, evaluate)
                        best = exploit([m["acc"] for m in metrics]) if population > 1 else 0
                        if population > 1:
                            engine.adopt(best)
                        acc = metrics[best]["acc"] if evaluate else float("nan")
                        schedule.append(chunks[best], epoch=epoch, worker=best, val_acc=acc)
                        evaluations += population if evaluate else 0
                        bar.advance(f"epoch {epoch + 1} val {acc:.3f}" if evaluate else "")
                        if j == len(per_epoch) - 1:  # the epoch's end
                            test = engine.evaluate("test")
                            curves.append(_epoch_record(epoch, metrics[best], test, population,
                                                        evaluations, time.perf_counter() - t0))
                            if epoch + 1 in stage_epochs:
                                losses[epoch + 1] = engine.example_losses()
                            io.write_json(out / "curves.json", curves)
                        if ((epoch, j) == todo[-1]
                                or time.perf_counter() - saved >= train_cfg.checkpoint_every):
                            _checkpoint(ckpt, {
                                "population": engine.state(),
                                "schedule": _tensors(schedule.to_arrays()),
                                "split": schedule.split, "curves": curves,
                                "losses": _tensors(losses), "elapsed": time.perf_counter() - t0,
                                "evaluations": evaluations,
                            })
                            saved = time.perf_counter()
            model_state = engine.state()["model"]
        finally:
            engine.close()

        result = SearchResult(schedule, schedule.distribution(), curves, {}, model_state)
        result.final = _write_outputs(out, result, data, identity, losses, engine)
        if plots:
            from sampletune.autosampling.plots import search_figures

            rho = search_figures(out, schedule, losses, {cfg.exploration: curves})
            report = io.read_json(out / "report.json")
            report["loss_frequency_spearman"] = {str(e): r for e, r in rho.items()}
            io.write_json(out / "report.json", report)
        return result


def _resume(ckpt: Path, engine: Engine, fresh: RecordedSchedule, per_epoch: list[int],
            epochs: int, stage_epochs: list[int]) -> tuple:
    """Load the checkpoint into ``engine``; returns the search's schedule, curves, losses,
    elapsed seconds and evaluations after the interval it was written at, each checked
    against this search (``fresh``: its empty schedule; ``per_epoch``: batches of each
    interval of an epoch)."""
    state = io.load_torch(ckpt, "checkpoint")

    def unfit(problem: str) -> ConfigError:
        return ConfigError("checkpoint", f"{ckpt} does not fit this search ({problem})",
                           "the search's own settings, or --restart")

    def fits(condition: bool, problem: str) -> None:
        if not condition:
            raise unfit(problem)

    try:
        engine.load(state["population"])
        arrays = {k: v.numpy() for k, v in state["schedule"].items()}
        schedule = RecordedSchedule.from_arrays({**arrays, "split": np.array(state["split"])},
                                                partial=True)
        losses = {int(e): v.numpy() for e, v in state["losses"].items()}
        curves, elapsed, evaluations = state["curves"], state["elapsed"], state["evaluations"]
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError, AttributeError) as err:
        raise unfit(io.describe_error(err)) from None
    k, m, n = schedule.num_intervals, len(per_epoch), fresh.num_examples
    shape = ("num_examples", "batch_size", "steps_per_epoch", "split")
    fits(all(getattr(schedule, a) == getattr(fresh, a) for a in shape) and k <= m * epochs
         and schedule.epochs_of == [i // m for i in range(k)]
         and [len(i) // fresh.batch_size for i in schedule.intervals] == (per_epoch * epochs)[:k],
         "its schedule is of another split, batch size or interval plan")
    done = k // m  # whole epochs
    fits(isinstance(curves, list) and len(curves) == done
         and all(isinstance(r, dict) and set(r) == set(CURVE_KEYS) and r["epoch"] == i
                 and all(_is_number(v) for v in r.values()) for i, r in enumerate(curves)),
         f"curves is not a list of {done} epoch records")
    fits(set(losses) == {e for e in stage_epochs if e <= done}
         and all(v.dtype.kind == "f" and v.shape == (n,) for v in losses.values()),
         "losses are not one array per stage epoch done")
    fits(_is_number(elapsed) and math.isfinite(elapsed) and elapsed >= 0,
         f"elapsed {elapsed!r} is not a number of seconds")
    fits(isinstance(evaluations, int) and not isinstance(evaluations, bool) and evaluations >= 0,
         f"evaluations {evaluations!r} is not a count")
    return schedule, curves, losses, float(elapsed), evaluations


def _is_number(v) -> bool:
    """An int or float, not a bool."""
    return isinstance(v, int | float) and not isinstance(v, bool)


def _tensors(arrays: dict) -> dict:
    """Numeric numpy arrays as tensors, so the checkpoint loads with ``weights_only``."""
    return {k: torch.tensor(np.asarray(v)) for k, v in arrays.items()
            if np.asarray(v).dtype.kind in "biuf"}


def _checkpoint(path: Path, state: dict) -> None:
    """Save the state after an interval (a module function so tests can stop here)."""
    io.save_torch(path, state)


CURVE_KEYS = ("epoch", "val_loss", "val_acc", "test_loss", "test_acc", "worker_epochs",
              "evaluations", "time")


def _epoch_record(epoch: int, val: dict, test: dict, population: int, evaluations: int,
                  wall: float) -> dict:
    return {"epoch": epoch, "val_loss": val["loss"], "val_acc": val["acc"],
            "test_loss": test["loss"], "test_acc": test["acc"],
            "worker_epochs": population * (epoch + 1), "evaluations": evaluations, "time": wall}


def _write_outputs(out: Path, result: SearchResult, data: DataSplits, identity: dict,
                   losses: dict[int, np.ndarray], engine: Engine) -> dict:
    """Write schedule, distribution, losses, model and report; return the final summary
    (with the engine's name and :class:`~sampletune.autosampling.worker.EngineCosts`)."""
    result.schedule.save(out / "schedule.npz")
    io.save_npy(out / "distribution.npy", result.distribution)
    io.save_torch(out / "model.pt", {"model": identity["model"],
                                     "state_dict": result.model_state})
    io.save_npz(out / "losses.npz",
                **{f"epoch_{e}": v for e, v in sorted(losses.items())})
    last = result.curves[-1]
    final = {k: last[k] for k in ("val_acc", "val_loss", "test_acc", "test_loss",
                                  "worker_epochs", "evaluations")}
    final["wall_time"] = last["time"]
    final["engine"] = engine.name
    final["engine_costs"] = asdict(engine.costs)
    io.write_json(out / "report.json", {**identity, "final": final,
                                        "distribution": distribution_summary(
                                            result.schedule, data)})
    return final


def distribution_summary(schedule: RecordedSchedule, data: DataSplits) -> dict:
    """How far the recorded schedule is from uniform, and whom it favours.

    ``counts_per_epoch`` statistics are appearances per example per epoch (uniform: 1).
    With label noise, the mean for noisy and clean examples (section 5.5 expects fewer
    draws of noisy ones).
    """
    counts = schedule.counts().astype(np.float64) / max(schedule.num_epochs, 1)
    p = counts / counts.sum()
    nz = p[p > 0]
    top = np.sort(p)[::-1][: max(1, len(p) // 100)].sum()
    summary = {
        "entropy_ratio": float(-(nz * np.log(nz)).sum() / np.log(len(p))),
        "never_sampled": int((counts == 0).sum()),
        "top1pct_share": float(top),
        "counts_per_epoch_min": float(counts.min()),
        "counts_per_epoch_max": float(counts.max()),
    }
    noisy = data.train.noisy.cpu().numpy()
    if noisy.any():
        summary["counts_per_epoch_noisy"] = float(counts[noisy].mean())
        summary["counts_per_epoch_clean"] = float(counts[~noisy].mean())
    return summary

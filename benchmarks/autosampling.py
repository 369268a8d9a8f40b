"""AutoSampling evidence at CPU scale (issue 5): does what autosampling-journal.txt claims hold?

For each data set and seed (same split, same initial weights within a seed):

1. Exploration types (section 5.4, Table 3): ``uniform`` (one worker), ``random`` and
   ``mixture`` (``--workers`` workers), with cost in worker-epochs and wall time.
2. Replay (section 5.6, Table 9): a *fresh* initialisation (seed + 1000) trained on the
   uniform run's schedule (UNIFORM), on i.i.d. draws from the mixture's final distribution
   (STATIC) and on the mixture's recorded schedule (DYNAMIC).
3. Transfer (section 5.8, Table 10): the same three schedules on another architecture.
4. Convergence (Fig. 5): mean test accuracy over epochs (area under the curve).
5. What the schedule learns: Spearman(sampling frequency, loss) per stage (Fig. 4), the
   distribution's spread, mean draws of noisy vs clean examples (with ``--noise``, Table 8),
   and how persistent per-example counts are from one exploration cycle to the next.
6. Engines: the same small search in process and on a local 2-CPU Ray instance; wall time
   and whether the recorded schedules are identical (``benchmarks/ray_engine.py`` breaks
   the Ray engine's cost down).

Searches and replays resume from their run directories, so an interrupted benchmark can be
rerun. Usage: ``python benchmarks/autosampling.py [--quick] [--seeds 0 1 2]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from sampletune import io
from sampletune.autosampling import RecordedSchedule, plan_cycles
from sampletune.autosampling.plots import convergence
from sampletune.autosampling.replay import ScheduleSampler, static_sampler
from sampletune.autosampling.search import SearchConfig, search
from sampletune.data import load_dataset, make_splits
from sampletune.models import build_model
from sampletune.train import TrainConfig, seeded_model, train

# data set -> (searched model, transfer model, batch size)
SETUPS = {"digits": ("mlp", "smallcnn", 16), "mnist1d": ("cnn1d", "mlp", 32)}


def run_dataset(name: str, seeds: list[int], args, out: Path) -> dict[str, list[dict]]:
    model, other, batch = SETUPS[name]
    rows: dict[str, list[dict]] = {}
    for seed in seeds:
        data = make_splits(load_dataset(name), seed=seed, noise=args.noise,
                           val_fraction=args.val_fraction)
        cfg = TrainConfig(epochs=args.epochs, batch_size=batch, lr=args.lr, seed=seed)
        runs = {}
        for exploration in ("uniform", "random", "mixture"):
            scfg = SearchConfig(workers=args.workers, interval=args.interval,
                                exploration=exploration, warmup=args.warmup, nu=args.nu,
                                beta=args.beta)
            r = search(model, data, cfg, scfg, out / name / f"s{seed}" / exploration,
                       progress=False, plots=exploration == "mixture")
            runs[exploration] = r
            rows.setdefault(exploration, []).append(_row(r.curves, r.final))
        convergence({k: runs[k].curves for k in runs}, out / name / f"s{seed}" / "fig5.png")
        mix = runs["mixture"]
        rows.setdefault("dynamic = search (same init)", []).append(
            {"test_acc": mix.final["test_acc"]})
        schedules = {"uniform": ScheduleSampler(runs["uniform"].schedule),
                     "static": static_sampler(mix.schedule, seed=seed),
                     "dynamic": ScheduleSampler(mix.schedule)}
        for arch, tag in ((model, "replay"), (other, "transfer")):
            for kind, sampler in schedules.items():
                net = seeded_model(lambda a=arch, d=data: build_model(a, d.input_shape,
                                                                      d.num_classes), seed + 1000)
                res = train(net, data, sampler, cfg, progress=False,
                            run_dir=out / name / f"s{seed}" / f"{tag}-{arch}-{kind}")
                rows.setdefault(f"{tag} {arch}: {kind}", []).append(
                    _row(res.history, {**res.final, "worker_epochs": args.epochs}))
    return rows


def persistence(schedule: RecordedSchedule, args) -> float:
    """Mean Spearman correlation of per-example counts in consecutive exploration cycles
    (after the warm-up): how much of what H* favoured in one cycle it favours again."""
    bounds = np.cumsum([0, *plan_cycles(args.epochs, args.warmup, args.nu)])
    counts = [schedule.counts(lo, hi) for lo, hi in zip(bounds[1:-1], bounds[2:], strict=True)]
    return float(np.mean([spearmanr(a, b).statistic
                          for a, b in zip(counts[:-1], counts[1:], strict=True)]))


def _row(curves: list[dict], final: dict) -> dict:
    """Final accuracies, mean test accuracy over epochs, cost; the wall time is the run's own
    (kept in its checkpoint, so a resumed benchmark reports the original timing)."""
    return {"test_acc": final["test_acc"], "val_acc": final["val_acc"],
            "auc_test": float(np.mean([c["test_acc"] for c in curves])),
            "worker_epochs": final["worker_epochs"], "wall_s": final["wall_time"]}


def run_search(name: str, engine: str, out: Path, *, workers: int = 4, epochs: int = 4,
               interval: int = 20, num_cpus: int = 2, noise: float = 0.0, lr: float = 0.05
               ) -> dict:
    """One fresh search (seed 0): wall time of the call, of its loop, its engine costs and
    its recorded schedule."""
    model, _, batch = SETUPS[name]
    data = make_splits(load_dataset(name), seed=0, noise=noise)
    cfg = TrainConfig(epochs=epochs, batch_size=batch, lr=lr, seed=0)
    scfg = SearchConfig(workers=workers, interval=interval, warmup=1, nu=1, engine=engine,
                        ray_num_cpus=num_cpus)
    shutil.rmtree(out, ignore_errors=True)  # time a fresh search, not a resumed one
    t0 = time.perf_counter()
    r = search(model, data, cfg, scfg, out, progress=False, plots=False)
    return {"wall_s": time.perf_counter() - t0, "search_s": r.final["wall_time"],
            "costs": r.final["engine_costs"], "schedule": r.schedule.to_arrays()}


def same_schedule(a: dict, b: dict) -> bool:
    return all(np.array_equal(a["schedule"][k], b["schedule"][k]) for k in a["schedule"])


def engines(name: str, args, out: Path) -> dict:
    """The same search on both engines: wall time and identical schedules."""
    runs = {engine: run_search(name, engine, out / "engines" / name / engine,
                               workers=args.engine_workers, epochs=args.engine_epochs,
                               interval=args.interval, noise=args.noise, lr=args.lr)
            for engine in ("local", "ray")}
    result = {e: {k: r[k] for k in ("wall_s", "search_s")} for e, r in runs.items()}
    result["identical_schedule"] = same_schedule(runs["local"], runs["ray"])
    result["workers"], result["epochs"] = args.engine_workers, args.engine_epochs
    return result


def table(name: str, rows: dict[str, list[dict]]) -> str:
    """Markdown table; each row's Δ is against the uniform row of its group (the search's
    uniform exploration, or the UNIFORM schedule of the same replay/transfer model)."""
    base_cost = np.mean([r["worker_epochs"] for r in rows["uniform"]])
    lines = [f"### {name}", "",
             "| method | test acc (mean ± std) | Δ vs its uniform | AUC test | worker-epochs "
             "| cost ratio | wall s |", "|---|---|---|---|---|---|---|"]
    for method, rs in rows.items():
        base = rows[method.split(": ")[0] + ": uniform" if ": " in method else "uniform"]
        acc = np.array([r["test_acc"] for r in rs])
        delta = acc.mean() - np.mean([r["test_acc"] for r in base])
        cells = [f"{acc.mean():.4f} ± {acc.std(ddof=1):.4f}", f"{delta:+.4f}"]
        if "auc_test" in rs[0]:
            cost = np.mean([r["worker_epochs"] for r in rs])
            cells += [f"{np.mean([r['auc_test'] for r in rs]):.4f}", f"{cost:.0f}",
                      f"{cost / base_cost:.1f}x", f"{np.mean([r['wall_s'] for r in rs]):.1f}"]
        else:
            cells += ["", "", "", ""]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--workers", type=int, default=10)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--warmup", type=int, default=6)
    p.add_argument("--nu", type=int, default=3)
    p.add_argument("--interval", type=int, default=20)
    p.add_argument("--beta", type=float, default=1.0)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--noise", type=float, default=0.0)
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="share of the training set held out to rank the workers")
    p.add_argument("--engine-workers", type=int, default=4)
    p.add_argument("--engine-epochs", type=int, default=4)
    p.add_argument("--no-ray", action="store_true", help="skip the engine comparison")
    p.add_argument("--quick", action="store_true", help="tiny settings: a smoke run")
    p.add_argument("--out", default="runs/bench-autosampling")
    args = p.parse_args()
    if args.quick:
        args.seeds, args.workers, args.epochs, args.warmup, args.nu = [0], 3, 4, 1, 1
        args.engine_epochs = 2
    torch.set_num_threads(1)
    out = Path(args.out)
    print(f"settings: {json.dumps({k: v for k, v in vars(args).items()})}")
    report = {"settings": vars(args), "datasets": {}}
    for name in args.datasets:
        rows = run_dataset(name, args.seeds, args, out)
        report["datasets"][name] = rows
        print(table(name, rows), "\n", flush=True)
        mix = [io.read_json(out / name / f"s{s}" / "mixture" / "report.json") for s in args.seeds]
        spread = {k: round(float(np.mean([m["distribution"][k] for m in mix])), 4)
                  for k in mix[0]["distribution"]}
        print(f"{name} mixture distribution, mean over seeds: {json.dumps(spread)}")
        rho = [list(m["loss_frequency_spearman"].values()) for m in mix]
        print(f"{name} Spearman(frequency, loss) per stage, mean over seeds: "
              f"{np.round(np.mean(rho, axis=0), 3).tolist()}")
        for exploration in ("random", "mixture"):
            p = [persistence(RecordedSchedule.load(out / name / f"s{s}" / exploration
                                                   / "schedule.npz"), args) for s in args.seeds]
            print(f"{name} {exploration}: consecutive-cycle Spearman of example counts "
                  f"{np.mean(p):.3f} ± {np.std(p, ddof=1):.3f}")
        print(flush=True)
    for name in [] if args.no_ray else args.datasets:
        report.setdefault("engines", {})[name] = eng = engines(name, args, out)
        print(f"engines ({name}, {eng['workers']} workers, {eng['epochs']} epochs): "
              f"local {eng['local']['wall_s']:.1f}s, ray {eng['ray']['wall_s']:.1f}s "
              f"(search loop {eng['local']['search_s']:.1f}s vs {eng['ray']['search_s']:.1f}s; "
              f"ray/local {eng['ray']['wall_s'] / eng['local']['wall_s']:.2f}x), "
              f"identical schedule: {eng['identical_schedule']}")
    io.write_json(out / "benchmark.json", report)


if __name__ == "__main__":
    main()

"""AutoSampling's Ray engine against the in-process engine (issue 11): cost per exploitation
interval, start-up, and where Ray becomes faster.

The engine comparison of ``benchmarks/autosampling.py`` (4 workers, 4 epochs, N_s 20,
warm-up 1, N_u 1, a local Ray instance of ``--num-cpus`` CPUs, so 2 actors of 2 workers),
``--repeats`` times with the engines alternating, then Ray with ``--sweep-cpus`` CPUs (other
actor counts). From each search's engine costs (``report.json``: ``final.engine_costs``) it
fits, per data set, the wall time of a search of I intervals with W workers on A actors::

    in-process:  T_L = S_L + I (W t + d)
    Ray:         T_R = S_R + I (ceil(W / A) k t + o)

t: one worker's interval in process (copy, N_s steps, validation); k: the same in an actor,
over t (1 on free cores); d, o: each engine's overhead per interval beyond its workers'
steps (Ray: the calls, the best state's trip through the object store); S: start-up. Ray is
faster per interval when ``t > (o - d) / (W - ceil(W / A) k)`` and over the whole search when
``t > ((S_R - S_L) / I + o - d) / (W - ceil(W / A) k)``.

Usage: ``python benchmarks/ray_engine.py [--repeats 3] [--datasets digits mnist1d]``
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch
from autosampling import SETUPS, run_search, same_schedule  # this folder is on sys.path

from sampletune import io


def fit(local: list[dict], ray: list[dict], workers: int, actors: int) -> dict:
    """The model's parameters, medians over repeats (seconds)."""
    def med(runs, f):
        return float(np.median([f(r["costs"]) for r in runs]))

    def per_worker(c):
        return c["work_s"] / (c["intervals"] * workers)

    t = med(local, per_worker)
    return {"t": t, "d": med(local, lambda c: (c["interval_s"] - c["work_s"]) / c["intervals"]),
            "k": med(ray, per_worker) / t,
            "o": med(ray, lambda c: (c["interval_s"] - c["busy_s"]) / c["intervals"]),
            "S_L": med(local, lambda c: c["start_s"]), "S_R": med(ray, lambda c: c["start_s"]),
            "I": local[0]["costs"]["intervals"], "W": workers, "A": actors}


def crossover(p: dict, workers: int, actors: int, k: float, intervals: int | None) -> float:
    """The t above which Ray is faster (per interval, or over ``intervals`` with start-up);
    ``inf`` when Ray's actors are no faster than one process (``ceil(W / A) k >= W``)."""
    gain = workers - math.ceil(workers / actors) * k
    fixed = p["o"] - p["d"] + ((p["S_R"] - p["S_L"]) / intervals if intervals else 0.0)
    return fixed / gain if gain > 0 else math.inf


def model_wall(p: dict, engine: str) -> float:
    """T_L or T_R at the fitted parameters."""
    if engine == "local":
        return p["S_L"] + p["I"] * (p["W"] * p["t"] + p["d"])
    return p["S_R"] + p["I"] * (math.ceil(p["W"] / p["A"]) * p["k"] * p["t"] + p["o"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local Ray instance")
    ap.add_argument("--sweep-cpus", type=int, nargs="*", default=[1, 4],
                    help="Ray CPUs (so actors) of one extra run each, first data set")
    ap.add_argument("--out", default="runs/bench-ray-engine")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out, w = Path(args.out), args.workers
    print(f"settings: {json.dumps(vars(args))}")
    report: dict = {"settings": vars(args), "datasets": {}}
    rows, fits = [], {}
    for name in args.datasets:
        runs: dict[str, list[dict]] = {"local": [], "ray": []}
        for rep in range(args.repeats):
            for engine in ("local", "ray") if rep % 2 == 0 else ("ray", "local"):
                runs[engine].append(run_search(name, engine, out / name / engine, workers=w,
                                               epochs=args.epochs, num_cpus=args.num_cpus))
        same = all(same_schedule(runs["local"][0], r) for r in runs["local"] + runs["ray"])
        actors = min(w, args.num_cpus)
        p = fits[name] = fit(runs["local"], runs["ray"], w, actors)
        ratio = {key: float(np.median([b[key] / a[key] for a, b in
                                       zip(runs["local"], runs["ray"], strict=True)]))
                 for key in ("wall_s", "search_s")}
        ratio["interval"] = float(np.median([b["costs"]["interval_s"] / a["costs"]["interval_s"]
                                             for a, b in zip(runs["local"], runs["ray"],
                                                             strict=True)]))
        rows.append(f"| {name} | {w} | {actors} | {ratio['wall_s']:.2f} | {ratio['search_s']:.2f}"
                    f" | {ratio['interval']:.2f} | {p['k']:.2f} | {p['o'] / p['t']:.2f}"
                    f" | {(p['S_R'] - p['S_L']) / (p['I'] * w * p['t']):.1f} | {same} |")
        report["datasets"][name] = {"fit": p, "ratios": ratio, "identical_schedule": same,
                                    **{e: [{k: v for k, v in r.items() if k != "schedule"}
                                           for r in rs] for e, rs in runs.items()}}
    print(f"\nray / in-process, median of {args.repeats} (same machine, same run):\n")
    print("| data set | workers | actors | wall | search loop | per interval | k | o / t "
          "| Ray start-up / in-process search | identical schedules |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))

    name = args.datasets[0]
    sweep = []
    for cpus in args.sweep_cpus:
        r = run_search(name, "ray", out / name / f"ray-{cpus}cpu", workers=w, epochs=args.epochs,
                       num_cpus=cpus)
        c, actors = r["costs"], min(w, cpus)
        sweep.append({"cpus": cpus, "actors": actors, "costs": c})
        print(f"{name} on Ray with {cpus} CPUs ({actors} actors): o / t = "
              f"{(c['interval_s'] - c['busy_s']) / c['intervals'] / fits[name]['t']:.2f}, "
              f"k = {c['work_s'] / (c['intervals'] * w) / fits[name]['t']:.2f}, "
              f"start-up / S_R(A={min(w, args.num_cpus)}) = "
              f"{c['start_s'] / fits[name]['S_R']:.2f}")
    report["sweep"] = {name: sweep}

    print("\nmodel (t in units of the measured t; crossover: Ray faster above it):\n")
    print("| data set | W | A (cores) | k | model wall ray / in-process | per interval t* / t "
          "| whole search (I intervals) t* / t |")
    print("|---|---|---|---|---|---|---|")
    for name, p in fits.items():
        print(f"| {name} | {w} | {p['A']} (measured) | {p['k']:.2f} | "
              f"{model_wall(p, 'ray') / model_wall(p, 'local'):.2f} | "
              f"{crossover(p, w, p['A'], p['k'], None) / p['t']:.2f} | "
              f"{crossover(p, w, p['A'], p['k'], p['I']) / p['t']:.1f} ({p['I']}) |")
        for workers in (2, 4, 8, 20):
            print(f"| {name} | {workers} | {workers} (free) | 1 | | "
                  f"{crossover(p, workers, workers, 1.0, None) / p['t']:.2f} | "
                  f"{crossover(p, workers, workers, 1.0, p['I']) / p['t']:.1f} ({p['I']}) |")
    print("\nfitted (s): " + json.dumps({n: {k: round(v, 4) for k, v in p.items()}
                                         for n, p in fits.items()}))
    io.write_json(out / "benchmark.json", report)


if __name__ == "__main__":
    main()

"""AutoSampling's Ray engine against the in-process engine (issue 11): cost per exploitation
interval, fixed cost, and where Ray becomes faster.

The engine comparison of ``benchmarks/autosampling.py`` (4 workers, 4 epochs, N_s 20,
warm-up 1, N_u 1; a local Ray instance of ``--num-cpus`` CPUs, so 2 actors of 2 workers),
``--repeats`` times with the engines alternating, then Ray with ``--sweep-cpus`` CPUs (other
actor counts). From each search's wall time and engine costs (``report.json``:
``final.engine_costs``) it fits, per data set, the wall time of a search of I intervals with
W workers on A actors::

    in-process:  T_L = S_L + I (W t + d)
    Ray:         T_R = S_R + I (ceil(W / A) k t + o)

t: one worker's interval in process (copy, N_s steps, validation); k: the same in an actor,
over t (1 on cores of its own); d, o: each engine's search loop per interval beyond its
busiest group's steps (drawing, bookkeeping, the epochs' test evaluations and checkpoints;
Ray: also the calls and the best state's trip through the object store); S: the rest
(start-up, shutting down, writing the outputs).
Ray is faster per interval when ``t > (o - d) / (W - ceil(W / A) k)``, and over the whole
search when ``I > (S_R - S_L) / ((W - ceil(W / A) k) t - o + d)``.

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
        return float(np.median([f(r, r["costs"]) for r in runs]))

    def per_worker(r, c):
        return c["work_s"] / (c["intervals"] * workers)

    def overhead(r, c):
        return (r["search_s"] - c["busy_s"]) / c["intervals"]

    def fixed(r, c):
        return r["wall_s"] - r["search_s"]

    t = med(local, per_worker)
    return {"t": t, "k": med(ray, per_worker) / t, "d": med(local, overhead),
            "o": med(ray, overhead), "S_L": med(local, fixed), "S_R": med(ray, fixed),
            "start_R": med(ray, lambda r, c: c["start_s"]),
            "I": local[0]["costs"]["intervals"], "W": workers, "A": actors}


def model_wall(p: dict, engine: str, workers: int, actors: int, k: float, intervals: int
               ) -> float:
    """T_L or T_R at the fitted t, d, o, S."""
    if engine == "local":
        return p["S_L"] + intervals * (workers * p["t"] + p["d"])
    return p["S_R"] + intervals * (math.ceil(workers / actors) * k * p["t"] + p["o"])


def crossover(p: dict, workers: int, actors: int, k: float) -> tuple[float, float]:
    """``(t*, I*)``: Ray is faster per interval above t* (seconds), and over a search of more
    than I* intervals at the fitted t; ``inf`` where it never is."""
    gain = workers - math.ceil(workers / actors) * k
    t_star = (p["o"] - p["d"]) / gain if gain > 0 else math.inf
    saved = gain * p["t"] - p["o"] + p["d"]
    return t_star, (p["S_R"] - p["S_L"]) / saved if saved > 0 else math.inf


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
                    f" | {ratio['interval']:.2f} | {same} |")
        report["datasets"][name] = {"fit": p, "ratios": ratio, "identical_schedule": same,
                                    **{e: [{k: v for k, v in r.items() if k != "schedule"}
                                           for r in rs] for e, rs in runs.items()}}
    print(f"\nray / in-process, median of {args.repeats} (same machine, same run):\n")
    print("| data set | workers | actors | wall | search loop | per interval "
          "| identical schedules |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print("\nfitted per data set (t, d, o in ms; S in s):\n")
    print("| data set | t | k | d | o | o / t | S_L | S_R (start-up) | I |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, p in fits.items():
        print(f"| {name} | {1e3 * p['t']:.1f} | {p['k']:.2f} | {1e3 * p['d']:.1f} "
              f"| {1e3 * p['o']:.1f} | {p['o'] / p['t']:.2f} | {p['S_L']:.1f} "
              f"| {p['S_R']:.1f} ({p['start_R']:.1f}) | {p['I']} |")

    name = args.datasets[0]
    sweep = []
    for cpus in args.sweep_cpus:
        r = run_search(name, "ray", out / name / f"ray-{cpus}cpu", workers=w, epochs=args.epochs,
                       num_cpus=cpus)
        c, actors = r["costs"], min(w, cpus)
        sweep.append({"cpus": cpus, "actors": actors, "wall_s": r["wall_s"], "costs": c})
        print(f"{name} on Ray with {cpus} CPUs ({actors} actors): "
              f"k = {c['work_s'] / (c['intervals'] * w) / fits[name]['t']:.2f}, "
              f"o = {1e3 * (r['search_s'] - c['busy_s']) / c['intervals']:.1f} ms, "
              f"start-up {c['start_s']:.1f} s")
    report["sweep"] = {name: sweep}

    print("\ncrossover (model; o as measured with 2 actors): Ray is faster per interval when "
          "a worker's interval costs more than t*, and over the search beyond I* intervals "
          "at the measured t\n")
    print("| data set | W | A | k | t* ms | t* / t | I* | model wall ray / in-process "
          "at I |")
    print("|---|---|---|---|---|---|---|---|")
    for name, p in fits.items():
        cases = [(w, p["A"], p["k"], "this machine")] + [(n, n, 1.0, "own cores")
                                                        for n in (2, 4, 8, 20)]
        for workers, actors, k, where in cases:
            t_star, i_star = crossover(p, workers, actors, k)
            ratio = (model_wall(p, "ray", workers, actors, k, p["I"])
                     / model_wall(p, "local", workers, actors, k, p["I"]))
            print(f"| {name} | {workers} | {actors} ({where}) | {k:.2f} | {1e3 * t_star:.1f} "
                  f"| {t_star / p['t']:.2f} | {i_star:.0f} | {ratio:.2f} |")
    io.write_json(out / "benchmark.json", report)


if __name__ == "__main__":
    main()

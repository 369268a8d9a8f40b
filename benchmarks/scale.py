"""Swift search wall time and best score against the number of parallel trials ``q``.

The demo's recipe (digits, 40% symmetric noise, mlp, the library's search defaults: 40
BO-cgf trials from the reference samplers, search cost 2 trainings): w_share and its
features once, then one search per row, each in a fresh directory:

- measured: in-process q = 1 (the baseline of every ratio), process pool and Ray (if
  installed; a local instance of ``q`` CPUs) at q = 1 and 2, in-process q = 2;
- modelled: q = 8 and 32. Their trials, hence their best score, are measured: a search's
  trials depend on ``q`` only, so they run in-process. Their wall time is modelled from the
  measured costs (see ``model_wall``) for a machine with ``q`` free cores.

Per row: wall time (and its ratio to in-process q = 1), the fine-tune's cost per trial
(mean over the row's trials, in the worker), the agent's time per trial, the engine's
overhead per trial (wall time not spent in fine-tunes run ``q`` at a time or in the agent),
the top fine-tune score and the agent's recommendation.

    .venv/bin/python benchmarks/scale.py            # ~10 min on 2 busy cores
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import math
import tempfile
import time
from pathlib import Path

import torch

from sampletune.experiments.setup import load_data, new_model
from sampletune.experiments.swift_pipeline import DEFAULT_SEARCH_COST, DEMO_RUN, DEMO_SEARCH
from sampletune.features import TRAIN_LOSS, TrainLossTracker, compute_features
from sampletune.samplers import ShuffleSampler
from sampletune.swift.engines import EngineConfig
from sampletune.swift.family import SwiftFamily
from sampletune.swift.reference import reference_params
from sampletune.swift.search import FineTuner, finetune_budget_for, run_search
from sampletune.train import train


def setup(seed: int, rounds: int):
    """(search config, family, fine-tuner, reference samplers) of the demo recipe."""
    run = DEMO_RUN.replace(seed=seed)
    search = dataclasses.replace(DEMO_SEARCH, rounds=rounds, seed=seed, finetune_budget=(
        finetune_budget_for(DEFAULT_SEARCH_COST, rounds, DEMO_SEARCH.finetune_epochs,
                            run.epochs * run.budget)))
    data = load_data(run)
    n = len(data.train)
    tracker = TrainLossTracker(n, run.epochs)
    uniform = train(new_model(run, data), data, ShuffleSampler(n, seed=seed),
                    run.train_config(), observers=[tracker], progress=False)
    feats = compute_features(uniform.best_model(), data.train.x, data.train.y, progress=False)
    feats[TRAIN_LOSS] = tracker.mean()
    family = SwiftFamily(feats, search.features, search.transform, search.grad_feature)
    tuner = FineTuner(uniform.model, data, run.train_config(), search)
    return search, family, tuner, reference_params(family, search.segments)


def measure(search, family, tuner, refs, q: int, engine: str) -> dict:
    """One search of ``q`` trials in flight on ``engine``: wall time and per-trial costs."""
    cfg = dataclasses.replace(search, parallel_trials=q)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = run_search(Path(tmp) / "search", family, tuner, cfg, initial=refs,
                            progress=False, engine=EngineConfig(engine))
        wall = time.perf_counter() - start
    records = result.trials
    rounds, agent = len(records), result.agent_time
    trial = sum(r["seconds"] - r["agent_seconds"] for r in records) / rounds
    # before the first trial was told, less that trial: starting the engine and sending it
    # the objective (Ray starts before the journal's clock, a pool at the first trial)
    startup = wall - records[-1]["elapsed"] + records[0]["elapsed"] - records[0]["seconds"]
    at_once = 1 if engine == "local" else q  # fine-tunes that run side by side
    return {"engine": engine, "q": q, "wall": wall, "trial": trial, "agent": agent / rounds,
            "startup": startup,
            "overhead": (wall - startup - agent - math.ceil(rounds / at_once) * trial) / rounds,
            "top": max(r["score"] for r in records if r["score"] is not None),
            "agent_top": max((r["score"] for r in records
                              if r["origin"] == "agent" and r["score"] is not None),
                             default=float("nan")),
            "recommended": result.best_score, "points": [r["x"] for r in records]}


def model_wall(q: int, rounds: int, trial: float, agent: float, startup: float,
               overhead: float) -> float:
    """Modelled wall time of a search with ``q`` workers on ``q`` free cores: the engine's
    start-up, the agent's time (measured for this ``q``: it proposes and learns in the
    driver, one trial at a time), ``ceil(rounds / q)`` waves of fine-tunes of the
    uncontended per-trial cost ``trial`` (in-process q = 1; trials cost the same, so they
    finish in waves), and the engine's overhead per trial (start-up and overhead measured
    for that engine at q = 1)."""
    return startup + rounds * agent + math.ceil(rounds / q) * trial + rounds * overhead


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=DEMO_SEARCH.rounds)
    ap.add_argument("--modelled", type=int, nargs="+", default=[8, 32])
    args = ap.parse_args(argv)
    torch.set_num_threads(1)  # the in-process trials as the workers run them: one thread
    search, family, tuner, refs = setup(args.seed, args.rounds)
    engines = ["process"] + (["ray"] if importlib.util.find_spec("ray") else [])
    rows = [measure(search, family, tuner, refs, 1, "local")]
    for q in (1, 2):
        rows += [measure(search, family, tuner, refs, q, e) for e in engines]
    rows.append(measure(search, family, tuner, refs, 2, "local"))
    base = rows[0]
    for row in rows[1:]:
        row["same_trials"] = row["points"] == next(
            r["points"] for r in rows if r["q"] == row["q"] and r["engine"] == "local")
    print(f"digits, 40% noise, mlp, seed {args.seed}: {args.rounds} BO-cgf trials, "
          f"finetune budget {search.finetune_budget:.3f}, 1 torch thread per trial\n")
    print("| engine | q | wall s | wall / in-process q=1 | fine-tune s/trial | agent s/trial "
          "| start-up s | overhead s/trial | top score | top agent trial | recommended | "
          "same trials as in-process |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        same = "-" if r is base else ("yes" if r["same_trials"] else "NO")
        print(f"| {r['engine']} | {r['q']} | {r['wall']:.1f} | {r['wall'] / base['wall']:.2f} "
              f"| {r['trial']:.3f} | {r['agent']:.3f} | {r['startup']:.1f} | "
              f"{r['overhead']:+.3f} | {r['top']:.4f} | {r['agent_top']:.4f} | "
              f"{r['recommended']:.4f} | {same} |")
    print("\nModelled q (trials measured in-process; wall time by model_wall on q free "
          "cores: the engine's start-up + agent + ceil(trials / q) x the fine-tune cost of "
          "in-process q=1 + trials x the engine's overhead per trial at q=1):\n")
    print("| engine | q | modelled wall s | wall / in-process q=1 | break-even fine-tune "
          "s/trial | agent s/trial | top score | top agent trial | recommended |")
    print("|---|---|---|---|---|---|---|---|---|")
    for q in args.modelled:
        r = measure(search, family, tuner, refs, q, "local")
        rounds = len(r["points"])
        for e in engines:
            at_1 = next(x for x in rows if x["q"] == 1 and x["engine"] == e)
            wall = model_wall(q, rounds, base["trial"], r["agent"], at_1["startup"],
                              at_1["overhead"])
            # the fine-tune cost above which the model beats in-process q = 1
            even = (at_1["startup"] + rounds * (r["agent"] + at_1["overhead"] - base["agent"]
                                                - base["overhead"])) / (
                rounds - math.ceil(rounds / q))
            print(f"| {e} | {q} | {wall:.1f} | {wall / base['wall']:.2f} | {even:.3f} | "
                  f"{r['agent']:.3f} | {r['top']:.4f} | {r['agent_top']:.4f} | "
                  f"{r['recommended']:.4f} |")


if __name__ == "__main__":
    main()

"""Fig. 3 of swift-sampler.txt (appendix A.1.2) at CPU scale: the best fine-tune score so far
of BO with cgf, BO with cdf, the REINFORCE agent (RL) and random search.

Each setting runs the whole ``swift search`` pipeline on the demo recipe (digits, 40%
symmetric noise, mlp, 40 trials) *without* the reference samplers (they would give every
agent the same first trials), so the curves are the agents' own. Prints, per setting, the
best fine-tune validation accuracy after 5, 10, 20 and 40 trials and the test accuracy of
the early-stopped retrain of the search's pick, mean ± sample std over ``--seeds``, and
writes the best-so-far curves (mean over seeds) to ``--figure``.

    .venv/bin/python benchmarks/swift_agents.py --seeds 0 1 2 \\
        --figure docs/figures/swift_fig3_agents.png

Runs live under ``--out`` and resume when the command is rerun.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from sampletune.experiments.swift_pipeline import DEMO_RUN, run_swift
from sampletune.swift.plots import best_so_far, search_curves_figure
from sampletune.swift.search import SearchConfig, load_trials

SETTINGS = (("bo", "cgf"), ("bo", "cdf"), ("rl", "cgf"), ("random", "cgf"))
CHECKPOINTS = (5, 10, 20, 40)


def _ms(xs: list[float]) -> str:
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{100 * statistics.mean(xs):.1f} ± {100 * sd:.1f}"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default="runs/bench/swift_agents")
    ap.add_argument("--figure", default="runs/bench/swift_agents/fig3_agents.png")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    curves: dict[str, list[list[float | None]]] = {}
    retrain: dict[str, list[float]] = {}
    for agent, transform in SETTINGS:
        label = f"{agent}-{transform}"
        for seed in args.seeds:
            out = Path(args.out) / label / f"seed{seed}"
            report = run_swift(DEMO_RUN.replace(seed=seed, out=str(out)),
                               SearchConfig(agent=agent, transform=transform, references=False),
                               progress=False)
            curves.setdefault(label, []).append([r["score"] for r in load_trials(out / "search")])
            retrain.setdefault(label, []).append(report["swift"]["early_stopped"]["test_acc"])
    print(f"digits, 40% symmetric noise, mlp, no reference samplers, seeds {args.seeds}: "
          "best fine-tune validation accuracy after k trials, and the test accuracy of the "
          "pick's early-stopped retrain (%, mean ± sample std)\n")
    print("| setting | " + " | ".join(f"k = {k}" for k in CHECKPOINTS) + " | retrain test acc |")
    print("|---" * (len(CHECKPOINTS) + 2) + "|")
    for label, runs in curves.items():
        best = [best_so_far(s) for s in runs]
        cells = [_ms([b[k - 1] for b in best]) for k in CHECKPOINTS]
        print(f"| {label} | " + " | ".join(cells) + f" | {_ms(retrain[label])} |")
    search_curves_figure(curves, args.figure)
    print(f"\nfigure: {args.figure}")


if __name__ == "__main__":
    main()

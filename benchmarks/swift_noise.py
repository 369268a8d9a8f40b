"""Swift Sampler, the shape of swift-sampler.txt Table 1 and Fig. 3 at CPU scale.

For each data set and noise rate: uniform sampling (= w_share), the Swift Sampler (BO-cgf,
E_o rounds, E_f = 5, search budgeted to ``--search-cost`` full trainings, retrained from
scratch) and the oracle that drops the noisy examples, over ``--seeds`` (mean and std of
test accuracy); the share of the uniform-to-oracle gap SS closes; the search's wall time as
a multiple of one full training, and the agent's share of it (GP fit + UCB maximisation;
the rest is fine-tuning and feature extraction). Then the outer-loop ablation on the
``--ablation-noise`` case: BO-cgf vs BO-cdf vs random-cgf vs RL-cgf (test accuracy after
retraining, best validation score, and Fig. 3: best score so far against trial).

    .venv/bin/python benchmarks/swift_noise.py                       # full (minutes)
    .venv/bin/python benchmarks/swift_noise.py --datasets digits --seeds 0 --rounds 12

Every run lives under ``--out`` and resumes when the command is rerun.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path

import torch

from sampletune.experiments.config import RunConfig
from sampletune.experiments.setup import load_data, new_model
from sampletune.io import read_jsonl, write_text
from sampletune.samplers import build_sampler
from sampletune.swift.plots import search_curves_figure
from sampletune.swift.search import SearchConfig
from sampletune.train import train

# Per data set: the model and a training recipe where uniform training memorises noise.
RECIPES = {
    "digits": dict(model="mlp", epochs=40, batch_size=64, lr=0.05, lr_schedule="cosine",
                   val_fraction=0.2),
    "mnist1d": dict(model="cnn1d", epochs=40, batch_size=64, lr=0.05, lr_schedule="cosine"),
}
ABLATION = {"bo-cgf": ("bo", "cgf"), "bo-cdf": ("bo", "cdf"), "random-cgf": ("random", "cgf"),
            "rl-cgf": ("rl", "cgf")}


def _oracle(run: RunConfig) -> float:
    data = load_data(run)
    res = train(new_model(run, data), data, build_sampler("oracle", data, seed=run.seed),
                run.train_config(), run_dir=Path(run.out), progress=False)
    return res.final["test_acc"]


def _swift(run: RunConfig, search: SearchConfig, cost: float) -> dict:
    from sampletune.swift.pipeline import run_swift

    return run_swift(run, search, search_cost=cost, progress=False)


def _ms(xs: list[float]) -> str:
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{100 * statistics.mean(xs):.1f} ± {100 * sd:.1f}"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    ap.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.2, 0.4])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--rounds", type=int, default=40, help="E_o (40)")
    ap.add_argument("--search-cost", type=float, default=3.0,
                    help="fine-tune epochs of the search, in full trainings (3)")
    ap.add_argument("--ablation-noise", type=float, default=0.4)
    ap.add_argument("--ablation-datasets", nargs="*", default=None,
                    help="data sets for the ablation (default: the first of --datasets)")
    ap.add_argument("--out", default="runs/bench/swift_noise")
    args = ap.parse_args(argv)
    # One thread per process: these models are tiny, and extra threads only contend on a
    # shared machine (a 40-epoch digits training goes from ~2 s to over a minute).
    torch.set_num_threads(1)
    out = Path(args.out)
    base_search = SearchConfig(rounds=args.rounds)
    lines = [f"# Swift Sampler vs uniform vs oracle (test accuracy %, mean ± std over seeds "
             f"{args.seeds}; E_o={args.rounds}, E_f=5, search cost {args.search_cost} "
             "trainings of fine-tune epochs)", "",
             "| data | noise | uniform | SS (BO-cgf) | oracle | gap closed | SS - uniform "
             "| search wall time / training | agent share / training |",
             "|---|---|---|---|---|---|---|---|---|"]
    start = time.perf_counter()
    for name in args.datasets:
        for noise in args.noise:
            acc = {"uniform": [], "swift": [], "oracle": []}
            cost, agent_cost = [], []
            for seed in args.seeds:
                run = RunConfig(dataset=name, noise=noise, seed=seed, device="cpu",
                                **RECIPES[name])
                tag = f"{name}-n{noise}-s{seed}"
                rep = _swift(run.replace(out=str(out / "bo-cgf" / tag)), base_search,
                             args.search_cost)
                acc["uniform"].append(rep["uniform"]["test_acc"])
                acc["swift"].append(rep["swift"]["test_acc"])
                acc["oracle"].append(_oracle(run.replace(out=str(out / "oracle" / tag))))
                cost.append(rep["search"]["cost_wall_trainings"])
                agent_cost.append(rep["search"]["agent_wall_trainings"])
            m = {k: statistics.mean(v) for k, v in acc.items()}
            gap = m["oracle"] - m["uniform"]
            closed = f"{100 * (m['swift'] - m['uniform']) / gap:.0f}%" if gap > 0.005 else "-"
            lines.append(f"| {name} | {noise} | {_ms(acc['uniform'])} | {_ms(acc['swift'])} | "
                         f"{_ms(acc['oracle'])} | {closed} | "
                         f"{100 * (m['swift'] - m['uniform']):+.1f} | "
                         f"{statistics.mean(cost):.1f}x | {statistics.mean(agent_cost):.1f}x |")
            print(lines[-1], flush=True)

    ablation = args.ablation_datasets if args.ablation_datasets is not None \
        else args.datasets[:1]
    if ablation:
        lines += ["", f"## Outer-loop ablation at noise {args.ablation_noise} (test accuracy "
                  "% after retraining with the top sampler; best validation accuracy of the "
                  "search)", "", "| data | agent-transform | SS test | best val (approx.) "
                  "| trials failed | search wall time / training | agent share / training |",
                  "|---|---|---|---|---|---|---|"]
    for name in ablation:
        curves = {}
        for label, (agent, transform) in ABLATION.items():
            search = dataclasses.replace(base_search, agent=agent, transform=transform)
            test, best, failed, scores, cost, agent_cost = [], [], 0, [], [], []
            for seed in args.seeds:
                run = RunConfig(dataset=name, noise=args.ablation_noise, seed=seed,
                                device="cpu", **RECIPES[name])
                tag = f"{name}-n{args.ablation_noise}-s{seed}"
                rep = _swift(run.replace(out=str(out / label / tag)), search, args.search_cost)
                test.append(rep["swift"]["test_acc"])
                best.append(rep["search"]["best_val_acc"])
                failed += rep["search"]["failed_trials"]
                cost.append(rep["search"]["cost_wall_trainings"])
                agent_cost.append(rep["search"]["agent_wall_trainings"])
                scores.append([r["score"] for r in read_jsonl(
                    out / label / tag / "search" / "trials.jsonl")])
            curves[label] = scores
            lines.append(f"| {name} | {label} | {_ms(test)} | {_ms(best)} | {failed} | "
                         f"{statistics.mean(cost):.1f}x | {statistics.mean(agent_cost):.1f}x |")
            print(lines[-1], flush=True)
        fig = search_curves_figure(curves, out / f"fig3_{name}.png")
        lines.append(f"\nFig. 3 (best validation accuracy so far, mean over seeds): {fig}")
    lines.append(f"\nTotal benchmark wall time: {time.perf_counter() - start:.0f}s")
    text = "\n".join(lines) + "\n"
    write_text(out / "table.md", text)
    print(text)


if __name__ == "__main__":
    main()

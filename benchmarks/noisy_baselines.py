"""Noisy-label baselines (issue 8), a sanity run at CPU scale.

The demo recipe (digits, 40% symmetric noise, mlp, 40 epochs, lr 0.05 cosine, batch 64,
val_fraction 0.2; ``DEMO_RUN`` of ``experiments/swift_pipeline.py``) for every method of
``sampletune.noisy`` with the same model, config and seed(s): test accuracy at the last
epoch, test accuracy at the best-validation epoch, nominal cost in trainings, wall time
relative to uniform in the same run (training time,
after an untimed warm-up run), and what each method measured. The oracle (uniform
over the clean examples, uses the noise mask) is a reference, not a method.
``small-loss-known`` and ``self-paced`` are given the true noise rate.

    .venv/bin/python benchmarks/noisy_baselines.py                   # ~1 minute, seed 0
    .venv/bin/python benchmarks/noisy_baselines.py --seeds 0 1 2 --noise 0.2
"""

from __future__ import annotations

import argparse
import statistics

import torch

from sampletune.experiments.config import RunConfig
from sampletune.experiments.setup import load_data, new_model
from sampletune.noisy import NOISY_NAMES, build_noisy
from sampletune.samplers import build_sampler
from sampletune.train import train

RECIPE = RunConfig(dataset="digits", noise=0.4, val_fraction=0.2, model="mlp", epochs=40,
                   batch_size=64, lr=0.05, lr_schedule="cosine", device="cpu")
GIVEN_RATE = ("small-loss-known", "self-paced")


def run_one(name: str, run: RunConfig) -> dict:
    data = load_data(run)
    cfg = run.train_config()
    if name == "oracle":
        res = train(new_model(run, data), data, build_sampler("oracle", data, seed=run.seed),
                    cfg, progress=False)
        final = dict(res.final, cost_trainings=1.0)
    else:
        method = build_noisy(name, data, cfg, model_fn=lambda: new_model(run, data),
                             noise_rate=run.noise if name in GIVEN_RATE else None)
        final = method.train(new_model(run, data), data, cfg, progress=False).final
    final["wall"] = final["wall_time"]  # training (+ cleanlab's folds), not data loading
    return final


def note(f: dict) -> str:
    if "kept_noisy_share" in f:
        return (f"rate used {f['noise_rate_used']:.2f}; noisy share of back-propagated "
                f"{f['kept_noisy_share']:.2f} (of forwarded {f['seen_noisy_share']:.2f})")
    if "cleanlab_removed" in f:
        return (f"removed {f['cleanlab_removed']}: precision {f['cleanlab_removed_precision']:.2f}"
                f", recall {f['cleanlab_removed_recall']:.2f}")
    if "l2rw_steps" in f:
        return f"skipped steps {f['l2rw_skipped_steps']}/{f['l2rw_steps']}"
    return ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--noise", type=float, default=RECIPE.noise)
    ap.add_argument("--methods", nargs="+", default=[*NOISY_NAMES, "oracle"])
    args = ap.parse_args()
    torch.set_num_threads(1)
    run_one("uniform", RECIPE.replace(epochs=2))  # warm-up: the first run pays for imports
    rows = {}
    for name in args.methods:
        rows[name] = [run_one(name, RECIPE.replace(seed=s, noise=args.noise))
                      for s in args.seeds]
    base = statistics.mean(f["wall"] for f in rows.get("uniform", rows[args.methods[0]]))

    def cell(values):
        m = statistics.mean(values)
        return f"{m:.4f}" + (f" ± {statistics.stdev(values):.4f}" if len(values) > 1 else "")

    print(f"digits, {args.noise:.0%} symmetric noise, mlp, 40 epochs, seeds {args.seeds}\n")
    print("| method | test acc (last epoch) | test acc (best-val epoch) | cost (trainings) "
          "| wall / uniform | notes (first seed) |")
    print("|---|---|---|---|---|---|")
    for name, fs in rows.items():
        print(f"| {name} | {cell([f['test_acc'] for f in fs])} "
              f"| {cell([f['best_test_acc'] for f in fs])} "
              f"| {statistics.mean(f['cost_trainings'] for f in fs):g} "
              f"| {statistics.mean(f['wall'] for f in fs) / base:.2f}x | {note(fs[0])} |")


if __name__ == "__main__":
    main()

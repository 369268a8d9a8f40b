"""What the Swift family can express on noisy labels: "drop the top q by loss" retrained.

For each data set and seed: a uniform training (a shuffled pass per epoch) with early
stopping, the loss of every training example under its best-validation epoch (the
features `swift search` uses), then one from-scratch training per cut ``q`` that draws
uniformly from the ``1 - q`` lowest-loss examples (the family's reference samplers).
Prints the noisy share of what each cut keeps and its test accuracy at the last and the
best-validation epoch, next to early-stopped uniform. This is the ceiling of a static cut
(no search noise): the search's pick can be compared with it.

    .venv/bin/python benchmarks/static_cut.py --datasets fashion-mnist --noise 0.4 --seeds 0

Each data set runs as in ``benchmarks/swift_noise.py`` (its model, subset and data files).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from swift_noise import run_config  # this folder is on sys.path when run as a script

from sampletune.experiments.setup import load_data, new_model
from sampletune.features import compute_features
from sampletune.samplers import ShuffleSampler, WeightedSampler
from sampletune.train import train


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["fashion-mnist"])
    ap.add_argument("--noise", type=float, default=0.4)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--cuts", type=float, nargs="+", default=[0.3, 0.4, 0.5, 0.6])
    ap.add_argument("--out", default="runs/bench/static_cut", help="where data files go")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    print("| data | seed | sampler | noisy share kept | test acc, best-val epoch | "
          "test acc, last epoch |\n|---|---|---|---|---|---|")
    for name in args.datasets:
        for seed in args.seeds:
            run = run_config(name, args.noise, seed, Path(args.out))
            data = load_data(run)
            cfg, n = run.train_config(), len(data.train)
            u = train(new_model(run, data), data, ShuffleSampler(n, seed=seed), cfg,
                      progress=False)
            print(f"| {name} | {seed} | uniform | {args.noise:.3f} | "
                  f"{u.final['best_test_acc']:.4f} | {u.final['test_acc']:.4f} |", flush=True)
            loss = compute_features(u.best_model(), data.train.x, data.train.y,
                                    progress=False)["loss"]
            rank = loss.argsort().argsort().double() / (n - 1)
            noisy = data.train.noisy.cpu().double()
            for q in args.cuts:
                keep = (rank <= 1 - q).double()
                r = train(new_model(run, data), data,
                          WeightedSampler(keep / keep.sum(), n, seed=seed), cfg, progress=False)
                print(f"| {name} | {seed} | drop top {q:g} | "
                      f"{float((keep * noisy).sum() / keep.sum()):.3f} | "
                      f"{r.final['best_test_acc']:.4f} | {r.final['test_acc']:.4f} |", flush=True)


if __name__ == "__main__":
    main()

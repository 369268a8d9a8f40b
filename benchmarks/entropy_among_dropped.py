"""Does renormed entropy tell a loss cut's dropped clean examples from its dropped noisy
ones? A lead for closing what a cut loses with hard clean examples (hard_examples.md).

For each data set and seed: w_share as ``swift search`` trains it (uniform, a shuffled pass
per epoch, the library's defaults, ``train_loss`` tracked), the features of its
best-validation model, then AUROCs against the noise mask of

- ``train_loss`` (high = noisy) and ``renormed_entropy`` (low = noisy) over the training set;
- ``renormed_entropy`` (low = noisy) among the examples "drop the top q by ``train_loss``"
  drops, for q = 0.4 and 0.5, with how many clean and noisy examples the cut drops and keeps;
- the Swift family's linear aggregate ``cdf(train_loss) + c * cdf(renormed_entropy)``
  (eq. 6) for c = -0.25, -0.5, -1 (what the family can make of the two together).

    .venv/bin/python benchmarks/entropy_among_dropped.py --datasets digits satimage --seeds 0 1

Each data set runs as in ``benchmarks/swift_noise.py`` (its model, subset and data files).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from swift_noise import run_config  # this folder is on sys.path when run as a script

from sampletune.experiments.setup import load_data, new_model
from sampletune.features import TrainLossTracker, cdf_normalise, compute_features
from sampletune.samplers import ShuffleSampler
from sampletune.swift.diagnostics import auroc
from sampletune.train import train

CUTS = (0.4, 0.5)
COEFFICIENTS = (-0.25, -0.5, -1.0)


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["digits", "satimage"])
    ap.add_argument("--noise", type=float, default=0.4)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--out", default="runs/bench/entropy_among_dropped",
                    help="where data files go")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    cut_cols = " | ".join(f"q = {q}: entropy among dropped (clean dropped / noisy kept)"
                          for q in CUTS)
    agg_cols = " | ".join(f"aggregate, c = {c}" for c in COEFFICIENTS)
    print(f"| data | seed | train_loss | low entropy | {cut_cols} | {agg_cols} |")
    print("|---|---|---|---|" + "---|" * (len(CUTS) + len(COEFFICIENTS)))
    for name in args.datasets:
        for seed in args.seeds:
            run = run_config(name, args.noise, seed, Path(args.out))
            data = load_data(run)
            n, noisy = len(data.train), data.train.noisy.cpu()
            tracker = TrainLossTracker(n, run.epochs)
            w = train(new_model(run, data), data, ShuffleSampler(n, seed=seed),
                      run.train_config(), observers=[tracker], progress=False)
            feats = compute_features(w.best_model(), data.train.x, data.train.y,
                                     progress=False)
            loss = tracker.mean().double()
            entropy = feats["renormed_entropy"]
            cells = [fmt(auroc(loss, noisy)), fmt(auroc(-entropy, noisy))]
            for q in CUTS:
                dropped = loss >= torch.quantile(loss, 1 - q)
                among = auroc(-entropy[dropped], noisy[dropped])
                cells.append(f"{fmt(among)} ({int((~noisy[dropped]).sum())} / "
                             f"{int(noisy[~dropped].sum())})")
            for c in COEFFICIENTS:  # eq. 6 on eq. 7's cdfs, as the family aggregates
                cells.append(fmt(auroc(cdf_normalise(loss) + c * cdf_normalise(entropy),
                                       noisy)))
            print(f"| {name} | {seed} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()

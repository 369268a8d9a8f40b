"""Which per-example score makes the best static cut on noisy labels (issue 8).

For each data set and seed: one uniform training (a shuffled pass per epoch, the library's
defaults) that records every example's training loss; then the scores ``loss@best`` (the
loss under the best-validation model, what `swift search` used until round 2),
``mean-loss`` (the mean training loss over epochs 0..best) and ``train_loss`` (the
library's feature: over the first ``2 (best + 1)`` epochs, ``TrainLossTracker``), each ranked
over the whole set or, with the suffix ``/class``, within each labelled class; for each
cut ``q`` a from-scratch training that draws uniformly from the ``1 - q`` lowest-scoring
examples. Prints the noisy share kept and the test accuracy at the best-validation epoch.

    .venv/bin/python benchmarks/feature_cuts.py --datasets digits --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from loss_statistics import EpochLosses  # this folder is on sys.path when run as a script
from swift_noise import run_config

from sampletune.experiments.setup import load_data, new_model
from sampletune.features import TrainLossTracker, compute_features
from sampletune.samplers import ShuffleSampler, WeightedSampler
from sampletune.swift.diagnostics import auroc
from sampletune.train import train


def ranks(score: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """Rank in [0, 1] of each score, over the whole set or within its labelled class."""
    out = torch.empty_like(score, dtype=torch.float64)
    groups = [torch.arange(len(score))] if labels is None else \
        [torch.nonzero(labels == c).flatten() for c in labels.unique()]
    for idx in groups:
        out[idx] = score[idx].argsort().argsort().double() / max(len(idx) - 1, 1)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["digits"])
    ap.add_argument("--noise", type=float, default=0.4)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--cuts", type=float, nargs="+", default=[0.3, 0.4, 0.5])
    ap.add_argument("--scores", nargs="+", default=["loss@best", "train_loss"],
                    help="loss@best, mean-loss, train_loss, each optionally with /class")
    ap.add_argument("--out", default="runs/bench/feature_cuts", help="where data files go")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    print("| data | seed | score | AUROC | cut | noisy share kept | test acc (best val) |\n"
          "|---|---|---|---|---|---|---|")
    for name in args.datasets:
        for seed in args.seeds:
            run = run_config(name, args.noise, seed, Path(args.out))
            data = load_data(run)
            cfg, n = run.train_config(), len(data.train)
            rec, tracker = EpochLosses(n), TrainLossTracker(n, cfg.epochs)
            t0 = time.perf_counter()
            u = train(new_model(run, data), data, ShuffleSampler(n, seed=seed), cfg,
                      observers=[rec, tracker], progress=False)
            unit = time.perf_counter() - t0
            best = u.final["best_epoch"]
            noisy = data.train.noisy.cpu()
            y = data.train.y.cpu()
            print(f"| {name} | {seed} | uniform (ES) | - | - | {args.noise:.3f} | "
                  f"{u.final['best_test_acc']:.4f} (last {u.final['test_acc']:.4f}, "
                  f"best epoch {best}, {unit:.1f}s) |", flush=True)
            base = {"loss@best": compute_features(u.best_model(), data.train.x, data.train.y,
                                                  progress=False)["loss"],
                    "mean-loss": torch.stack([rec.per_epoch[e] for e in range(best + 1)]
                                             ).mean(0),
                    "train_loss": tracker.mean()}
            for sname in args.scores:
                key, per_class = sname.split("/")[0], sname.endswith("/class")
                r = ranks(base[key], y if per_class else None)
                auc = auroc(r, noisy)
                for q in args.cuts:
                    keep = (r <= 1 - q).double()
                    res = train(new_model(run, data), data,
                                WeightedSampler(keep / keep.sum(), n, seed=seed), cfg,
                                progress=False)
                    print(f"| {name} | {seed} | {sname} | {auc:.3f} | {q:g} | "
                          f"{float((keep * noisy.double()).sum() / keep.sum()):.3f} | "
                          f"{res.final['best_test_acc']:.4f} |", flush=True)


if __name__ == "__main__":
    main()

"""Which per-example loss flags noisy labels best: the early-stopped model's, or training
losses averaged over epochs (a lead for the Swift features, issue 8).

For each data set and seed: one uniform training (a shuffled pass per epoch, the library's
defaults) that records every example's training loss each epoch; then the AUROC against
the noise mask of (a) the loss under the best-validation epoch's model, (b) the loss under
the last epoch's model, and (c) the mean training loss over epochs 0..k for k = the best
epoch, twice it (``2 b + 1``: the ``train_loss`` feature's window), the same with an earlier
version's floor of a quarter of the schedule, and all epochs.

    .venv/bin/python benchmarks/loss_statistics.py --datasets fashion-mnist digits --seeds 0

Each data set runs as in ``benchmarks/swift_noise.py`` (its model, subset and data files).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
from swift_noise import run_config  # this folder is on sys.path when run as a script

from sampletune.experiments.setup import load_data, new_model
from sampletune.features import compute_features
from sampletune.samplers import ShuffleSampler
from sampletune.swift.diagnostics import auroc
from sampletune.train import train


class EpochLosses:
    """Observer: the training loss of every example, summed per epoch ``{epoch: (n,)}``."""

    def __init__(self, n: int):
        self.n, self.per_epoch = n, {}

    def on_batch(self, report) -> None:
        total = self.per_epoch.setdefault(report.epoch, torch.zeros(self.n, dtype=torch.float64))
        total.index_add_(0, report.indices.cpu(), report.losses.detach().double().cpu())


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["fashion-mnist", "digits"])
    ap.add_argument("--noise", type=float, default=0.4)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--out", default="runs/bench/loss_statistics", help="where data files go")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    print("| data | seed | best epoch | loss, best-val model | loss, last model | mean train "
          "loss to best | to 2x best | to 2x best, at least a quarter | all epochs |\n"
          "|---|---|---|---|---|---|---|---|---|")
    for name in args.datasets:
        for seed in args.seeds:
            run = run_config(name, args.noise, seed, Path(args.out))
            data = load_data(run)
            n, noisy = len(data.train), data.train.noisy.cpu()
            rec = EpochLosses(n)
            u = train(new_model(run, data), data, ShuffleSampler(n, seed=seed),
                      run.train_config(), observers=[rec], progress=False)
            best = u.final["best_epoch"]
            model_aucs = [auroc(compute_features(m, data.train.x, data.train.y,
                                                 progress=False)["loss"], noisy)
                          for m in (u.best_model(), u.model)]
            final = max(rec.per_epoch)
            twice = min(2 * best + 1, final)
            floor = min(max(twice, math.ceil((final + 1) / 4) - 1), final)
            mean_aucs = [auroc(torch.stack([rec.per_epoch[e] for e in range(last + 1)]).mean(0),
                               noisy)
                         for last in (best, twice, floor, final)]
            print(f"| {name} | {seed} | {best} | "
                  + " | ".join(f"{a:.3f}" for a in model_aucs + mean_aucs) + " |", flush=True)


if __name__ == "__main__":
    main()

"""Which per-example loss flags noisy labels best: the early-stopped model's, or training
losses averaged over epochs (a lead for the Swift features, issue 8).

For each data set and seed: one uniform training (a shuffled pass per epoch, the library's
defaults) that records every example's training loss each epoch; then the AUROC against
the noise mask of (a) the loss under the best-validation epoch's model, (b) the loss under
the last epoch's model, and (c) the mean training loss over epochs 0..k for k = the best
epoch, twice it (``2 b + 1``: the ``train_loss`` feature's window), the same with an earlier
version's floor of a quarter of the schedule, and all epochs; and (d) the mean of (a)'s and
the window's empirical CDFs (eq. 7), an equal-weight blend of the two. With ``--folds K``, also (e)
the out-of-fold loss: each example's loss under the best-validation model of a training on
the other ``K - 1`` folds (cleanlab's predicted probabilities), with the folds trained the
full schedule and, cheaper, only the ``train_loss`` window's ``2 (b + 1)`` epochs.

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
from sampletune.features import cdf_normalise, compute_features
from sampletune.noisy.cleanlab_filter import out_of_fold_probs
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
    ap.add_argument("--folds", type=int, default=0,
                    help="K > 1 adds the out-of-fold loss columns (K fold trainings each)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    oof = args.folds > 1
    print("| data | seed | best epoch | loss, best-val model | loss, last model | mean train "
          "loss to best | to 2x best | to 2x best, at least a quarter | all epochs | "
          "blend of best-val and 2x best |"
          + (" out-of-fold, full | out-of-fold, 2(b+1) epochs |" if oof else "") + "\n"
          "|---|---|---|---|---|---|---|---|---|---|" + ("---|---|" if oof else ""))
    for name in args.datasets:
        for seed in args.seeds:
            run = run_config(name, args.noise, seed, Path(args.out))
            data = load_data(run)
            n, noisy = len(data.train), data.train.noisy.cpu()
            rec = EpochLosses(n)
            u = train(new_model(run, data), data, ShuffleSampler(n, seed=seed),
                      run.train_config(), observers=[rec], progress=False)
            best = u.final["best_epoch"]
            losses = [compute_features(m, data.train.x, data.train.y, progress=False)["loss"]
                      for m in (u.best_model(), u.model)]
            final = max(rec.per_epoch)
            twice = min(2 * best + 1, final)
            floor = min(max(twice, math.ceil((final + 1) / 4) - 1), final)
            means = [torch.stack([rec.per_epoch[e] for e in range(last + 1)]).mean(0)
                     for last in (best, twice, floor, final)]
            blend = (cdf_normalise(losses[0]) + cdf_normalise(means[1])) / 2
            model_aucs = [auroc(v, noisy) for v in losses]
            mean_aucs = [auroc(v, noisy) for v in [*means, blend]]
            oof_aucs = [_oof_auroc(run, data, folds=args.folds, epochs=e)
                        for e in (None, 2 * (best + 1))] if oof else []
            print(f"| {name} | {seed} | {best} | "
                  + " | ".join(f"{a:.3f}" for a in model_aucs + mean_aucs + oof_aucs) + " |",
                  flush=True)


def _oof_auroc(run, data, *, folds: int, epochs: int | None) -> float:
    """AUROC against the noise mask of the out-of-fold loss ``-log p_hat[i, y_i]``."""
    probs, _ = out_of_fold_probs(data, run.train_config(), lambda: new_model(run, data),
                                 folds, epochs=epochs)
    picked = probs.gather(1, data.train.y.cpu().long().unsqueeze(1)).squeeze(1)
    return auroc(-picked.clamp_min(1e-12).log(), data.train.noisy.cpu())


if __name__ == "__main__":
    main()

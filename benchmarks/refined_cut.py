"""Does re-scoring the cut on the Swift model's own losses help, and when (issue 8, round 5)?

For each data set and seed at ``--noise`` symmetric noise, with the library's defaults (as
in ``swift_noise.py``): one uniform training that records ``train_loss`` (w_share's
feature), the noisy share ``q`` its two-component mixture estimates, then from-scratch
trainings that draw ``N`` examples an epoch (with replacement) from:

- ``oracle``: the clean examples (uses the noise mask);
- ``cut at q, round 1``: "drop the top q" by w_share's ``train_loss`` (the pipeline's estimated
  cut);
- ``cut at q, round k``: "drop the top q" by the loss of round ``k - 1``'s model at its
  best-validation epoch (eval mode), on every training example
  (:func:`sampletune.swift.reference.rescored_cut`): the pipeline's refinement is round 2.

Test accuracy (%) of the last epoch, mean ± sample std over the seeds; the noisy share of
the sampling mass; the share of the training set each round's cut moves against the
previous round's (``swapped``); the AUROC of the loss it cuts on against the noise mask;
and, on round 1, the share of examples the mixture on w_share's loss leaves undecided
(``ambiguous``: the pipeline re-scores and retrains round 2 where it is at least
``MIN_AMBIGUOUS`` and a Swift model was trained).

``--variants`` adds other second rounds, each from round 1's model or w_share's loss
(round 6, aimed at the tables, where a cut closes little of a small gap):

- ``round 2, cut at its own q``: "drop the top q2" by round 1's model's loss, ``q2`` the
  noisy share the mixture estimates on that loss (instead of w_share's ``q``);
- ``round 2, mixture posterior``: each example weighted by the clean posterior of that
  mixture (a soft cut, as ``hard_examples.py``'s on w_share's loss);
- ``cut at q within each class``: "drop the top q" by w_share's loss inside each labelled
  class, so hard classes lose no more than easy ones;
- ``keep where round 1 agrees``: the examples whose label round 1's model predicts.

    .venv/bin/python benchmarks/refined_cut.py --datasets digits mnist1d
    .venv/bin/python benchmarks/refined_cut.py --rounds 2 --variants --datasets digits \
        mnist1d mnist-5k image-segment satimage breast-cancer --out runs/bench/cut_variants
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch
from swift_noise import run_config  # this folder is on sys.path when run as a script

from sampletune.experiments.setup import load_data, new_model
from sampletune.features import TrainLossTracker
from sampletune.noisy.estimate import noise_mixture, noisy_posterior
from sampletune.samplers import ShuffleSampler, WeightedSampler
from sampletune.swift.diagnostics import auroc
from sampletune.swift.family import SwiftFamily
from sampletune.swift.reference import drop_top_loss_params, rescored_cut
from sampletune.train import train
from sampletune.train.evaluation import example_losses

SEGMENTS = 4


def per_class_cut(loss: torch.Tensor, labels: torch.Tensor, q: float) -> torch.Tensor:
    """``(N,)`` float64 weights: 0 on the ``round(q * n_c)`` highest losses of each labelled
    class ``c`` (``n_c`` examples), 1 elsewhere."""
    keep = torch.ones(len(loss), dtype=torch.float64)
    for c in labels.unique():
        idx = torch.nonzero(labels == c).flatten()
        keep[idx[loss[idx].argsort(descending=True)[:round(q * len(idx))]]] = 0.0
    return keep


def one_seed(name: str, seed: int, noise: float, rounds: int, out: Path,
             variants: bool = False) -> list[tuple[str, dict[str, float]]]:
    """``[(row, {"mass", "test"[, "auroc", "swapped", "ambiguous"]})]`` of one data set and
    seed."""
    run = run_config(name, noise, seed, out)
    data = load_data(run)
    cfg, n = run.train_config(), len(data.train)
    noisy = data.train.noisy.cpu()

    def fit(weights: torch.Tensor):
        return train(new_model(run, data), data,
                     WeightedSampler(weights / weights.sum(), n, seed=seed), cfg, progress=False)

    tracker = TrainLossTracker(n, cfg.epochs)
    u = train(new_model(run, data), data, ShuffleSampler(n, seed=seed), cfg,
              observers=[tracker], progress=False)
    rows = [("uniform", {"mass": float(noisy.double().mean()), "test": u.final["test_acc"]}),
            ("oracle", {"mass": 0.0, "test": fit((~noisy).double()).final["test_acc"]})]
    loss = tracker.mean().double()
    mixture = noise_mixture(loss, seed=seed)
    q = mixture.rate
    family = SwiftFamily({"loss": loss}, ("loss",), "cdf")
    params = drop_top_loss_params(family, q, SEGMENTS)
    swapped: dict[str, float] = {"ambiguous": mixture.ambiguous}
    for k in range(1, rounds + 1):
        probs = family.probabilities(params)
        result = fit(probs)
        rows.append((f"cut at q, round {k}", {
            "mass": float((probs * noisy.double()).sum()), "test": result.final["test_acc"],
            "auroc": auroc(family.reference["loss"], noisy), **swapped}))
        if k < rounds or (k == 1 and variants):  # this round's model scores every example
            new, agrees = example_losses(result.best_model(), data.train)
            rescored = SwiftFamily({"loss": new.double().cpu()}, ("loss",), "cdf")
        if k == 1 and variants:
            rows += second_rounds(rescored, agrees.cpu(), data, family, q, seed, fit)
        if k < rounds:
            params, share = rescored_cut(family, rescored, q, SEGMENTS)
            family, swapped = rescored, {"swapped": share}
    print(f"{name} seed {seed}: q = {q:.3f}, " + ", ".join(
        f"{row} {100 * r['test']:.1f}" for row, r in rows), flush=True)
    return rows


def second_rounds(rescored: SwiftFamily, agrees: torch.Tensor, data, family: SwiftFamily,
                  q: float, seed: int, fit) -> list[tuple[str, dict[str, float]]]:
    """The ``--variants`` rows, from round 1's model (its losses in ``rescored``, ``agrees``
    ``(N,)`` whether it predicts each label) and w_share's ``family``; ``fit`` trains from
    scratch on ``(N,)`` weights."""
    noisy = data.train.noisy.cpu()
    new = rescored.reference["loss"]
    q2 = noise_mixture(new, seed=seed).rate
    weights = {
        "round 2, cut at its own q": rescored.probabilities(
            drop_top_loss_params(rescored, q2, SEGMENTS)),
        "round 2, mixture posterior": 1.0 - noisy_posterior(new, seed=seed),
        "cut at q within each class": per_class_cut(family.reference["loss"],
                                                    data.train.y.cpu(), q),
        "keep where round 1 agrees": agrees.double()}
    rows = []
    for row, w in weights.items():
        w = w / w.sum()
        rows.append((row, {"mass": float((w * noisy.double()).sum()),
                           "test": fit(w).final["test_acc"]}))
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["digits", "mnist1d"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--noise", type=float, default=0.4)
    ap.add_argument("--rounds", type=int, default=3, help="cut rounds (1: w_share's only)")
    ap.add_argument("--variants", action="store_true", help="add the other second rounds")
    ap.add_argument("--out", default="runs/bench/refined_cut", help="where data files go")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    lines = ["| data | training | noisy share of the mass | ambiguous | swapped | loss AUROC | "
             "test acc, last epoch |", "|---|---|---|---|---|---|---|"]
    for name in args.datasets:
        table: dict[str, dict[str, list[float]]] = {}
        for seed in args.seeds:
            for row, values in one_seed(name, seed, args.noise, args.rounds, Path(args.out),
                                        args.variants):
                for k, v in values.items():
                    table.setdefault(row, {}).setdefault(k, []).append(v)
        for row, r in table.items():
            sd = statistics.stdev(r["test"]) if len(r["test"]) > 1 else 0.0
            cells = [f"{statistics.mean(r[k]):.3f}" if k in r else "-"
                     for k in ("mass", "ambiguous", "swapped", "auroc")]
            lines.append(f"| {name} | {row} | " + " | ".join(cells) +
                         f" | {100 * statistics.mean(r['test']):.1f} ± {100 * sd:.1f} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

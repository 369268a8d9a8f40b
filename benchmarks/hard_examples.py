"""Why a loss cut closes most of the noisy-label gap on some data sets and none on others
(issue 8, rounds 4 and 7).

For each data set and seed at 40% symmetric noise: one uniform training (the library's
defaults, as in ``swift_noise.py``) that records the ``train_loss`` feature, then
from-scratch trainings that draw uniformly (with replacement, ``N`` draws an epoch) from:

- ``oracle``: the clean examples (uses the noise mask);
- ``oracle - hardest clean``: the clean examples less the ``--hardest`` share of them with
  the highest ``train_loss`` (uses the noise mask): what a perfect noise detector loses
  if it also drops the hard clean examples a loss cut drops;
- ``cut at q``: "drop the top q by train_loss" at the estimated noisy share ``q`` (what
  ``swift search`` retrains when its fine-tunes fall back to uniform) and at ``0.75 q`` and
  ``1.25 q`` (round 12);
- ``cut at q, sparing second choices``: the cut, except the examples whose label is
  w_share's (best-validation model's) second choice, which a hard clean example's label
  often is and a randomly flipped label rarely (round 11);
- ``re-scored cut at q`` / ``at its own q``: the training set scored again by the
  ``cut at q`` model (best-validation epoch), and "drop the top q" on those losses at the
  first estimate ``q`` (the library's refinement) or at the mixture's estimate on the new
  losses (round 11);
- ``cut at q within each class``: the top ``q`` share by ``train_loss`` dropped within each
  labelled class, so the cut cannot empty a hard class (round 11); ``cut at each class's
  own q``: the same with each class's share estimated by a mixture on its own losses;
- ``cut at q, the rest at weight r``: the examples the cut drops drawn at ``r`` times the
  rate of the rest, so the hardest clean ones still count (round 11);
- ``mixture posterior``: each example drawn in proportion to the posterior of the
  low-loss component of the two-component mixture behind the estimate (a soft cut);
- the cut's two errors apart (round 7; use the noise mask): ``oracle - clean the cut
  drops`` and ``oracle + noisy the cut keeps``;
- ``entropy within the top m q``: as many examples dropped as ``cut at q``, chosen as the
  ones with the lowest ``renormed_entropy`` (w_share's best-validation model) among the top
  ``m q`` by ``train_loss``, for m = 1.25 and 1.5 (a lead from
  ``entropy_among_dropped.md``: among what a loss cut drops, a noisy label's prediction
  leaves little entropy outside the labelled class, a hard clean example's more).

Test accuracy (%) of the last epoch, mean ± sample std over the seeds, and the noisy share
of the sampling mass.

    .venv/bin/python benchmarks/hard_examples.py --datasets image-segment mnist-5k
    .venv/bin/python benchmarks/hard_examples.py --datasets digits satimage magic
    .venv/bin/python benchmarks/hard_examples.py --datasets pendigits satimage \
        --rows oracle "cut at q" "entropy within the top 1.25 q" "entropy within the top 1.5 q"
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch
from swift_noise import run_config  # this folder is on sys.path when run as a script

from sampletune.experiments.setup import load_data, new_model
from sampletune.features import TrainLossTracker, compute_features
from sampletune.noisy.cleanlab_filter import predict_proba
from sampletune.noisy.estimate import estimate_noise_rate, noisy_posterior
from sampletune.samplers import ShuffleSampler, WeightedSampler
from sampletune.train import train

MARGINS = (1.25, 1.5)  # the entropy rows' candidate shares, in multiples of q
REST_WEIGHTS = (0.1, 0.25)  # a soft cut's weight beyond the cut (round 11)
CUT_FACTORS = (0.75, 1.25)  # other cut points, in multiples of q (1.25: round 12)


def entropy_within(loss: torch.Tensor, entropy: torch.Tensor, q: float,
                   margin: float) -> torch.Tensor:
    """``(N,)`` float64 weights: 0 on the ``round(q N)`` examples of lowest ``entropy`` among
    the top ``min(margin q, 1)`` share by ``loss``, 1 elsewhere."""
    n = len(loss)
    candidates = loss.argsort(descending=True)[:round(min(margin * q, 1.0) * n)]
    dropped = candidates[entropy[candidates].argsort()[:round(q * n)]]
    w = torch.ones(n, dtype=torch.float64)
    w[dropped] = 0.0
    return w


def cut_within_classes(loss: torch.Tensor, labels: torch.Tensor, q: float | None,
                       seed: int) -> torch.Tensor:
    """``(N,)`` float64 weights: 0 on the ``round(q_k n_k)`` examples of highest ``loss``
    among the ``n_k`` labelled ``k``, for each class ``k``; 1 elsewhere. ``q_k = q``, or
    where ``q`` is ``None`` the class's own mixture estimate on its losses."""
    w = torch.ones(len(loss), dtype=torch.float64)
    for k in labels.unique():
        idx = torch.nonzero(labels == k).flatten()
        q_k = estimate_noise_rate(loss[idx], seed=seed) if q is None else q
        w[idx[loss[idx].argsort(descending=True)[:round(q_k * len(idx))]]] = 0.0
    return w


def drop_top(loss: torch.Tensor, q: float) -> torch.Tensor:
    """``(N,)`` float64 weights of "drop the top q by ``loss``": 0 on the examples whose rank
    (0 to 1, by ascending loss) is above ``1 - q``, 1 elsewhere."""
    rank = torch.empty(len(loss), dtype=torch.float64)
    rank[loss.argsort()] = torch.arange(len(loss), dtype=torch.float64) / (len(loss) - 1)
    return (rank <= 1 - q).double()


def weightings(loss: torch.Tensor, q: float, entropy: torch.Tensor, second: torch.Tensor,
               labels: torch.Tensor, noisy: torch.Tensor, hardest: float,
               seed: int) -> dict[str, torch.Tensor]:
    """The ``(N,)`` float64 sampling weights of each row, from ``train_loss``, its estimated
    noisy share ``q``, w_share's ``renormed_entropy``, whether the label is w_share's second
    choice (``second``, bool), the given labels and the mask."""
    clean = (~noisy).double()
    trimmed = clean.clone()
    idx = torch.nonzero(~noisy).flatten()
    trimmed[idx[loss[idx].argsort(descending=True)[:int(hardest * len(idx))]]] = 0.0
    cut = drop_top(loss, q)
    return {"oracle": clean, f"oracle - hardest {hardest:g} of clean": trimmed,
            "cut at q": cut,
            **{f"cut at {m:g} q": drop_top(loss, min(m * q, 1.0)) for m in CUT_FACTORS},
            **{f"cut at q, the rest at weight {r:g}": cut + r * (1.0 - cut)
               for r in REST_WEIGHTS},
            "cut at q, sparing second choices": torch.maximum(cut, second.double()),
            "cut at q within each class": cut_within_classes(loss, labels, q, seed),
            "cut at each class's own q": cut_within_classes(loss, labels, None, seed),
            "mixture posterior": 1.0 - noisy_posterior(loss, seed=seed),
            "oracle - clean the cut drops": clean * cut,
            "oracle + noisy the cut keeps": torch.maximum(clean, cut),
            **{f"entropy within the top {m:g} q": entropy_within(loss, entropy, q, m)
               for m in MARGINS}}


RESCORED = ("re-scored cut at q", "re-scored cut at its own q")


def rescored(model, data, q: float, seed: int) -> dict[str, torch.Tensor]:
    """The rows of :data:`RESCORED`: the training set scored by ``model`` (the cut's
    best-validation model, eval mode), then "drop the top q" on its losses at ``q``, the
    share estimated on ``train_loss`` (what the library's refinement retrains), or at the
    share the mixture estimates on the new losses."""
    loss = compute_features(model, data.train.x, data.train.y, progress=False)["loss"]
    return {RESCORED[0]: drop_top(loss, q),
            RESCORED[1]: (noisy_posterior(loss, seed=seed) <= 0.5).double()}


def _train_on(run, data, w: torch.Tensor, seed: int):
    """A from-scratch training drawing ``N`` examples an epoch in proportion to ``w``."""
    return train(new_model(run, data), data,
                 WeightedSampler(w / w.sum(), len(data.train), seed=seed),
                 run.train_config(), progress=False)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["image-segment", "mnist-5k"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--noise", type=float, default=0.4)
    ap.add_argument("--hardest", type=float, default=0.1,
                    help="share of the clean examples the second row drops")
    ap.add_argument("--rows", nargs="+", default=None,
                    help="the rows to train (default: all; uniform always runs)")
    ap.add_argument("--out", default="runs/bench/hard_examples", help="where data files go")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    print("| data | training | noisy share of the mass | test acc, last epoch |\n"
          "|---|---|---|---|")
    for name in args.datasets:
        acc: dict[str, list[float]] = {}
        mass: dict[str, list[float]] = {}
        for seed in args.seeds:
            run = run_config(name, args.noise, seed, Path(args.out))
            data = load_data(run)
            cfg, n = run.train_config(), len(data.train)
            tracker = TrainLossTracker(n, cfg.epochs)
            u = train(new_model(run, data), data, ShuffleSampler(n, seed=seed), cfg,
                      observers=[tracker], progress=False)
            noisy = data.train.noisy.cpu()
            acc.setdefault("uniform", []).append(u.final["test_acc"])
            mass.setdefault("uniform", []).append(float(noisy.double().mean()))
            entropy = compute_features(u.best_model(), data.train.x, data.train.y,
                                       progress=False)["renormed_entropy"]
            ranked = predict_proba(u.best_model(), data.train.x).argsort(1, descending=True)
            second = ranked[:, 1] == data.train.y.cpu()
            loss = tracker.mean().double()
            q = estimate_noise_rate(loss, seed=seed)
            rows = weightings(loss, q, entropy, second, data.train.y.cpu(), noisy,
                              args.hardest, seed)
            allowed = [*rows, *RESCORED]
            if args.rows is not None and not set(args.rows) <= set(allowed):
                ap.error(f"--rows: unknown {sorted(set(args.rows) - set(allowed))}; "
                         f"allowed: {', '.join(allowed)}")
            wanted = allowed if args.rows is None else args.rows
            models, again = {}, None
            for row, w in [*rows.items(), *[(r, None) for r in RESCORED]]:
                if row not in wanted:
                    continue
                if w is None:  # a re-scored cut: the losses of the cut's model
                    if "cut at q" not in models:
                        models["cut at q"] = _train_on(run, data, rows["cut at q"], seed)
                    again = again or rescored(models["cut at q"].best_model(), data, q,
                                              seed)
                    w = again[row]
                models[row] = r = _train_on(run, data, w, seed)
                acc.setdefault(row, []).append(r.final["test_acc"])
                mass.setdefault(row, []).append(float((w * noisy.double()).sum() / w.sum()))
        for row in acc:
            sd = statistics.stdev(acc[row]) if len(acc[row]) > 1 else 0.0
            print(f"| {name} | {row} | {statistics.mean(mass[row]):.3f} | "
                  f"{100 * statistics.mean(acc[row]):.1f} ± {100 * sd:.1f} |", flush=True)


if __name__ == "__main__":
    main()

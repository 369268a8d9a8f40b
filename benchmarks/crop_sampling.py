"""Crop-level sampling (swift-sampler.txt section 4.2) against whole-image Swift sampling and
uniform, on a Fashion-MNIST subset with label noise and the zoo's ``smallcnn``.

Per seed, every arm with the standard augmentation (4-pixel padding, random crop, flip) and
the library's training defaults otherwise (batch 128, lr 0.1, step schedule, clean 10%
validation split):

1. ``uniform``: a shuffled pass per epoch. Its best-validation epoch is ``w_share``, as in
   ``swift search``: the training set's whole-image features (loss, renormed entropy) come
   from it, and its weights are saved beside them.
2. One sampler file (per seed) for both Swift arms: the family's reference sampler "drop
   the top q by loss" (``swift.reference``), without a search, to keep the CPU cost down (on
   Fashion-MNIST with an mlp, drop-top-0.4 retrains to the level of the search's pick:
   ``benchmarks/results/static_cut.md``).
3. ``whole-image``: images drawn by ``tau`` (``--sampler swift``), then cropped.
4. ``crop-level``: images drawn uniformly, two random crops per needed crop scored by
   ``w_share`` and half of them kept by ``tau`` (``--crop-sampling``).

Prints test accuracy (%) at the last and the best-validation epoch, the noisy-label share of
what was trained on, how many examples (crops) were trained on per epoch as a share of the
training set (crop-level batches are smaller when fewer than B crops have weight > 0), and
the training's CPU time (this process's, one torch thread: wall time on a shared machine
says more about the neighbours) relative to uniform's; each mean ± sample std over seeds.
Test accuracy is computed once per model at the end (the validation split picks the epoch).

    .venv/bin/python benchmarks/crop_sampling.py --seeds 0 1 2

Each arm's result is cached under ``--out`` (rerun to resume).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from sampletune.augment import build_augment
from sampletune.experiments.config import RunConfig
from sampletune.experiments.setup import load_data, new_model
from sampletune.features import FeatureKey, compute_features, save_features
from sampletune.io import read_json, save_torch, write_json
from sampletune.samplers import ShuffleSampler, build_sampler
from sampletune.swift.crops import crop_sampling
from sampletune.swift.family import SwiftFamily
from sampletune.swift.reference import drop_top_loss_params
from sampletune.swift.sampler_file import SamplerSpec, save_sampler
from sampletune.train import BatchReport, evaluate, train

ARMS = ("uniform", "whole-image", "crop-level")


class NoisyShare:
    """Observer: the share of trained examples (crops) whose label is noisy."""

    def __init__(self, noisy: torch.Tensor):
        self.noisy, self.seen, self.total = noisy, 0, 0

    def on_batch(self, report: BatchReport) -> None:
        self.seen += int(self.noisy[report.indices.cpu()].sum())
        self.total += len(report.indices)


def run_arm(arm: str, run: RunConfig, out: Path, drop: float) -> dict:
    """Train one arm (``uniform`` first: it writes the drop-top-``drop`` sampler file that
    the Swift arms read)."""
    done = out / arm / "result.json"
    if done.exists():
        return read_json(done)
    data = load_data(run)
    cfg, n = run.train_config(), len(data.train)
    sampler_file = out / "sampler" / "sampler.json"
    augment, _ = build_augment("standard", data)
    selector = None
    if arm == "uniform":
        sampler = ShuffleSampler(n, seed=run.seed)
    elif arm == "whole-image":
        sampler = build_sampler("swift", data, seed=run.seed, weights_path=sampler_file)
    else:
        sampler = ShuffleSampler(n, seed=run.seed)
        selector, augment = crop_sampling(data, sampler_file, seed=run.seed), None
    share = NoisyShare(data.train.noisy.cpu())
    start = time.process_time()  # this process's CPU time: the machine is shared
    res = train(new_model(run, data), data, sampler, cfg, augment=augment, selector=selector,
                observers=[share], progress=False, evaluate_test=False)
    seconds = time.process_time() - start
    result = {"test_last": evaluate(res.model, data.test)["acc"],
              "test_best": evaluate(res.best_model(), data.test)["acc"],
              "best_epoch": res.final["best_epoch"], "noisy_share": share.seen / share.total,
              "trained_share": share.total / (cfg.epochs * n), "seconds": seconds}
    if arm == "uniform":
        write_sampler(res.best_model(), run, data, out / "sampler", drop)
    write_json(done, result)
    return result


def write_sampler(w_share, run: RunConfig, data, folder: Path, drop: float) -> None:
    """Features of ``w_share`` on the training set, its weights, and the sampler file."""
    feats = compute_features(w_share, data.train.x, data.train.y, progress=False)
    feat = save_features(folder / "features.npz", feats,
                         FeatureKey(f"fashion-mnist-sym{run.noise}", "train", run.seed,
                                    run.model))
    save_torch(folder / "features.model.pt", w_share.state_dict())
    family = SwiftFamily(feats)
    params = drop_top_loss_params(family, drop, 4)
    save_sampler(folder / "sampler.json", SamplerSpec(
        params, family.names, family.transform, str(feat), len(data.train),
        split=data.train.fingerprint(), feature_model=str(folder / "features.model.pt"),
        feature_arch=run.model))


def _ms(xs: list[float], scale: float = 100.0, digits: int = 1) -> str:
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{scale * statistics.mean(xs):.{digits}f} ± {scale * sd:.{digits}f}"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--subset", type=int, default=3000, help="training images (incl. val)")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--noise", type=float, default=0.4)
    ap.add_argument("--drop", type=float, default=0.4, help="q of the drop-top-q sampler")
    ap.add_argument("--out", default="runs/bench/crop_sampling")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    results = {arm: [] for arm in ARMS}
    for seed in args.seeds:
        run = RunConfig(dataset="fashion-mnist", model="smallcnn", train_subset=args.subset,
                        noise=args.noise, epochs=args.epochs, seed=seed, device="cpu")
        out = Path(args.out) / f"n{args.noise}-q{args.drop}-sub{args.subset}-e{args.epochs}" \
            / f"seed{seed}"
        for arm in ARMS:
            results[arm].append(run_arm(arm, run, out, args.drop))
            print(f"seed {seed} {arm}: {results[arm][-1]}", flush=True)
    unit = [r["seconds"] for r in results["uniform"]]
    print(f"\nFashion-MNIST, {args.subset} images ({args.subset - args.subset // 10} train), "
          f"{args.noise:g} symmetric noise, smallcnn, {args.epochs} epochs, drop-top-"
          f"{args.drop:g} sampler, seeds {args.seeds}: mean ± sample std\n")
    print("| arm | test acc (last epoch) | test acc (best-val epoch) | noisy share trained | "
          "trained / N per epoch | CPU time / uniform |\n|---|---|---|---|---|---|")
    for arm in ARMS:
        rs = results[arm]
        print(f"| {arm} | {_ms([r['test_last'] for r in rs])} | "
              f"{_ms([r['test_best'] for r in rs])} | "
              f"{_ms([r['noisy_share'] for r in rs], 1.0, 3)} | "
              f"{_ms([r['trained_share'] for r in rs], 1.0, 3)} | "
              f"{_ms([r['seconds'] / u for r, u in zip(rs, unit, strict=True)], 1.0, 2)}x |")


if __name__ == "__main__":
    main()

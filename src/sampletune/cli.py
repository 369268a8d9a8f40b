"""The ``sampletune`` command line.

Every command validates its input before any work; a bad value prints one line naming
the field and what is allowed, and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sampletune.errors import ConfigError
from sampletune.train.config import LR_SCHEDULES


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """Flags that map onto :class:`~sampletune.experiments.RunConfig` fields (defaults come
    from the config class or ``--config``, so every flag defaults to ``None`` here)."""
    from sampletune.data.noise import NOISE_TYPES

    p.add_argument("--config", help="YAML file with the same fields; flags override it")
    g = p.add_argument_group("data")
    g.add_argument("--dataset", help="digits (default), mnist1d, fashion-mnist, cifar10, "
                   "cifar100, svhn, npz, imagefolder")
    g.add_argument("--data-dir", help="folder (or .npz file) holding the data set")
    g.add_argument("--download", action="store_true", default=None,
                   help="download cifar/svhn into --data-dir (needs internet)")
    g.add_argument("--noise", type=float, help="label noise rate in [0, 1) (default 0.4)")
    g.add_argument("--noise-type", choices=NOISE_TYPES)
    g.add_argument("--val-noise", action="store_true", default=None,
                   help="noisy validation labels too (default: clean validation labels)")
    g.add_argument("--val-fraction", type=float, help="validation share of training (0.1)")
    g.add_argument("--train-subset", type=int, help="keep only this many training examples")
    g = p.add_argument_group("model and training")
    g.add_argument("--model", help="mlp (default), cnn1d, smallcnn, resnet18, wrn28_2, tv:NAME")
    g.add_argument("--budget", type=float, help="budget B in (0, 1]: N*B examples per epoch")
    g.add_argument("--epochs", type=int)
    g.add_argument("--batch-size", type=int)
    g.add_argument("--lr", type=float)
    g.add_argument("--momentum", type=float)
    g.add_argument("--nesterov", action="store_true", default=None)
    g.add_argument("--weight-decay", type=float)
    g.add_argument("--lr-schedule", choices=LR_SCHEDULES)
    g.add_argument("--milestones", type=float, nargs="+",
                   help="step-schedule milestones as fractions of training")
    g.add_argument("--seed", type=int)
    g.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    g.add_argument("--out", help="run directory (rerun the same command to resume)")
    g.add_argument("--restart", action="store_true",
                   help="discard what --out holds and start over")


def run_config_from_args(args: argparse.Namespace, exclude: Sequence[str] = ()):
    """The :class:`RunConfig` given by ``--config`` and the flags that were set."""
    from sampletune.experiments import RunConfig

    skip = {"config", "command", "func", "quiet", "threads", "restart", *exclude}
    overrides = {k: v for k, v in vars(args).items() if k not in skip and v is not None}
    return RunConfig.load(args.config, overrides)


def _cmd_train(args: argparse.Namespace) -> int:
    from sampletune.experiments import run_train

    cfg = run_config_from_args(args)
    result = run_train(cfg, progress=not args.quiet, restart=args.restart)
    f = result.final
    what = f"{cfg.method} (B={cfg.budget:g})" if cfg.method else cfg.noisy or cfg.sampler
    print(f"{what} on {cfg.dataset}: val acc {f['val_acc']:.4f}, "
          f"test acc {f['test_acc']:.4f}, {f['wall_time']:.1f}s"
          + (f" ({f['cost_trainings']:g} trainings)" if "cost_trainings" in f else "")
          + (f"  ->  {cfg.out}" if cfg.out else ""))
    if "best_epoch" in f:
        print(f"  early stopping: best val acc {f['best_val_acc']:.4f} at epoch "
              f"{f['best_epoch']}" + (f", test acc {f['best_test_acc']:.4f}"
                                      if "best_test_acc" in f else ""))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from sampletune.swift.pipeline import demo

    demo(out_dir=args.out, seeds=args.seeds, progress=not args.quiet)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from sampletune.augment import AUGMENT_NAMES
    from sampletune.budget.methods import ALL_METHODS
    from sampletune.noisy.methods import NOISY_NAMES

    parser = argparse.ArgumentParser(
        prog="sampletune", description="Learn how to sample training data, and train with it.")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's; "
                        "1 is fastest for small models on few cores)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model with a sampler")
    add_run_arguments(p)
    p.add_argument("--sampler", help="uniform (default: a shuffled pass per epoch), "
                   "with-replacement, oracle, weights, swift")
    p.add_argument("--weights", help="per-example weights (.npy/.pt) for --sampler weights, "
                   "or a sampler.json for --sampler swift")
    p.add_argument("--method", choices=ALL_METHODS, help="a budgeted-training method "
                   "(replaces --sampler): " + ", ".join(ALL_METHODS))
    p.add_argument("--noisy", metavar="NAME", help="a noisy-label baseline (replaces "
                   "--sampler; not with --method): " + ", ".join(NOISY_NAMES))
    p.add_argument("--noise-rate", type=float, metavar="R", help="the known label-noise "
                   "rate, for --noisy small-loss-known (required) and self-paced")
    p.add_argument("--augment", choices=AUGMENT_NAMES, help="data augmentation (image data)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("demo", help="Swift Sampler vs uniform on the built-in data "
                       "(digits, 40%% label noise, mlp)")
    p.add_argument("--out", default="runs/demo", help="run directory (default runs/demo; "
                   "rerun to resume)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds to average")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_demo)

    from sampletune.autosampling.cli import register as register_autosampling
    from sampletune.budget.cli import register as register_budget
    from sampletune.swift.cli import register as register_swift

    for register in (register_swift, register_autosampling, register_budget):
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.threads is not None:
            if args.threads < 1:
                raise ConfigError("threads", f"{args.threads} must be positive", ">= 1")
            import torch

            torch.set_num_threads(args.threads)
        return args.func(args)
    except ConfigError as err:
        print(f"sampletune: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sampletune: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

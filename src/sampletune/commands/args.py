"""Flag types and the run flags shared by every ``sampletune`` subcommand."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Sequence

from sampletune.train.config import LR_SCHEDULES


def finite_float(text: str) -> float:
    """argparse type: a finite float (``nan``, ``inf`` and overflowing ``1e999`` refused)."""
    try:  # ASCII only: Python's float() also reads other scripts' digits and "1_0"
        if not text.isascii() or "_" in text:
            raise ValueError(text)
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


MAX_INT_DIGITS = 18  # |value| < 10**18 fits int64; each field has its own, tighter range


def bounded_int(text: str) -> int:
    """argparse type: a decimal integer of at most 18 digits (fields check their ranges)."""
    if not re.fullmatch(r"\s*[+-]?[0-9]+\s*", text):  # int() also reads "١" and "1_0"
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer")
    value = int(text)
    if abs(value) >= 10**MAX_INT_DIGITS:
        raise argparse.ArgumentTypeError(f"{text!r} is out of range")
    return value


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
    g.add_argument("--noise", type=finite_float, help="label noise rate in [0, 1) (default 0.4)")
    g.add_argument("--noise-type", choices=NOISE_TYPES)
    g.add_argument("--val-noise", action="store_true", default=None,
                   help="noisy validation labels too (default: clean validation labels)")
    g.add_argument("--val-fraction", type=finite_float, help="validation share of training (0.1)")
    g.add_argument("--train-subset", type=bounded_int,
                   help="keep only this many training examples")
    g = p.add_argument_group("model and training")
    g.add_argument("--model", help="mlp (default), cnn1d, smallcnn, resnet18, wrn28_2, tv:NAME")
    g.add_argument("--budget", type=finite_float, help="budget B in (0, 1]: N*B examples per epoch")
    g.add_argument("--epochs", type=bounded_int)
    g.add_argument("--batch-size", type=bounded_int)
    g.add_argument("--lr", type=finite_float)
    g.add_argument("--momentum", type=finite_float)
    g.add_argument("--nesterov", action="store_true", default=None)
    g.add_argument("--weight-decay", type=finite_float)
    g.add_argument("--lr-schedule", choices=LR_SCHEDULES)
    g.add_argument("--milestones", type=finite_float, nargs="+",
                   help="step-schedule milestones as fractions of training")
    g.add_argument("--seed", type=bounded_int)
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

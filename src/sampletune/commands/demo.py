"""``sampletune demo``: the main job (:func:`sampletune.experiments.swift_pipeline.demo`).

Its flags and YAML keys are :class:`DemoConfig`'s fields.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from sampletune.errors import check
from sampletune.seeding import check_seed


@dataclass(frozen=True)
class DemoConfig:
    """What ``sampletune demo`` runs: the seeds it averages, and where."""

    out: str = "runs/demo"  # run directory (rerun to resume)
    seeds: tuple[int, ...] = (0, 1, 2)  # seeds to average

    def __post_init__(self):
        seeds = list(self.seeds)
        check(bool(seeds), "seeds", "is empty", "one or more seeds")
        for seed in seeds:
            check_seed(seed, "seeds")
        check(len(set(seeds)) == len(seeds), "seeds", f"{seeds} repeats a seed",
              "distinct seeds")


def register(subparsers) -> None:
    """Add ``demo`` to the ``sampletune`` subcommands."""
    from sampletune.commands.args import add_flags

    p = subparsers.add_parser("demo", help="Swift Sampler vs uniform on the built-in data "
                              "(digits, 40%% label noise, mlp)")
    p.add_argument("--config", help="YAML file of settings (out, seeds); flags override it")
    add_flags(p, DemoConfig())
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    from sampletune.commands.args import parts_from_args
    from sampletune.experiments.config import check_out_dir
    from sampletune.experiments.swift_pipeline import demo

    cfg = parts_from_args(args, {"": DemoConfig()})[""]
    check_out_dir(cfg.out)
    demo(out_dir=cfg.out, seeds=cfg.seeds, progress=not args.quiet)
    return 0

"""``sampletune swift search`` and ``sampletune swift verify``."""

from __future__ import annotations

import argparse

from sampletune.swift.agents import AGENTS
from sampletune.swift.engines import ENGINES
from sampletune.swift.family import SEARCH_FEATURES, TRANSFORMS


def register(subparsers) -> None:
    """Add the ``swift`` command (with ``search`` and ``verify``) to ``subparsers``."""
    from sampletune.commands.args import add_run_arguments, bounded_int, finite_float

    swift = subparsers.add_parser("swift", help="Swift Sampler: search a sampler, retrain, "
                                  "report")
    sub = swift.add_subparsers(dest="swift_command", required=True)

    p = sub.add_parser("search", help="train uniform (w_share), compute features, search a "
                       "sampler, retrain from scratch with it, report (resumable)")
    add_run_arguments(p)
    g = p.add_argument_group("search (defaults: the paper's)")
    g.add_argument("--rounds", type=bounded_int, default=40, help="E_o, agent steps (40)")
    g.add_argument("--finetune-epochs", type=bounded_int, default=5, help="E_f (5)")
    g.add_argument("--segments", type=bounded_int, default=4, help="S, pieces of H (4)")
    g.add_argument("--features", nargs="+", default=list(SEARCH_FEATURES),
                   help="features aggregated by G (default: train_loss renormed_entropy; "
                   "the paper's: loss renormed_entropy)")
    g.add_argument("--transform", choices=TRANSFORMS, default="cgf")
    g.add_argument("--grad-feature", choices=("grad_norm", "grad_norm_full"),
                   default="grad_norm", help="gradient norm cgf weighs by: logit layer "
                   "(closed form, default) or all parameters (torch.func)")
    g.add_argument("--agent", choices=AGENTS, default="bo")
    g.add_argument("--finetune-budget", type=finite_float, default=None,
                   help="fraction of N drawn per fine-tune epoch (default: set by --search-cost)")
    g.add_argument("--search-cost", type=finite_float, default=None,
                   help="set --finetune-budget so the search's fine-tune epochs cost this many "
                   "full trainings (default 2; with --finetune-budget given, that budget)")
    g.add_argument("--no-references", dest="references", action="store_false",
                   help="do not start the search from the reference samplers (uniform, drop "
                   "the top 10..50%% by loss)")
    g.add_argument("--finetune-lr-scale", type=finite_float, default=1.0,
                   help="fine-tune LR as a multiple of --lr (1)")
    g = p.add_argument_group("parallel trials (the trials depend on Q, not on the engine)")
    g.add_argument("--parallel-trials", type=bounded_int, default=None, metavar="Q",
                   help="trials in flight at a time (1: the sequential search)")
    g.add_argument("--engine", choices=ENGINES, default="local",
                   help="where trials run: this process, a local process pool, or Ray")
    g.add_argument("--ray-address", help="join this Ray cluster (default: start a local one)")
    g.add_argument("--gpus-per-trial", type=finite_float, default=None,
                   help="GPUs Ray gives each trial (a fraction shares one; default one each "
                   "when the cluster has enough)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_search)

    p = sub.add_parser("verify", help="appendix A.1.1: retrain the last k samplers of a "
                       "search from scratch; report SR and TR")
    p.add_argument("--run", required=True, help="run directory of `swift search`")
    p.add_argument("--k", type=bounded_int, default=10, help="samplers to retrain (10)")
    p.add_argument("--select", choices=("last", "spread"), default="last",
                   help="which: the last k (the paper's), or k spread over the score ranking")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_verify)


_SEARCH_FLAGS = ("rounds", "finetune_epochs", "segments", "features", "transform",
                 "grad_feature", "agent", "finetune_budget", "finetune_lr_scale", "references",
                 "parallel_trials")
_ENGINE_FLAGS = ("engine", "ray_address", "gpus_per_trial")


def _cmd_search(args: argparse.Namespace) -> int:
    from sampletune.commands.args import run_config_from_args
    from sampletune.swift.engines import EngineConfig
    from sampletune.swift.pipeline import DEFAULT_SEARCH_COST, run_swift
    from sampletune.swift.search import SearchConfig

    run = run_config_from_args(args, exclude=(*_SEARCH_FLAGS, *_ENGINE_FLAGS, "search_cost",
                                              "swift_command"))
    given = {k: getattr(args, k) for k in _SEARCH_FLAGS if getattr(args, k) is not None}
    search = SearchConfig(**given)
    engine = EngineConfig(args.engine, args.ray_address, gpus_per_trial=args.gpus_per_trial)
    check_search_args(args, run, search)
    cost = args.search_cost
    if cost is None and args.finetune_budget is None:
        cost = DEFAULT_SEARCH_COST
    report = run_swift(run, search, search_cost=cost, progress=not args.quiet,
                       restart=args.restart, engine=engine)
    u, ss, kept = report["uniform"], report["swift"], report["chosen"]
    print(f"{run.dataset} (noise {run.noise}), {run.model}: test acc uniform "
          f"{u['test_acc']:.4f}, early stopped {u['early_stopped']['test_acc']:.4f}, swift "
          f"sampler {ss['early_stopped']['test_acc']:.4f}; kept {kept['name']}"
          f"{'' if kept['name'] == 'swift' else ', ' + kept['uniform_model'].replace('_', ' ')} "
          f"({kept['test_acc']:.4f}); pipeline {report['cost']['pipeline']:.1f}x one training "
          f"(search {report['search']['cost_wall_trainings']:.1f}x)  ->  {run.out}/report.md, "
          f"{run.out}/sampler.json")
    return 0


MAX_SEGMENTS = 64  # S: the paper uses 4; the search space has 2S + N - 1 dimensions


def check_search_args(args: argparse.Namespace, run, search) -> None:
    """What the search would otherwise find wrong only after the uniform training."""
    from sampletune.errors import check
    from sampletune.features import FEATURE_NAMES
    from sampletune.train.config import MAX_LR

    bad = [f for f in search.features if f not in FEATURE_NAMES]
    check(not bad, "features", f"unknown feature {bad[0] if bad else ''!r}",
          ", ".join(FEATURE_NAMES))
    check(len(set(search.features)) == len(search.features), "features",
          f"{list(search.features)} repeats a feature", "distinct feature names")
    check(search.segments <= MAX_SEGMENTS, "segments", f"{search.segments} is too many",
          f"1..{MAX_SEGMENTS}")
    lr = run.lr * search.finetune_lr_scale
    check(lr <= MAX_LR, "finetune_lr_scale", f"{search.finetune_lr_scale:g} makes the "
          f"fine-tune LR {lr:g}", f"lr * finetune_lr_scale <= {MAX_LR:g}")
    if args.search_cost is not None:
        check(args.search_cost > 0, "search_cost", f"{args.search_cost} must be positive",
              "> 0")


def _cmd_verify(args: argparse.Namespace) -> int:
    from sampletune.errors import check
    from sampletune.swift.pipeline import verify_run

    check(args.k >= 2, "k", f"{args.k} samplers cannot be ranked", ">= 2")
    result = verify_run(args.run, args.k, select=args.select, progress=not args.quiet)
    print(f"{args.run}: SR {result['SR']:.3f} (Spearman, approximated vs from scratch), "
          f"TR {result['TR']} (from-scratch rank of the approximated top-1), k={result['k']}")
    return 0

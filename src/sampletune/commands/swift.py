"""``sampletune swift search`` and ``sampletune swift verify``."""

from __future__ import annotations

import argparse

from sampletune.swift.agents import AGENTS
from sampletune.swift.engines import ENGINES
from sampletune.swift.family import TRANSFORMS


def register(subparsers) -> None:
    """Add the ``swift`` command (with ``search`` and ``verify``) to ``subparsers``."""
    from sampletune.commands.args import add_flags, add_run_arguments, bounded_int, finite_float
    from sampletune.swift.search import SearchConfig

    swift = subparsers.add_parser("swift", help="Swift Sampler: search a sampler, retrain, "
                                  "report")
    sub = swift.add_subparsers(dest="swift_command", required=True)

    p = sub.add_parser("search", help="train uniform (w_share), compute features, search a "
                       "sampler, retrain from scratch with it, report (resumable)")
    add_run_arguments(p)
    g = p.add_argument_group("search (defaults: the paper's; in a YAML file flat or under "
                             "search:)")
    add_flags(g, SearchConfig(), skip=("seed",), **SEARCH_HELP)
    g.add_argument("--search-cost", type=finite_float, default=None,
                   help="set --finetune-budget so the search's fine-tune epochs cost this many "
                   "full trainings (default 2; with --finetune-budget given, that budget)")
    g = p.add_argument_group("where trials run (the trials depend on --parallel-trials, not on "
                             "the engine)")
    g.add_argument("--engine", choices=ENGINES, default="local",
                   help="this process, a local process pool, or Ray")
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


SEARCH_HELP = {  # flags of SearchConfig's fields: what its comments do not say
    "rounds": {"help": "E_o, agent steps"},
    "finetune_epochs": {"help": "E_f, epochs of each candidate's fine-tune"},
    "segments": {"help": "S, pieces of H"},
    "features": {"help": "features aggregated by G (the paper's: loss renormed_entropy; "
                 "also grad_norm, class_train_loss: train_loss against its labelled class)"},
    "transform": {"choices": TRANSFORMS},
    "grad_feature": {"choices": ("grad_norm", "grad_norm_full"), "help": "gradient norm cgf "
                     "weighs by: logit layer (closed form) or all parameters (torch.func)"},
    "agent": {"choices": AGENTS},
    "finetune_budget": {"help": "fraction of N drawn per fine-tune epoch (default: set by "
                        "--search-cost)"},
    "finetune_lr_scale": {"help": "fine-tune LR as a multiple of --lr"},
    "references": {"help": "start the search from the reference samplers (uniform, drop "
                   "the top 10..50% by loss)"},
    "refine": {"help": "where the loss mixture leaves >= 15% of the examples undecided, "
               "re-score the cut with the Swift model and retrain it (kept unless "
               "validation prefers the model kept before)"},
    "agent_options": {"help": "keywords of the agent, e.g. '{n_init: 5}' for bo"},
    "parallel_trials": {"metavar": "Q", "help": "trials in flight at a time (1: the "
                        "sequential search)"},
}


def _cmd_search(args: argparse.Namespace) -> int:
    from sampletune.commands.args import config_from_args, distributed_run
    from sampletune.configs import build, coerce, field_names
    from sampletune.experiments.swift_pipeline import (
        DEFAULT_SEARCH_COST,
        kept_model_name,
        run_swift,
    )
    from sampletune.swift.engines import EngineConfig
    from sampletune.swift.search import SearchConfig, check_distributed
    from sampletune.train.distributed import current_world, launched_size

    names = tuple(n for n in field_names(SearchConfig) if n != "seed")
    run, extra = config_from_args(args, search=(*names, "search_cost"))
    given = extra["search"]
    cost = given.pop("search_cost", None)
    cost = None if cost is None else coerce("search_cost", cost, float)
    search = build(SearchConfig, given)
    engine = EngineConfig(args.engine, args.ray_address, gpus_per_trial=args.gpus_per_trial)
    check_search_args(run, search, cost)
    check_distributed(engine, search.parallel_trials, launched_size())
    if cost is None and "finetune_budget" not in given:
        cost = DEFAULT_SEARCH_COST
    with distributed_run(run) as run:  # under torchrun: one rank each
        report = run_swift(run, search, search_cost=cost, progress=not args.quiet,
                           restart=args.restart, engine=engine)
        if current_world().rank != 0:
            return 0
    u, ss, kept = report["uniform"], report["swift"], report["chosen"]
    print(f"{run.dataset} (noise {run.noise}), {run.model}: test acc uniform "
          f"{u['test_acc']:.4f}, early stopped {u['early_stopped']['test_acc']:.4f}, swift "
          f"sampler {ss[kept['swift_model']]['test_acc']:.4f}; kept "
          f"{kept_model_name(report)} ({kept['test_acc']:.4f}); "
          f"pipeline {report['cost']['pipeline']:.1f}x one training "
          f"(search {report['search']['cost_wall_trainings']:.1f}x)  ->  {run.out}/report.md, "
          f"{run.out}/sampler.json")
    for warning in report["warnings"]:
        print(f"warning: {warning}")
    return 0


MAX_SEGMENTS = 64  # S: the paper uses 4; the search space has 2S + N - 1 dimensions


def check_search_args(run, search, search_cost: float | None) -> None:
    """What the search would otherwise find wrong only after the uniform training."""
    from sampletune.errors import check
    from sampletune.features import FEATURE_NAMES
    from sampletune.swift.agents import make_agent
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
    if search_cost is not None:
        check(search_cost > 0, "search_cost", f"{search_cost} must be positive", "> 0")
    make_agent(search.agent, search.dim, search.seed, **search.agent_options)


def _cmd_verify(args: argparse.Namespace) -> int:
    from sampletune.errors import check
    from sampletune.experiments.swift_pipeline import verify_run

    check(args.k >= 2, "k", f"{args.k} samplers cannot be ranked", ">= 2")
    result = verify_run(args.run, args.k, select=args.select, progress=not args.quiet)
    sr = "undefined (the scores tie)" if result["SR"] is None else f"{result['SR']:.3f}"
    print(f"{args.run}: SR {sr} (Spearman, approximated vs from scratch), "
          f"TR {result['TR']} (from-scratch rank of the approximated top-1), k={result['k']}")
    return 0

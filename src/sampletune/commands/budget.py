"""``sampletune budget-table``: the budgeted-training grid and its tables (Tables 2-3, Fig. 1)."""

from __future__ import annotations

import argparse

from sampletune.augment import AUGMENT_NAMES
from sampletune.budget.methods import ALL_METHODS, METHOD_NAMES
from sampletune.train.config import LR_SCHEDULES


def register(subparsers) -> None:
    """Add ``budget-table`` to the ``sampletune`` subcommands."""
    from sampletune.commands.args import bounded_int, finite_float

    p = subparsers.add_parser(
        "budget-table", help="run the budgeted-training grid and print Tables 2/3 and Fig. 1",
        description="Train every method at every budget, LR schedule, augmentation and seed "
        "(finished cells in OUT/cells.jsonl are not rerun) and print a markdown table shaped "
        "like Tables 2 and 3 of the budgeted importance sampling paper, plus CSV and plots.")
    p.add_argument("--dataset", nargs="+", default=["mnist1d"], help="data set name(s)")
    p.add_argument("--data-dir", help="folder holding the data set")
    p.add_argument("--train-subset", type=bounded_int,
                   help="keep only this many training examples")
    p.add_argument("--budgets", type=finite_float, nargs="+", default=[0.2, 0.3, 0.5])
    p.add_argument("--methods", nargs="+", default=list(METHOD_NAMES), choices=ALL_METHODS,
                   metavar="METHOD", help=f"any of {', '.join(ALL_METHODS)}")
    p.add_argument("--lr-schedules", nargs="+", default=["step", "linear"], choices=LR_SCHEDULES)
    p.add_argument("--augments", nargs="+", default=["none"], choices=AUGMENT_NAMES,
                   help="augmentations (image data only, except none)")
    p.add_argument("--full-augments", nargs="+", choices=AUGMENT_NAMES, metavar="AUGMENT",
                   help="train the full-training (B = 1) row only for these augmentations "
                   "(default: for every one)")
    p.add_argument("--seeds", type=bounded_int, nargs="+", default=[0, 1, 2])
    p.add_argument("--model", default="mlp")
    p.add_argument("--epochs", type=bounded_int, default=30,
                   help="T, epochs of a full training")
    p.add_argument("--batch-size", type=bounded_int, default=128)
    p.add_argument("--lr", type=finite_float, default=0.1)
    p.add_argument("--weight-decay", type=finite_float, default=5e-4)
    p.add_argument("--warmup-epochs", type=bounded_int, default=0,
                   help="uniform epochs of p-/c-SGD")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--out", default="runs/budget-table", help="results folder (resumable)")
    p.add_argument("--restart", action="store_true", help="discard the cells --out holds")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_budget_table)


def _cmd_budget_table(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sampletune.budget.table import GridSpec, run_grid, write_report
    from sampletune.data import dataset_names
    from sampletune.errors import check
    from sampletune.experiments.config import check_out_dir, check_seed, resolve_device
    from sampletune.models.registry import model_names

    device = resolve_device(args.device)
    for name in args.dataset:
        check(name in dataset_names(), "dataset", f"unknown data set {name!r}",
              ", ".join(dataset_names()))
    check(args.model.startswith("tv:") or args.model in model_names(), "model",
          f"unknown model {args.model!r}", ", ".join(model_names()))
    for seed in args.seeds:
        check_seed(seed, "seeds")
    for name in ("dataset", "budgets", "methods", "lr_schedules", "augments", "seeds"):
        values = getattr(args, name)
        check(len(set(values)) == len(values), name, f"{values} repeats a value",
              "distinct values")
    check(args.train_subset is None or args.train_subset >= 2, "train_subset",
          f"{args.train_subset} is too small", ">= 2, at most the training set's size")
    check_out_dir(args.out)
    if args.data_dir is not None:
        check(Path(args.data_dir).exists(), "data_dir", f"{args.data_dir!r} does not exist")
    spec = GridSpec(
        datasets=tuple(args.dataset), budgets=tuple(args.budgets), methods=tuple(args.methods),
        lr_schedules=tuple(args.lr_schedules), augments=tuple(args.augments),
        full_augments=tuple(args.full_augments) if args.full_augments else None,
        seeds=tuple(args.seeds), model=args.model, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
        train_subset=args.train_subset, warmup_epochs=args.warmup_epochs,
        data_dir=args.data_dir, device=device)
    check(0 <= args.warmup_epochs < args.epochs, "warmup_epochs", f"{args.warmup_epochs} "
          f"is outside [0, {args.epochs})", "0 <= warmup_epochs < epochs")
    records = run_grid(spec, args.out, progress=not args.quiet, restart=args.restart)
    md, table_csv = write_report(records, args.out)
    print(md)
    print(table_csv)
    print(f"tables and plots in {args.out}/ (table.md, table.csv, entropy.png)")
    return 0

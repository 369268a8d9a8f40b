"""``sampletune budget-table``: the budgeted-training grid and its tables (Tables 2-3, Fig. 1).

Its flags and YAML keys are :class:`~sampletune.budget.table.GridSpec`'s fields and
:class:`TableDir`'s (:func:`sampletune.configs.add_flags`).
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass

from sampletune.augment import AUGMENT_NAMES
from sampletune.budget.methods import ALL_METHODS
from sampletune.budget.table import GridSpec
from sampletune.train.config import LR_SCHEDULES

# The command's grid: GridSpec's defaults, but the device picked at run time.
GRID = GridSpec(device="auto")


@dataclass(frozen=True)
class TableDir:
    """Where ``budget-table`` keeps its cells, tables and plots."""

    out: str = "runs/budget-table"  # results folder (rerun the same command to resume)


def register(subparsers) -> None:
    """Add ``budget-table`` to the ``sampletune`` subcommands."""
    from sampletune.commands.args import add_flags

    p = subparsers.add_parser(
        "budget-table", help="run the budgeted-training grid and print Tables 2/3 and Fig. 1",
        description="Train every method at every budget, LR schedule, augmentation and seed "
        "(finished cells in OUT/cells.jsonl are not rerun) and print a markdown table shaped "
        "like Tables 2 and 3 of the budgeted importance sampling paper, plus CSV and plots.")
    p.add_argument("--config", help="YAML file of settings, flat (epochs: 10) or under grid: "
                   "(grid: {epochs: 10}); flags override it")
    add_flags(p.add_argument_group("grid"), GRID,
              methods={"choices": ALL_METHODS, "metavar": "METHOD",
                       "help": f"any of {', '.join(ALL_METHODS)}"},
              lr_schedules={"choices": LR_SCHEDULES}, augments={"choices": AUGMENT_NAMES},
              full_augments={"choices": AUGMENT_NAMES, "metavar": "AUGMENT"})
    add_flags(p, TableDir())
    p.add_argument("--restart", action="store_true", help="discard the cells --out holds")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_budget_table)


def _cmd_budget_table(args: argparse.Namespace) -> int:
    from sampletune.budget.table import run_grid, write_report
    from sampletune.commands.args import parts_from_args
    from sampletune.experiments.config import check_out_dir, resolve_device

    parts = parts_from_args(args, {"grid": GRID, "": TableDir()})
    spec, out = parts["grid"], parts[""].out
    spec = dataclasses.replace(spec, device=resolve_device(spec.device))
    check_out_dir(out)
    records = run_grid(spec, out, progress=not args.quiet, restart=args.restart)
    md, table_csv = write_report(records, out)
    print(md)
    print(table_csv)
    print(f"tables and plots in {out}/ (table.md, table.csv, entropy.png)")
    return 0

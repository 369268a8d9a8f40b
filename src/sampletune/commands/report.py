"""``sampletune report RUN_DIR``: the report of a finished run directory, after the fact.

The kind of run is told by the files it holds:

- an AutoSampling search (``search.json`` and ``curves.json``; finished: ``report.json``
  too): final metrics and the convergence figure
  (:func:`sampletune.autosampling.plots.convergence`);
- a ``swift search`` (``report.json``): its markdown again
  (:func:`sampletune.experiments.swift_pipeline.report_markdown`);
- a ``budget-table`` folder (``cells.jsonl``): its tables and figures
  (:func:`sampletune.budget.table.write_report`), and the cells of its ``grid.json`` not
  run yet;
- a ``train`` run (``summary.json`` and ``metrics.jsonl``): final and best-validation-epoch
  metrics and the learning curve (:func:`sampletune.plots.learning_curves`).

The markdown is printed and written to ``RUN_DIR/report.md`` with the figures (``--no-write``
writes nothing). Files are read with :mod:`sampletune.io` (nothing is unpickled); a folder
of no known kind or of an unfinished run, or with damaged files or metrics outside what they
can be (:func:`check_metrics`), is a one-line :class:`ConfigError` on ``run``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable, Iterator
from fnmatch import fnmatchcase
from pathlib import Path

from sampletune import io
from sampletune.errors import ConfigError, check

KINDS = "a run directory of train, swift search, budget-table or autosampling search"
METRIC_COLUMNS = ("train_loss", "val_loss", "val_acc", "test_loss", "test_acc")
# the files each kind of run is told by, in the order they are tried
MARKERS = {"autosampling": ("search.json", "curves.json"), "swift": ("report.json",),
           "budget": ("cells.jsonl",), "train": ("summary.json", "metrics.jsonl")}
_REPAIR = "a file the run wrote"
_SHARE, _AMOUNT = (False, 0, 1), (False, 0, math.inf)
_COUNT, _EPOCHS = (True, 0, math.inf), (True, 1, math.inf)
# What a number the reports show can be, by its key (dotted below report.json's top level;
# the first pattern that matches): (an integer?, low, high).
METRICS = (
    ("*least_drawn_class_mass", _AMOUNT),  # a ratio to uniform sampling's share
    ("*feature_auroc.*", _SHARE), ("*_auroc", _SHARE), ("*_acc", _SHARE), ("*_mass", _SHARE),
    ("*_share", _SHARE), ("*.ess", _SHARE), ("*.ambiguous", _SHARE), ("*.swapped", _SHARE),
    ("*.finetune_budget", _SHARE),
    ("*_loss", _AMOUNT), ("time", _AMOUNT), ("*wall_time", _AMOUNT), ("*_trainings", _AMOUNT),
    ("cost.*", _AMOUNT), ("*.spread", _AMOUNT), ("*.two_se", _AMOUNT),
    ("*epochs", _EPOCHS), ("*epoch", _COUNT), ("*_losses", _COUNT), ("*_wins", _COUNT),
    ("*_trials", _COUNT), ("*.rounds", _COUNT), ("evaluations", _COUNT),
    ("*least_drawn_class", _COUNT),
)
# the records of a swift search report's accuracy table
SWIFT_ROWS = ("uniform", "uniform.early_stopped", "swift", "swift.early_stopped", "chosen")


def register(subparsers) -> None:
    """Add ``report`` to the ``sampletune`` subcommands."""
    p = subparsers.add_parser(
        "report", help="render the report of a finished run directory",
        description="Print the markdown report of a finished run (train, swift search, "
        "budget-table or autosampling search) and write it to RUN/report.md with its figures.")
    p.add_argument("run", help="the run directory")
    p.add_argument("--no-write", action="store_true",
                   help="only print the markdown; write no file")
    p.set_defaults(func=_cmd_report)


def _cmd_report(args: argparse.Namespace) -> int:
    md, written = render(args.run, write=not args.no_write)
    print(md)
    if written:
        print(f"written in {Path(args.run)}/: " + ", ".join(p.name for p in written))
    return 0


def run_kind(run: Path) -> str:
    """``autosampling``, ``swift``, ``budget`` or ``train``, from the files ``run`` holds
    (:data:`MARKERS`)."""
    check(run.is_dir(), "run", f"{str(run)!r} is not a folder", KINDS)
    for kind, names in MARKERS.items():
        if all((run / name).is_file() for name in names):
            return kind
    raise ConfigError("run", f"{run} holds no finished run ({_lacks(run)})", KINDS)


def _lacks(run: Path) -> str:
    """Which of the files that tell a run's kind ``run`` has, and what they lack."""
    if (run / "search.json").is_file() and (run / "trials.jsonl").is_file():
        return ("search.json and trials.jsonl: the trials of a swift search, reported with "
                "its run directory, the folder above")
    parts = []
    for names in MARKERS.values():
        have = [name for name in names if (run / name).is_file()]
        if have:
            parts.append(" and ".join(have) + " but no "
                         + " and ".join(name for name in names if name not in have))
    every = [name for names in MARKERS.values() for name in names]
    return "; ".join(parts) or "none of " + ", ".join(every)


def render(run: str | Path, write: bool = True) -> tuple[str, list[Path]]:
    """The markdown report of ``run`` and the files written (``report.md`` and figures;
    none unless ``write``)."""
    check(str(run) != "", "run", "is an empty path", KINDS)
    run = Path(run)
    kind = run_kind(run)
    try:
        md, written = _RENDERERS[kind](run, write)
        if write:
            io.write_text(run / "report.md", md)
            written.insert(0, run / "report.md")
    except ConfigError:
        raise
    except OSError as err:  # e.g. a figure's or report.md's name taken by a folder
        raise ConfigError("run", f"cannot write the report into {run} "
                          f"({io.describe_error(err)})", "a run directory you can write to"
                          ) from None
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, ZeroDivisionError,
            OverflowError) as err:  # a file that reads as JSON but is not what the run wrote
        raise ConfigError("run", f"{run} holds damaged {kind} files "
                          f"({io.describe_error(err)})", KINDS) from None
    return md, written


def check_metrics(where: str, record: dict, required: Iterable[str] = (), *,
                  key: str = "", nested: bool = False) -> None:
    """Refuse (a one-line :class:`ConfigError` on ``run`` naming ``where``, the file and
    record, and the field) a ``record`` whose ``required`` fields are missing or null, or
    whose numbers :data:`METRICS` knows by name are not what they can be. ``key``: the
    record's dotted key in its file; ``nested``: a null is allowed for a number, and an
    object (checked on its own) where a key's name is a metric's."""
    check(isinstance(record, dict), "run", f"{where} is not a JSON object", _REPAIR)
    for name in required:
        check(record.get(name) is not None, "run", f"{where} has no {name}",
              _allowed(_rule(name)))
    for name, value in record.items():
        rule = _rule(f"{key}.{name}" if key else name)
        if rule is None or nested and (value is None or isinstance(value, dict)):
            continue
        integer, low, high = rule
        check(isinstance(value, int if integer else int | float)
              and not isinstance(value, bool)
              and (isinstance(value, int) or math.isfinite(value)) and low <= value <= high,
              "run", f"{where} has {name} {io.short_repr(value)}", _allowed(rule))


def _rule(name: str) -> tuple | None:
    """The first rule of :data:`METRICS` whose pattern ``name`` matches; None if none."""
    return next((rule for pattern, rule in METRICS if fnmatchcase(name, pattern)), None)


def _allowed(rule: tuple | None) -> str:
    """What ``rule`` allows, in words."""
    if rule is None:
        return _REPAIR
    integer, low, high = rule
    if integer:
        return f"an integer >= {low}"
    return f"a number in [{low}, {high}]" if high < math.inf else f"a finite number >= {low}"


def _records(d: dict, key: str = "") -> Iterator[tuple[str, dict]]:
    """``(dotted key, record)`` of ``d`` (key "") and of every object nested in it."""
    yield key, d
    for name, value in d.items():
        if isinstance(value, dict):
            yield from _records(value, f"{key}.{name}" if key else name)


def _table(rows: list[tuple[str, dict]], columns) -> list[str]:
    """A markdown table: one row per (label, record), a column per key any record has."""
    cols = [c for c in columns if any(c in r for _, r in rows)]
    lines = ["| | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for label, r in rows:
        lines.append(f"| {label} | " + " | ".join(
            f"{float(r[c]):.4f}" if c in r else "-" for c in cols) + " |")
    return lines


def _train(run: Path, write: bool) -> tuple[str, list[Path]]:
    from sampletune.plots import learning_curves
    from sampletune.train.loop import best_record

    summary = io.read_json(run / "summary.json", "run")
    path = run / "metrics.jsonl"
    history = io.read_jsonl(path, "epoch", sequential=True, field="run")
    check(bool(history), "run", f"{path} holds no epoch", KINDS)
    for i, record in enumerate(history):
        check_metrics(f"{path} record {i}", record, ("train_loss",))
    cfg = summary["config"]
    check_metrics(f"{run}/summary.json", summary)
    check_metrics(f"{run}/summary.json config", cfg, ("epochs",))
    epochs = summary.get("epochs", cfg["epochs"])
    check(len(history) <= epochs, "run", f"{path} holds {len(history)} epochs of a run of "
          f"{epochs}", _REPAIR)
    name = cfg.get("method") or cfg.get("noisy") or cfg.get("sampler") or "uniform"
    last, best = history[-1], best_record(history)
    rows = [(f"last epoch ({last['epoch']})", last)]
    if best is not None:
        rows.append((f"best validation epoch ({best['epoch']})", best))
    lines = [f"# {name}: {cfg['model']} on {cfg['dataset']}, noise {cfg['noise']}, "
             f"seed {cfg['seed']}", "", *_table(rows, METRIC_COLUMNS), "",
             f"{len(history)} of {epochs} epochs, "
             f"{float(summary.get('wall_time', last.get('time', 0.0))):.1f}s."]
    if "swift_features" in summary:
        lines.append(f"Sampler features: {summary['swift_features']}.")
    written = []
    if write:
        written.append(learning_curves({name: history}, run / "learning_curve.png",
                                       title=f"{cfg['model']} on {cfg['dataset']}, "
                                       f"noise {cfg['noise']}"))
        lines.append("")
        lines.append("![learning curve](learning_curve.png)")
    return "\n".join(lines) + "\n", written


def _swift(run: Path, write: bool) -> tuple[str, list[Path]]:
    from sampletune.experiments.swift_pipeline import report_markdown

    path = run / "report.json"
    report = io.read_json(path, "run")
    check(isinstance(report, dict) and "search" in report, "run",
          f"{path} is not a swift search report", KINDS)
    records = dict(_records(report))
    for key in SWIFT_ROWS:
        check(key in records, "run", f"{path} has no {key} record", _REPAIR)
    for key, record in records.items():
        check_metrics(f"{path} {key or 'top level'}", record,
                      ("test_acc", "val_acc") if key in SWIFT_ROWS else (), key=key, nested=True)
    return report_markdown(report), []


def _budget(run: Path, write: bool) -> tuple[str, list[Path]]:
    from sampletune.budget.table import aggregate, check_cells, markdown_tables, write_report

    path = run / "cells.jsonl"
    records = io.read_jsonl(path, "key", field="run")
    check(bool(records), "run", f"{path} holds no finished cell", KINDS)
    check_cells(path, records, "run")
    unfinished = _unfinished_cells(run, records)
    if not write:
        return markdown_tables(aggregate(records)) + unfinished, []
    md, _ = write_report(records, run)
    written = [run / name for name in ("table.md", "table.csv", "entropy.png", "subsets.png")
               if (run / name).exists()]
    return md + unfinished, written


def _unfinished_cells(run: Path, records: list[dict]) -> str:
    """A markdown line naming the cells of ``run/grid.json`` (the grid budget-table was last
    given there) that ``records`` lack; "" if none, or without grid.json."""
    from sampletune.budget.table import GridSpec, cell_key

    path = run / "grid.json"
    if not path.is_file():
        return ""
    grid = io.read_json(path, "run")
    check(isinstance(grid, dict), "run", f"{path} is not a budget-table grid", _REPAIR)
    try:  # where the data lives is no part of a cell
        spec = GridSpec(**{**grid, "data_dir": None})
    except ConfigError as err:
        raise ConfigError("run", f"{path} has a bad {err.field}", _REPAIR) from None
    done = {r["key"] for r in records}
    cells = spec.cells()
    missing = [c for c in cells if cell_key(c) not in done]
    if not missing:
        return ""
    names = [f"{c['dataset']} {c['augment']} {c['lr_schedule']} {c['method']} "
             f"B = {c['budget']:g} seed {c['seed']}" for c in missing]
    more = f"; and {len(names) - 10} more" if len(names) > 10 else ""
    return (f"\n**Unfinished:** {len(missing)} of the {len(cells)} cells of grid.json have "
            "no result yet (rerun the budget-table command to run them): "
            + "; ".join(names[:10]) + more + ".\n")


def _autosampling(run: Path, write: bool) -> tuple[str, list[Path]]:
    from sampletune.autosampling.plots import convergence
    from sampletune.autosampling.search import CURVE_KEYS
    from sampletune.train.loop import best_record

    search = io.read_json(run / "search.json", "run")
    path = run / "curves.json"
    curves = io.read_json(path, "run")
    check(isinstance(curves, list) and bool(curves), "run", f"{path} holds no epoch", KINDS)
    for i, record in enumerate(curves):
        check_metrics(f"{path} record {i}", record, CURVE_KEYS)
        check(record["epoch"] == i, "run", f"{path} record {i} has epoch {record['epoch']}",
              f"{i}, its position")
    check_metrics(f"{run}/search.json train", search["train"], ("epochs",))
    epochs, finished = search["train"]["epochs"], (run / "report.json").is_file()
    check(len(curves) == epochs or len(curves) < epochs and not finished, "run",
          f"{path} holds {len(curves)} epochs of a search of {epochs}", _REPAIR)
    check(finished, "run", f"{run} holds no finished run (an autosampling search stopped after "
          f"{len(curves)} of {epochs} epochs: no report.json, which it writes when it ends; "
          "rerun its command to resume it)", KINDS)
    exploration = search["search"]["exploration"]
    last = curves[-1]
    best = best_record(curves)
    rows = [(f"last epoch ({last['epoch']})", last)]
    if best is not None:
        rows.append((f"best validation epoch ({best['epoch']})", best))
    lines = [f"# AutoSampling search ({exploration}): {run.name}", "",
             *_table(rows, METRIC_COLUMNS), "",
             f"{len(curves)} epochs, {last['worker_epochs']} worker-epochs, "
             f"{last['time']:.1f}s."]
    written = []
    if write:
        written.append(convergence({exploration: curves}, run / "convergence.png"))
        lines += ["", "![convergence](convergence.png)"]
    return "\n".join(lines) + "\n", written


_RENDERERS = {"train": _train, "swift": _swift, "budget": _budget,
              "autosampling": _autosampling}
